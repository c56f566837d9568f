// MoE type from the expert weights (seed 002 "MoE Type Detection", REFERENCE.md):
// an upcycled "pseudo-MoE" has experts = shared base + low-rank deltas, a
// "native" MoE independent experts. Per layer: delta_e = W_e − mean_e W_e, its
// singular values, the effective rank holding 95% of Σσ², rank ratio = rank /
// min(dims), and the mean pairwise cosine of the flattened experts.
#pragma once

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace character::model {
class CausalLMImpl;
}

namespace character::eval {

// One projection (gate, up or down) of one layer's experts.
struct ProjectionRank {
  std::string name;          // "gate" | "up" | "down"
  int64_t rows = 0, cols = 0;
  double mean_rank = 0.0;    // effective rank of delta_e, averaged over the E experts
  double rank_ratio = 0.0;   // mean_rank / min(rows, cols)
};

struct MoeLayerType {
  int64_t layer = 0;
  std::vector<ProjectionRank> projections;  // gate, up, down
  double rank_ratio = 0.0;   // the gate projection's (the seed's criterion)
  double mean_cosine = 0.0;  // mean over expert pairs i < j of cos(flat W_i, flat W_j), W = gate ‖ up ‖ down
  std::string verdict;       // "pseudo" | "native" | "unclear"
  // With an adapter: effective rank of the adapter's per-expert gate delta (mean over experts).
  std::optional<double> adapter_rank;
};

struct MoeType {
  std::vector<MoeLayerType> per_layer;
  std::string verdict;  // the verdict of more than half of the layers, else "unclear"
  double energy = 0.95;

  nlohmann::json to_json() const;
};

struct MoeTypeOptions {
  double energy = 0.95;         // share of Σσ² the effective rank holds
  std::vector<int64_t> layers;  // decoder-layer indices; empty: up to max_layers MoE layers
  int64_t max_layers = 3;       // ≤ 0: every MoE layer; else evenly spaced (first … last)
};

// The thresholds of REFERENCE.md: pseudo when rank_ratio < 5% and cosine > 0.25;
// native when rank_ratio > 50% and cosine < 0.10; otherwise unclear.
std::string moe_verdict(double rank_ratio, double mean_cosine);

// Smallest r with Σ_{i<r} σ_i² ≥ energy · Σσ² (σ descending); 0 when Σσ² = 0.
int64_t effective_rank(const at::Tensor& singular_values, double energy);

// One layer's fused expert bank: gate_up [E, 2F, D] (gate rows first), down [E, D, F].
MoeLayerType analyze_expert_bank(int64_t layer, const at::Tensor& gate_up, const at::Tensor& down,
                                 double energy = 0.95);

// A loaded model's MoE layers, found by the engine's parameter names
// (model.layers.{l}.mlp.experts.gate_up_proj / down_proj). With adapters attached
// (lora/), also the rank of each layer's expert LoRA delta. ConfigError for a dense
// model or a requested layer that is not an MoE layer.
MoeType analyze_moe_type(model::CausalLMImpl& model, const MoeTypeOptions& options = {});

// The definition text the report carries beside the numbers.
const char* moe_type_definition();

}  // namespace character::eval
