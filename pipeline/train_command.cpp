// `character train sft|dpo --model DIR --data FILE --out DIR [flags]`: parses
// the flags into TrainRunOptions and runs run_training() (pipeline/train_run.h),
// which the pipeline's train stages call too: LoRA adapters where Tinker's
// switches say (plus router training on MoE models), fresh or from
// --init-adapter, the JSONL data rendered with the model's chat template, a
// held-out share, the trainer of lora/trainer.h. --resume continues from the
// newest checkpoint in --out. Prints a JSON summary on stdout.
// `character train sft --full-parameters` trains every weight of the model
// instead (lora/full_train.h) and writes OUT/model, a Hugging Face directory.
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/log.h"
#include "lora/adapter_file.h"
#include "lora/lora_config.h"
#include "lora/trainer.h"
#include "model/arch/causal_lm.h"
#include "model/text/chat.h"
#include "model/text/tokenizer.h"
#include "pipeline/chat_input.h"
#include "pipeline/commands.h"
#include "pipeline/train_run.h"

namespace character::pipeline {

namespace {

struct TrainArgs {
  std::string kind;  // sft | dpo
  TrainRunOptions run;
  // Parsed into run.lora / run.train.
  std::string train_router = "none";
  std::string expert_lora = "shared-outer";
  std::string schedule = "linear";
  bool no_autocast = false;
  bool quiet = false;
  bool full_parameters = false;
};

namespace fs = std::filesystem;

// Flags that shape LoRA adapters, meaningless when every weight trains.
// (--train-attn counts its --no- form too.)
const std::vector<std::string> kAdapterFlags = {"--rank",          "--alpha",          "--train-attn",
                                                "--train-mlp",     "--train-unembed",  "--train-router",
                                                "--router-lr-mult", "--expert-lora",   "--init-adapter"};

// With --init-adapter, the adapter-layout flags not given take the saved adapter's values.
void layout_from_init_adapter(TrainArgs& args, const CLI::App& sub) {
  const lora::LoraConfig saved = lora::read_adapter_config(args.run.init_adapter).config;
  auto& lc = args.run.lora;
  if (sub.count("--rank") == 0) lc.rank = saved.rank;
  if (sub.count("--alpha") == 0) lc.alpha = saved.alpha;
  if (sub.count("--train-attn") == 0) lc.train_attn = saved.train_attn;
  if (sub.count("--train-mlp") == 0) lc.train_mlp = saved.train_mlp;
  if (sub.count("--train-unembed") == 0) lc.train_unembed = saved.train_unembed;
  if (sub.count("--train-router") == 0) args.train_router = lora::to_string(saved.train_router);
  if (sub.count("--expert-lora") == 0) args.expert_lora = lora::to_string(saved.expert_lora);
}

int run_train(TrainArgs& args, const CLI::App& sub) {
  if (args.full_parameters) {
    if (args.kind != "sft") {
      throw ConfigError("train " + args.kind + " --full-parameters: expected sft (DPO trains adapters against the "
                        "frozen base model)");
    }
    for (const auto& flag : kAdapterFlags) {
      if (sub.count(flag) > 0) {
        throw ConfigError("train: " + flag + " shapes LoRA adapters, but --full-parameters trains every weight; "
                          "drop one of them");
      }
    }
  }
  if (!args.run.init_adapter.empty()) layout_from_init_adapter(args, sub);
  args.run.lora.train_router = lora::parse_router_training(args.train_router);
  args.run.lora.expert_lora = lora::parse_expert_lora(args.expert_lora);
  auto& o = args.run.train;
  o.kind = args.kind == "dpo" ? lora::TrainKind::kDpo : lora::TrainKind::kSft;
  o.schedule = lora::parse_lr_schedule(args.schedule);
  o.autocast_bf16 = !args.no_autocast;
  o.progress = !args.quiet;
  const TrainRunResult result = args.full_parameters ? run_full_training(args.run) : run_training(args.run);
  std::cout << result.summary.dump() << "\n";
  return 0;
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  auto& run = args->run;
  auto& o = run.train;
  auto& lc = run.lora;
  CLI::App* sub = app.add_subcommand(
      "train", "Train LoRA (and router) adapters with SFT or DPO, or every weight (sft --full-parameters)");
  sub->add_option("kind", args->kind, "sft or dpo")->required()->check(CLI::IsMember({"sft", "dpo"}));
  sub->add_option("--model", run.model_dir, "Base model directory")->required()->check(CLI::ExistingDirectory);
  sub->add_option("--data", run.data_file,
                  "JSONL: {\"messages\"} rows (sft) or {\"prompt\",\"chosen\",\"rejected\"} rows (dpo)")
      ->required()->check(CLI::ExistingFile);
  sub->add_option("--out", run.out_dir,
                  "Output directory: adapter/ (model/ with --full-parameters), checkpoints/, metrics.jsonl")
      ->required();
  sub->add_flag("--full-parameters", args->full_parameters,
                "SFT of every weight instead of LoRA adapters; writes OUT/model (a Hugging Face directory)");
  sub->add_flag("--resume", o.resume, "Continue from the newest checkpoint in --out (same flags and data)");
  sub->add_option("--init-adapter", run.init_adapter,
                  "Start from this saved adapter's tensors (e.g. SFT after DPO); its layout is the default for the "
                  "adapter flags")
      ->check(CLI::ExistingDirectory);
  sub->add_option("--device", run.device, "cpu or cuda");
  sub->add_option("--dtype", run.dtype, "float32 | bfloat16 | float16 (default: fp32 on cpu, bf16 on cuda)");

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
  sub->add_option("--aux-loss-coef", run.aux_loss_coef,
                  "MoE load-balancing coefficient (default: config.json router_aux_loss_coef)")->group(optim);
  sub->add_option("--z-loss-coef", run.z_loss_coef, "MoE router z-loss coefficient")->group(optim)->capture_default_str();

  auto* data = "Data and evaluation";
  sub->add_option("--max-length", run.max_length, "Tokens per row; longer rows are cut (counted)")->group(data)->capture_default_str();
  sub->add_option("--max-prompt-length", run.max_prompt_length, "DPO: prompt tokens kept (the last ones)")
      ->group(data)->capture_default_str();
  sub->add_flag("--last-assistant-only", run.last_assistant_only, "SFT: train on the last assistant message only")
      ->group(data);
  sub->add_option("--held-out", run.held_out, "Fraction of rows held out for evaluation")->group(data)->capture_default_str();
  sub->add_option("--eval-every", o.eval_every, "Held-out evaluation every N steps (0: start and end only)")
      ->group(data)->capture_default_str();
  sub->add_option("--checkpoint-every", o.checkpoint_every, "Checkpoint every N steps (0: at the end only)")
      ->group(data)->capture_default_str();
  sub->add_option("--keep-checkpoints", o.keep_checkpoints, "Checkpoints kept (newest)")->group(data)->capture_default_str();
  sub->add_option("--coverage-threshold", run.coverage_threshold,
                  "MoE: loss-bearing tokens below which an expert counts as under-trained")->group(data)->capture_default_str();
  add_chat_flags(*sub, run.chat);

  auto* run_group = "Run";
  sub->add_option("--log-every", o.log_every, "Progress line every N steps when stderr is not a terminal")
      ->group(run_group)->capture_default_str();
  sub->add_flag("--quiet", args->quiet, "No progress output")->group(run_group);
  sub->add_flag("--no-autocast", args->no_autocast, "CUDA: do not autocast to bf16")->group(run_group);
  sub->add_flag("--activation-checkpointing", o.activation_checkpointing,
                "Recompute each decoder layer in backward instead of keeping its activations")->group(run_group);
  sub->add_option("--loss-chunk", o.loss_chunk_tokens, "Tokens per unembedding chunk in the loss")
      ->group(run_group)->capture_default_str();
  set_command_action(*sub, [args, sub] { return run_train(*args, *sub); });
}

}  // namespace character::pipeline
