// Full-parameter training: the SFT loop of lora/trainer.h (batches, chunked loss,
// AdamW with schedule and clipping, held-out loss, health checks, progress,
// resumable checkpoints, stop requests) over every parameter of the model instead
// of LoRA adapters. The lab pretrains its student and teacher from scratch with it;
// `character train sft --full-parameters` exposes it.
//
// OUT/metrics.jsonl, OUT/checkpoints/step-N/ (model.safetensors: every parameter
// under its registered name in the model's dtype; optimizer state, RNG, data
// position as lora/train_checkpoint.h), OUT/model/ (a Hugging Face model
// directory, model/arch/model_dir.h). The model passed in ends up holding the
// trained weights; its parameters' requires_grad flags are as before the call
// (all parameters train while it runs, whatever their flags were).
#pragma once

#include <filesystem>

#include "lora/trainer.h"
#include "model/arch/model_dir.h"

namespace character::lora {

struct FullTrainOutput {
  model::ModelConfig config;              // what OUT/model/config.json describes
  model::ModelDirOptions model_dir;       // tokenizer files and extra config keys
};

// Trains every parameter of `model` on `train` (options.kind must be kSft, else
// ConfigError). TrainResult::adapter_dir is OUT/model here. `hook` as in
// train_sft (e.g. router_train's load-balancing loss). Same errors as train_sft;
// a resume needs the model as it was at the start (its weights are overwritten
// with the checkpoint's).
TrainResult train_full_sft(const model::CausalLM& model, const SftDataset& train, const SftDataset& held_out,
                           const TrainOptions& options, const FullTrainOutput& output, StepHook* hook = nullptr);

}  // namespace character::lora
