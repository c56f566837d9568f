#include "model/arch/layers.h"

#include <torch/torch.h>

#include <cmath>

#include "model/arch/kv_cache.h"

namespace character::model {

LinearImpl::LinearImpl(int64_t in_features, int64_t out_features, bool bias, const at::TensorOptions& options) {
  weight = register_parameter("weight", torch::empty({out_features, in_features}, options));
  if (bias) this->bias = register_parameter("bias", torch::empty({out_features}, options));
}

at::Tensor LinearImpl::forward(const at::Tensor& x) {
  auto y = at::linear(x, weight, bias);
  if (delta && adapters_enabled()) y = y + delta->forward(x);
  return y;
}

EmbeddingImpl::EmbeddingImpl(int64_t num_embeddings, int64_t dim, const at::TensorOptions& options) {
  weight = register_parameter("weight", torch::empty({num_embeddings, dim}, options));
}

at::Tensor EmbeddingImpl::forward(const at::Tensor& ids) { return at::embedding(weight, ids); }

RMSNormImpl::RMSNormImpl(int64_t dim, double eps, const at::TensorOptions& options) : eps(eps) {
  weight = register_parameter("weight", torch::ones({dim}, options));
}

at::Tensor RMSNormImpl::forward(const at::Tensor& x) {
  // LlamaRMSNorm.forward: normalise in fp32, cast back, then scale.
  // at::rms_norm (no weight) is one fused op for h * rsqrt(mean(h²) + eps), bit-identical
  // to that formula in fp32 forward and backward (checked against torch 2.13).
  auto h = at::rms_norm(x.to(at::kFloat), {x.size(-1)}, /*weight=*/{}, eps);
  return weight * h.to(x.scalar_type());
}

RotaryEmbedding::RotaryEmbedding(const ModelConfig& config, const at::Device& device) {
  const int64_t dim = config.head_dim;
  // compute_default_rope_parameters: 1 / base^(arange(0, dim, 2) / dim), in fp32
  auto exponent = torch::arange(0, dim, 2, torch::kLong).to(torch::kFloat) / static_cast<double>(dim);
  auto inv_freq = 1.0 / torch::pow(config.rope_theta, exponent);
  if (config.rope_scaling && config.rope_scaling->rope_type == "llama3") {
    // _compute_llama3_parameters: keep high frequencies, divide low ones by
    // `factor`, interpolate smoothly in between.
    const auto& r = *config.rope_scaling;
    const double old_context = static_cast<double>(r.original_max_position_embeddings);
    const double low_freq_wavelen = old_context / r.low_freq_factor;
    const double high_freq_wavelen = old_context / r.high_freq_factor;
    auto wavelen = torch::full_like(inv_freq, 2 * M_PI).div(inv_freq);
    auto scaled = torch::where(wavelen > low_freq_wavelen, inv_freq / r.factor, inv_freq);
    auto smooth = (torch::full_like(wavelen, old_context).div(wavelen) - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
    auto smoothed = (1 - smooth) * scaled / r.factor + smooth * scaled;
    auto medium = (wavelen >= high_freq_wavelen).logical_and(wavelen <= low_freq_wavelen);
    inv_freq = torch::where(medium, smoothed, scaled);
  }
  inv_freq_ = inv_freq.to(device);
}

RotaryTables RotaryEmbedding::tables(const at::Tensor& positions, at::ScalarType dtype) const {
  // LlamaRotaryEmbedding.forward: angles in fp32, [B, T, Dh/2] → cat → [B, T, Dh]
  auto freqs = positions.to(at::kFloat).unsqueeze(-1) * inv_freq_;
  auto emb = torch::cat({freqs, freqs}, -1);
  auto sin = emb.sin().to(dtype);  // [B, T, Dh]
  // The sign of rotate_half moved onto the table (negation is exact), so the
  // attention rotates with one roll instead of chunk/neg/cat.
  const int64_t half = sin.size(-1) / 2;
  auto signed_sin = torch::cat({-sin.narrow(-1, 0, half), sin.narrow(-1, half, half)}, -1);
  // [B, T, Dh] → [B, 1, T, Dh] to broadcast over heads
  return {emb.cos().to(dtype).unsqueeze(1), signed_sin.unsqueeze(1)};
}

AttentionMask make_attention_mask(const at::Tensor& attention_mask, int64_t batch, int64_t past, int64_t steps,
                                  const at::Device& device) {
  const bool has_padding = attention_mask.defined() && !attention_mask.all().item<bool>();
  if (!has_padding) {
    if (past == 0 || steps == 1) return {at::Tensor(), /*is_causal=*/steps > 1};
  }
  const int64_t kv = past + steps;
  auto opts = torch::TensorOptions().dtype(torch::kLong).device(device);
  auto q_pos = torch::arange(past, kv, opts).unsqueeze(1);  // [T, 1]
  auto k_pos = torch::arange(0, kv, opts).unsqueeze(0);     // [1, P+T]
  auto mask = k_pos.le(q_pos).view({1, 1, steps, kv});      // [1, 1, T, P+T]
  if (has_padding) {
    TORCH_CHECK(attention_mask.size(0) == batch && attention_mask.size(1) == kv, "attention_mask shape ",
                attention_mask.sizes(), " != [", batch, ", ", kv, "]");
    mask = mask.logical_and(attention_mask.to(device).to(torch::kBool).view({batch, 1, 1, kv}));  // [B, 1, T, P+T]
  }
  return {mask, false};
}

at::Tensor make_positions(const at::Tensor& attention_mask, int64_t past, int64_t steps, const at::Device& device) {
  if (!attention_mask.defined()) {
    return torch::arange(past, past + steps, torch::TensorOptions().dtype(torch::kLong).device(device)).unsqueeze(0);
  }
  auto mask = attention_mask.to(device).to(torch::kLong);                 // [B, P+T]
  auto positions = (mask.cumsum(-1) - 1).masked_fill(mask.eq(0), 0);  // [B, P+T]
  return positions.narrow(1, positions.size(1) - steps, steps);         // [B, T]
}

namespace {

// apply_rotary_pos_emb for one of q/k: x * cos + rotate_half(x) * sin, where
// rotate_half(x) * sin == roll(x, Dh/2) * signed_sin ([x1, x2] → [x2, x1]; the
// minus sign lives in the table). in: x [B, H, T, Dh]; out: same shape
at::Tensor rotate(const at::Tensor& x, const RotaryTables& rope) {
  return x * rope.cos + x.roll(x.size(-1) / 2, -1) * rope.signed_sin;
}

// repeat_kv: [B, Hkv, S, Dh] → [B, Hkv*n, S, Dh], each kv head repeated n times.
at::Tensor repeat_kv(const at::Tensor& x, int64_t n) {
  if (n == 1) return x;
  const auto b = x.size(0), h = x.size(1), s = x.size(2), d = x.size(3);
  return x.unsqueeze(2).expand({b, h, n, s, d}).reshape({b, h * n, s, d});
}

}  // namespace

AttentionImpl::AttentionImpl(const ModelConfig& c, int64_t layer, QkNorm qk_norm, const at::TensorOptions& options)
    : layer_(layer),
      num_heads_(c.num_attention_heads),
      num_kv_heads_(c.num_key_value_heads),
      head_dim_(c.head_dim),
      qk_norm_(qk_norm),
      scaling_(1.0 / std::sqrt(static_cast<double>(c.head_dim))) {
  const bool bias = c.attention_bias;
  q_proj = register_module("q_proj", Linear(c.hidden_size, num_heads_ * head_dim_, bias, options));
  k_proj = register_module("k_proj", Linear(c.hidden_size, num_kv_heads_ * head_dim_, bias, options));
  v_proj = register_module("v_proj", Linear(c.hidden_size, num_kv_heads_ * head_dim_, bias, options));
  o_proj = register_module("o_proj", Linear(num_heads_ * head_dim_, c.hidden_size, bias, options));
  if (qk_norm == QkNorm::kPerHead) {
    q_norm = register_module("q_norm", RMSNorm(head_dim_, c.rms_norm_eps, options));
    k_norm = register_module("k_norm", RMSNorm(head_dim_, c.rms_norm_eps, options));
  } else if (qk_norm == QkNorm::kFullProjection) {
    // OlmoeAttention: q_norm over hidden_size, k_norm over (hidden_size / H) * Hkv
    q_norm = register_module("q_norm", RMSNorm(c.hidden_size, c.rms_norm_eps, options));
    k_norm = register_module(
        "k_norm", RMSNorm(c.hidden_size / c.num_attention_heads * num_kv_heads_, c.rms_norm_eps, options));
  }
}

at::Tensor AttentionImpl::forward(const at::Tensor& x, const RotaryTables& rope, const AttentionMask& mask,
                                  KVCache* cache) {
  const int64_t b = x.size(0), t = x.size(1);
  // 1. Project: [B, T, D] → [B, T, H*Dh] and [B, T, Hkv*Dh]
  auto q = q_proj(x);
  auto k = k_proj(x);
  auto v = v_proj(x);
  if (qk_norm_ == QkNorm::kFullProjection) {
    q = q_norm(q);
    k = k_norm(k);
  }
  // 2. Split heads: [B, T, H*Dh] → [B, T, H, Dh] (per-head norm here) → [B, H, T, Dh]
  q = q.view({b, t, num_heads_, head_dim_});
  k = k.view({b, t, num_kv_heads_, head_dim_});
  if (qk_norm_ == QkNorm::kPerHead) {
    q = q_norm(q);
    k = k_norm(k);
  }
  q = q.transpose(1, 2);
  k = k.transpose(1, 2);
  v = v.view({b, t, num_kv_heads_, head_dim_}).transpose(1, 2);
  // 3. Rotate: apply_rotary_pos_emb
  q = rotate(q, rope);
  k = rotate(k, rope);
  // 4. Past keys/values: [B, Hkv, T, Dh] → [B, Hkv, P+T, Dh]
  if (cache) std::tie(k, v) = cache->append(layer_, k, v);
  // 5. Attend. As integrations/sdpa_attention.py: SDPA's own GQA without a mask,
  //    repeated kv heads with one (GQA + mask falls back to the math kernel anyway).
  at::Tensor out;
  const int64_t groups = num_heads_ / num_kv_heads_;
  if (!mask.mask.defined()) {
    out = at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0, mask.is_causal, scaling_,
                                           /*enable_gqa=*/groups > 1);
  } else {
    out = at::scaled_dot_product_attention(q, repeat_kv(k, groups), repeat_kv(v, groups), mask.mask,
                                           /*dropout_p=*/0.0, /*is_causal=*/false, scaling_);
  }
  // 6. Merge heads: [B, H, T, Dh] → [B, T, H*Dh] → [B, T, D]
  out = out.transpose(1, 2).reshape({b, t, num_heads_ * head_dim_});
  return o_proj(out);
}

MLPImpl::MLPImpl(int64_t hidden_size, int64_t intermediate_size, bool bias, const at::TensorOptions& options) {
  gate_proj = register_module("gate_proj", Linear(hidden_size, intermediate_size, bias, options));
  up_proj = register_module("up_proj", Linear(hidden_size, intermediate_size, bias, options));
  down_proj = register_module("down_proj", Linear(intermediate_size, hidden_size, bias, options));
}

at::Tensor MLPImpl::forward(const at::Tensor& x) { return down_proj(at::silu(gate_proj(x)) * up_proj(x)); }

}  // namespace character::model
