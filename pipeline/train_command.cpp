// `character train sft|dpo --model DIR --data FILE --out DIR [flags]`: loads the
// model, attaches LoRA adapters where Tinker's switches say (plus router
// training on MoE models), renders and tokenizes the JSONL data with the
// model's chat template, holds out a share for evaluation and runs the trainer
// of lora/trainer.h. On MoE models router_train's RouterStepHook adds the
// load-balancing and z-losses and counts training coverage. --resume continues
// from the newest checkpoint in --out. Prints a JSON summary on stdout.
#include <CLI/CLI.hpp>

#include <torch/torch.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/log.h"
#include "lora/adapters.h"
#include "lora/lora_config.h"
#include "lora/train_data.h"
#include "lora/trainer.h"
#include "model/arch/causal_lm.h"
#include "model/text/chat.h"
#include "model/text/tokenizer.h"
#include "pipeline/chat_input.h"
#include "pipeline/commands.h"
#include "router_train/router_hook.h"

namespace character::pipeline {

namespace {

namespace fs = std::filesystem;

struct TrainArgs {
  std::string kind;  // sft | dpo
  std::string model_dir, data_file, out_dir;
  std::string device = "cpu";
  std::string dtype;
  // Adapters (Tinker's switches + router training).
  lora::LoraConfig lora;
  std::string train_router = "none";
  std::string expert_lora = "shared-outer";
  // Optimisation and data.
  lora::TrainOptions train;
  std::string schedule = "linear";
  int64_t max_length = 2048;
  int64_t max_prompt_length = 1024;
  bool last_assistant_only = false;
  double held_out = 0.05;
  bool no_autocast = false;
  bool quiet = false;
  ChatFlags chat_flags;
  // Router losses (MoE models).
  std::optional<double> aux_loss_coef;
  double z_loss_coef = router_train::kDefaultZLossCoef;
  int64_t coverage_threshold = 16;
};

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

int run_train(TrainArgs& args) {
  const fs::path model_dir = fs::absolute(args.model_dir);
  if (args.device != "cpu" && args.device != "cuda") {
    throw ConfigError("train: --device " + args.device + ", expected cpu or cuda");
  }
  if (!(args.held_out >= 0 && args.held_out < 1)) {
    throw ConfigError("train: --held-out " + std::to_string(args.held_out) + ", expected a fraction in [0, 1)");
  }
  args.lora.train_router = lora::parse_router_training(args.train_router);
  args.lora.expert_lora = lora::parse_expert_lora(args.expert_lora);
  args.lora.seed = args.train.seed;
  lora::validate(args.lora);

  auto& o = args.train;
  o.kind = args.kind == "dpo" ? lora::TrainKind::kDpo : lora::TrainKind::kSft;
  o.schedule = lora::parse_lr_schedule(args.schedule);
  o.out_dir = args.out_dir;
  o.base_model = model_dir;
  o.autocast_bf16 = !args.no_autocast;
  o.progress = !args.quiet;

  // 1. Model, tokenizer, chat renderer.
  model::LoadOptions load;
  load.device = args.device;
  load.dtype = args.dtype;
  const model::CausalLM model = model::load_model(model_dir, load);
  const auto tokenizer = model::load_tokenizer(model_dir);
  const auto renderer = model::make_chat_renderer(args.chat_flags.family.empty()
                                                      ? model::detect_chat_family(model_dir)
                                                      : args.chat_flags.family);
  model::ChatOptions chat;
  if (args.chat_flags.no_thinking) chat.enable_thinking = false;
  o.pad_id = tokenizer->pad_id.value_or(tokenizer->eos_id.value_or(0));

  // 2. Adapters, and the router hook on MoE models.
  auto adapters = lora::attach_adapters(model, args.lora);
  std::unique_ptr<router_train::RouterStepHook> hook;
  if (model->config().num_experts > 0) {
    router_train::RouterHookOptions ho;
    ho.aux_loss_coef = args.aux_loss_coef;
    ho.z_loss_coef = args.z_loss_coef;
    ho.coverage_threshold = args.coverage_threshold;
    hook = std::make_unique<router_train::RouterStepHook>(model->config(), ho);
  } else if (args.aux_loss_coef) {
    throw ConfigError("train: --aux-loss-coef given, but model_type " + model->config().model_type +
                      " is dense (no router), expected an MoE model");
  }

  // 3. Data: render, tokenize, split off the held-out rows.
  nlohmann::json summary{{"kind", args.kind}, {"out", args.out_dir}};
  lora::TrainResult result;
  if (o.kind == lora::TrainKind::kSft) {
    lora::SftOptions so;
    so.last_assistant_only = args.last_assistant_only;
    so.max_length = args.max_length;
    so.chat = chat;
    const auto data = lora::load_sft_jsonl(args.data_file, *tokenizer, *renderer, so);
    const auto [train, held] = split_held_out(data, "train sft", "rows", args.held_out, o.seed, summary);
    result = lora::train_sft(model, *adapters, train, held, o, hook.get());
  } else {
    lora::DpoDataOptions dop;
    dop.max_length = args.max_length;
    dop.max_prompt_length = args.max_prompt_length;
    dop.chat = chat;
    const auto data = lora::load_dpo_jsonl(args.data_file, *tokenizer, *renderer, dop);
    const auto [train, held] = split_held_out(data, "train dpo", "pairs", args.held_out, o.seed, summary);
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
  std::cout << summary.dump() << "\n";
  return 0;
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  auto& o = args->train;
  auto& lc = args->lora;
  CLI::App* sub = app.add_subcommand("train", "Train LoRA (and router) adapters with SFT or DPO");
  sub->add_option("kind", args->kind, "sft or dpo")->required()->check(CLI::IsMember({"sft", "dpo"}));
  sub->add_option("--model", args->model_dir, "Base model directory")->required()->check(CLI::ExistingDirectory);
  sub->add_option("--data", args->data_file,
                  "JSONL: {\"messages\"} rows (sft) or {\"prompt\",\"chosen\",\"rejected\"} rows (dpo)")
      ->required()->check(CLI::ExistingFile);
  sub->add_option("--out", args->out_dir, "Output directory: adapter/, checkpoints/, metrics.jsonl")->required();
  sub->add_flag("--resume", o.resume, "Continue from the newest checkpoint in --out (same flags and data)");
  sub->add_option("--device", args->device, "cpu or cuda");
  sub->add_option("--dtype", args->dtype, "float32 | bfloat16 | float16 (default: fp32 on cpu, bf16 on cuda)");

  auto* adapters = "Adapters";
  sub->add_option("--rank", lc.rank, "LoRA rank r")->group(adapters)->capture_default_str();
  sub->add_option("--alpha", lc.alpha, "LoRA alpha; deltas are scaled by alpha/r")->group(adapters)->capture_default_str();
  sub->add_flag("--train-attn,!--no-train-attn", lc.train_attn, "LoRA on q, k, v, o (default on)")->group(adapters);
  sub->add_flag("--train-mlp,!--no-train-mlp", lc.train_mlp, "LoRA on the dense MLP and every expert (default on)")
      ->group(adapters);
  sub->add_flag("--train-unembed,!--no-train-unembed", lc.train_unembed, "LoRA on the unembedding (default off)")
      ->group(adapters);
  sub->add_option("--train-router", args->train_router, "none | lora | full (MoE models)")
      ->group(adapters)->capture_default_str();
  sub->add_option("--router-lr-mult", lc.router_lr_multiplier, "Router learning rate = --lr × this")
      ->group(adapters)->capture_default_str();
  sub->add_option("--expert-lora", args->expert_lora, "shared-outer (Tinker's) | per-expert")
      ->group(adapters)->capture_default_str();

  auto* optim = "Optimisation";
  sub->add_option("--lr", o.learning_rate, "Peak learning rate (AdamW, betas 0.9/0.95)")->group(optim)->capture_default_str();
  sub->add_option("--schedule", args->schedule, "constant | linear | cosine")->group(optim)->capture_default_str();
  sub->add_option("--warmup", o.warmup_steps, "Linear warmup steps")->group(optim)->capture_default_str();
  sub->add_option("--epochs", o.epochs, "Passes over the training rows (unless --max-steps)")->group(optim)->capture_default_str();
  sub->add_option("--max-steps", o.max_steps, "Optimizer steps; > 0 overrides --epochs")->group(optim)->capture_default_str();
  sub->add_option("--batch-size", o.batch_size, "Rows (sft) or pairs (dpo) per micro-batch")->group(optim)->capture_default_str();
  sub->add_option("--grad-accum", o.grad_accum, "Micro-batches per optimizer step")->group(optim)->capture_default_str();
  sub->add_option("--clip", o.max_grad_norm, "Global gradient-norm clip (0 = off)")->group(optim)->capture_default_str();
  sub->add_option("--seed", o.seed, "Adapter initialisation, held-out split and batch order")->group(optim)->capture_default_str();
  sub->add_option("--beta", o.dpo_beta, "DPO beta")->group(optim)->capture_default_str();
  sub->add_option("--nll-coef", o.dpo_nll_coef, "DPO: weight of the NLL on the chosen side")->group(optim)->capture_default_str();
  sub->add_option("--aux-loss-coef", args->aux_loss_coef,
                  "MoE load-balancing coefficient (default: config.json router_aux_loss_coef)")->group(optim);
  sub->add_option("--z-loss-coef", args->z_loss_coef, "MoE router z-loss coefficient")->group(optim)->capture_default_str();

  auto* data = "Data and evaluation";
  sub->add_option("--max-length", args->max_length, "Tokens per row; longer rows are cut (counted)")->group(data)->capture_default_str();
  sub->add_option("--max-prompt-length", args->max_prompt_length, "DPO: prompt tokens kept (the last ones)")
      ->group(data)->capture_default_str();
  sub->add_flag("--last-assistant-only", args->last_assistant_only, "SFT: train on the last assistant message only")
      ->group(data);
  sub->add_option("--held-out", args->held_out, "Fraction of rows held out for evaluation")->group(data)->capture_default_str();
  sub->add_option("--eval-every", o.eval_every, "Held-out evaluation every N steps (0: start and end only)")
      ->group(data)->capture_default_str();
  sub->add_option("--checkpoint-every", o.checkpoint_every, "Checkpoint every N steps (0: at the end only)")
      ->group(data)->capture_default_str();
  sub->add_option("--keep-checkpoints", o.keep_checkpoints, "Checkpoints kept (newest)")->group(data)->capture_default_str();
  sub->add_option("--coverage-threshold", args->coverage_threshold,
                  "MoE: loss-bearing tokens below which an expert counts as under-trained")->group(data)->capture_default_str();
  add_chat_flags(*sub, args->chat_flags);

  auto* run = "Run";
  sub->add_option("--log-every", o.log_every, "Progress line every N steps when stderr is not a terminal")
      ->group(run)->capture_default_str();
  sub->add_flag("--quiet", args->quiet, "No progress output")->group(run);
  sub->add_flag("--no-autocast", args->no_autocast, "CUDA: do not autocast to bf16")->group(run);
  sub->add_flag("--activation-checkpointing", o.activation_checkpointing,
                "Recompute each decoder layer in backward instead of keeping its activations")->group(run);
  sub->add_option("--loss-chunk", o.loss_chunk_tokens, "Tokens per unembedding chunk in the loss")
      ->group(run)->capture_default_str();
  set_command_action(*sub, [args] { return run_train(*args); });
}

}  // namespace character::pipeline
