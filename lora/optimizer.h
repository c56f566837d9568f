// AdamW over the trained tensors in two parameter groups (LoRA factors, or every
// model parameter in full-parameter training, at the base learning rate; router
// parameters at lr × router_lr_multiplier), the
// learning-rate schedules (transformers' get_{constant,linear,cosine}_schedule_with_warmup),
// global-norm gradient clipping, and the optimizer state a training checkpoint keeps.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "lora/trainer.h"

namespace torch::optim {
class AdamW;
}

namespace character::lora {

class Adapters;

struct OptimizerOptions {
  double learning_rate = 1e-4;
  double router_lr_multiplier = 1.0;
  LrSchedule schedule = LrSchedule::kLinear;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  double max_grad_norm = 1.0;  // ≤ 0: no clipping
};

// The multiplier of the base learning rate at optimizer step `step` (0-based), as
// transformers' LambdaLR schedules give it to the step-th optimizer.step():
//   warmup (step < W): step / W
//   constant: 1;  linear: (S − step) / (S − W);  cosine: ½·(1 + cos(π·(step − W)/(S − W)))
// with S = total_steps, clamped at 0.
double lr_factor(const OptimizerOptions& options, int64_t step);

// AdamW (betas 0.9/0.95, eps 1e-8, weight decay 0; torch::optim::AdamW) with
// the schedule applied before each step.
class Optimizer {
 public:
  // Group 0: adapters.parameters(); group 1: adapters.router_parameters().
  Optimizer(const Adapters& adapters, const OptimizerOptions& options);
  // The same over explicit tensors (leaves with requires_grad).
  Optimizer(std::vector<at::Tensor> base, std::vector<at::Tensor> router, const OptimizerOptions& options);
  ~Optimizer();

  struct StepStats {
    double grad_norm = 0.0;  // global L2 norm of all trained gradients, before clipping
    double lr = 0.0;         // base learning rate used
  };
  // Clips the accumulated gradients, sets the scheduled learning rates for
  // optimizer step `step`, updates the tensors and zeroes the gradients.
  StepStats step(int64_t step);
  void zero_grad();

  // The AdamW state (moments, step counts) to and from bytes (torch::serialize).
  std::string save_state() const;
  void load_state(const std::string& bytes, const std::string& source);

 private:
  OptimizerOptions options_;
  std::vector<at::Tensor> params_;  // every trained tensor, for clipping
  std::unique_ptr<torch::optim::AdamW> adamw_;
  bool has_router_group_ = false;
};

}  // namespace character::lora
