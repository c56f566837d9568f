#include "router_train/aux_losses.h"

#include <torch/torch.h>

#include <array>

#include "base/error.h"

namespace character::router_train {

namespace {

// Every MoE layer's rows stacked layer-major, as transformers concatenates its
// tuple of per-layer router outputs; `keep` marks the real rows (undefined: all).
struct StackedRouting {
  at::Tensor logits;  // [L·N, E] float32, raw
  at::Tensor keep;    // [L·N] float32, 1 for a real position
};

StackedRouting stack_layers(const std::vector<model::LayerRouting>& routing, const at::Tensor& attention_mask,
                            const char* caller) {
  std::vector<at::Tensor> parts;
  parts.reserve(routing.size());
  for (const auto& layer : routing) {
    TORCH_CHECK(layer.router_logits.defined() && layer.router_logits.dim() == 2, caller, ": layer ", layer.layer,
                " has no [N, E] router_logits (capture.router off?)");
    TORCH_CHECK(layer.router_logits.sizes() == routing.front().router_logits.sizes(), caller, ": layer ",
                layer.layer, " router_logits ", layer.router_logits.sizes(), " differ from layer ",
                routing.front().layer, "'s ", routing.front().router_logits.sizes());
    parts.push_back(layer.router_logits.to(at::kFloat));
  }
  StackedRouting s;
  s.logits = at::cat(parts, 0);  // L × [N, E] → [L·N, E]
  if (attention_mask.defined()) {
    const int64_t n = routing.front().router_logits.size(0);
    TORCH_CHECK(attention_mask.dim() == 2 && attention_mask.numel() == n, caller, ": attention_mask ",
                attention_mask.sizes(), " does not cover the ", n, " routed positions (expected [B, T], B·T = N)");
    // [B, T] → [N] → [L·N]: the mask repeated for every layer, layer-major
    // (transformers: attention_mask[None].expand(L, B, T, …).reshape(-1, …)).
    const auto layers = static_cast<int64_t>(parts.size());
    s.keep = attention_mask.reshape({-1}).to(s.logits.device(), at::kFloat).repeat({layers});
  }
  return s;
}

}  // namespace

LoadBalancingOptions load_balancing_options(const model::ModelConfig& config) {
  if (!config.is_moe()) {
    throw ConfigError("load-balancing loss: model_type " + config.model_type +
                      " has no MoE router (num_experts=0), expected a mixture-of-experts model");
  }
  // Architectures whose transformers 5.5.4 router records softmax(logits) at
  // OutputRecorder index 0 (Qwen3MoeTopKRouter, MixtralTopKRouter, OlmoeTopKRouter).
  static const std::array<const char*, 3> kRecordsProbabilities{"qwen3_moe", "mixtral", "olmoe"};
  for (const char* type : kRecordsProbabilities) {
    if (config.model_type == type) {
      return {config.num_experts, config.num_experts_per_tok, RecordedRouterOutput::kProbabilities};
    }
  }
  throw ConfigError("load-balancing loss: model_type " + config.model_type +
                    " is not known to this loss, expected qwen3_moe, mixtral or olmoe");
}

at::Tensor load_balancing_loss(const std::vector<model::LayerRouting>& routing, const at::Tensor& attention_mask,
                               const LoadBalancingOptions& options) {
  if (routing.empty()) return at::zeros({}, at::kFloat);  // transformers: `return 0` without router outputs
  const int64_t e = options.num_experts, k = options.top_k;
  TORCH_CHECK(e >= 1 && k >= 1 && k <= e, "load_balancing_loss: num_experts ", e, ", top_k ", k);
  auto s = stack_layers(routing, attention_mask, "load_balancing_loss");
  TORCH_CHECK(s.logits.size(1) == e, "load_balancing_loss: router_logits have ", s.logits.size(1),
              " experts, expected num_experts ", e);

  // 1. routing_weights = softmax of what transformers records ([L·N, E]): for
  //    the probability-recording routers that is a softmax of the softmax.
  auto recorded = options.recorded == RecordedRouterOutput::kProbabilities ? at::softmax(s.logits, -1) : s.logits;
  auto weights = at::softmax(recorded, -1);                           // [L·N, E]
  auto selected = std::get<1>(at::topk(weights, k, -1)).reshape({-1});  // [L·N, K] → [L·N·K]

  // 2. Σ_k f[k, e] (share of real rows choosing e in any slot) and P[e] (mean
  //    routing weight over real rows). The K slots share one denominator, so
  //    summing over k before dividing is the same quantity. Slots of padded
  //    rows go to an extra bin E that is dropped; an unweighted integer
  //    bincount is exact and deterministic on CUDA too (index_add_ is not).
  at::Tensor chosen_share, mean_weight;  // [E], [E]
  if (s.keep.defined()) {
    auto slot_real = s.keep.gt(0).unsqueeze(1).expand({s.keep.size(0), k}).reshape({-1});  // [L·N] → [L·N·K]
    auto counts = selected.masked_fill(slot_real.logical_not(), e).bincount(/*weights=*/{}, /*minlength=*/e + 1);
    auto real_rows = s.keep.sum();
    chosen_share = counts.narrow(0, 0, e).to(at::kFloat) / real_rows;
    mean_weight = (weights * s.keep.unsqueeze(1)).sum(0) / real_rows;  // no real row: NaN, as transformers
  } else {
    const auto rows = static_cast<double>(weights.size(0));
    chosen_share = selected.bincount(/*weights=*/{}, /*minlength=*/e).to(at::kFloat) / rows;
    mean_weight = weights.mean(0);
  }
  // 3. loss = E · Σ_e (Σ_k f[k, e]) · P[e]; f carries no gradient (one-hot of a top-k).
  return (chosen_share * mean_weight).sum() * static_cast<double>(e);
}

at::Tensor router_z_loss(const std::vector<model::LayerRouting>& routing, const at::Tensor& attention_mask) {
  if (routing.empty()) return at::zeros({}, at::kFloat);
  auto s = stack_layers(routing, attention_mask, "router_z_loss");
  auto z = at::logsumexp(s.logits, -1).pow(2);  // [L·N]
  if (!s.keep.defined()) return z.mean();
  return (z * s.keep).sum() / s.keep.sum();
}

}  // namespace character::router_train
