// The router-training step hook that pipeline/ plugs into the trainer of
// lora/trainer.h: per micro-batch it adds aux_coef·(load-balancing loss) +
// z_coef·(router z-loss) to the loss and counts training coverage; per step it
// reports aux_loss, z_loss and the coverage share; its checkpoint state is the
// coverage counts, and it writes coverage.json beside each checkpoint.
#pragma once

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>

#include "lora/trainer.h"
#include "model/io/config.h"
#include "router_train/aux_losses.h"
#include "router_train/coverage.h"

namespace character::router_train {

struct RouterHookOptions {
  // Load-balancing coefficient; unset = config.json's router_aux_loss_coef
  // (transformers' defaults: 0.001 for qwen3_moe and mixtral, 0.01 for olmoe).
  std::optional<double> aux_loss_coef;
  double z_loss_coef = kDefaultZLossCoef;  // ST-MoE's 1e-3
  // An expert with fewer loss-bearing tokens than this counts as under-trained
  // in the metrics and in coverage.json.
  int64_t coverage_threshold = 16;
};

class RouterStepHook : public lora::StepHook {
 public:
  // ConfigError for a dense model or an MoE architecture the losses do not know.
  RouterStepHook(const model::ModelConfig& config, const RouterHookOptions& options = {});

  bool wants_routing() const override { return true; }
  // in: the policy forward of `batch` with routing captured; out: [] fp32 on the
  // model's device, aux_coef·aux + z_coef·z (a zero tensor when both are 0).
  // Also feeds the coverage counter: real positions from batch.attention_mask,
  // loss-bearing ones from batch.labels (loss_bearing_positions).
  at::Tensor extra_loss(const model::ForwardOutput& out, const lora::TokenBatch& batch) override;
  // "aux_loss", "z_loss" (unweighted, mean over the step's micro-batches; only
  // when their coefficient is non-zero), "coverage_below_share" and
  // "coverage_experts_below" (cumulative since the start of training).
  void add_metrics(nlohmann::json& step_metrics) override;
  nlohmann::json state() const override;  // {"coverage": CoverageCounter::state()}
  void load_state(const nlohmann::json& state) override;
  void write_outputs(const std::filesystem::path& checkpoint_dir) override;  // coverage.json

  double aux_loss_coef() const { return aux_coef_; }
  double z_loss_coef() const { return z_coef_; }
  const CoverageCounter& coverage() const { return coverage_; }

 private:
  LoadBalancingOptions balance_;
  double aux_coef_;
  double z_coef_;
  int64_t threshold_;
  CoverageCounter coverage_;
  at::Tensor aux_sum_, z_sum_;  // detached, summed over the step's micro-batches
  int64_t micro_batches_ = 0;
};

}  // namespace character::router_train
