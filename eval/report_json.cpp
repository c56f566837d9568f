// report.json assembly: the probe items with their responses and verdicts, the
// aggregates of eval/scoring.h, the routing analyses of eval/routing_metrics.h
// over the probe's traces, the warnings, and the "nan" record.
#include "eval/report_json.h"

#include <cmath>
#include <map>

#include "base/error.h"
#include "router_train/frozen_router.h"

namespace character::eval {

using nlohmann::json;

namespace {

// The prompt pair the seed's finding is about; highlighted when the probe has it.
constexpr const char* kHighlightA = "Tell me more.";
constexpr const char* kHighlightB = "Tell me more please.";

json optional_number(const std::optional<double>& v) { return json_number(v); }

void walk(json& node, const std::string& path, std::vector<std::string>& where) {
  if (node.is_number_float()) {
    if (!std::isfinite(node.get<double>())) {
      where.push_back(path);
      node = nullptr;
    }
  } else if (node.is_object()) {
    for (auto& [key, value] : node.items()) walk(value, path.empty() ? key : path + "." + key, where);
  } else if (node.is_array()) {
    for (std::size_t i = 0; i < node.size(); ++i) walk(node[i], path + "[" + std::to_string(i) + "]", where);
  }
}

json model_json(const ProbeModelInfo& m) {
  return {{"dir", m.dir.string()},
          {"adapter", m.adapter ? json(m.adapter->string()) : json(nullptr)},
          {"architecture", m.architecture},
          {"is_moe", m.is_moe},
          {"moe_layers", m.moe_layers},
          {"num_experts", m.num_experts},
          {"top_k", m.top_k},
          {"train_router", m.train_router ? json(*m.train_router) : json(nullptr)},
          {"chat_family", m.chat_family}};
}

}  // namespace

std::vector<std::string> null_non_finite(json& report) {
  std::vector<std::string> where;
  walk(report, "", where);
  return where;
}

std::optional<std::string> untrained_router_warning(const ProbeModelInfo& model) {
  if (!model.is_moe || !model.train_router || *model.train_router != "none") return std::nullopt;
  return std::string("MoE student trained without router adapters (adapter_config.json train_router: none). ") +
         router_train::kFrozenRouterRisk;
}

RoutingSection routing_section(const RoutingInputs& in) {
  const auto& items = *in.items;
  const auto& responses = in.run->responses;
  const ProbeModelInfo& model = in.run->model;
  // Every response's trace, flattened in (item, response) order, with its
  // category; a response whose generation failed has none (its `nan` says why).
  constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  std::vector<RoutingTrace> traces, base_traces;
  std::vector<std::string> categories;
  std::vector<bool> in_character;
  std::vector<std::vector<std::size_t>> trace_of(items.size());  // [item][response] → trace index
  int64_t prompt_positions = 0, generated_positions = 0;
  for (std::size_t i = 0; i < items.size(); ++i) {
    for (std::size_t r = 0; r < responses[i].size(); ++r) {
      const ProbeResponse& response = responses[i][r];
      if (!response.routing) {
        if (response.finish_reason != "error") {
          throw ConfigError("routing analyses: response " + std::to_string(r) + " of " + items[i].id +
                            " has no routing capture, expected one for the MoE model " + model.dir.string());
        }
        trace_of[i].push_back(kNone);
        continue;
      }
      trace_of[i].push_back(traces.size());
      traces.push_back(*response.routing);
      if (response.base_routing) base_traces.push_back(*response.base_routing);
      categories.push_back(items[i].category);
      in_character.push_back((*in.in_character)[i][r]);
      prompt_positions += response.routing->prompt_positions;
      generated_positions += response.routing->positions - response.routing->prompt_positions;
    }
  }

  RoutingSection out;
  json& j = out.json;
  j["layers"] = model.moe_layers;
  j["num_experts"] = model.num_experts;
  j["top_k"] = model.top_k;
  j["uniform_rate"] = json_number(static_cast<double>(model.top_k) / static_cast<double>(model.num_experts));
  j["positions"] = {{"probe", prompt_positions + generated_positions},
                    {"probe_prompt", prompt_positions},
                    {"probe_generated", generated_positions}};
  j["warnings"] = in.warnings;
  out.under_trained.resize(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) out.under_trained[i].resize(responses[i].size());
  if (traces.empty()) {
    for (const char* key : {"utilization", "coverage", "attribution", "paraphrase_divergence", "drift", "circuits",
                            "generation_dynamics"}) {
      j[key] = nullptr;
    }
    j["moe_type"] = in.moe_type;
    j["warnings"].push_back("no response was generated: no routing to analyse (see nan.where)");
    return out;
  }

  Utilization util = utilization(traces);
  if (in.coverage) util.training = in.coverage->training_rates();
  j["utilization"] = util.to_json();

  j["coverage"] = nullptr;
  j["attribution"] = nullptr;
  if (in.coverage) {
    const ProbeCoverage coverage = probe_coverage(traces, categories, *in.coverage, in.min_loss_tokens);
    j["coverage"] = coverage.to_json();
    const auto shares = under_trained_shares(traces, *in.coverage, in.min_loss_tokens);
    j["attribution"] = attribution(shares, in_character, categories).to_json();
    for (std::size_t i = 0; i < items.size(); ++i) {
      for (std::size_t r = 0; r < responses[i].size(); ++r) {
        if (trace_of[i][r] != kNone) out.under_trained[i][r] = shares[trace_of[i][r]];
      }
    }
  }
  // The first response with a trace of each item (all of an item's responses share its prompt).
  std::vector<std::size_t> first_trace(items.size(), kNone);
  for (std::size_t i = 0; i < items.size(); ++i) {
    for (std::size_t t : trace_of[i]) {
      if (t != kNone) {
        first_trace[i] = t;
        break;
      }
    }
  }

  // Paraphrase divergence: each variant against its original, over the prompt
  // positions of their first responses (all responses of an item share the prompt).
  std::map<std::string, std::size_t> original_of;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (items[i].variant == kOriginalVariant) original_of[items[i].base_id] = i;
  }
  std::vector<TracePair> pairs;
  std::optional<ParaphraseHighlight> highlight;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (items[i].variant == kOriginalVariant) continue;
    const auto it = original_of.find(items[i].base_id);
    if (it == original_of.end() || first_trace[it->second] == kNone || first_trace[i] == kNone) continue;
    pairs.push_back({first_trace[it->second], first_trace[i]});
    if (!highlight && items[it->second].prompt == kHighlightA && items[i].prompt == kHighlightB) {
      highlight = ParaphraseHighlight{kHighlightA, kHighlightB,
                                      prompt_expert_jaccard(traces[first_trace[it->second]], traces[first_trace[i]])};
    }
  }
  ParaphraseDivergence divergence = paraphrase_divergence(traces, pairs);
  divergence.highlight = highlight;
  j["paraphrase_divergence"] = divergence.to_json();

  j["drift"] = nullptr;
  if (!base_traces.empty()) {
    if (base_traces.size() != traces.size()) {
      throw ConfigError("routing drift: " + std::to_string(base_traces.size()) + " base traces, expected " +
                        std::to_string(traces.size()) + " (one per response)");
    }
    j["drift"] = routing_drift(base_traces, traces).to_json();
  }
  j["moe_type"] = in.moe_type;
  j["circuits"] = circuits(traces).to_json();
  j["generation_dynamics"] = generation_dynamics(traces).to_json();
  return out;
}

json assemble_report(const ReportInputs& in) {
  const auto& items = *in.items;
  const auto& responses = in.run->responses;
  const auto& scores = *in.scores;
  if (responses.size() != items.size() || scores.size() != items.size() || in.summary->items.size() != items.size()) {
    throw ConfigError("report: " + std::to_string(items.size()) + " probe items but " +
                      std::to_string(responses.size()) + " response lists, " + std::to_string(scores.size()) +
                      " score lists and " + std::to_string(in.summary->items.size()) + " item results");
  }
  json report;
  report["format"] = kReportFormat;
  report["version"] = kReportVersion;
  report["created"] = in.created;
  report["code_version"] = in.code_version;
  report["model"] = model_json(*in.model);
  report["persona"] = {{"name", in.persona_name}, {"source", in.persona_source}};
  report["settings"] = in.settings;

  json nan_where = json::array();
  json item_list = json::array();
  for (std::size_t i = 0; i < items.size(); ++i) {
    const ProbeItem& item = items[i];
    const ItemResult& result = in.summary->items[i];
    json list = json::array();
    for (std::size_t r = 0; r < responses[i].size(); ++r) {
      const ProbeResponse& response = responses[i][r];
      json entry = {{"sample", response.sample},
                    {"greedy", response.greedy},
                    {"text", response.text},
                    {"finish_reason", response.finish_reason},
                    {"tokens", static_cast<int64_t>(response.ids.size())}};
      entry.update(to_json(scores[i][r]));
      if (!in.judge_verdicts.empty()) entry["judge"] = in.judge_verdicts[i][r];
      std::optional<double> share;
      if (!in.under_trained.empty()) share = in.under_trained[i][r];
      entry["under_trained_share"] = optional_number(share);
      for (const auto& where : response.nan) {
        nan_where.push_back("probe.items[" + std::to_string(i) + "].responses[" + std::to_string(r) + "]: " + where);
      }
      list.push_back(std::move(entry));
    }
    item_list.push_back({{"id", item.id},
                         {"base_id", item.base_id},
                         {"category", item.category},
                         {"variant", item.variant},
                         {"prompt", item.prompt},
                         {"in_character", result.in_character},
                         {"in_character_rate", optional_number(result.in_character_rate)},
                         {"responses", std::move(list)}});
  }
  json probe = {{"items", std::move(item_list)}};
  probe.update(to_json(*in.summary));
  report["probe"] = std::move(probe);
  report["judge"] = in.judge;
  report["routing"] = in.routing;
  report["warnings"] = in.warnings;
  report["nan"] = {{"found", false}, {"where", json::array()}};
  for (const auto& path : null_non_finite(report)) nan_where.push_back(path);
  report["nan"] = {{"found", !nan_where.empty()}, {"where", std::move(nan_where)}};
  return report;
}

}  // namespace character::eval
