// The building blocks every supported architecture shares, each mirroring its
// transformers 5.5.4 counterpart (models/llama/modeling_llama.py unless noted):
// an uninitialised Linear/Embedding (weights come from the checkpoint), RMSNorm
// computed in fp32, rotary embeddings (default and llama3 scaling), grouped-query
// attention through scaled_dot_product_attention, and the SwiGLU MLP.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/TensorOptions.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <memory>

#include "model/arch/adapter_hooks.h"
#include "model/io/config.h"

namespace character::model {

class KVCache;

// y = x·Wᵀ (+ b), W [out, in]. Unlike torch::nn::Linear it does not spend time
// initialising weights that the checkpoint overwrites. `delta` (a training
// adapter, see adapter_hooks.h) adds its output to y while adapters are enabled.
class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int64_t in_features, int64_t out_features, bool bias, const at::TensorOptions& options);
  // in: x [..., in]; out: [..., out]
  at::Tensor forward(const at::Tensor& x);

  at::Tensor weight;  // [out, in]
  at::Tensor bias;    // [out] or undefined
  std::shared_ptr<LinearDelta> delta;  // none unless lora/ attaches one
};
TORCH_MODULE(Linear);

class EmbeddingImpl : public torch::nn::Module {
 public:
  EmbeddingImpl(int64_t num_embeddings, int64_t dim, const at::TensorOptions& options);
  // in: ids [B, T] int64; out: [B, T, D]
  at::Tensor forward(const at::Tensor& ids);

  at::Tensor weight;  // [V, D]
};
TORCH_MODULE(Embedding);

// Root-mean-square norm (Zhang & Sennrich 2019), computed in fp32 and cast back
// before the weight, as LlamaRMSNorm does.
class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps, const at::TensorOptions& options);
  // in: x [..., dim]; out: [..., dim]
  at::Tensor forward(const at::Tensor& x);

  at::Tensor weight;  // [dim]
  double eps;
};
TORCH_MODULE(RMSNorm);

// cos/sin tables for the positions of one forward, shared by every layer.
struct RotaryTables {
  at::Tensor cos;         // [B or 1, 1, T, Dh] in the compute dtype
  at::Tensor signed_sin;  // same, sin with the first half negated: [-sin, sin]
};

// Rotary position embeddings (Su et al. 2021, RoFormer). inv_freq follows
// LlamaRotaryEmbedding.compute_default_rope_parameters, with
// modeling_rope_utils._compute_llama3_parameters for rope_type "llama3".
class RotaryEmbedding {
 public:
  RotaryEmbedding(const ModelConfig& config, const at::Device& device);
  // in: positions [B or 1, T] int64; out: tables in `dtype`
  RotaryTables tables(const at::Tensor& positions, at::ScalarType dtype) const;
  const at::Tensor& inv_freq() const { return inv_freq_; }

 private:
  at::Tensor inv_freq_;  // [Dh/2] float32
};

// Which positions a query may attend to, built once per forward.
struct AttentionMask {
  at::Tensor mask;         // [B, 1, T, P+T] bool, or undefined (no padding)
  bool is_causal = false;  // let SDPA apply the causal mask itself (mask undefined, T > 1, P = 0)
};

// in: attention_mask [B, P+T] (undefined = all real), T new tokens after P cached.
// A mask of all ones needs no tensor, as transformers' _ignore_causal_mask_sdpa decides.
AttentionMask make_attention_mask(const at::Tensor& attention_mask, int64_t batch, int64_t past, int64_t steps,
                                  const at::Device& device);

// in: attention_mask [B, P+T] or undefined; out: positions [B or 1, T] int64 —
// cumsum(mask) - 1 with pads at 0, as generation/utils.py
// _prepare_position_ids_for_generation computes them; arange(P, P+T) without a mask.
at::Tensor make_positions(const at::Tensor& attention_mask, int64_t past, int64_t steps, const at::Device& device);

// Where q/k normalisation sits: none (llama, mixtral), per head over Dh (qwen3,
// qwen3_moe), or over the whole projection before the head split (olmoe).
enum class QkNorm { kNone, kPerHead, kFullProjection };

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(const ModelConfig& config, int64_t layer, QkNorm qk_norm, const at::TensorOptions& options);
  // in: x [B, T, D]; out: [B, T, D]. Appends this step's keys/values to `cache` when given.
  at::Tensor forward(const at::Tensor& x, const RotaryTables& rope, const AttentionMask& mask, KVCache* cache);

  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  RMSNorm q_norm{nullptr}, k_norm{nullptr};

 private:
  int64_t layer_;
  int64_t num_heads_, num_kv_heads_, head_dim_;
  QkNorm qk_norm_;
  double scaling_;
};
TORCH_MODULE(Attention);

// SwiGLU feed-forward (Shazeer 2020): down(silu(gate(x)) * up(x)), LlamaMLP.
class MLPImpl : public torch::nn::Module {
 public:
  MLPImpl(int64_t hidden_size, int64_t intermediate_size, bool bias, const at::TensorOptions& options);
  // in: x [..., D]; out: [..., D]
  at::Tensor forward(const at::Tensor& x);

  Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(MLP);

}  // namespace character::model
