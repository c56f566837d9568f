// The work of `character train sft|dpo` as a function: load the model, attach
// LoRA adapters (fresh, or initialised from a saved adapter), add the router
// hook on MoE models, render and tokenize the JSONL data with the model's chat
// template, hold out a share and run lora/trainer.h. The command parses flags
// into TrainRunOptions; the pipeline's train-dpo and train-sft stages fill the
// same struct (docs/training.md).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "lora/lora_config.h"
#include "lora/trainer.h"
#include "pipeline/chat_input.h"
#include "router_train/aux_losses.h"
#include "router_train/router_hook.h"

namespace character::pipeline {

struct TrainRunOptions {
  std::filesystem::path model_dir;  // base model directory
  std::filesystem::path data_file;  // JSONL: {"messages"} rows (sft) or {"prompt","chosen","rejected"} (dpo)
  std::filesystem::path out_dir;    // adapter/, checkpoints/, metrics.jsonl, coverage.json
  // A saved adapter (lora/adapter_file.h) whose tensors the trainable adapters
  // start from, e.g. SFT continuing from the DPO adapter. Its layout (rank,
  // alpha, targets, router, expert layout) must equal `lora`'s; empty: fresh.
  std::filesystem::path init_adapter;
  std::string device = "cpu";       // cpu | cuda
  std::string dtype;                // empty: the device default
  lora::LoraConfig lora;            // its seed is set to train.seed
  // kind, learning rate, schedule, batches, checkpoints, resume, stop flag ...;
  // out_dir, base_model and pad_id are filled in here.
  lora::TrainOptions train;
  int64_t max_length = 2048;
  int64_t max_prompt_length = 1024;  // DPO: prompt tokens kept (the last ones)
  bool last_assistant_only = false;  // SFT
  double held_out = 0.05;            // fraction of rows held out
  ChatFlags chat;
  // Router losses (MoE models); unset aux: config.json's router_aux_loss_coef.
  std::optional<double> aux_loss_coef;
  double z_loss_coef = router_train::kDefaultZLossCoef;
  int64_t coverage_threshold = 16;
};

struct TrainRunResult {
  lora::TrainResult train;
  // What the command prints: kind, out, rows, steps, losses, DPO margin, adapter.
  nlohmann::json summary;
};

// ConfigError for bad options (device, held-out fraction, an init adapter of
// another layout, router options on a dense model); the loaders' and trainer's
// errors as they report them; Interrupted when train.stop_requested is set.
TrainRunResult run_training(TrainRunOptions options);

// `character train sft --full-parameters`: every weight trained (lora/full_train.h)
// with the same loading, checks, data split and router hook as run_training;
// writes OUT/model. The summary has "model" where run_training's has "adapter".
TrainRunResult run_full_training(TrainRunOptions options);

// The router step hook (load balancing, z-loss, training coverage) for an MoE
// model from the options' router settings; nullptr for a dense model, where an
// --aux-loss-coef is a ConfigError.
std::unique_ptr<router_train::RouterStepHook> make_router_hook(const model::CausalLMImpl& model,
                                                             const TrainRunOptions& options);

}  // namespace character::pipeline
