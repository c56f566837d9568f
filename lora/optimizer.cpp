#include "lora/optimizer.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <numbers>
#include <sstream>

#include "base/error.h"
#include "lora/adapters.h"
#include "lora/train_monitor.h"

namespace character::lora {

namespace {

// The project's AdamW settings (issue 3): Tinker's betas, no weight decay.
constexpr double kBeta1 = 0.9;
constexpr double kBeta2 = 0.95;
constexpr double kEps = 1e-8;

torch::optim::AdamWOptions adamw_options(double lr) {
  return torch::optim::AdamWOptions(lr).betas({kBeta1, kBeta2}).eps(kEps).weight_decay(0.0);
}

}  // namespace

double lr_factor(const OptimizerOptions& o, int64_t step) {
  // transformers/optimization.py: _get_{linear,cosine}_schedule_with_warmup_lr_lambda.
  const int64_t warmup = std::max<int64_t>(o.warmup_steps, 0);
  if (step < warmup) return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup));
  const double span = static_cast<double>(std::max<int64_t>(1, o.total_steps - warmup));
  const double progress = static_cast<double>(step - warmup) / span;
  switch (o.schedule) {
    case LrSchedule::kConstant:
      return 1.0;
    case LrSchedule::kLinear:
      return std::max(0.0, static_cast<double>(o.total_steps - step) / span);
    case LrSchedule::kCosine:
      return std::max(0.0, 0.5 * (1.0 + std::cos(std::numbers::pi * progress)));
  }
  return 1.0;
}

Optimizer::Optimizer(const Adapters& adapters, const OptimizerOptions& options)
    : Optimizer(adapters.parameters(), adapters.router_parameters(), options) {}

Optimizer::Optimizer(std::vector<at::Tensor> base, std::vector<at::Tensor> router, const OptimizerOptions& options)
    : options_(options) {
  if (base.empty() && router.empty()) throw ConfigError("optimizer: nothing to train, expected at least one trainable tensor");
  params_ = base;
  params_.insert(params_.end(), router.begin(), router.end());
  // Group 0: LoRA factors; group 1: router parameters (own learning rate).
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(base, std::make_unique<torch::optim::AdamWOptions>(adamw_options(options.learning_rate)));
  if (!router.empty()) {
    has_router_group_ = true;
    groups.emplace_back(router, std::make_unique<torch::optim::AdamWOptions>(
                                    adamw_options(options.learning_rate * options.router_lr_multiplier)));
  }
  adamw_ = std::make_unique<torch::optim::AdamW>(std::move(groups), adamw_options(options.learning_rate));
}

Optimizer::~Optimizer() = default;

Optimizer::StepStats Optimizer::step(int64_t step) {
  StepStats stats;
  // clip_grad_norm_ returns the norm before clipping; an infinite max_norm only measures it.
  const double max_norm = options_.max_grad_norm > 0 ? options_.max_grad_norm
                                                     : std::numeric_limits<double>::infinity();
  stats.grad_norm = torch::nn::utils::clip_grad_norm_(params_, max_norm);
  if (!std::isfinite(stats.grad_norm)) {
    zero_grad();
    throw TrainingError("training stopped at step " + std::to_string(step + 1) + ": the gradient norm is " +
                        std::to_string(stats.grad_norm) + ", expected a finite number (lower --lr, check the data); "
                        "the weights were not updated by this step");
  }
  stats.lr = options_.learning_rate * lr_factor(options_, step);
  auto& groups = adamw_->param_groups();
  static_cast<torch::optim::AdamWOptions&>(groups[0].options()).lr(stats.lr);
  if (has_router_group_) {
    static_cast<torch::optim::AdamWOptions&>(groups[1].options()).lr(stats.lr * options_.router_lr_multiplier);
  }
  adamw_->step();
  zero_grad();
  return stats;
}

void Optimizer::zero_grad() { adamw_->zero_grad(/*set_to_none=*/true); }

std::string Optimizer::save_state() const {
  std::ostringstream out;
  torch::serialize::OutputArchive archive;
  adamw_->save(archive);
  archive.save_to(out);
  return out.str();
}

void Optimizer::load_state(const std::string& bytes, const std::string& source) {
  try {
    std::istringstream in(bytes);
    torch::serialize::InputArchive archive;
    archive.load_from(in);
    adamw_->load(archive);
  } catch (const c10::Error& e) {
    throw CheckpointError(source + ": cannot restore the AdamW state: " + e.what_without_backtrace());
  }
}

}  // namespace character::lora
