// The mixture-of-experts pieces shared by qwen3_moe, mixtral and olmoe, as
// transformers 5.5.4 lays them out (models/qwen3_moe/modeling_qwen3_moe.py:
// Qwen3MoeTopKRouter, Qwen3MoeExperts, Qwen3MoeSparseMoeBlock): the router is a
// parameter `mlp.gate.weight` [E, D]; the expert bank is two fused parameters
// `mlp.experts.gate_up_proj` [E, 2F, D] (gate rows first) and
// `mlp.experts.down_proj` [E, D, F]. Also here: the one table that maps Hub
// per-expert checkpoint keys to those fused tensors, used to stack on load and
// to unstack on export.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/TensorOptions.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/arch/adapter_hooks.h"
#include "model/arch/causal_lm.h"

namespace character::model {

struct RouterOptions {
  int64_t top_k = 1;
  bool norm_topk_prob = false;  // renormalise the top-k probabilities to sum to 1
};

struct Routing {
  at::Tensor logits;        // [N, E] float32, before softmax
  at::Tensor topk_ids;      // [N, K] int64
  at::Tensor topk_weights;  // [N, K] float32
};

// Linear router → softmax (fp32) → top-k → optional renormalisation. `delta`
// (router training, adapter_hooks.h) computes the logits instead while enabled.
class TopKRouterImpl : public torch::nn::Module {
 public:
  TopKRouterImpl(int64_t num_experts, int64_t hidden_size, RouterOptions options, const at::TensorOptions& tensor_options);
  // in: x [N, D]; out: routing of the N positions
  Routing forward(const at::Tensor& x);

  at::Tensor weight;  // [E, D]
  RouterOptions options;
  std::shared_ptr<RouterDelta> delta;  // none unless lora/ attaches one
};
TORCH_MODULE(TopKRouter);

// How the experts' matmuls run: auto = torch's grouped GEMM on CUDA bf16, a loop
// of one matmul per non-empty expert elsewhere.
enum class ExpertKernel { kAuto, kLoop, kGroupedMm };

// E SwiGLU experts. Tokens are grouped by expert so that each expert runs once,
// on one contiguous block of rows; no per-token loops. `delta` (expert LoRA,
// adapter_hooks.h) adds its outputs on the same groups while enabled.
class ExpertBankImpl : public torch::nn::Module {
 public:
  ExpertBankImpl(int64_t num_experts, int64_t hidden_size, int64_t intermediate_size,
                 const at::TensorOptions& options);
  // in: x [N, D], topk_ids [N, K], topk_weights [N, K]; out: [N, D] = Σ_k w_k · expert_k(x)
  at::Tensor forward(const at::Tensor& x, const at::Tensor& topk_ids, const at::Tensor& topk_weights);

  at::Tensor gate_up_proj;  // [E, 2F, D]
  at::Tensor down_proj;     // [E, D, F]
  int64_t num_experts, intermediate_size;
  ExpertKernel kernel = ExpertKernel::kAuto;
  std::shared_ptr<ExpertDelta> delta;  // none unless lora/ attaches one

 private:
  bool use_grouped_mm() const;
};
TORCH_MODULE(ExpertBank);

// The MoE feed-forward of one decoder layer, registered as `mlp`.
class SparseMoeBlockImpl : public torch::nn::Module {
 public:
  SparseMoeBlockImpl(const ModelConfig& config, const at::TensorOptions& options);
  // in: x [B, T, D]; out: [B, T, D]. Fills `capture` (router logits, top-k) when given.
  at::Tensor forward(const at::Tensor& x, LayerRouting* capture);

  TopKRouter gate{nullptr};
  ExpertBank experts{nullptr};
};
TORCH_MODULE(SparseMoeBlock);

// --- checkpoint names -------------------------------------------------------

// How one architecture names its experts on the Hub:
//   model.layers.{l}.{block}.experts.{e}.{gate|up|down}.weight and
//   model.layers.{l}.{block}.gate.weight for the router.
// qwen3_moe / olmoe: block "mlp", gate_proj / up_proj / down_proj;
// mixtral: block "block_sparse_moe", w1 / w3 / w2 (conversion_mapping.py "mixtral").
struct ExpertNameRule {
  std::string block = "mlp";
  std::string gate = "gate_proj";
  std::string up = "up_proj";
  std::string down = "down_proj";
};

// Where one Hub tensor of expert e lives in the fused bank: rows
// [row_begin, row_begin + rows) of fused[e] (rows = F or D per the table).
struct ExpertSlice {
  std::string hub_key;   // model.layers.0.mlp.experts.3.up_proj.weight
  std::string fused;     // model.layers.0.mlp.experts.gate_up_proj
  int64_t expert = 0;
  int64_t row_begin = 0;
  int64_t rows = 0;
};

std::string fused_gate_up_name(int64_t layer);  // model.layers.{l}.mlp.experts.gate_up_proj
std::string fused_down_name(int64_t layer);     // model.layers.{l}.mlp.experts.down_proj
std::string router_name(int64_t layer);         // model.layers.{l}.mlp.gate.weight
std::string hub_router_name(const ExpertNameRule& rule, int64_t layer);

// Every Hub tensor that makes up layer `layer`'s fused bank, in expert order:
// gate → gate_up_proj rows [0, F), up → rows [F, 2F), down → down_proj (all D rows).
std::vector<ExpertSlice> expert_slices(const ExpertNameRule& rule, int64_t layer, int64_t num_experts,
                                       int64_t intermediate_size, int64_t hidden_size);

// The inverse for export: Hub per-expert tensors (views) of one layer's fused bank.
std::vector<std::pair<std::string, at::Tensor>> unstack_experts(const ExpertNameRule& rule, int64_t layer,
                                                                const at::Tensor& gate_up_proj,
                                                                const at::Tensor& down_proj);

}  // namespace character::model
