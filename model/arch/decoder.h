// The decoder-only transformer that every supported architecture instantiates:
// embeddings → N × (RMSNorm → attention → residual → RMSNorm → MLP or MoE →
// residual) → RMSNorm → lm_head, as LlamaModel / Qwen3MoeModel in transformers
// 5.5.4. What differs per architecture is an ArchSpec (see architectures.h).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/TensorOptions.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

#include <memory>
#include <string>

#include "model/arch/causal_lm.h"
#include "model/arch/experts.h"
#include "model/arch/layers.h"

namespace character::model {

// The traits of one architecture: the checkpoint-visible differences only.
struct ArchSpec {
  std::string model_type;
  std::string modeling_file;  // the transformers file it mirrors, for messages
  QkNorm qk_norm = QkNorm::kNone;
  ExpertNameRule experts;     // Hub names of routed experts (MoE architectures)
};

class DecoderLayerImpl : public torch::nn::Module {
 public:
  DecoderLayerImpl(const ModelConfig& config, const ArchSpec& spec, int64_t layer, const at::TensorOptions& options);
  // in: h [B, T, D]; out: [B, T, D]
  at::Tensor forward(const at::Tensor& h, const RotaryTables& rope, const AttentionMask& mask, KVCache* cache,
                     LayerRouting* routing);

  Attention self_attn{nullptr};
  MLP mlp{nullptr};                  // dense layers
  SparseMoeBlock moe{nullptr};       // MoE layers (registered as "mlp" too)
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(DecoderLayer);

// `model`: embed_tokens, layers, norm.
class DecoderStackImpl : public torch::nn::Module {
 public:
  DecoderStackImpl(const ModelConfig& config, const ArchSpec& spec, const at::TensorOptions& options);

  Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
  std::vector<DecoderLayer> layer_list;  // typed handles to `layers`
};
TORCH_MODULE(DecoderStack);

class DecoderLMImpl : public CausalLMImpl {
 public:
  DecoderLMImpl(const ModelConfig& config, ArchSpec spec, const at::TensorOptions& options);
  ForwardOutput forward(const ForwardInput& input) override;
  at::Tensor unembed(const at::Tensor& h) override;

  const ArchSpec& spec() const { return spec_; }
  // [V, D]: lm_head.weight, or embed_tokens.weight when tie_word_embeddings.
  const at::Tensor& output_embedding() const;

  DecoderStack model{nullptr};
  Linear lm_head{nullptr};  // null when tied
  // Adds to the logits while adapters are enabled (unembedding LoRA; works
  // for tied embeddings too, where there is no lm_head module).
  std::shared_ptr<LinearDelta> unembed_delta;

 private:
  ArchSpec spec_;
  RotaryEmbedding rotary_;
};

}  // namespace character::model
