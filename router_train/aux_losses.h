// Routing-aware training losses on the router logits that a forward pass
// captures (model::LayerRouting): the Switch Transformer load-balancing loss,
// exactly as transformers 5.5.4 computes it for qwen3_moe, mixtral and olmoe,
// and the ST-MoE router z-loss. Both are differentiable through the logits, so
// they train the router (and whatever feeds it) when adapters make it trainable.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

#include "model/arch/causal_lm.h"
#include "model/io/config.h"

namespace character::router_train {

// What transformers hands to load_balancing_loss_func as "router_logits": the
// output its OutputRecorder takes from the router module (index 0). For
// qwen3_moe, mixtral and olmoe in 5.5.4 that is softmax(logits), which the
// function softmaxes again; other architectures (gpt_oss …) record raw logits.
enum class RecordedRouterOutput { kProbabilities, kLogits };

struct LoadBalancingOptions {
  int64_t num_experts = 0;  // E
  int64_t top_k = 0;        // K
  RecordedRouterOutput recorded = RecordedRouterOutput::kProbabilities;
};

// E, K and the recorded output of `config`'s architecture. ConfigError for a
// dense model or an MoE architecture whose transformers behaviour is not known.
LoadBalancingOptions load_balancing_options(const model::ModelConfig& config);

// transformers' load_balancing_loss_func (Switch Transformer eqs. 4-6), e.g.
// models/qwen3_moe/modeling_qwen3_moe.py:527 (identical in mixtral, olmoe):
//   w = softmax(r) over E, r = the recorded output of every MoE layer stacked
//       into [L·N, E] (layers concatenated, N = B·T);
//   f[k, e] = share of real rows whose k-th choice (top-k of w) is e;
//   P[e]    = mean of w[:, e] over real rows;
//   loss    = E · Σ_k Σ_e f[k, e] · P[e].
// "Real" rows: attention_mask [B, T] == 1, repeated for every layer; undefined
// mask = every row (transformers' attention_mask=None branch). Gradient flows
// through P only (the top-k choice is a constant), as in transformers.
// in: routing (one entry per MoE layer, router_logits [N, E] raw); out: [] fp32.
// No routing (dense model): 0, as transformers returns.
at::Tensor load_balancing_loss(const std::vector<model::LayerRouting>& routing, const at::Tensor& attention_mask,
                               const LoadBalancingOptions& options);

// Router z-loss (ST-MoE, Zoph et al. 2022, eq. 5): mean over the real rows of
// every MoE layer (layers concatenated as above) of logsumexp(raw logits)².
// It keeps router logits small, which keeps bf16 routing stable. transformers
// has no z-loss for these architectures; the coefficient is ours (router_hook.h).
// in: routing, attention_mask [B, T] (undefined = all real); out: [] fp32.
at::Tensor router_z_loss(const std::vector<model::LayerRouting>& routing, const at::Tensor& attention_mask);

// ST-MoE's recommended z-loss coefficient (Zoph et al. 2022, section 3.1: 1e-3).
inline constexpr double kDefaultZLossCoef = 1e-3;

}  // namespace character::router_train
