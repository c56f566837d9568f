// run_probe: prompts → chat-template ids → model::generate in batches (sampled
// rows, then greedy rows) with routing capture → ProbeResponses. A second,
// teacher-forced pass over each batch's full sequences checks the logits for
// NaN/Inf and, with base_routing, routes them through the base model.
#include "eval/probe_run.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/json_read.h"
#include "eval/routing_capture.h"
#include "lora/adapter_file.h"
#include "model/arch/adapter_hooks.h"
#include "model/arch/generate.h"
#include "model/io/config.h"
#include "model/text/chat.h"
#include "model/text/tokenizer.h"

namespace character::eval {

namespace fs = std::filesystem;

namespace {

// One response to generate: prompt `prompt`, response index `response`.
struct Row {
  std::size_t prompt = 0;
  int64_t response = 0;
  bool greedy = false;
};

// Progress lines with an ETA from the responses done so far.
class Progress {
 public:
  Progress(int64_t total, bool on) : total_(total), on_(on), start_(std::chrono::steady_clock::now()) {}
  void advance(int64_t rows) {
    done_ += rows;
    if (!on_) return;
    const double elapsed = seconds();
    const double eta = done_ > 0 ? elapsed / static_cast<double>(done_) * static_cast<double>(total_ - done_) : 0.0;
    std::fprintf(stderr, "eval: %lld/%lld responses, %.1f s, ETA %.0f s\n", static_cast<long long>(done_),
                 static_cast<long long>(total_), elapsed, eta);
    std::fflush(stderr);
  }
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  int64_t done() const { return done_; }
  int64_t total() const { return total_; }

 private:
  int64_t total_, done_ = 0;
  bool on_;
  std::chrono::steady_clock::time_point start_;
};

void check_options(const ProbeRunOptions& o, std::size_t prompts) {
  if (o.samples < 0) throw ConfigError("eval: --samples " + std::to_string(o.samples) + ", expected ≥ 0");
  if (o.samples == 0 && !o.greedy) {
    throw ConfigError("eval: --samples 0 without the greedy response, expected at least one response per prompt");
  }
  if (o.max_new_tokens < 1) {
    throw ConfigError("eval: --max-new-tokens " + std::to_string(o.max_new_tokens) + ", expected ≥ 1");
  }
  if (o.batch_rows < 1) throw ConfigError("eval: batch_rows " + std::to_string(o.batch_rows) + ", expected ≥ 1");
  if (o.temperature && *o.temperature <= 0) {
    throw ConfigError("eval: temperature " + std::to_string(*o.temperature) +
                      ", expected > 0 (the greedy response is always there; --samples 0 for greedy only)");
  }
  if (o.top_p && (*o.top_p <= 0 || *o.top_p > 1)) {
    throw ConfigError("eval: top_p " + std::to_string(*o.top_p) + ", expected in (0, 1]");
  }
  if (o.device != "cpu" && o.device != "cuda") throw ConfigError("eval: --device " + o.device + ", expected cpu or cuda");
  if (prompts == 0) throw ConfigError("eval: no probe prompts (check --categories and --prompts)");
}

bool all_finite(const std::vector<float>& values) {
  return std::all_of(values.begin(), values.end(), [](float v) { return std::isfinite(v); });
}

// The teacher-forced pass over a batch's sequences prompt + generated[:-1]: the
// logits of the (adapted) model are checked for NaN/Inf, and with `base` the
// base model's routing of the same positions is recorded in the layout of the
// generation capture (prompt rows; generated row g = position P-1+g).
void teacher_forced(model::CausalLMImpl& model, const std::vector<const std::vector<int64_t>*>& prompt_ids,
                    std::vector<ProbeResponse*>& responses, bool base, int64_t pad_id) {
  torch::NoGradGuard no_grad;
  const auto batch = static_cast<int64_t>(responses.size());
  std::vector<int64_t> lengths(batch);
  int64_t longest = 0;
  for (int64_t b = 0; b < batch; ++b) {
    lengths[b] = static_cast<int64_t>(prompt_ids[b]->size() + responses[b]->ids.size()) - 1;
    longest = std::max(longest, lengths[b]);
  }
  at::Tensor ids = torch::full({batch, longest}, pad_id, torch::kLong);  // [B, T], right padding
  at::Tensor mask = torch::zeros({batch, longest}, torch::kLong);        // [B, T]
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<int64_t> seq(*prompt_ids[b]);
    seq.insert(seq.end(), responses[b]->ids.begin(), responses[b]->ids.end() - 1);
    ids[b].narrow(0, 0, lengths[b]).copy_(torch::tensor(seq, torch::kLong));
    mask[b].narrow(0, 0, lengths[b]).fill_(1);
  }
  const torch::Device device = model.parameters().front().device();
  model::ForwardInput input;
  input.input_ids = ids.to(device);
  input.attention_mask = mask.to(device);
  input.skip_logits = true;
  const at::Tensor hidden = model.forward(input).final_hidden;  // [B, T, D]
  for (int64_t b = 0; b < batch; ++b) {
    // One row's logits at a time: [T_b, V] never [B, T, V].
    const at::Tensor finite = torch::isfinite(model.unembed(hidden[b].narrow(0, 0, lengths[b]))).all(-1).cpu();  // [T_b]
    const auto* ok = finite.data_ptr<bool>();
    const auto prompt_length = static_cast<int64_t>(prompt_ids[b]->size());
    for (int64_t t = 0; t < lengths[b]; ++t) {
      if (ok[t]) continue;
      responses[b]->nan.push_back(t < prompt_length - 1 ? "logits at prompt position " + std::to_string(t)
                                                         : "logits that chose generated token " +
                                                               std::to_string(t - (prompt_length - 1)));
      break;  // the first one says where; later positions follow from it
    }
  }
  if (!base) return;

  model::AdaptersDisabled off;
  input.skip_logits = true;
  input.capture.router = true;
  const auto routing = model.forward(input).routing;  // per MoE layer: topk [B·T, K]
  std::vector<std::vector<char>> real(static_cast<size_t>(batch), std::vector<char>(static_cast<size_t>(longest), 0));
  for (int64_t b = 0; b < batch; ++b) std::fill_n(real[b].begin(), lengths[b], 1);  // right padding
  const auto traces = traces_from_forward(routing, model.config().num_experts, batch, longest, real);
  for (int64_t b = 0; b < batch; ++b) {
    responses[b]->base_routing = as_generation_layout(traces[b], static_cast<int64_t>(prompt_ids[b]->size()));
  }
}

}  // namespace

ProbeModelInfo describe_model(const fs::path& model_dir, const fs::path& adapter_dir) {
  const model::ModelConfig config = model::load_config(model_dir);
  ProbeModelInfo info;
  info.dir = model_dir;
  info.architecture = config.model_type;
  info.is_moe = config.is_moe();
  if (info.is_moe) {
    for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
      if (config.is_moe_layer(l)) info.moe_layers.push_back(l);
    }
    info.num_experts = config.num_experts;
    info.top_k = config.num_experts_per_tok;
  }
  if (!adapter_dir.empty()) {
    info.adapter = adapter_dir;
    // A training checkpoint holds its adapter under adapter/ (lora/adapter_file.h).
    fs::path file = adapter_dir / lora::kAdapterConfigFile;
    if (!fs::exists(file) && fs::exists(adapter_dir / "adapter" / lora::kAdapterConfigFile)) {
      file = adapter_dir / "adapter" / lora::kAdapterConfigFile;
    }
    const nlohmann::json json = read_json_file(file);
    const auto it = json.find("train_router");
    if (it == json.end() || !it->is_string()) {
      throw CheckpointError(file.string() + ": train_router is " + (it == json.end() ? "missing" : it->dump()) +
                            ", expected \"none\", \"lora\" or \"full\"");
    }
    info.train_router = it->get<std::string>();
    if (const auto base = json.find("base_model"); base != json.end() && base->is_string()) {
      info.adapter_base = base->get<std::string>();
    }
  }
  return info;
}

ProbeRunResult run_probe(const ProbeRunOptions& options, const std::vector<ProbeItem>& prompts) {
  check_options(options, prompts.size());
  ProbeRunResult result;
  result.model = describe_model(options.model_dir, options.adapter_dir);
  ProbeModelInfo& info = result.model;

  model::LoadOptions load;
  load.device = options.device;
  load.dtype = options.dtype;
  const model::CausalLM model = model::load_model(options.model_dir, load);
  model->eval();
  std::shared_ptr<lora::Adapters> adapters;
  if (!options.adapter_dir.empty()) adapters = lora::load_adapter(model, lora::read_adapter(options.adapter_dir));
  if (options.on_model) options.on_model(*model);
  const auto tokenizer = model::load_tokenizer(options.model_dir);
  info.chat_family = model::detect_chat_family(options.model_dir);
  const auto renderer = model::make_chat_renderer(info.chat_family);

  // Sampling: generation_config.json, then the options (as `character generate`).
  const model::GenerationConfig defaults = model::load_generation_config(options.model_dir);
  model::GenerationOptions sampled;
  sampled.max_new_tokens = options.max_new_tokens;
  sampled.sampling = defaults.sampling();
  sampled.sampling.do_sample = true;
  if (options.temperature) sampled.sampling.temperature = *options.temperature;
  if (options.top_p) sampled.sampling.top_p = *options.top_p;
  sampled.stop_token_ids = model::default_stop_token_ids(options.model_dir, *tokenizer, renderer.get());
  sampled.stop_strings = renderer->stop_strings();
  sampled.capture_routing = options.capture_routing && info.is_moe;
  model::GenerationOptions greedy = sampled;
  greedy.sampling.do_sample = false;
  info.temperature = sampled.sampling.temperature;
  info.top_p = sampled.sampling.top_p;
  info.top_k_sampling = sampled.sampling.top_k;

  // The probe asks each prompt as a fresh single-turn chat; qwen3 answers without
  // a thinking block, as a persona model is used.
  std::vector<std::vector<int64_t>> prompt_ids(prompts.size());
  model::ChatOptions chat;
  chat.enable_thinking = false;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    const auto ids = tokenizer->encode(renderer->render({{"user", prompts[i].prompt}}, chat).text,
                                       /*add_special_tokens=*/false);
    prompt_ids[i].assign(ids.begin(), ids.end());
    const int64_t context = model->config().max_position_embeddings;
    if (context > 0 && static_cast<int64_t>(prompt_ids[i].size()) + options.max_new_tokens > context) {
      throw ConfigError("eval: probe prompt " + prompts[i].id + " is " + std::to_string(prompt_ids[i].size()) +
                        " tokens and --max-new-tokens " + std::to_string(options.max_new_tokens) +
                        ", expected at most the model's context of " + std::to_string(context) + " together");
    }
  }

  // Rows: every sampled response, then every greedy one; each kind sorted by
  // prompt length (stable) so a batch wastes little padding. The order, and so
  // every batch and its seed, depends only on the inputs: a rerun is identical.
  const int64_t per_prompt = options.samples + (options.greedy ? 1 : 0);
  result.responses.assign(prompts.size(), std::vector<ProbeResponse>(per_prompt));
  std::vector<Row> sampled_rows, greedy_rows;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    for (int64_t s = 0; s < options.samples; ++s) sampled_rows.push_back({i, s, false});
    if (options.greedy) greedy_rows.push_back({i, options.samples, true});
  }
  auto by_length = [&](const Row& a, const Row& b) { return prompt_ids[a.prompt].size() < prompt_ids[b.prompt].size(); };
  std::stable_sort(sampled_rows.begin(), sampled_rows.end(), by_length);
  std::stable_sort(greedy_rows.begin(), greedy_rows.end(), by_length);

  const int64_t pad_id = model->config().pad_token_id.value_or(0);
  Progress progress(static_cast<int64_t>(sampled_rows.size() + greedy_rows.size()), options.progress);
  uint64_t batch_index = 0;
  for (const auto* rows : {&sampled_rows, &greedy_rows}) {
    const bool is_greedy = rows == &greedy_rows;
    for (std::size_t begin = 0; begin < rows->size(); begin += static_cast<std::size_t>(options.batch_rows)) {
      if (options.stop_requested && options.stop_requested->load()) {
        throw Interrupted("eval: stopped after " + std::to_string(progress.done()) + " of " +
                          std::to_string(progress.total()) + " probe responses (an eval starts over when run again)");
      }
      const std::size_t end = std::min(rows->size(), begin + static_cast<std::size_t>(options.batch_rows));
      std::vector<std::vector<model::TokenId>> batch;
      for (std::size_t r = begin; r < end; ++r) {
        const auto& ids = prompt_ids[(*rows)[r].prompt];
        batch.emplace_back(ids.begin(), ids.end());
      }
      model::GenerationOptions g = is_greedy ? greedy : sampled;
      g.seed = options.seed + batch_index++;
      // Non-finite logits make the sampler's draw fail (torch refuses a NaN
      // distribution): the batch's responses are recorded as failed, with the
      // reason in `nan`, so the report and its no_nan gate say so.
      std::vector<model::GenerationResult> generated;
      std::string failure;
      try {
        generated = model::generate(*model, tokenizer.get(), batch, g);
      } catch (const c10::Error& e) {
        const std::string what = e.what_without_backtrace();
        failure = "generation failed: " + what.substr(0, what.find('\n'));
      }

      std::vector<ProbeResponse*> done;
      std::vector<const std::vector<int64_t>*> done_prompts;
      for (std::size_t r = begin; r < end; ++r) {
        const Row& row = (*rows)[r];
        ProbeResponse& response = result.responses[row.prompt][row.response];
        response.sample = row.response;
        response.greedy = row.greedy;
        response.prompt_tokens = static_cast<int64_t>(prompt_ids[row.prompt].size());
        if (!failure.empty()) {
          response.finish_reason = "error";
          response.nan.push_back(failure);
          continue;
        }
        const auto& out = generated[r - begin];
        response.text = out.text;
        response.finish_reason = out.finish_reason;
        response.ids.assign(out.ids.begin(), out.ids.end());
        if (out.routing) {
          response.routing = trace_from_generation(*out.routing, info.num_experts);
          if (!all_finite(response.routing->weights)) response.nan.push_back("routing weights");
        }
        done.push_back(&response);
        done_prompts.push_back(&prompt_ids[row.prompt]);
      }
      if (!done.empty()) teacher_forced(*model, done_prompts, done, options.base_routing && info.is_moe, pad_id);
      progress.advance(static_cast<int64_t>(end - begin));
    }
  }
  result.seconds = progress.seconds();
  return result;
}

}  // namespace character::eval
