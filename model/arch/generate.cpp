// Generation loop: prefill the left-padded batch into a KV cache, then decode one
// token per step for the rows still running, as transformers' GenerationMixin
// (_sample) does with use_cache=True. Sampling itself lives in sampling.cpp.
#include "model/arch/generate.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/json_read.h"
#include "model/arch/kv_cache.h"
#include "model/io/config.h"
#include "model/text/chat.h"

namespace character::model {

namespace {

constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD, what decode gives for cut bytes

template <typename T>
std::optional<T> optional_field(const nlohmann::json& json, const char* field, const std::string& source) {
  auto it = json.find(field);
  if (it == json.end() || it->is_null()) return std::nullopt;
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    throw FormatError(source + ": field " + field + " has the wrong type (found " + it->dump() + ")");
  }
}

// Length of the longest prefix of `text` that ends on a complete UTF-8 sequence
// and not on U+FFFD (a decoder's stand-in for bytes a later token completes).
std::size_t complete_utf8_length(std::string_view text) {
  std::size_t end = text.size();
  while (end >= kReplacementChar.size() && text.substr(end - kReplacementChar.size(), 3) == kReplacementChar) {
    end -= kReplacementChar.size();
  }
  // Walk back over a lead byte whose continuation bytes are not all there yet.
  for (std::size_t back = 1; back <= 4 && back <= end; ++back) {
    const auto byte = static_cast<unsigned char>(text[end - back]);
    if ((byte & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    const std::size_t need = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : byte >= 0xC0 ? 2 : 1;
    if (need > back) end -= back;
    break;
  }
  return end;
}

// Bytes at the end of text[0, end) that could be the start of a stop string, and
// so must not be streamed yet.
std::size_t stop_prefix_hold(std::string_view text, std::size_t end, const std::vector<std::string>& stops) {
  std::size_t hold = 0;
  for (const auto& stop : stops) {
    for (std::size_t len = std::min(stop.size() - 1, end); len > hold; --len) {
      if (text.substr(end - len, len) == std::string_view(stop).substr(0, len)) {
        hold = len;
        break;
      }
    }
  }
  return hold;
}

// Per-prompt state while generating.
struct Row {
  std::vector<TokenId> seen;       // prompt + generated: what the repetition penalty sees
  std::size_t prompt_length = 0;
  GenerationResult result;
  std::size_t streamed = 0;        // bytes of text handed to on_text
  bool done = false;
  std::vector<at::Tensor> routing_ids, routing_weights;  // per generated token: [L_moe, K]
};

// The captured routing of a forward pass as [N, L_moe, K] CPU tensors.
std::pair<at::Tensor, at::Tensor> stack_routing(const std::vector<LayerRouting>& routing) {
  std::vector<at::Tensor> ids, weights;
  for (const auto& layer : routing) {
    ids.push_back(layer.topk_ids.to(torch::kCPU, torch::kLong));
    weights.push_back(layer.topk_weights.to(torch::kCPU, torch::kFloat));
  }
  return {torch::stack(ids, 1), torch::stack(weights, 1)};  // [N, K] × L_moe → [N, L_moe, K]
}

// in: prompts (B lists of ids); out: ids and mask [B, T], T = longest prompt, with
// padding on the left (mask 0) as transformers' generate expects for decoders.
std::pair<at::Tensor, at::Tensor> left_pad(const std::vector<std::vector<TokenId>>& prompts, int64_t pad_id) {
  const auto batch = static_cast<int64_t>(prompts.size());
  int64_t longest = 0;
  for (const auto& prompt : prompts) longest = std::max<int64_t>(longest, static_cast<int64_t>(prompt.size()));
  at::Tensor ids = torch::full({batch, longest}, pad_id, torch::kLong);  // [B, T]
  at::Tensor mask = torch::zeros({batch, longest}, torch::kLong);       // [B, T]
  for (int64_t b = 0; b < batch; ++b) {
    const auto length = static_cast<int64_t>(prompts[b].size());
    std::vector<int64_t> row(prompts[b].begin(), prompts[b].end());
    ids[b].narrow(0, longest - length, length).copy_(torch::tensor(row, torch::kLong));
    mask[b].narrow(0, longest - length, length).fill_(1);
  }
  return {ids, mask};
}

// Appends to each active row the routing of the position that chose its next token
// (the last of the `steps` positions); on the prefill also keeps its prompt rows.
void record_routing(const std::vector<LayerRouting>& routing, int64_t steps, bool prefill,
                    const std::vector<int64_t>& active, std::vector<Row>& rows) {
  auto [ids, weights] = stack_routing(routing);  // [B'·T, L_moe, K]
  std::vector<int64_t> layers;
  for (const auto& layer : routing) layers.push_back(layer.layer);
  for (std::size_t i = 0; i < active.size(); ++i) {
    Row& row = rows[active[i]];
    const int64_t last = static_cast<int64_t>(i) * steps + steps - 1;
    row.routing_ids.push_back(ids[last]);  // [L_moe, K]
    row.routing_weights.push_back(weights[last]);
    if (prefill) {
      const auto length = static_cast<int64_t>(row.prompt_length);
      GenerationRouting captured;
      captured.layers = layers;
      captured.prompt_topk_ids = ids.narrow(0, last - length + 1, length).clone();  // [Tp, L_moe, K]
      captured.prompt_topk_weights = weights.narrow(0, last - length + 1, length).clone();
      row.result.routing = std::move(captured);
    }
  }
}

bool is_stop_token(TokenId id, const std::vector<TokenId>& stops) {
  return std::find(stops.begin(), stops.end(), id) != stops.end();
}

// Recomputes the text of `row` after a new token, finishes it on a stop token, a
// stop string or the length limit, and streams what became final.
void update_row(Row& row, int64_t prompt_index, const Tokenizer* tokenizer, const GenerationOptions& options) {
  auto& ids = row.result.ids;
  const bool stop_token = is_stop_token(ids.back(), options.stop_token_ids);
  const bool at_limit = static_cast<int64_t>(ids.size()) >= options.max_new_tokens;
  // Decoding the whole reply each step is what makes streaming and stop strings
  // exact; without either, decode once, when the row ends.
  const bool need_text = tokenizer && (options.on_text || !options.stop_strings.empty() || stop_token || at_limit);
  std::span<const TokenId> text_ids(ids.data(), ids.size() - (stop_token ? 1 : 0));
  std::string text = need_text ? tokenizer->decode(text_ids) : std::string();

  std::size_t cut = std::string::npos;
  for (const auto& stop : options.stop_strings) {
    if (stop.empty()) continue;
    cut = std::min(cut, text.find(stop));
  }
  if (cut != std::string::npos) text.resize(cut);

  if (stop_token || cut != std::string::npos) {
    row.done = true;
    row.result.finish_reason = "stop";
  } else if (at_limit) {
    row.done = true;
    row.result.finish_reason = "length";
  }

  std::size_t final_end = text.size();
  if (!row.done) {
    final_end = complete_utf8_length(text);
    final_end -= stop_prefix_hold(text, final_end, options.stop_strings);
  }
  if (options.on_text && final_end > row.streamed) {
    // decode(ids[:n]) is a prefix of decode(ids[:n+1]) up to the held-back tail, so
    // the streamed bytes never need to be taken back.
    options.on_text(prompt_index, std::string_view(text).substr(row.streamed, final_end - row.streamed));
  }
  row.streamed = std::max(row.streamed, final_end);
  row.result.text = std::move(text);
}

}  // namespace

SamplingOptions GenerationConfig::sampling() const {
  SamplingOptions options;
  if (do_sample) options.do_sample = *do_sample;
  if (temperature) options.temperature = *temperature;
  if (top_k) options.top_k = *top_k;
  if (top_p) options.top_p = *top_p;
  if (min_p) options.min_p = *min_p;
  if (repetition_penalty) options.repetition_penalty = *repetition_penalty;
  return options;
}

GenerationConfig load_generation_config(const std::filesystem::path& model_dir) {
  GenerationConfig config;
  const auto path = model_dir / "generation_config.json";
  if (!std::filesystem::exists(path)) return config;
  const std::string source = path.string();
  const nlohmann::json json = read_json_file(path);
  if (!json.is_object()) throw FormatError(source + ": expected a JSON object, found " + json.type_name());
  config.do_sample = optional_field<bool>(json, "do_sample", source);
  config.temperature = optional_field<double>(json, "temperature", source);
  config.top_p = optional_field<double>(json, "top_p", source);
  config.min_p = optional_field<double>(json, "min_p", source);
  config.repetition_penalty = optional_field<double>(json, "repetition_penalty", source);
  config.top_k = optional_field<int64_t>(json, "top_k", source);
  config.max_new_tokens = optional_field<int64_t>(json, "max_new_tokens", source);
  config.pad_token_id = optional_field<int64_t>(json, "pad_token_id", source);
  config.bos_token_id = optional_field<int64_t>(json, "bos_token_id", source);
  if (auto it = json.find("eos_token_id"); it != json.end() && !it->is_null()) {
    if (it->is_number_integer()) {
      config.eos_token_id = {it->get<int64_t>()};
    } else if (auto list = optional_field<std::vector<int64_t>>(json, "eos_token_id", source)) {
      config.eos_token_id = *list;
    }
  }
  return config;
}

std::vector<TokenId> default_stop_token_ids(const std::filesystem::path& model_dir, const Tokenizer& tokenizer,
                                            const ChatRenderer* renderer) {
  std::vector<TokenId> ids;
  auto add = [&](int64_t id) {
    if (!is_stop_token(static_cast<TokenId>(id), ids)) ids.push_back(static_cast<TokenId>(id));
  };
  if (renderer) {
    for (const auto& token : renderer->stop_tokens()) {
      auto id = tokenizer.token_to_id(token);
      if (!id) {
        throw ConfigError((model_dir / "tokenizer.json").string() + ": chat family " + renderer->family() +
                          " ends turns with " + token + ", which is not in the vocabulary");
      }
      add(*id);
    }
  }
  for (int64_t id : load_config(model_dir).eos_token_id) add(id);
  for (int64_t id : load_generation_config(model_dir).eos_token_id) add(id);
  return ids;
}

std::vector<GenerationResult> generate(CausalLMImpl& model, const Tokenizer* tokenizer,
                                       const std::vector<std::vector<TokenId>>& prompts,
                                       const GenerationOptions& options) {
  if (options.max_new_tokens < 1) {
    throw ConfigError("generate: max_new_tokens=" + std::to_string(options.max_new_tokens) + ", expected ≥ 1");
  }
  if (!tokenizer && (!options.stop_strings.empty() || options.on_text)) {
    throw ConfigError("generate: stop strings and streaming need a tokenizer to decode text");
  }
  if (prompts.empty()) return {};
  torch::NoGradGuard no_grad;
  const auto params = model.parameters();
  const torch::Device device = params.empty() ? torch::Device(torch::kCPU) : params.front().device();
  const bool capture = options.capture_routing && model.config().is_moe();

  // 1. Left-pad the prompts, so every row's last token sits at the last position.
  for (std::size_t b = 0; b < prompts.size(); ++b) {
    if (prompts[b].empty()) throw ConfigError("generate: prompt " + std::to_string(b) + " has no tokens");
  }
  const int64_t pad_id = tokenizer && tokenizer->pad_id ? *tokenizer->pad_id : 0;  // any id: the mask hides it
  auto [input_ids, attention_mask] = left_pad(prompts, pad_id);                       // [B, T] each
  input_ids = input_ids.to(device);
  attention_mask = attention_mask.to(device);
  const auto batch = static_cast<int64_t>(prompts.size());
  std::vector<Row> rows(prompts.size());
  for (int64_t b = 0; b < batch; ++b) {
    rows[b].seen = prompts[b];
    rows[b].prompt_length = prompts[b].size();
  }

  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  KVCache cache(model.config().num_hidden_layers);
  std::vector<int64_t> active(batch);  // active[i] = prompt index of batch row i
  for (int64_t b = 0; b < batch; ++b) active[b] = b;

  // 2. Prefill, then decode: each forward yields the next token of every active row.
  ForwardInput input;
  input.input_ids = input_ids;
  input.attention_mask = attention_mask;
  input.cache = &cache;
  input.capture.router = capture;
  input.last_logits_only = true;
  bool prefill = true;
  while (!active.empty()) {
    ForwardOutput output = model.forward(input);
    // Processed where the logits are (a vocabulary-wide sort per row is slow on CPU);
    // only the draw moves to the host.
    at::Tensor scores = output.logits.select(1, -1).to(torch::kFloat);  // [B', V]

    if (capture) record_routing(output.routing, input.input_ids.size(1), prefill, active, rows);
    prefill = false;

    std::vector<std::vector<TokenId>> seen;
    if (options.sampling.repetition_penalty != 1.0) {
      // transformers also penalises the pad id of left-padded rows; we penalise only
      // real tokens, so a batched row behaves as the same prompt alone.
      for (int64_t index : active) seen.push_back(rows[index].seen);
    } else {
      seen.resize(active.size());
    }
    at::Tensor next = choose_next_tokens(process_logits(scores, seen, options.sampling), options.sampling,
                                         generator);  // [B']
    auto next_ids = next.accessor<int64_t, 1>();

    std::vector<int64_t> keep;
    for (std::size_t i = 0; i < active.size(); ++i) {
      Row& row = rows[active[i]];
      const auto token = static_cast<TokenId>(next_ids[i]);
      row.result.ids.push_back(token);
      row.seen.push_back(token);
      update_row(row, active[i], tokenizer, options);
      if (!row.done) keep.push_back(static_cast<int64_t>(i));
    }

    // 3. Drop finished rows from the batch (cache rows, mask rows) instead of masking
    //    them: a finished row would otherwise cost a full forward per step until the
    //    longest row ends, and its output would be thrown away.
    at::Tensor next_input = next.to(device).unsqueeze(1);  // [B', 1]
    if (keep.size() != active.size()) {
      at::Tensor keep_index = torch::tensor(keep, torch::kLong).to(device);
      cache.select_rows(keep_index);
      attention_mask = attention_mask.index_select(0, keep_index);
      next_input = next_input.index_select(0, keep_index);
      std::vector<int64_t> still_active;
      for (int64_t i : keep) still_active.push_back(active[i]);
      active = std::move(still_active);
    }
    if (active.empty()) break;
    attention_mask = torch::cat({attention_mask, torch::ones({attention_mask.size(0), 1}, attention_mask.options())},
                                1);  // [B', P] → [B', P+1]
    input.input_ids = next_input;
    input.attention_mask = attention_mask;
  }

  std::vector<GenerationResult> results;
  results.reserve(rows.size());
  for (auto& row : rows) {
    if (capture && row.result.routing) {
      row.result.routing->topk_ids = torch::stack(row.routing_ids, 0);          // [G, L_moe, K]
      row.result.routing->topk_weights = torch::stack(row.routing_weights, 0);  // [G, L_moe, K]
    }
    results.push_back(std::move(row.result));
  }
  return results;
}

}  // namespace character::model
