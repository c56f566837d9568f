// The MoE routing analyses over routing traces (eval/routing_trace.h), torch-free:
// expert utilization and cold experts, probe training coverage, per-response
// under-trained share and its attribution to in-character answers, paraphrase
// routing divergence, base → tuned drift, adjacent-layer circuits and generation
// dynamics. Each returns a small struct whose to_json() is its part of the
// report's "routing" object (docs/eval.md "Routing analyses" has the definitions).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "eval/routing_trace.h"

namespace character::eval {

// Which positions of a trace an analysis reads.
enum class PositionSet { kAll, kPrompt, kGenerated };

// --- utilization -------------------------------------------------------------

struct ColdExpert {
  int64_t layer = 0;   // decoder-layer index
  int64_t expert = 0;
  double rate = 0.0;
};

struct UtilizationOptions {
  double cold_threshold = 0.01;  // cold: rate < this share of positions
  PositionSet positions = PositionSet::kAll;
};

// rate[l][e] = share of the positions whose top-k at layer l contains e; a
// uniform router gives every expert K/E.
struct Utilization {
  std::vector<int64_t> layers;
  int64_t num_experts = 0, top_k = 0;
  int64_t positions = 0;                       // the sample size behind every rate
  double uniform_rate = 0.0;                   // K/E
  double cold_threshold = 0.01;
  std::vector<std::vector<double>> rates;      // [L][E]
  std::vector<std::vector<double>> relative;   // [L][E] rate / uniform_rate
  std::vector<ColdExpert> cold;                // rate < cold_threshold, by layer then expert
  std::optional<std::vector<std::vector<double>>> training;  // [L][E] from coverage counts (all tokens)

  nlohmann::json to_json() const;
};

// ConfigError when there is no trace or the traces disagree in shape.
Utilization utilization(const std::vector<RoutingTrace>& traces, const UtilizationOptions& options = {});

// --- training coverage ---------------------------------------------------------

// Training coverage counts (router_train/coverage.h, merged coverage.json files)
// as plain arrays; eval/routing_capture.h reads them from files.
struct CoverageCounts {
  std::vector<std::string> sources;  // the coverage.json files merged
  std::vector<int64_t> layers;
  int64_t num_experts = 0, top_k = 0;
  std::vector<int64_t> loss_tokens;  // [L·E] loss-bearing (position, slot) pairs per expert
  std::vector<int64_t> all_tokens;   // [L·E] every real (position, slot) pair
  int64_t real_positions = 0;

  int64_t loss(size_t layer_index, int64_t expert) const {
    return loss_tokens[layer_index * static_cast<size_t>(num_experts) + static_cast<size_t>(expert)];
  }
  // [L][E] share of real training positions routed to each expert (utilization on training data).
  std::vector<std::vector<double>> training_rates() const;
};

struct UnderTrainedExpert {
  int64_t layer = 0, expert = 0;
  int64_t loss_tokens = 0;
  double probe_rate = 0.0;  // utilization of the expert on the probe
};

struct ProbeCoverage {
  std::vector<std::string> sources;
  int64_t min_loss_tokens = 0;                  // N
  int64_t assignments = 0;                      // (position, slot) pairs counted, all layers
  double probe_coverage = 0.0;                  // share of assignments on experts with ≥ N loss tokens
  std::vector<double> per_layer;                // [L]
  std::vector<std::vector<int64_t>> loss_tokens;  // [L][E]
  std::vector<UnderTrainedExpert> under_trained;  // < N loss tokens and reached by the probe
  std::map<std::string, double> per_category;     // coverage over the traces of each category

  nlohmann::json to_json() const;
};

// Over every position of every trace. `categories` is empty or one label per
// trace. ConfigError when the coverage is of other layers, E or K than the traces.
ProbeCoverage probe_coverage(const std::vector<RoutingTrace>& traces, const std::vector<std::string>& categories,
                             const CoverageCounts& coverage, int64_t min_loss_tokens);

// Per trace: the share of its generated positions' (position, slot) assignments
// that land on experts with < N loss tokens; nullopt for a trace without
// generated positions.
std::vector<std::optional<double>> under_trained_shares(const std::vector<RoutingTrace>& traces,
                                                        const CoverageCounts& coverage, int64_t min_loss_tokens);

// --- attribution ---------------------------------------------------------------

struct AttributionGroup {
  std::string category;  // "" for the overall group
  int64_t n = 0, n_in = 0, n_out = 0;
  std::optional<double> mean_in, mean_out;  // mean under-trained share of in / out of character responses
  std::optional<double> correlation;        // Pearson (point-biserial) of share vs in-character 1/0
};

struct Attribution {
  AttributionGroup overall;
  std::vector<AttributionGroup> per_category;  // categories in first-seen order

  nlohmann::json to_json() const;
};

// Responses whose share is nullopt are left out. `shares`, `in_character` and
// `categories` are parallel (categories may be empty: no per-category rows).
Attribution attribution(const std::vector<std::optional<double>>& shares, const std::vector<bool>& in_character,
                        const std::vector<std::string>& categories);

// --- paraphrase divergence, drift ---------------------------------------------

// Jaccard of the expert sets used over the prompt positions of a and b, per
// layer (|A ∩ B| / |A ∪ B|; two empty sets count as 1).
std::vector<double> prompt_expert_jaccard(const RoutingTrace& a, const RoutingTrace& b);

struct TracePair {
  size_t a = 0, b = 0;  // indices into the traces
};

struct ParaphraseHighlight {
  std::string a, b;               // the two prompt texts
  std::vector<double> per_layer;  // prompt_expert_jaccard(a, b)
};

struct ParaphraseDivergence {
  int64_t pairs = 0;
  std::vector<double> per_layer;  // [L] mean Jaccard over the pairs (1 = same experts); empty without pairs
  std::optional<ParaphraseHighlight> highlight;

  nlohmann::json to_json() const;
};

ParaphraseDivergence paraphrase_divergence(const std::vector<RoutingTrace>& traces,
                                           const std::vector<TracePair>& pairs);

// Drift of the same token sequences routed by the base model and the tuned one.
struct Drift {
  int64_t positions = 0;
  std::vector<double> per_layer;     // [L] 1 − mean per-position Jaccard of the top-k sets
  std::vector<double> changed_top1;  // [L] share of positions whose top-1 expert changed
  // [L][E] share of positions where the expert is in exactly one of the two
  // top-k sets (gained or lost it): where in the layer the routing moved.
  std::vector<std::vector<double>> expert_churn;

  nlohmann::json to_json() const;
};

// base[i] and tuned[i] must have the same shape and positions (ConfigError naming i).
Drift routing_drift(const std::vector<RoutingTrace>& base, const std::vector<RoutingTrace>& tuned);

// --- circuits, generation dynamics -----------------------------------------------

struct CircuitMatch {
  int64_t from_expert = 0, to_expert = 0;
  double correlation = 0.0;
};

struct CircuitPair {
  int64_t from_layer = 0, to_layer = 0;
  std::optional<double> alignment;  // mean matched correlation; nullopt when nothing matched
  std::vector<CircuitMatch> matched;
};

struct CircuitOptions {
  double threshold = 0.3;
  PositionSet positions = PositionSet::kAll;
};

struct Circuits {
  double threshold = 0.3;
  int64_t positions = 0;
  std::vector<CircuitPair> pairs;  // adjacent MoE layers (layers[i], layers[i+1])

  nlohmann::json to_json() const;
};

// Per position, the dense routing-weight vector of each layer (the top-k weights,
// 0 elsewhere); Pearson correlation of expert i of layer l with expert j of the
// next MoE layer over the positions of every trace pooled; pairs matched one to
// one, greedily by descending correlation, while ≥ threshold.
Circuits circuits(const std::vector<RoutingTrace>& traces, const CircuitOptions& options = {});

struct LayerDynamics {
  int64_t layer = 0;
  double topk_overlap = 0.0;      // mean |S_t ∩ S_t+1| / K over consecutive generated positions
  double top1_change_rate = 0.0;  // share of those transitions whose top-1 expert changes
};

struct GenerationDynamics {
  int64_t transitions = 0;  // consecutive generated position pairs counted
  std::vector<LayerDynamics> per_layer;

  nlohmann::json to_json() const;
};

GenerationDynamics generation_dynamics(const std::vector<RoutingTrace>& traces);

// A double as JSON: null when nullopt or not finite (reports never carry NaN).
nlohmann::json json_number(std::optional<double> value);

}  // namespace character::eval
