// Training coverage: for every (MoE layer, expert), how many loss-bearing
// positions and how many real positions were routed to it during training.
// LoRA trains an expert only through the positions routed to it, so an expert
// with little coverage keeps its base behaviour (the seed's "Tell me more
// please." failure). Kept in training checkpoints (bit-exact integer counts)
// and written as coverage.json, which eval and the gates read (docs/training.md).
#pragma once

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "model/arch/causal_lm.h"
#include "model/io/config.h"

namespace character::router_train {

// Which positions bear loss: position t does when it predicts a trained token,
// i.e. labels[t+1] != -100 (the shift of transformers' ForCausalLMLoss; labels
// are aligned with input_ids, -100 = no loss). The last position never does.
// in: labels [B, T] int64; out: [B, T] bool, on labels' device.
at::Tensor loss_bearing_positions(const at::Tensor& labels);

class CoverageCounter {
 public:
  // Counts for the MoE decoder layers `moe_layers` (ascending), E experts, K per token.
  CoverageCounter(std::vector<int64_t> moe_layers, int64_t num_experts, int64_t top_k);
  // The MoE layers, E and K of `config`; ConfigError for a dense model.
  static CoverageCounter for_model(const model::ModelConfig& config);

  // Adds one forward pass: every top-k slot of every real position counts for
  // its expert in all_tokens; those of loss-bearing positions also in loss_tokens.
  // in: routing (one entry per MoE layer, topk_ids [N, K]), attention_mask [B, T]
  // (1 = real; undefined = all real), loss_mask [B, T] (nonzero = bears loss, see
  // loss_bearing_positions; only real positions count). One device→host copy.
  void add(const std::vector<model::LayerRouting>& routing, const at::Tensor& attention_mask,
           const at::Tensor& loss_mask);
  // Adds another counter's counts (same layers, E and K; ConfigError otherwise).
  void merge(const CoverageCounter& other);

  const std::vector<int64_t>& layers() const { return layers_; }
  int64_t num_experts() const { return num_experts_; }
  int64_t top_k() const { return top_k_; }
  // Counts of (position, top-k slot) pairs; `layer_index` indexes layers().
  int64_t loss_tokens(size_t layer_index, int64_t expert) const;
  int64_t all_tokens(size_t layer_index, int64_t expert) const;
  int64_t real_positions() const { return real_positions_; }          // real positions seen
  int64_t loss_positions() const { return loss_positions_; }          // of which bear loss
  // (layer, expert) pairs with fewer than `threshold` loss-bearing tokens, and
  // their share of all L_moe·E pairs.
  int64_t experts_below(int64_t threshold) const;
  double share_below(int64_t threshold) const;

  // The counts alone, for training checkpoints (integers: restored bit-exact).
  nlohmann::json state() const;
  // Replaces the counts with `state` (or a coverage.json), which must be for
  // the same layers, E and K: CheckpointError naming `source`, the field, what
  // was found and what was expected.
  void load_state(const nlohmann::json& state, const std::string& source);
  // coverage.json: the state plus, for `threshold`, the experts below it per
  // layer and overall (schema in docs/training.md).
  nlohmann::json to_json(int64_t threshold) const;
  // Writes to_json(threshold) to `path` atomically.
  void write_json(const std::filesystem::path& path, int64_t threshold) const;
  // Reads a coverage.json (or a saved state) back; CheckpointError naming the file.
  static CoverageCounter read_json(const std::filesystem::path& path);

 private:
  std::vector<int64_t> layers_;
  int64_t num_experts_ = 0;
  int64_t top_k_ = 0;
  std::vector<int64_t> loss_tokens_;  // [L_moe · E] row-major
  std::vector<int64_t> all_tokens_;   // [L_moe · E] row-major
  int64_t real_positions_ = 0;
  int64_t loss_positions_ = 0;
};

}  // namespace character::router_train
