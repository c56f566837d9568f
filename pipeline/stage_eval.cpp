// The evaluation stages of `character pipeline`: eval (eval::run_eval on the
// final adapter over its base model, with both train stages' coverage.json,
// reports into RUN/eval) and gate (the thresholds of the run's config on
// RUN/eval/report.json → RUN/eval/gates.json and gates.junit.xml; a failed gate
// sets the result's exit code to GateFailure's).
#include <cstdio>
#include <string>

#include "base/error.h"
#include "eval/eval_run.h"
#include "eval/gates.h"
#include "pipeline/commands.h"
#include "pipeline/stage_support.h"

namespace character::pipeline {

namespace fs = std::filesystem;

StageResult run_eval_stage(const StageContext& ctx) {
  const RunConfig& c = ctx.config;
  eval::EvalOptions o;
  o.model_dir = final_base_model(ctx);
  o.adapter_dir = train_dir(ctx, "sft") / "adapter";
  o.persona = c.persona;
  o.out_dir = eval_dir(ctx);
  o.device = c.device;
  o.dtype = c.dtype;
  o.probe = c.probe;
  for (const char* stage : {"dpo", "sft"}) {
    const fs::path coverage = train_dir(ctx, stage) / "coverage.json";
    if (fs::exists(coverage)) o.coverage_files.push_back(coverage);
  }
  o.base_routing = c.base_routing;
  o.judge_url = c.judge.url;
  o.judge_model = c.judge.model;
  o.judge_key_env = c.judge.api_key_env;
  o.gates = c.gates;
  o.progress = !ctx.quiet;
  o.stop_requested = ctx.stop_requested;
  o.code_version = version_string();
  const eval::EvalSummary s = eval::run_eval(o);

  StageResult r;
  r.inputs.push_back(run_relative(ctx, o.adapter_dir));
  for (const auto& file : o.coverage_files) r.inputs.push_back(run_relative(ctx, file));
  for (const auto& file : {s.report_json, s.report_md, s.report_html}) r.outputs.push_back(run_relative(ctx, file));
  r.counts["responses"] = s.responses;
  r.counts["in_character_rate"] = s.in_character_rate;
  if (s.ci_low) r.counts["ci_low"] = *s.ci_low;
  if (s.ci_high) r.counts["ci_high"] = *s.ci_high;
  r.warnings = s.warnings;
  char rate[96];
  std::snprintf(rate, sizeof rate, "%.1f%% in character over %lld responses", 100.0 * s.in_character_rate,
                static_cast<long long>(s.responses));
  r.summary = std::string("eval: ") + rate;
  if (s.ci_low && s.ci_high) {
    char interval[64];
    std::snprintf(interval, sizeof interval, " (95%% CI %.1f–%.1f%%)", 100.0 * *s.ci_low, 100.0 * *s.ci_high);
    r.summary += interval;
  }
  if (!s.worst_categories.empty()) r.summary += ", weakest: " + s.worst_categories.front();
  r.summary += " → " + run_relative(ctx, s.report_html).string();
  return r;
}

StageResult run_gate_stage(const StageContext& ctx) {
  const fs::path report_file = eval_dir(ctx) / "report.json";
  if (!fs::exists(report_file)) {
    throw ConfigError("gate: " + report_file.string() + " does not exist; run the eval stage first");
  }
  const nlohmann::json report = eval::read_eval_report(eval_dir(ctx));
  const eval::GateOutcome outcome = eval::evaluate_gates(report, ctx.config.gates, report_file.string());
  eval::write_gate_files(outcome, ctx.config.gates, eval_dir(ctx));

  StageResult r;
  r.inputs.push_back(run_relative(ctx, report_file));
  r.outputs.push_back(run_relative(ctx, eval_dir(ctx) / "gates.json"));
  r.outputs.push_back(run_relative(ctx, eval_dir(ctx) / "gates.junit.xml"));
  int passed = 0, failed = 0, skipped = 0;
  for (const auto& gate : outcome.gates) {
    passed += gate.verdict == eval::GateVerdict::kPass;
    skipped += gate.verdict == eval::GateVerdict::kSkip;
    failed += gate.verdict == eval::GateVerdict::kFail;
  }
  r.counts = {{"passed", passed}, {"failed", failed}, {"skipped", skipped}};
  r.warnings = outcome.notes;
  if (outcome.passed()) {
    r.summary = "gate: passed (" + std::to_string(passed) + " passed, " + std::to_string(skipped) + " skipped)";
  } else {
    r.summary = "gate: FAILED " + outcome.failed_names() + " (" + std::to_string(failed) + " of " +
                std::to_string(outcome.gates.size()) + " gates); see " +
                run_relative(ctx, eval_dir(ctx) / "gates.json").string();
    r.exit_code = GateFailure(r.summary).exit_code();
  }
  return r;
}

}  // namespace character::pipeline
