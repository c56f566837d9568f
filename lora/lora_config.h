// What the adapters train, chosen by Tinker's switches (--train-attn,
// --train-mlp, --train-unembed) plus router training, which Tinker lacks
// (--train-router none|lora|full). W' = W + (alpha/r)·B·A with A random, B zero.
// No torch here: the CLI parses into this struct.
#pragma once

#include <cstdint>
#include <string>

namespace character::lora {

// How a MoE router is trained: not at all, by a rank-r LoRA on its [E, D]
// weight, or the whole weight (as a trained copy, so the base stays intact).
enum class RouterTraining { kNone, kLora, kFull };

// How routed-expert LoRA factors are laid out.
//   kSharedOuter (Tinker's, default): gate and up each have one A [1, r, D]
//     shared by all experts and a B [E, F, r] per expert; down has an A
//     [E, r, F] per expert and one B [1, D, r] shared.
//   kPerExpert (PEFT's target_parameters): the fused gate_up_proj and down_proj
//     each have A [E, r, in] and B [E, out, r].
enum class ExpertLora { kSharedOuter, kPerExpert };

struct LoraConfig {
  int64_t rank = 32;
  double alpha = 32.0;        // Tinker's lora_alpha
  bool train_attn = true;     // q, k, v, o
  bool train_mlp = true;      // dense gate/up/down, every routed expert
  bool train_unembed = false; // lm_head (or the tied embedding's output use)
  RouterTraining train_router = RouterTraining::kNone;
  double router_lr_multiplier = 1.0;  // router parameters' LR = base LR × this
  ExpertLora expert_lora = ExpertLora::kSharedOuter;
  uint64_t seed = 0;          // A's initialisation

  double scale() const { return alpha / static_cast<double>(rank); }
};

// "none" | "lora" | "full"; anything else: ConfigError naming `field`.
RouterTraining parse_router_training(const std::string& value, const std::string& field = "--train-router");
// "shared-outer" | "per-expert"; anything else: ConfigError naming `field`.
ExpertLora parse_expert_lora(const std::string& value, const std::string& field = "--expert-lora");
std::string to_string(RouterTraining value);
std::string to_string(ExpertLora value);

// Rank ≥ 1, alpha > 0, router_lr_multiplier > 0, something to train;
// ConfigError otherwise.
void validate(const LoraConfig& config);

}  // namespace character::lora
