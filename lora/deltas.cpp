#include "lora/deltas.h"

#include <torch/torch.h>

namespace character::lora {

namespace {
// Adapters are kept in fp32 (master weights); a bf16 forward runs them in bf16.
at::Tensor as(const at::Tensor& t, const at::Tensor& like) { return t.to(like.scalar_type()); }
}  // namespace

at::Tensor LoraLinear::forward(const at::Tensor& x) {
  // PEFT lora.Linear.forward: result + lora_B(lora_A(x)) * scaling
  auto xa = at::linear(x, as(a, x));  // [..., in] → [..., r]
  return at::linear(xa, as(b, x)) * scale;  // [..., r] → [..., out]
}

at::Tensor LoraLinear::delta_weight() const { return at::matmul(b, a) * scale; }

at::Tensor ExpertFactors::apply(const at::Tensor& x, const model::ExpertGroups& groups) const {
  // torch's grouped GEMM wants every row stride 16-byte aligned; a small rank
  // (r·sizeof(dtype) % 16 ≠ 0) falls back to one matmul per group.
  model::ExpertGroups g = groups;
  g.grouped_mm = groups.grouped_mm && (a.size(1) * x.element_size()) % 16 == 0;
  // A shared: one matmul over all S rows; per expert: one matmul per group.
  auto xa = a.size(0) == 1 ? at::linear(x, as(a[0], x)) : model::grouped_linear(x, as(a, x), g);  // [S, r]
  return b.size(0) == 1 ? at::linear(xa, as(b[0], x)) : model::grouped_linear(xa, as(b, x), g);   // [S, out]
}

at::Tensor ExpertFactors::delta_weight(int64_t num_experts) const {
  auto d = at::matmul(b, a);  // [1 or E, out, r] · [1 or E, r, in] → [1 or E, out, in]
  return d.expand({num_experts, d.size(1), d.size(2)});
}

at::Tensor ExpertLoraDelta::gate_up(const at::Tensor& x, const model::ExpertGroups& groups) {
  std::vector<at::Tensor> parts;
  for (const auto& p : gate_up_parts) parts.push_back(p.apply(x, groups));  // [S, F] each, or [S, 2F]
  auto out = parts.size() == 1 ? parts.front() : at::cat(parts, 1);       // [S, 2F]
  return out * scale;
}

at::Tensor ExpertLoraDelta::down(const at::Tensor& h, const model::ExpertGroups& groups) {
  return down_factors.apply(h, groups) * scale;  // [S, F] → [S, D]
}

at::Tensor ExpertLoraDelta::delta_gate_up(int64_t num_experts) const {
  std::vector<at::Tensor> parts;
  for (const auto& p : gate_up_parts) parts.push_back(p.delta_weight(num_experts));
  return (parts.size() == 1 ? parts.front() : at::cat(parts, 1)) * scale;  // [E, 2F, D]
}

at::Tensor ExpertLoraDelta::delta_down(int64_t num_experts) const {
  return down_factors.delta_weight(num_experts) * scale;  // [E, D, F]
}

at::Tensor RouterLora::logits(const at::Tensor& x, const at::Tensor& w) {
  auto base = at::linear(x, w);                              // [N, E]
  return base + at::linear(at::linear(x, as(a, x)), as(b, x)) * scale;  // [N, D] → [N, r] → [N, E]
}

at::Tensor RouterLora::delta_weight() const { return at::matmul(b, a) * scale; }

at::Tensor RouterFull::logits(const at::Tensor& x, const at::Tensor& /*weight*/) {
  return at::linear(x, as(weight, x));  // [N, E]
}

}  // namespace character::lora
