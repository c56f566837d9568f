// What a training run updates, as the loop of lora/trainer.cpp sees it: LoRA
// adapters (train_sft / train_dpo) or every parameter of the model
// (lora/full_train.h). The loop — batches, losses, AdamW, health checks,
// checkpoints, resume — is one; this interface is what differs: the tensors
// handed to the optimizer, what must match on resume, what a checkpoint holds and
// what the run leaves in OUT at the end.
#pragma once

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "lora/train_checkpoint.h"
#include "lora/trainer.h"

namespace character::lora {

class Trainable : public CheckpointTensors {
 public:
  // AdamW group 0 (base learning rate) and group 1 (lr × router_lr_multiplier());
  // leaves with requires_grad.
  virtual std::vector<at::Tensor> parameters() const = 0;
  virtual std::vector<at::Tensor> router_parameters() const = 0;
  virtual double router_lr_multiplier() const = 0;
  // Adds the entries of the run's config that a resume must match (e.g. "lora").
  virtual void describe(nlohmann::json& run_config) const = 0;
  // The directory under OUT that the finished run writes ("adapter", "model"); its
  // presence marks OUT as holding a run.
  virtual std::string output_name() const = 0;
  // Writes the final result to `dir` (= OUT/output_name()).
  virtual void write_output(const std::filesystem::path& dir) const = 0;
};

// The SFT loop of train_sft over any Trainable (options.kind must be kSft).
// TrainResult::adapter_dir is OUT/output_name().
TrainResult train_sft_over(Trainable& trainable, const model::CausalLM& model, const SftDataset& train,
                           const SftDataset& held_out, const TrainOptions& options, StepHook* hook);

}  // namespace character::lora
