// Assembles report.json (schema: docs/eval.md "## report.json") from the probe
// run, the scores and their aggregates, the routing analyses of an MoE student,
// the judge's information and the warnings; then records every non-finite number
// in "nan" (written as null) so the gates can read the report as it is.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "eval/probe_run.h"
#include "eval/probe_set.h"
#include "eval/routing_metrics.h"
#include "eval/scoring.h"

namespace character::eval {

inline constexpr const char* kReportFormat = "character-eval-report";
inline constexpr int kReportVersion = 1;

// The routing inputs of one eval: every response's trace, the verdicts the
// attribution correlates with, and the training coverage when known.
struct RoutingInputs {
  const std::vector<ProbeItem>* items = nullptr;          // parallel to run->responses
  const ProbeRunResult* run = nullptr;
  const std::vector<std::vector<bool>>* in_character = nullptr;  // [item][response]
  std::optional<CoverageCounts> coverage;
  int64_t min_loss_tokens = 16;
  nlohmann::json moe_type;   // eval/moe_type.h's JSON, or null
  std::vector<std::string> warnings;  // routing-level warnings (the untrained-router one)
};

struct RoutingSection {
  nlohmann::json json;  // the report's "routing" object
  // [item][response] share of the response's generated assignments on
  // under-trained experts; unset without coverage.
  std::vector<std::vector<std::optional<double>>> under_trained;
};

// The "routing" object of an MoE eval. ConfigError when a response has no trace.
RoutingSection routing_section(const RoutingInputs& inputs);

// Everything report.json holds except "gates" (added after evaluate_gates reads it).
struct ReportInputs {
  std::string created;        // ISO 8601 UTC
  std::string code_version;
  const ProbeModelInfo* model = nullptr;
  std::string persona_name, persona_source;
  nlohmann::json settings;
  const std::vector<ProbeItem>* items = nullptr;
  const ProbeRunResult* run = nullptr;
  const std::vector<std::vector<SignalScore>>* scores = nullptr;  // [item][response]
  // [item][response] {"verdict", "reason"} of the judge, or null; empty when the judge is off.
  std::vector<std::vector<nlohmann::json>> judge_verdicts;
  const ProbeSummary* summary = nullptr;
  nlohmann::json judge;    // {"model", "rubric", "calls", "cached"} or null
  nlohmann::json routing;  // routing_section().json or null (dense model)
  std::vector<std::vector<std::optional<double>>> under_trained;  // [item][response], may be empty
  std::vector<std::string> warnings;
};

// report.json without "gates"; "nan" lists the probe's non-finite logits and
// routing weights and every non-finite number in the report, each replaced by null.
nlohmann::json assemble_report(const ReportInputs& inputs);

// Replaces every non-finite number in `report` by null and returns the field
// paths ("routing.drift.per_layer[1]") in document order.
std::vector<std::string> null_non_finite(nlohmann::json& report);

// The untrained-router warning for an MoE model with an adapter whose
// train_router is "none"; nullopt otherwise.
std::optional<std::string> untrained_router_warning(const ProbeModelInfo& model);

}  // namespace character::eval
