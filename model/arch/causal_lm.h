// The engine's model interface: a decoder-only causal LM loaded from a Hugging
// Face directory, run exactly like transformers, with optional capture of what
// the routing analyses read (router logits, chosen experts, hidden states).
//
// Shape symbols used across model/: B batch, T new tokens, P past (cached)
// tokens, D hidden_size, H attention heads, Hkv key/value heads, Dh head_dim,
// E experts, K experts per token, F expert intermediate size, V vocabulary,
// N = B*T token positions.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include <filesystem>
#include <memory>
#include <vector>

#include "model/io/config.h"

namespace character::model {

class KVCache;

// What a forward pass records besides logits. Off by default: capture costs a
// device→host copy only when asked for.
struct CaptureOptions {
  bool router = false;         // router logits + top-k per MoE layer
  bool hidden_states = false;  // like output_hidden_states in transformers
};

// Routing of one MoE layer for the N = B*T positions of a forward pass
// (row-major over [B, T]; padded positions included, the mask tells them apart).
struct LayerRouting {
  int64_t layer = 0;        // decoder layer index
  at::Tensor router_logits; // [N, E] float32, before softmax
  at::Tensor topk_ids;      // [N, K] int64, in descending weight order
  at::Tensor topk_weights;  // [N, K] float32, as applied (renormalised if norm_topk_prob)
};

struct ForwardInput {
  at::Tensor input_ids;       // [B, T] int64
  // [B, P+T] with 1 for real tokens, 0 for (left) padding; undefined = all real.
  // Positions are derived from it (cumsum - 1), as transformers does.
  at::Tensor attention_mask;
  KVCache* cache = nullptr;   // appended to when given
  CaptureOptions capture;
  // Compute logits only for the last position (generation); [B, 1, V].
  bool last_logits_only = false;
  // Stop after the final norm: ForwardOutput::final_hidden is set and logits
  // stay undefined. Training computes its loss from the hidden states in
  // chunks through unembed(), never holding [N, V] logits at once.
  bool skip_logits = false;
};

struct ForwardOutput {
  at::Tensor logits;                      // [B, T, V] float32
  std::vector<LayerRouting> routing;      // one per MoE layer, when captured
  // num_hidden_layers + 1 tensors [B, T, D] as transformers' hidden_states:
  // the embeddings, then each layer's output; the last one after the final norm.
  std::vector<at::Tensor> hidden_states;
  at::Tensor final_hidden;                // [B, T, D] after the final norm, with skip_logits
};

// A loaded model. Submodules are registered under their Hugging Face names, so
// named_parameters() yields e.g. "model.layers.0.self_attn.q_proj.weight"; expert
// banks are fused as in transformers 5 ("model.layers.0.mlp.experts.gate_up_proj").
class CausalLMImpl : public torch::nn::Module {
 public:
  explicit CausalLMImpl(ModelConfig config) : config_(std::move(config)) {}
  virtual ~CausalLMImpl() = default;

  // in: input_ids [B, T], attention_mask [B, P+T]; out: logits [B, T, V] (+ captures)
  virtual ForwardOutput forward(const ForwardInput& input) = 0;
  // The output projection with its adapter hook (unembedding LoRA), in the
  // model's dtype: in: h [..., D] (final-normed); out: logits [..., V]
  virtual at::Tensor unembed(const at::Tensor& h) = 0;

  const ModelConfig& config() const { return config_; }

 protected:
  ModelConfig config_;
};

using CausalLM = std::shared_ptr<CausalLMImpl>;

struct LoadOptions {
  // "cpu" (fp32) or "cuda" (bf16 by default); weights are converted on load.
  std::string device = "cpu";
  std::string dtype;  // "float32" | "bfloat16" | "float16"; empty = device default
};

// Builds the architecture named by config.model_type with uninitialised weights;
// unknown model_type: CheckpointError naming it and the supported ones.
CausalLM create_model(const ModelConfig& config);

// Loads config.json and the weights (single or sharded safetensors; per-expert
// Hub keys or transformers 5 fused expert tensors) of a model directory. Every
// parameter must be found with its shape; unexpected tensors are an error too.
CausalLM load_model(const std::filesystem::path& model_dir, const LoadOptions& options = {});

}  // namespace character::model
