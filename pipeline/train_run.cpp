// run_training(): model, tokenizer, chat renderer, adapters (fresh or from a
// saved adapter), the router hook on MoE models, the data split and the trainer.
// See pipeline/train_run.h.
#include "pipeline/train_run.h"

#include <torch/torch.h>

#include <memory>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/json_read.h"
#include "base/log.h"
#include "lora/adapter_file.h"
#include "lora/adapters.h"
#include "lora/full_train.h"
#include "lora/train_data.h"
#include "model/arch/causal_lm.h"
#include "model/text/chat.h"
#include "model/text/tokenizer.h"
#include "router_train/router_hook.h"

namespace character::pipeline {

namespace {

namespace fs = std::filesystem;

template <typename Rows>
Rows subset(const Rows& rows, const std::vector<int64_t>& indices) {
  Rows out;
  out.reserve(indices.size());
  for (int64_t i : indices) out.push_back(rows[static_cast<size_t>(i)]);
  return out;
}

// Splits a loaded SFT or DPO dataset into training and held-out rows, logs the
// counts and records them in `summary`. `unit` names a row ("rows", "pairs").
template <typename Dataset>
std::pair<Dataset, Dataset> split_held_out(const Dataset& data, const std::string& stage, const std::string& unit,
                                           double fraction, uint64_t seed, nlohmann::json& summary) {
  const auto [train_idx, held_idx] = lora::held_out_split(static_cast<int64_t>(data.rows.size()), fraction, seed);
  Dataset train, held;
  train.rows = subset(data.rows, train_idx);
  held.rows = subset(data.rows, held_idx);
  log::info(stage + ": " + std::to_string(train.rows.size()) + " " + unit + ", " + std::to_string(held.rows.size()) +
            " held out, " + std::to_string(data.truncated) + " truncated, " + std::to_string(data.skipped) +
            " skipped");
  summary["rows"] = {{"train", train.rows.size()}, {"held_out", held.rows.size()},
                     {"truncated", data.truncated}, {"skipped", data.skipped}};
  return {std::move(train), std::move(held)};
}

// The saved adapter's layout must be the one asked for: ConfigError listing each difference.
void check_same_layout(const lora::LoraConfig& saved, const lora::LoraConfig& asked, const fs::path& file) {
  std::string diffs;
  auto compare = [&](const char* field, const auto& have, const auto& want) {
    if (have != want) diffs += std::string(diffs.empty() ? "" : ", ") + field + " " + have + " (asked " + want + ")";
  };
  auto str = [](auto v) { return std::to_string(v); };
  auto yes = [](bool v) { return std::string(v ? "true" : "false"); };
  compare("rank", str(saved.rank), str(asked.rank));
  compare("alpha", str(saved.alpha), str(asked.alpha));
  compare("train_attn", yes(saved.train_attn), yes(asked.train_attn));
  compare("train_mlp", yes(saved.train_mlp), yes(asked.train_mlp));
  compare("train_unembed", yes(saved.train_unembed), yes(asked.train_unembed));
  compare("train_router", lora::to_string(saved.train_router), lora::to_string(asked.train_router));
  compare("expert_lora", lora::to_string(saved.expert_lora), lora::to_string(asked.expert_lora));
  if (!diffs.empty()) {
    throw ConfigError("train: --init-adapter " + file.string() + " has " + diffs +
                      "; expected the same adapter layout as this run (omit the layout flags to take the adapter's)");
  }
}

// Options every training run checks before it loads anything.
void check_run_options(const TrainRunOptions& options) {
  if (options.device != "cpu" && options.device != "cuda") {
    throw ConfigError("train: --device " + options.device + ", expected cpu or cuda");
  }
  if (!(options.held_out >= 0 && options.held_out < 1)) {
    throw ConfigError("train: --held-out " + std::to_string(options.held_out) + ", expected a fraction in [0, 1)");
  }
}

// The model, tokenizer and chat renderer a run trains with, and its padding id.
struct Loaded {
  model::CausalLM model;
  decltype(model::load_tokenizer(fs::path())) tokenizer;
  std::unique_ptr<model::ChatRenderer> renderer;
  model::ChatOptions chat;
  int64_t pad_id = 0;
};

Loaded load_for_training(const fs::path& model_dir, const TrainRunOptions& options, const std::string& dtype) {
  Loaded l;
  model::LoadOptions load;
  load.device = options.device;
  load.dtype = dtype;
  l.model = model::load_model(model_dir, load);
  l.tokenizer = model::load_tokenizer(model_dir);
  l.renderer = model::make_chat_renderer(options.chat.family.empty() ? model::detect_chat_family(model_dir)
                                                                     : options.chat.family);
  if (options.chat.no_thinking) l.chat.enable_thinking = false;
  l.pad_id = l.tokenizer->pad_id.value_or(l.tokenizer->eos_id.value_or(0));
  return l;
}

}  // namespace

std::unique_ptr<router_train::RouterStepHook> make_router_hook(const model::CausalLMImpl& model,
                                                             const TrainRunOptions& options) {
  if (model.config().num_experts > 0) {
    router_train::RouterHookOptions ho;
    ho.aux_loss_coef = options.aux_loss_coef;
    ho.z_loss_coef = options.z_loss_coef;
    ho.coverage_threshold = options.coverage_threshold;
    return std::make_unique<router_train::RouterStepHook>(model.config(), ho);
  }
  if (options.aux_loss_coef) {
    throw ConfigError("train: --aux-loss-coef given, but model_type " + model.config().model_type +
                      " is dense (no router), expected an MoE model");
  }
  return nullptr;
}

TrainRunResult run_training(TrainRunOptions options) {
  const fs::path model_dir = fs::absolute(options.model_dir);
  check_run_options(options);
  auto& o = options.train;
  options.lora.seed = o.seed;
  lora::validate(options.lora);
  o.out_dir = options.out_dir;
  o.base_model = model_dir;
  const std::string kind = lora::to_string(o.kind);

  // 1. Model, tokenizer, chat renderer.
  const Loaded loaded = load_for_training(model_dir, options, options.dtype);
  const model::CausalLM& model = loaded.model;
  const auto& tokenizer = loaded.tokenizer;
  const auto& renderer = loaded.renderer;
  const model::ChatOptions& chat = loaded.chat;
  o.pad_id = loaded.pad_id;

  // 2. Adapters (from a saved one when asked), and the router hook on MoE models.
  std::shared_ptr<lora::Adapters> adapters;
  if (!options.init_adapter.empty()) {
    lora::AdapterFile saved = lora::read_adapter(options.init_adapter);
    check_same_layout(saved.config, options.lora, saved.dir);
    if (fs::weakly_canonical(saved.base_model) != fs::weakly_canonical(model_dir)) {
      log::warn("train: --init-adapter " + saved.dir.string() + " was trained on " + saved.base_model.string() +
                ", this run's base model is " + model_dir.string());
    }
    // The run's own router LR multiplier and seed; the tensors are the saved adapter's.
    saved.config = options.lora;
    adapters = lora::load_adapter(model, saved);
  } else {
    adapters = lora::attach_adapters(model, options.lora);
  }
  auto hook = make_router_hook(*model, options);

  // 3. Data: render, tokenize, split off the held-out rows; train.
  TrainRunResult out;
  nlohmann::json& summary = out.summary;
  summary = {{"kind", kind}, {"out", options.out_dir.string()}};
  if (!options.init_adapter.empty()) summary["init_adapter"] = options.init_adapter.string();
  lora::TrainResult& result = out.train;
  if (o.kind == lora::TrainKind::kSft) {
    lora::SftOptions so;
    so.last_assistant_only = options.last_assistant_only;
    so.max_length = options.max_length;
    so.chat = chat;
    const auto data = lora::load_sft_jsonl(options.data_file, *tokenizer, *renderer, so);
    const auto [train, held] = split_held_out(data, "train sft", "rows", options.held_out, o.seed, summary);
    result = lora::train_sft(model, *adapters, train, held, o, hook.get());
  } else {
    lora::DpoDataOptions dop;
    dop.max_length = options.max_length;
    dop.max_prompt_length = options.max_prompt_length;
    dop.chat = chat;
    const auto data = lora::load_dpo_jsonl(options.data_file, *tokenizer, *renderer, dop);
    const auto [train, held] = split_held_out(data, "train dpo", "pairs", options.held_out, o.seed, summary);
    result = lora::train_dpo(model, *adapters, train, held, o, hook.get());
  }

  summary["steps"] = result.steps;
  summary["start_step"] = result.start_step;
  summary["first_held_out_loss"] = result.first_held_out_loss;  // NaN → null
  summary["final_held_out_loss"] = result.final_held_out_loss;
  summary["final_train_loss"] = result.final_train_loss;
  if (o.kind == lora::TrainKind::kDpo) {
    summary["final_dpo_margin"] = result.final_dpo_margin;
    summary["final_dpo_accuracy"] = result.final_dpo_accuracy;
  }
  summary["adapter"] = result.adapter_dir.string();
  return out;
}

// --full-parameters: the model, tokenizer and chat template as run_training loads
// them, the same data split, the router hook on MoE models (load balancing,
// coverage), then lora::train_full_sft, which writes OUT/model.
TrainRunResult run_full_training(TrainRunOptions options) {
  const fs::path model_dir = fs::absolute(options.model_dir);
  check_run_options(options);
  auto& o = options.train;
  o.out_dir = options.out_dir;
  o.base_model = model_dir;

  // fp32 weights by default on every device: AdamW updates in bf16 lose most of
  // their bits (CUDA still computes in bf16 under autocast).
  const Loaded loaded = load_for_training(model_dir, options, options.dtype.empty() ? "float32" : options.dtype);
  o.pad_id = loaded.pad_id;
  auto hook = make_router_hook(*loaded.model, options);

  TrainRunResult out;
  out.summary = {{"kind", "sft"}, {"full_parameters", true}, {"out", options.out_dir.string()}};
  lora::SftOptions so;
  so.last_assistant_only = options.last_assistant_only;
  so.max_length = options.max_length;
  so.chat = loaded.chat;
  const auto data = lora::load_sft_jsonl(options.data_file, *loaded.tokenizer, *loaded.renderer, so);
  const auto [train, held] =
      split_held_out(data, "train sft (full parameters)", "rows", options.held_out, o.seed, out.summary);

  // OUT/model/config.json: the engine's config plus every other key of the
  // input's (architectures, initializer_range ...); dtype is written anew.
  lora::FullTrainOutput output{loaded.model->config(), {}};
  auto extra = read_json_file(model_dir / "config.json");
  for (const char* key : {"dtype", "torch_dtype", "transformers_version"}) extra.erase(key);
  output.model_dir.extra_config = extra;
  output.model_dir.tokenizer_dir = model_dir;
  output.model_dir.tokenizer_source = "train: --model";

  out.train = lora::train_full_sft(loaded.model, train, held, o, output, hook.get());
  const auto& result = out.train;
  out.summary["steps"] = result.steps;
  out.summary["start_step"] = result.start_step;
  out.summary["first_held_out_loss"] = result.first_held_out_loss;  // NaN → null
  out.summary["final_held_out_loss"] = result.final_held_out_loss;
  out.summary["final_train_loss"] = result.final_train_loss;
  out.summary["model"] = result.adapter_dir.string();
  return out;
}

}  // namespace character::pipeline
