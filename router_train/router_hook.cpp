#include "router_train/router_hook.h"

#include <torch/torch.h>

#include "base/error.h"
#include "lora/train_data.h"

namespace character::router_train {

RouterStepHook::RouterStepHook(const model::ModelConfig& config, const RouterHookOptions& options)
    : balance_(load_balancing_options(config)),
      aux_coef_(options.aux_loss_coef.value_or(config.router_aux_loss_coef)),
      z_coef_(options.z_loss_coef),
      threshold_(options.coverage_threshold),
      coverage_(CoverageCounter::for_model(config)) {
  if (aux_coef_ < 0 || z_coef_ < 0) {
    throw ConfigError("router losses: aux coefficient " + std::to_string(aux_coef_) + ", z-loss coefficient " +
                      std::to_string(z_coef_) + ", expected both ≥ 0");
  }
  if (threshold_ < 0) {
    throw ConfigError("coverage threshold " + std::to_string(threshold_) + ", expected ≥ 0");
  }
}

at::Tensor RouterStepHook::extra_loss(const model::ForwardOutput& out, const lora::TokenBatch& batch) {
  TORCH_CHECK(!out.routing.empty(), "RouterStepHook: the forward captured no routing (capture.router off?)");
  const auto device = out.routing.front().router_logits.device();
  coverage_.add(out.routing, batch.attention_mask, loss_bearing_positions(batch.labels));
  ++micro_batches_;

  auto loss = at::zeros({}, at::TensorOptions().dtype(at::kFloat).device(device));
  auto accumulate = [](at::Tensor& sum, const at::Tensor& value) {
    sum = sum.defined() ? sum + value.detach() : value.detach();
  };
  if (aux_coef_ > 0) {
    auto aux = load_balancing_loss(out.routing, batch.attention_mask, balance_);
    accumulate(aux_sum_, aux);
    loss = loss + aux * aux_coef_;
  }
  if (z_coef_ > 0) {
    auto z = router_z_loss(out.routing, batch.attention_mask);
    accumulate(z_sum_, z);
    loss = loss + z * z_coef_;
  }
  return loss;
}

void RouterStepHook::add_metrics(nlohmann::json& step_metrics) {
  if (micro_batches_ > 0) {
    const auto n = static_cast<double>(micro_batches_);
    if (aux_sum_.defined()) step_metrics["aux_loss"] = aux_sum_.item<double>() / n;
    if (z_sum_.defined()) step_metrics["z_loss"] = z_sum_.item<double>() / n;
  }
  step_metrics["coverage_below_share"] = coverage_.share_below(threshold_);
  step_metrics["coverage_experts_below"] = coverage_.experts_below(threshold_);
  aux_sum_ = at::Tensor();
  z_sum_ = at::Tensor();
  micro_batches_ = 0;
}

nlohmann::json RouterStepHook::state() const { return {{"coverage", coverage_.state()}}; }

void RouterStepHook::load_state(const nlohmann::json& state) {
  const std::string source = "training checkpoint hook state";
  if (!state.is_object() || !state.contains("coverage")) {
    throw CheckpointError(source + ": missing field coverage, expected the router hook's coverage counts");
  }
  coverage_.load_state(state.at("coverage"), source);
}

void RouterStepHook::write_outputs(const std::filesystem::path& checkpoint_dir) {
  coverage_.write_json(checkpoint_dir / "coverage.json", threshold_);
}

}  // namespace character::router_train
