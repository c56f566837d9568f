// run_eval: persona → probe set → probe run (eval/probe_run.h) → signal scores
// and, when asked, the judge's verdicts → aggregates → routing analyses of an
// MoE student over its training coverage → report.json (eval/report_json.h) →
// gates → report.md and report.html (C's writers) → report.json last, so a
// half-finished eval leaves no report.json behind.
#include "eval/eval_run.h"

#include <cstdio>
#include <memory>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/utc_time.h"
#include "eval/judge.h"
#include "eval/moe_type.h"
#include "eval/probe_run.h"
#include "eval/probe_set.h"
#include "eval/report_html.h"
#include "eval/report_json.h"
#include "eval/routing_capture.h"
#include "eval/routing_metrics.h"
#include "eval/scoring.h"
#include "personas/persona.h"
#include "remote/client.h"
#include "remote/client_backend.h"

namespace character::eval {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kCoverageFile = "coverage.json";

void progress_line(const EvalOptions& o, const std::string& line) {
  if (!o.progress) return;
  std::fprintf(stderr, "eval: %s\n", line.c_str());
  std::fflush(stderr);
}

// The coverage files to merge: the options', else the adapter's own (a training
// checkpoint holds coverage.json beside adapter/) or its sibling (OUT/adapter →
// OUT/coverage.json, as `character train` writes it).
std::vector<fs::path> coverage_files(const EvalOptions& o) {
  if (!o.coverage_files.empty()) return o.coverage_files;
  if (o.adapter_dir.empty()) return {};
  for (const fs::path& candidate : {o.adapter_dir / kCoverageFile, o.adapter_dir.parent_path() / kCoverageFile}) {
    if (fs::exists(candidate)) return {candidate};
  }
  return {};
}

// Merged training coverage (eval/routing_capture.h) checked against the model:
// ConfigError naming the files when they are of other layers, E or K.
CoverageCounts model_coverage(const std::vector<fs::path>& files, const ProbeModelInfo& model) {
  for (const auto& file : files) {
    if (!fs::exists(file)) throw IoError(file.string() + ": training coverage file not found");
  }
  CoverageCounts counts = read_coverage(files);
  if (counts.layers != model.moe_layers || counts.num_experts != model.num_experts || counts.top_k != model.top_k) {
    throw ConfigError(files.front().string() + ": coverage of " + std::to_string(counts.layers.size()) +
                      " MoE layers, " + std::to_string(counts.num_experts) + " experts, top-" +
                      std::to_string(counts.top_k) + ", expected the model's " + std::to_string(model.moe_layers.size()) +
                      " layers, " + std::to_string(model.num_experts) + " experts, top-" + std::to_string(model.top_k) +
                      " (a coverage.json of another model?)");
  }
  return counts;
}

void check_options(const EvalOptions& o) {
  if (o.model_dir.empty()) throw ConfigError("eval: no model directory given");
  if (!fs::is_directory(o.model_dir)) throw IoError("eval: model directory " + o.model_dir.string() + " not found");
  if (o.persona.empty()) throw ConfigError("eval: --persona is required (a shipped name or a persona YAML file)");
  if (o.out_dir.empty()) throw ConfigError("eval: --out is required (the directory for report.json, report.md, report.html)");
  if (!o.adapter_dir.empty() && !fs::is_directory(o.adapter_dir)) {
    throw IoError("eval: --adapter " + o.adapter_dir.string() + " not found");
  }
}

json settings_json(const EvalOptions& o, const ProbeModelInfo& model, const std::vector<std::string>& categories,
                   const ScoringOptions& scoring) {
  return {{"samples", o.probe.samples},
          {"greedy", o.probe.greedy},
          {"max_new_tokens", o.probe.max_new_tokens},
          {"temperature", json_number(model.temperature)},
          {"top_p", json_number(model.top_p)},
          {"top_k", model.top_k_sampling},
          {"seed", o.probe.seed},
          {"variants", o.probe.variants},
          {"categories", categories},
          {"extra_prompts", o.probe.extra_prompts.empty() ? json(nullptr) : json(o.probe.extra_prompts.string())},
          {"scorer", o.judge_url.empty() ? "signals" : "judge"},
          {"min_signal_hits", scoring.min_signal_hits},
          {"base_routing", o.base_routing},
          {"device", o.device},
          {"batch_rows", o.probe.batch_rows}};
}

json gate_list(const GateOutcome& outcome) {
  json list = json::array();
  for (const auto& g : outcome.gates) {
    list.push_back({{"name", g.name},
                    {"value", json_number(g.value)},
                    {"threshold", json_number(g.threshold)},
                    {"comparison", g.comparison},
                    {"verdict", to_string(g.verdict)},
                    {"note", g.note}});
  }
  return list;
}

}  // namespace

json to_json(const EvalSummary& s) {
  return {{"report_json", s.report_json.string()},
          {"report_md", s.report_md.string()},
          {"report_html", s.report_html.string()},
          {"in_character_rate", json_number(s.in_character_rate)},
          {"ci_low", json_number(s.ci_low)},
          {"ci_high", json_number(s.ci_high)},
          {"responses", s.responses},
          {"worst_categories", s.worst_categories},
          {"warnings", s.warnings},
          {"gates_passed", s.gates_passed},
          {"gates", gate_list(s.gates)}};
}

EvalSummary run_eval(const EvalOptions& o) {
  check_options(o);
  const personas::Persona persona = personas::find_persona(o.persona);
  ProbeSetOptions set_options;
  set_options.categories = o.probe.categories;
  set_options.variants = o.probe.variants;
  set_options.persona = &persona;
  set_options.extra_prompts = o.probe.extra_prompts;
  const ProbeSet probe_set = build_probe_set(set_options);
  const std::vector<ProbeItem>& items = probe_set.items;

  // Fail on unusable coverage before the (long) generation.
  const ProbeModelInfo described = describe_model(o.model_dir, o.adapter_dir);
  std::vector<std::string> warnings = probe_set.warnings;
  for (const auto& w : persona.warnings) warnings.push_back("persona: " + w);
  const auto coverage_paths = coverage_files(o);
  std::optional<CoverageCounts> coverage;
  if (described.is_moe && !coverage_paths.empty()) {
    coverage = model_coverage(coverage_paths, described);
  } else if (!described.is_moe && !o.coverage_files.empty()) {
    warnings.push_back("training coverage given for the dense model " + o.model_dir.string() + ": ignored");
  }
  if (described.is_moe && !coverage) {
    warnings.push_back("no training coverage (coverage.json): probe coverage and attribution are not computed; "
                       "pass --coverage TRAIN_OUT/coverage.json");
  }
  if (!described.is_moe && o.base_routing) warnings.push_back("--base-routing on a dense model: no routing to compare");
  if (o.base_routing && o.adapter_dir.empty()) {
    warnings.push_back("--base-routing without --adapter: base and tuned are the same model (drift 0)");
  }
  if (described.adapter_base) {
    std::error_code a, b;
    const fs::path trained_on = fs::weakly_canonical(*described.adapter_base, a);
    const fs::path evaluated_on = fs::weakly_canonical(o.model_dir, b);
    if (!a && !b && trained_on != evaluated_on) {
      warnings.push_back("adapter " + o.adapter_dir.string() + " was trained on " + described.adapter_base->string() +
                         ", evaluated here on " + o.model_dir.string() + " (same architecture; check it is the same base)");
    }
  }
  const auto router_warning = untrained_router_warning(described);
  if (router_warning) warnings.push_back(*router_warning);

  ProbeRunOptions run_options;
  run_options.model_dir = o.model_dir;
  run_options.adapter_dir = o.adapter_dir;
  run_options.device = o.device;
  run_options.dtype = o.dtype;
  run_options.samples = o.probe.samples;
  run_options.greedy = o.probe.greedy;
  run_options.max_new_tokens = o.probe.max_new_tokens;
  run_options.temperature = o.probe.temperature;
  run_options.top_p = o.probe.top_p;
  run_options.seed = o.probe.seed;
  run_options.batch_rows = o.probe.batch_rows;
  run_options.base_routing = o.base_routing;
  run_options.progress = o.progress;
  run_options.stop_requested = o.stop_requested;
  json moe_type = nullptr;
  if (described.is_moe) {
    run_options.on_model = [&](model::CausalLMImpl& model) { moe_type = analyze_moe_type(model).to_json(); };
  }
  progress_line(o, std::to_string(items.size()) + " prompt variants × " +
                       std::to_string(o.probe.samples + (o.probe.greedy ? 1 : 0)) + " responses, persona " +
                       persona.name);
  const ProbeRunResult run = run_probe(run_options, items);

  // Scores: signals always; the judge's verdicts, when on, are the ones the rates use.
  const personas::SignalMatcher matcher(persona.signals);
  const ScoringOptions scoring;
  std::vector<std::string> texts;
  for (const auto& list : run.responses) {
    for (const auto& r : list) texts.push_back(r.text);
  }
  const std::vector<SignalScore> flat = score_responses(matcher, texts, scoring);
  std::vector<std::vector<SignalScore>> scores(items.size());
  std::vector<std::vector<Verdict>> verdicts(items.size());
  {
    std::size_t t = 0;
    for (std::size_t i = 0; i < items.size(); ++i) {
      for (std::size_t r = 0; r < run.responses[i].size(); ++r) {
        scores[i].push_back(flat[t]);
        verdicts[i].push_back(flat[t++].verdict);
      }
    }
  }
  json judge_info = nullptr;
  std::vector<std::vector<json>> judge_verdicts;
  if (!o.judge_url.empty()) {
    remote::ClientConfig config;
    config.base_url = o.judge_url;
    config.model = o.judge_model;
    config.api_key_env = o.judge_key_env;
    remote::Client client(config);
    remote::ClientBackend backend(client);
    fs::create_directories(o.out_dir);
    JudgeOptions judge_options;
    judge_options.cache_file = o.out_dir / kJudgeCacheFile;
    Judge judge(backend, persona, judge_options);
    std::vector<JudgeItem> asked;
    for (std::size_t i = 0; i < items.size(); ++i) {
      for (const auto& r : run.responses[i]) asked.push_back({items[i].prompt, r.text});
    }
    progress_line(o, "judging " + std::to_string(asked.size()) + " responses with " + o.judge_model);
    const auto answers = judge.judge(asked);
    std::size_t t = 0;
    judge_verdicts.resize(items.size());
    for (std::size_t i = 0; i < items.size(); ++i) {
      for (std::size_t r = 0; r < run.responses[i].size(); ++r, ++t) {
        judge_verdicts[i].push_back({{"verdict", to_string(answers[t].verdict)}, {"reason", answers[t].reason}});
        verdicts[i][r] = answers[t].verdict;
      }
    }
    judge_info = judge.report_json();
  }

  std::vector<ItemVerdicts> item_verdicts;
  std::vector<std::vector<bool>> in_character(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    item_verdicts.push_back({items[i].id, items[i].base_id, items[i].category, items[i].variant, verdicts[i]});
    for (Verdict v : verdicts[i]) in_character[i].push_back(v == Verdict::kInCharacter);
  }
  const ProbeSummary summary = summarize_probe(item_verdicts);

  ReportInputs report_inputs;
  if (run.model.is_moe) {
    RoutingInputs routing_inputs;
    routing_inputs.items = &items;
    routing_inputs.run = &run;
    routing_inputs.in_character = &in_character;
    routing_inputs.coverage = coverage;
    routing_inputs.min_loss_tokens = o.gates.coverage_min_loss_tokens;
    routing_inputs.moe_type = moe_type;
    if (router_warning) routing_inputs.warnings.push_back(*router_warning);
    RoutingSection section = routing_section(routing_inputs);
    const int64_t positions = section.json["positions"]["probe"].get<int64_t>();
    if (positions < 200) {
      const std::string w = "routing rates rest on " + std::to_string(positions) +
                            " probe positions per layer; a few hundred at least are needed for stable rates";
      warnings.push_back(w);
      section.json["warnings"].push_back(w);
    }
    report_inputs.routing = std::move(section.json);
    report_inputs.under_trained = std::move(section.under_trained);
  } else {
    report_inputs.routing = nullptr;
  }

  std::vector<std::string> categories;
  for (const auto& c : summary.categories) categories.push_back(c.name);
  report_inputs.created = utc_now_text();
  report_inputs.code_version = o.code_version;
  report_inputs.model = &run.model;
  report_inputs.persona_name = persona.name;
  report_inputs.persona_source = persona.source;
  report_inputs.settings = settings_json(o, run.model, categories, scoring);
  report_inputs.items = &items;
  report_inputs.run = &run;
  report_inputs.scores = &scores;
  report_inputs.judge_verdicts = std::move(judge_verdicts);
  report_inputs.summary = &summary;
  report_inputs.judge = judge_info;
  report_inputs.warnings = warnings;
  json report = assemble_report(report_inputs);

  const fs::path report_json = o.out_dir / "report.json";
  const GateOutcome gates = evaluate_gates(report, o.gates, report_json.string());
  report["gates"] = to_json(gates, o.gates);

  fs::create_directories(o.out_dir);
  EvalSummary s;
  s.report_json = report_json;
  s.report_md = o.out_dir / "report.md";
  s.report_html = o.out_dir / "report.html";
  write_report_views(report, o.out_dir);  // report.md, report.html
  write_file_atomic(s.report_json, report.dump(2) + "\n");

  s.in_character_rate = summary.overall.rate.value_or(0.0);
  s.responses = summary.overall.n;
  if (summary.overall.interval) {
    s.ci_low = summary.overall.interval->low;
    s.ci_high = summary.overall.interval->high;
  }
  s.worst_categories = summary.worst_categories;
  s.warnings = warnings;
  s.gates = gates;
  s.gates_passed = gates.passed();
  progress_line(o, "done in " + std::to_string(static_cast<int64_t>(run.seconds)) + " s of generation");
  return s;
}

}  // namespace character::eval
