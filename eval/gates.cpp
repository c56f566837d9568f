// Quality gates over an eval report (eval/gates.h): each gate reads one number
// of report.json, compares it with its threshold and says why it passed, failed
// or was skipped; the verdicts go to gates.json and JUnit XML for CI, and the
// table to the terminal. Thresholds are read in gate_thresholds.cpp.
#include "eval/gates.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/json_read.h"
#include "eval/xml_text.h"
#include "router_train/frozen_router.h"

namespace character::eval {
namespace {

using nlohmann::json;

// The failure this project exists for (seed 000), and what is known of its remedy.
const std::string kUntrainedRouterNote =
    std::string("MoE student trained without router adapters (train_router: none). ") +
    router_train::kFrozenRouterRisk;

// "0.700" for rates, "3" for counts.
std::string format_number(double value) {
  char buffer[32];
  if (value == std::floor(value) && std::fabs(value) < 1e15) std::snprintf(buffer, sizeof(buffer), "%.0f", value);
  else std::snprintf(buffer, sizeof(buffer), "%.3f", value);
  return buffer;
}

// 0.28 → "28.0%".
std::string format_percent(double share) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.1f%%", 100.0 * share);
  return buffer;
}

// The field at `path` ("probe.overall.rate") or FormatError naming it.
const json& field(const json& report, const std::string& path, const std::string& source) {
  const json* node = &report;
  std::string walked;
  std::istringstream parts(path);
  for (std::string key; std::getline(parts, key, '.');) {
    walked += (walked.empty() ? "" : ".") + key;
    if (!node->is_object() || !node->contains(key))
      throw FormatError(source + ": " + walked + " is missing; a gate needs " + path + " (docs/eval.md, report.json)");
    node = &(*node)[key];
  }
  return *node;
}

GateResult compare(std::string name, const json& value, double threshold, bool at_least) {
  GateResult gate;
  gate.name = std::move(name);
  gate.threshold = threshold;
  gate.comparison = at_least ? ">=" : "<=";
  if (!value.is_number()) {
    // report.json writes NaN as null (nan.where names it): never a pass.
    gate.verdict = GateVerdict::kFail;
    gate.note = "not a number (NaN recorded as null; see nan.where)";
    return gate;
  }
  gate.value = value.get<double>();
  gate.verdict = (at_least ? *gate.value >= threshold : *gate.value <= threshold) ? GateVerdict::kPass : GateVerdict::kFail;
  return gate;
}

GateResult in_character_gate(const json& report, const GateThresholds& t, const std::string& source) {
  const json& overall = field(report, "probe.overall", source);
  const int64_t responses = field(report, "probe.overall.responses", source).get<int64_t>();
  GateResult gate = compare("in_character_rate", field(report, "probe.overall.rate", source), t.min_in_character_rate, true);
  if (responses == 0) {
    gate.value.reset();
    gate.verdict = GateVerdict::kFail;  // nothing proves the character: never a silent pass
    gate.note = "no probe responses";
    return gate;
  }
  if (gate.note.empty())
    gate.note = std::to_string(overall.value("in_character", int64_t{0})) + " of " + std::to_string(responses) +
                " responses in character";
  return gate;
}

GateResult category_gate(const json& report, const GateThresholds& t, const std::string& source) {
  const json& categories = field(report, "probe.categories", source);
  const json* lowest = nullptr;
  for (const json& category : categories) {
    if (category.value("responses", int64_t{1}) == 0) continue;  // a category left out of this eval (--categories)
    const json& rate = category.at("rate");
    if (!rate.is_number()) {  // a NaN rate is the lowest there is
      lowest = &category;
      break;
    }
    if (!lowest || rate.get<double>() < lowest->at("rate").get<double>()) lowest = &category;
  }
  if (!lowest) {
    GateResult gate{"min_category_rate", std::nullopt, t.min_category_rate, ">=", GateVerdict::kFail, "no categories"};
    return gate;
  }
  GateResult gate = compare("min_category_rate", lowest->at("rate"), t.min_category_rate, true);
  gate.note = "lowest category: " + lowest->value("name", std::string("?")) + " (" +
              std::to_string(lowest->value("in_character", int64_t{0})) + " of " +
              std::to_string(lowest->value("responses", int64_t{0})) + " responses)" +
              (gate.note.empty() ? "" : "; " + gate.note);
  return gate;
}

GateResult paraphrase_gate(const json& report, const GateThresholds& t, const std::string& source) {
  const json& paraphrase = field(report, "probe.paraphrase", source);
  if (paraphrase.is_null() || paraphrase.value("pairs", int64_t{0}) == 0)
    return {"paraphrase_flip_rate", std::nullopt, t.max_paraphrase_flip_rate, "<=", GateVerdict::kSkip,
            "no paraphrase variants in this eval (settings.variants is empty)"};
  GateResult gate = compare("paraphrase_flip_rate", field(report, "probe.paraphrase.flip_rate", source),
                            t.max_paraphrase_flip_rate, false);
  std::string note = std::to_string(paraphrase.value("flips", int64_t{0})) + " of " +
                     std::to_string(paraphrase.value("pairs", int64_t{0})) + " pairs flip";
  // The variant that flips most says which kind of rewording the character does not survive.
  std::string worst;
  double worst_rate = -1.0;
  const json by_variant = paraphrase.value("by_variant", json::object());
  for (const auto& [variant, stats] : by_variant.items()) {
    const json& rate = stats.value("flip_rate", json());
    if (rate.is_number() && rate.get<double>() > worst_rate) worst = variant, worst_rate = rate.get<double>();
  }
  if (!worst.empty() && worst_rate > 0.0) note += "; most: " + worst + " (" + format_number(worst_rate) + ")";
  gate.note = note + (gate.note.empty() ? "" : "; " + gate.note);
  return gate;
}

// Share of the probe's (position, slot) assignments on experts with ≥ n loss-bearing
// training tokens, from utilization rates (share of positions whose top-k holds
// the expert, so a row sums to k) and loss_tokens: mean over layers of
// Σ_e covered(e)·rate[l][e] / k. Every probe position is routed in every MoE layer,
// so the layer mean weighs assignments equally.
std::optional<double> coverage_at(const json& routing, int64_t min_loss_tokens) {
  const json& rates = routing.at("utilization").at("rates");
  const json& tokens = routing.at("coverage").at("loss_tokens");
  const double k = routing.at("top_k").get<double>();
  if (!rates.is_array() || rates.size() != tokens.size() || rates.empty() || k <= 0) return std::nullopt;
  double sum = 0.0;
  for (std::size_t l = 0; l < rates.size(); ++l) {
    if (rates[l].size() != tokens[l].size()) return std::nullopt;
    double covered = 0.0;
    for (std::size_t e = 0; e < rates[l].size(); ++e) {
      if (!rates[l][e].is_number() || !tokens[l][e].is_number()) return std::nullopt;
      if (tokens[l][e].get<double>() >= static_cast<double>(min_loss_tokens)) covered += rates[l][e].get<double>();
    }
    sum += covered / k;
  }
  return sum / static_cast<double>(rates.size());
}

GateResult coverage_gate(const json& report, const GateThresholds& t, const std::string& source) {
  GateResult skip{"probe_coverage", std::nullopt, t.min_probe_coverage, ">=", GateVerdict::kSkip, ""};
  if (!field(report, "model.is_moe", source).get<bool>()) {
    skip.note = "dense model: no experts to cover";
    return skip;
  }
  const json& routing = field(report, "routing", source);
  if (routing.is_null() || routing.value("coverage", json()).is_null()) {
    skip.note = "no training coverage data (pass the adapters' coverage.json to `character eval --coverage`)";
    return skip;
  }
  const json& coverage = routing.at("coverage");
  const int64_t reported_n = field(report, "routing.coverage.min_loss_tokens", source).get<int64_t>();
  json value = field(report, "routing.coverage.probe_coverage", source);
  std::string note;
  if (reported_n != t.coverage_min_loss_tokens) {
    const auto recomputed = coverage_at(routing, t.coverage_min_loss_tokens);
    if (!recomputed)
      throw FormatError(source + ": routing.utilization.rates and routing.coverage.loss_tokens do not form matching " +
                        "[layers][experts] arrays; cannot recompute probe coverage at coverage_min_loss_tokens=" +
                        std::to_string(t.coverage_min_loss_tokens));
    value = *recomputed;
    note = "recomputed at " + std::to_string(t.coverage_min_loss_tokens) + " loss tokens (report used " +
           std::to_string(reported_n) + "); ";
  }
  GateResult gate = compare("probe_coverage", value, t.min_probe_coverage, true);
  // Name the under-trained experts the probe actually reaches, most reached first.
  const json under_trained = coverage.value("under_trained", json::array());  // outlives the pointers below
  std::vector<const json*> reached;
  for (const json& expert : under_trained) {
    const int64_t tokens = expert.value("loss_tokens", int64_t{0});
    if (tokens < t.coverage_min_loss_tokens && expert.value("probe_rate", 0.0) > 0.0) reached.push_back(&expert);
  }
  std::stable_sort(reached.begin(), reached.end(),
                   [](const json* a, const json* b) { return a->value("probe_rate", 0.0) > b->value("probe_rate", 0.0); });
  if (reached.empty()) {
    note += "the probe reaches no under-trained expert";
  } else {
    note += "under-trained experts the probe reaches:";
    for (std::size_t i = 0; i < reached.size() && i < 5; ++i)
      note += std::string(i ? "," : "") + " L" + std::to_string(reached[i]->value("layer", int64_t{-1})) + " E" +
              std::to_string(reached[i]->value("expert", int64_t{-1})) + " (" +
              std::to_string(reached[i]->value("loss_tokens", int64_t{0})) + " tokens, " +
              format_percent(reached[i]->value("probe_rate", 0.0)) + " of positions)";
    if (reached.size() > 5) note += " and " + std::to_string(reached.size() - 5) + " more";
  }
  gate.note = note + (gate.note.empty() ? "" : "; " + gate.note);
  return gate;
}

GateResult nan_gate(const json& report, const GateThresholds& t, const std::string& source) {
  GateResult gate{"no_nan", std::nullopt, 0.0, "<=", GateVerdict::kSkip, ""};
  const json& nan = field(report, "nan", source);
  const json where = nan.value("where", json::array());
  if (!t.require_no_nan) {
    gate.note = "disabled (require_no_nan: false)";
    return gate;
  }
  const bool found_nan = field(report, "nan.found", source).get<bool>() || !where.empty();
  gate.value = static_cast<double>(where.size());
  if (found_nan && *gate.value == 0.0) gate.value = 1.0;
  gate.verdict = found_nan ? GateVerdict::kFail : GateVerdict::kPass;
  if (found_nan) {
    gate.note = "NaN/Inf at:";
    for (std::size_t i = 0; i < where.size() && i < 5; ++i)
      gate.note += std::string(i ? "," : "") + " " + (where[i].is_string() ? where[i].get<std::string>() : where[i].dump());
    if (where.size() > 5) gate.note += " and " + std::to_string(where.size() - 5) + " more";
  }
  return gate;
}

}  // namespace

const char* to_string(GateVerdict verdict) {
  switch (verdict) {
    case GateVerdict::kPass: return "pass";
    case GateVerdict::kFail: return "fail";
    case GateVerdict::kSkip: return "skip";
  }
  return "skip";
}

bool GateOutcome::passed() const {
  return std::none_of(gates.begin(), gates.end(), [](const GateResult& g) { return g.verdict == GateVerdict::kFail; });
}

std::string GateOutcome::failed_names() const {
  std::string names;
  for (const GateResult& g : gates)
    if (g.verdict == GateVerdict::kFail) names += (names.empty() ? "" : ", ") + g.name;
  return names;
}

static GateOutcome evaluate_checked(const nlohmann::json& report, const GateThresholds& thresholds, const std::string& source);

GateOutcome evaluate_gates(const nlohmann::json& report, const GateThresholds& thresholds, const std::string& source) {
  if (!report.is_object()) throw FormatError(source + ": found " + std::string(report.type_name()) + ", expected an eval report object");
  if (report.value("format", std::string()) != "character-eval-report")
    throw FormatError(source + ": format is " + report.value("format", json()).dump() +
                      ", expected \"character-eval-report\" (eval/report.json written by `character eval`)");
  gate_thresholds_from_json(to_json(thresholds), "gate thresholds");  // same range checks as a config file
  try {
    return evaluate_checked(report, thresholds, source);
  } catch (const nlohmann::json::exception& e) {
    // A field of the wrong type or shape (e.g. a category without "rate").
    throw FormatError(source + ": does not match the report.json schema (docs/eval.md): " + e.what());
  }
}

static GateOutcome evaluate_checked(const nlohmann::json& report, const GateThresholds& thresholds, const std::string& source) {
  GateOutcome outcome;
  outcome.gates.push_back(in_character_gate(report, thresholds, source));
  outcome.gates.push_back(category_gate(report, thresholds, source));
  outcome.gates.push_back(paraphrase_gate(report, thresholds, source));
  outcome.gates.push_back(coverage_gate(report, thresholds, source));
  outcome.gates.push_back(nan_gate(report, thresholds, source));

  const json& model = field(report, "model", source);
  const bool is_moe = field(report, "model.is_moe", source).get<bool>();
  const bool has_adapter = !model.value("adapter", json()).is_null();
  const json train_router = model.value("train_router", json());
  const bool untrained = is_moe && has_adapter && train_router == "none";
  if (untrained) outcome.notes.push_back(kUntrainedRouterNote);
  if (thresholds.untrained_router == "fail") {
    GateResult gate{"router_trained", std::nullopt, 1.0, ">=", GateVerdict::kSkip, ""};
    if (!is_moe || !has_adapter) {
      gate.note = !is_moe ? "dense model: no router" : "no adapter: the base model's router";
    } else {
      gate.value = untrained ? 0.0 : 1.0;
      gate.verdict = untrained ? GateVerdict::kFail : GateVerdict::kPass;
      gate.note = untrained ? "train_router: none; --train-router lora|full trains the router (see the note)"
                            : "train_router: " + (train_router.is_string() ? train_router.get<std::string>() : train_router.dump());
    }
    outcome.gates.push_back(gate);
  }
  return outcome;
}

nlohmann::json to_json(const GateOutcome& outcome, const GateThresholds& thresholds) {
  json gates = json::array();
  for (const GateResult& g : outcome.gates)
    gates.push_back({{"name", g.name},
                     {"value", g.value ? json(*g.value) : json(nullptr)},
                     {"threshold", g.threshold},
                     {"comparison", g.comparison},
                     {"verdict", to_string(g.verdict)},
                     {"note", g.note}});
  return {{"format", "character-gates"}, {"version", 1},           {"passed", outcome.passed()},
          {"thresholds", to_json(thresholds)}, {"gates", gates}, {"notes", outcome.notes}};
}

std::string to_junit_xml(const GateOutcome& outcome, const std::string& suite_name) {
  int64_t failures = 0, skipped = 0;
  for (const GateResult& g : outcome.gates) {
    failures += g.verdict == GateVerdict::kFail;
    skipped += g.verdict == GateVerdict::kSkip;
  }
  const std::string counts = " tests=\"" + std::to_string(outcome.gates.size()) + "\" failures=\"" +
                             std::to_string(failures) + "\" errors=\"0\" skipped=\"" + std::to_string(skipped) + "\"";
  std::string xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  xml += "<testsuites name=\"" + xml_escape(suite_name) + "\"" + counts + ">\n";
  xml += "  <testsuite name=\"" + xml_escape(suite_name) + "\"" + counts + " time=\"0\">\n";
  if (!outcome.notes.empty()) {
    xml += "    <properties>\n";
    for (const std::string& note : outcome.notes) xml += "      <property name=\"note\" value=\"" + xml_escape(note) + "\"/>\n";
    xml += "    </properties>\n";
  }
  for (const GateResult& g : outcome.gates) {
    xml += "    <testcase classname=\"" + xml_escape(suite_name) + "\" name=\"" + xml_escape(g.name) + "\" time=\"0\"";
    const std::string measured = g.name + " = " + (g.value ? format_number(*g.value) : std::string("n/a")) +
                                 ", expected " + g.comparison + " " + format_number(g.threshold);
    if (g.verdict == GateVerdict::kPass) {
      xml += ">\n      <system-out>" + xml_escape(measured + (g.note.empty() ? "" : "; " + g.note)) + "</system-out>\n";
    } else if (g.verdict == GateVerdict::kFail) {
      xml += ">\n      <failure type=\"gate\" message=\"" + xml_escape(measured) + "\">" +
             xml_escape(measured + (g.note.empty() ? "" : "\n" + g.note)) + "</failure>\n";
    } else {
      xml += ">\n      <skipped message=\"" + xml_escape(g.note) + "\"/>\n";
    }
    xml += "    </testcase>\n";
  }
  xml += "  </testsuite>\n</testsuites>\n";
  return xml;
}

void write_gate_files(const GateOutcome& outcome, const GateThresholds& thresholds, const std::filesystem::path& dir) {
  write_file_atomic(dir / "gates.json", to_json(outcome, thresholds).dump(2) + "\n");
  write_file_atomic(dir / "gates.junit.xml", to_junit_xml(outcome));
}

std::string format_gate_table(const GateOutcome& outcome) {
  std::vector<std::array<std::string, 5>> rows = {{"gate", "value", "threshold", "verdict", "note"}};
  for (const GateResult& g : outcome.gates)
    rows.push_back({g.name, g.value ? format_number(*g.value) : "-", g.comparison + " " + format_number(g.threshold),
                    g.verdict == GateVerdict::kFail ? "FAIL" : to_string(g.verdict), g.note});
  std::array<std::size_t, 4> width{};
  for (const auto& row : rows)
    for (std::size_t c = 0; c < width.size(); ++c) width[c] = std::max(width[c], row[c].size());
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < width.size(); ++c) line += row[c] + std::string(width[c] - row[c].size() + 2, ' ');
    line += row[4];
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  out += outcome.passed() ? "gates: passed\n" : "gates: FAILED\n";
  for (const std::string& note : outcome.notes) out += "note: " + note + "\n";
  return out;
}

}  // namespace character::eval

namespace character::eval {

std::filesystem::path find_eval_dir(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) throw IoError(dir.string() + ": no such directory (expected a run directory or an eval directory)");
  if (fs::exists(dir / "report.json")) return dir;
  if (fs::exists(dir / "eval" / "report.json")) return dir / "eval";
  if (fs::exists(dir / "manifest.json"))
    throw IoError((dir / "eval" / "report.json").string() +
                  ": missing; this run has no eval report yet (run its eval stage, or `character eval`)");
  throw IoError(dir.string() + ": neither report.json nor eval/report.json found (expected the --out directory of "
                               "`character eval` or a pipeline run directory)");
}

nlohmann::json read_eval_report(const std::filesystem::path& eval_dir) {
  const auto path = eval_dir / "report.json";
  const nlohmann::json report = read_json_file(path);  // IoError or FormatError naming it
  if (!report.is_object() || report.value("format", std::string()) != "character-eval-report")
    throw FormatError(path.string() + ": format is " +
                      (report.is_object() ? describe_json(report.value("format", nlohmann::json())) : report.type_name()) +
                      ", expected \"character-eval-report\"");
  return report;
}

}  // namespace character::eval
