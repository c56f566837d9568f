// The LoRA deltas that plug into model/'s adapter hooks (model/arch/adapter_hooks.h):
// one for a dense Linear or the unembedding, one for an expert bank (split LoRA
// on each expert's routed rows, "shared-outer" or per-expert factors), and two
// for a router (low-rank or a full trained copy). Each can also give its
// weight delta, which merge_into_base folds into the base weights.
// Shapes: r rank, D hidden, F expert intermediate, E experts, S grouped rows.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

#include "model/arch/adapter_hooks.h"

namespace character::lora {

// Δy = scale · (x·Aᵀ)·Bᵀ on a weight W [out, in] (PEFT's lora.Linear forward).
class LoraLinear : public model::LinearDelta {
 public:
  LoraLinear(at::Tensor a, at::Tensor b, double scale) : a(std::move(a)), b(std::move(b)), scale(scale) {}
  // in: x [..., in]; out: [..., out]
  at::Tensor forward(const at::Tensor& x) override;
  at::Tensor delta_weight() const;  // [out, in] = scale · B·A

  at::Tensor a;  // [r, in]
  at::Tensor b;  // [out, r]
  double scale;
};

// One low-rank factor pair on a stacked expert projection W [E, out, in]. A
// factor whose first dimension is 1 is shared by every expert; one of size E
// is per expert. The product is unscaled.
struct ExpertFactors {
  at::Tensor a;  // [1 or E, r, in]
  at::Tensor b;  // [1 or E, out, r]

  // in: x [S, in] grouped by expert; out: [S, out] = (x·A_eᵀ)·B_eᵀ on each group
  at::Tensor apply(const at::Tensor& x, const model::ExpertGroups& groups) const;
  at::Tensor delta_weight(int64_t num_experts) const;  // [E, out, in] = B_e·A_e
};

// LoRA on an expert bank. gate_up_parts are concatenated along the output in
// order: {gate, up} for shared-outer (gate rows first, as gate_up_proj), or
// {gate_up} for per-expert.
class ExpertLoraDelta : public model::ExpertDelta {
 public:
  // in: x [S, D]; out: [S, 2F]
  at::Tensor gate_up(const at::Tensor& x, const model::ExpertGroups& groups) override;
  // in: h [S, F]; out: [S, D]
  at::Tensor down(const at::Tensor& h, const model::ExpertGroups& groups) override;
  at::Tensor delta_gate_up(int64_t num_experts) const;  // [E, 2F, D], scaled
  at::Tensor delta_down(int64_t num_experts) const;     // [E, D, F], scaled

  std::vector<ExpertFactors> gate_up_parts;
  ExpertFactors down_factors;
  double scale = 1.0;
};

// Router LoRA: logits = x·Wᵀ + scale · (x·Aᵀ)·Bᵀ on W [E, D].
class RouterLora : public model::RouterDelta {
 public:
  // in: x [N, D], weight [E, D]; out: [N, E]
  at::Tensor logits(const at::Tensor& x, const at::Tensor& weight) override;
  at::Tensor delta_weight() const;  // [E, D] = scale · B·A

  at::Tensor a;  // [r, D]
  at::Tensor b;  // [E, r]
  double scale = 1.0;
};

// Full router training: the logits come from a trained copy of W [E, D], so
// switching adapters off gives back the base router exactly.
class RouterFull : public model::RouterDelta {
 public:
  // in: x [N, D], weight [E, D] (ignored: the trained copy replaces it); out: [N, E]
  at::Tensor logits(const at::Tensor& x, const at::Tensor& weight) override;

  at::Tensor weight;  // [E, D]
};

}  // namespace character::lora
