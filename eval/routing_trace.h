// The routing of one token sequence through every MoE layer, as plain arrays:
// what the routing analyses read. Kept free of torch so that the metrics can be
// tested on hand-built traces with known answers; eval/probe_run.h fills traces
// from the engine's capture (model/arch/generate.h GenerationRouting).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace character::eval {

struct RoutingTrace {
  std::vector<int64_t> layers;  // MoE decoder-layer indices, the L axis below
  int64_t num_experts = 0;      // E
  int64_t top_k = 0;            // K
  int64_t positions = 0;        // T: prompt positions first, then generated ones
  int64_t prompt_positions = 0; // P ≤ T
  // [T, L, K] row-major: expert ids in descending weight order, and the weights
  // the layer applied to them.
  std::vector<int32_t> ids;
  std::vector<float> weights;

  int32_t id(int64_t t, int64_t l, int64_t k) const { return ids[static_cast<size_t>((t * num_layers() + l) * top_k + k)]; }
  float weight(int64_t t, int64_t l, int64_t k) const {
    return weights[static_cast<size_t>((t * num_layers() + l) * top_k + k)];
  }
  int64_t num_layers() const { return static_cast<int64_t>(layers.size()); }
};

// ConfigError naming `what` when the sizes disagree (ids/weights ≠ T·L·K, P > T,
// an id outside [0, E)) or when `b` has other layers, E or K than `a`.
void validate_trace(const RoutingTrace& trace, const std::string& what);
void check_same_shape(const RoutingTrace& a, const RoutingTrace& b, const std::string& what);

}  // namespace character::eval
