// The probe's generation step: loads a model (and adapter) once, renders each
// probe prompt with the model's chat template (thinking off for qwen3), and
// generates `samples` sampled responses plus one greedy per prompt in engine
// batches, capturing MoE routing as RoutingTraces. Optionally routes the same
// token sequences through the base model (adapters off) for routing drift, and
// checks logits and routing weights for NaN/Inf. Deterministic for a seed.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "eval/probe_set.h"
#include "eval/routing_trace.h"

namespace character::model {
class CausalLMImpl;
}

namespace character::eval {

struct ProbeRunOptions {
  std::filesystem::path model_dir;
  std::filesystem::path adapter_dir;  // empty: the base model alone
  std::string device = "cpu";         // "cpu" | "cuda"
  std::string dtype;                  // empty: the device default
  int64_t samples = 3;                // sampled responses per prompt (≥ 0)
  bool greedy = true;                 // plus one greedy response per prompt
  int64_t max_new_tokens = 96;
  // Unset: generation_config.json's value (transformers' default when absent).
  std::optional<double> temperature, top_p;
  uint64_t seed = 0;
  int64_t batch_rows = 16;            // responses generated per engine batch
  bool capture_routing = true;        // MoE models: fill ProbeResponse::routing
  bool base_routing = false;          // also fill ProbeResponse::base_routing (adapters off)
  bool progress = true;               // progress lines with ETA on stderr
  // Checked between batches: when set, the run stops with Interrupted (an eval
  // keeps no partial state; a rerun starts over).
  const std::atomic<bool>* stop_requested = nullptr;
  // Called once with the loaded model (adapter attached) before generating: the
  // analyses that read weights (eval/moe_type.h) run here without a second load.
  std::function<void(model::CausalLMImpl&)> on_model;
};

// What the report says about the model that answered.
struct ProbeModelInfo {
  std::filesystem::path dir;
  std::optional<std::filesystem::path> adapter;
  std::string architecture;          // config.json model_type
  bool is_moe = false;
  std::vector<int64_t> moe_layers;   // decoder-layer indices of the MoE layers
  int64_t num_experts = 0, top_k = 0;
  std::optional<std::string> train_router;  // the adapter's "none" | "lora" | "full"; unset without adapter
  std::optional<std::filesystem::path> adapter_base;  // the base model its adapter_config.json names
  std::string chat_family;
  // The sampling the sampled responses used (after generation_config.json).
  double temperature = 1.0, top_p = 1.0;
  int64_t top_k_sampling = 0;
};

struct ProbeResponse {
  int64_t sample = 0;        // index among the prompt's responses (sampled first, then greedy)
  bool greedy = false;
  std::string text;
  std::string finish_reason;  // "stop" | "length" | "error" (generation failed: see `nan`)
  std::vector<int64_t> ids;   // generated ids, the stop token included
  int64_t prompt_tokens = 0;
  // Routing of prompt + generated positions (RoutingTrace's layout); MoE only.
  std::optional<RoutingTrace> routing;
  // The same token sequence teacher-forced through the base model (adapters off).
  std::optional<RoutingTrace> base_routing;
  // Where NaN/Inf showed up ("logits at generated token 3", "routing weights"); empty when finite.
  std::vector<std::string> nan;
};

struct ProbeRunResult {
  ProbeModelInfo model;
  std::vector<std::vector<ProbeResponse>> responses;  // [item][response], items in input order
  double seconds = 0.0;
};

// Runs the probe. Bad options (samples < 0, no response per prompt, temperature
// ≤ 0, batch_rows < 1): ConfigError naming the option. Model and adapter load
// errors (an adapter for another base: CheckpointError naming its config) as
// their loaders report them.
ProbeRunResult run_probe(const ProbeRunOptions& options, const std::vector<ProbeItem>& prompts);

// The model facts alone (config.json and adapter_config.json; no weights read).
ProbeModelInfo describe_model(const std::filesystem::path& model_dir, const std::filesystem::path& adapter_dir);

}  // namespace character::eval
