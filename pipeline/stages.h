// The stages of `character pipeline`, each a function of the resolved config and
// the run directory (DESIGN.md "Run directory"): check → generate-dpo → train-dpo
// → introspect → train-sft → eval → gate → export. A stage writes only inside
// RUN/, resumes from its own ledger or checkpoint when called again after a
// crash, and reports what it did for the manifest. The driver
// (pipeline/pipeline_command.cpp) decides which stages run.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "pipeline/run_config.h"

namespace character::pipeline {

// In pipeline order.
const std::vector<std::string>& stage_names();  // "check", "generate-dpo", ..., "export"

struct StageContext {
  const RunConfig& config;
  std::filesystem::path run_dir;
  // Set by the driver's SIGINT/SIGTERM handler; long stages check it between
  // steps/batches and throw Interrupted after saving what they have.
  const std::atomic<bool>* stop_requested = nullptr;
  bool quiet = false;  // no progress output (--json)
  // The stage finished before and runs again (its inputs changed, or --from/--only
  // asked for it): it starts over instead of resuming its ledgers or checkpoints,
  // which belong to the earlier inputs.
  bool fresh = false;
};

// What a stage did, recorded under its name in manifest.json.
struct StageResult {
  std::vector<std::filesystem::path> inputs;   // files it read (hashed by the driver)
  std::vector<std::filesystem::path> outputs;  // files/dirs it wrote, relative to RUN/ when inside
  nlohmann::json counts = nlohmann::json::object();  // e.g. {"pairs": 16, "steps": 4}
  nlohmann::json usage = nlohmann::json::object();   // teacher tokens, requests
  double cost_usd = 0.0;
  std::vector<std::string> warnings;
  std::string summary;                          // the one line the driver prints
  int exit_code = 0;                            // gate: GateFailure's code when a gate failed
  // export: what it wrote, for the manifest's "exports": [{"format", "path", "gated"}].
  nlohmann::json exports = nlohmann::json::array();
};

StageResult run_check_stage(const StageContext& ctx);
StageResult run_generate_dpo_stage(const StageContext& ctx);
StageResult run_train_dpo_stage(const StageContext& ctx);
StageResult run_introspect_stage(const StageContext& ctx);
StageResult run_train_sft_stage(const StageContext& ctx);
StageResult run_eval_stage(const StageContext& ctx);
StageResult run_gate_stage(const StageContext& ctx);
// Exports only when RUN/eval/gates.json passed, or with config.force_export
// (then the export directory gets an UNGATED marker and the result says so).
StageResult run_export_stage(const StageContext& ctx);

// The stage function for a name; ConfigError listing the names otherwise.
std::function<StageResult(const StageContext&)> stage_function(const std::string& name);

}  // namespace character::pipeline
