// Attaches LoRA adapters (and router training parameters) to a loaded model
// through model/'s adapter hooks, owns their trainable tensors under clear
// names, and folds them into the base weights for merged export.
// Names and shapes (r rank, D hidden, F expert intermediate, E experts, V vocab):
//   model.layers.{l}.self_attn.{q,k,v,o}_proj.lora_A [r, in], .lora_B [out, r]
//   model.layers.{l}.mlp.{gate,up,down}_proj.lora_A / .lora_B            (dense)
//   shared-outer experts: model.layers.{l}.mlp.experts.{gate,up}_proj.lora_A [1, r, D],
//     .lora_B [E, F, r]; ...experts.down_proj.lora_A [E, r, F], .lora_B [1, D, r]
//   per-expert experts:   ...experts.gate_up_proj.lora_A [E, r, D], .lora_B [E, 2F, r];
//     ...experts.down_proj.lora_A [E, r, F], .lora_B [E, D, r]
//   router: model.layers.{l}.mlp.gate.lora_A [r, D], .lora_B [E, r] (lora) or
//     model.layers.{l}.mlp.gate.weight [E, D] (full)
//   unembedding: lm_head.lora_A [r, D], lm_head.lora_B [V, r]
// Every delta is scaled by alpha/r (docs/training.md).
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lora/lora_config.h"
#include "model/arch/causal_lm.h"

namespace character::lora {

struct NamedTensor {
  std::string name;
  at::Tensor tensor;
};

// The adapters attached to one model. Their tensors are fp32 leaves with
// requires_grad, on the model's device; the base weights are frozen.
class Adapters {
 public:
  const LoraConfig& config() const { return config_; }
  // Every trainable tensor, in attach order (layer by layer).
  const std::vector<NamedTensor>& named_parameters() const { return named_; }
  // LoRA factors of attention, MLP, experts, unembedding (the base learning rate).
  std::vector<at::Tensor> parameters() const;
  // Router LoRA factors or full router weights (learning rate × router_lr_multiplier).
  std::vector<at::Tensor> router_parameters() const;
  // One tensor by name; CheckpointError naming it when there is none.
  const at::Tensor& get(const std::string& name) const;
  // Copies values into the adapters (e.g. from a checkpoint). Every adapter tensor
  // must be present with its shape, and nothing else: CheckpointError naming
  // `source`, the tensor, what was found and what was expected.
  void load(const std::map<std::string, at::Tensor>& values, const std::string& source);

  // Folds every delta into the base weights (W += scale·B·A, expert banks per
  // expert, router LoRA likewise, full router copied) and detaches the hooks,
  // so the model computes the same function without adapters.
  void merge_into_base();
  // Removes every hook: the model is its base again. The tensors stay valid.
  void detach();
  bool attached() const { return attached_; }

 private:
  friend std::shared_ptr<Adapters> attach_adapters(const model::CausalLM& model, const LoraConfig& config);
  struct Target {
    std::function<void()> merge;   // add this target's delta to its base weight
    std::function<void()> detach;  // reset its hook
  };

  LoraConfig config_;
  model::CausalLM model_;
  std::vector<NamedTensor> named_;
  std::vector<bool> is_router_;  // parallel to named_
  std::vector<Target> targets_;
  std::string merge_blocker_;  // why merge_into_base cannot run, if it cannot
  bool attached_ = true;
};

// Attaches adapters for the targets `config` switches on, A initialised as PEFT
// does (kaiming_uniform, a=√5: U(-1/√in, 1/√in)) from `config.seed`, B zero, so
// the model's function is unchanged until training moves B. Freezes the base
// weights. ConfigError for an invalid config, router training on a dense model,
// or a model that already has adapters.
std::shared_ptr<Adapters> attach_adapters(const model::CausalLM& model, const LoraConfig& config);

}  // namespace character::lora
