// `character gate RUN_OR_EVAL_DIR [--config F] [--json]`: evaluates the quality
// gates (eval/gates.h) on an eval report, writes gates.json and gates.junit.xml
// beside it, prints the gate table, and exits 0 when every gate passed, 10
// (GateFailure) when one failed, another code when it could not decide (missing
// report: 5, malformed report: 3, bad thresholds: 2). docs/gates.md.
#include <CLI/CLI.hpp>

#include <iostream>
#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/json_read.h"
#include "eval/gates.h"
#include "pipeline/commands.h"

namespace character::pipeline {
namespace {

struct GateArgs {
  std::string dir;
  std::string config;
  bool json = false;
};

// Thresholds: --config, else the run's recorded config (RUN/manifest.json's
// config.gates, so `character gate RUN` judges by the thresholds the run was
// started with), else the documented defaults.
eval::GateThresholds thresholds_for(const GateArgs& args, const std::filesystem::path& eval_dir) {
  if (!args.config.empty()) return eval::load_gate_thresholds(args.config);
  const auto real = std::filesystem::canonical(eval_dir);  // "RUN/eval/" and "RUN/eval" alike
  const auto manifest = real.parent_path() / "manifest.json";
  if (real.filename() == "eval" && std::filesystem::exists(manifest)) {
    const nlohmann::json data = read_json_file(manifest);
    if (data.is_object() && data.contains("config") && data["config"].is_object() && data["config"].contains("gates"))
      return eval::gate_thresholds_from_json(data["config"]["gates"], manifest.string() + ": config");
  }
  return eval::GateThresholds{};
}

int run_gate(const GateArgs& args) {
  const auto eval_dir = eval::find_eval_dir(args.dir);
  const auto report_path = eval_dir / "report.json";
  const nlohmann::json report = eval::read_eval_report(eval_dir);
  const eval::GateThresholds thresholds = thresholds_for(args, eval_dir);
  const eval::GateOutcome outcome = eval::evaluate_gates(report, thresholds, report_path.string());
  eval::write_gate_files(outcome, thresholds, eval_dir);

  if (args.json) {
    nlohmann::json out = eval::to_json(outcome, thresholds);
    out["report"] = report_path.string();
    out["files"] = {(eval_dir / "gates.json").string(), (eval_dir / "gates.junit.xml").string()};
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << eval::format_gate_table(outcome) << "wrote " << (eval_dir / "gates.json").string() << " and "
              << (eval_dir / "gates.junit.xml").string() << "\n";
  }
  std::cout.flush();
  if (outcome.passed()) return 0;
  throw GateFailure(report_path.string() + ": quality gates failed: " + outcome.failed_names() + " (details in " +
                    (eval_dir / "gates.json").string() + ")");
}

}  // namespace

void add_gate_command(CLI::App& app) {
  auto args = std::make_shared<GateArgs>();
  CLI::App* sub = app.add_subcommand("gate", "Check an eval report against the quality gates; exit 10 when one fails");
  sub->add_option("dir", args->dir, "A run directory (RUN/eval/report.json) or an eval directory (report.json)")->required();
  sub->add_option("--config", args->config,
                  "YAML/JSON thresholds: a run config's `gates:` mapping or that mapping itself (docs/gates.md)");
  sub->add_flag("--json", args->json, "Print gates.json's content instead of the table");
  set_command_action(*sub, [args] { return run_gate(*args); });
}

}  // namespace character::pipeline
