#include "lora/lora_config.h"

#include "base/error.h"

namespace character::lora {

RouterTraining parse_router_training(const std::string& value, const std::string& field) {
  if (value == "none") return RouterTraining::kNone;
  if (value == "lora") return RouterTraining::kLora;
  if (value == "full") return RouterTraining::kFull;
  throw ConfigError(field + ": '" + value + "', expected one of none, lora, full");
}

ExpertLora parse_expert_lora(const std::string& value, const std::string& field) {
  if (value == "shared-outer") return ExpertLora::kSharedOuter;
  if (value == "per-expert") return ExpertLora::kPerExpert;
  throw ConfigError(field + ": '" + value + "', expected shared-outer or per-expert");
}

std::string to_string(RouterTraining value) {
  switch (value) {
    case RouterTraining::kNone: return "none";
    case RouterTraining::kLora: return "lora";
    case RouterTraining::kFull: return "full";
  }
  return "?";
}

std::string to_string(ExpertLora value) {
  return value == ExpertLora::kSharedOuter ? "shared-outer" : "per-expert";
}

void validate(const LoraConfig& c) {
  if (c.rank < 1) throw ConfigError("lora rank: " + std::to_string(c.rank) + ", expected ≥ 1");
  if (!(c.alpha > 0)) throw ConfigError("lora alpha: " + std::to_string(c.alpha) + ", expected > 0");
  if (!(c.router_lr_multiplier > 0)) {
    throw ConfigError("router learning-rate multiplier: " + std::to_string(c.router_lr_multiplier) +
                      ", expected > 0");
  }
  if (!c.train_attn && !c.train_mlp && !c.train_unembed && c.train_router == RouterTraining::kNone) {
    throw ConfigError(
        "lora targets: nothing to train, expected at least one of --train-attn, --train-mlp, --train-unembed, "
        "--train-router lora|full");
  }
}

}  // namespace character::lora
