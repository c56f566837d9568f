// The core of `character pipeline`: runs a list of named stages on a run
// directory, skipping finished stages whose recorded inputs and outputs still
// hash the same, recording each stage in the manifest, and stopping at a failed
// gate. Independent of which stages exist (the command passes stages.h's), so it
// is tested with small stages of its own (tests/pipeline/pipeline_driver_test.cpp).
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "pipeline/run_manifest.h"
#include "pipeline/stages.h"

namespace character::pipeline {

struct DriverStage {
  std::string name;
  std::function<StageResult(const StageContext&)> run;
};

// Which stages run. Empty: all. --only excludes --from/--until.
struct StageSelection {
  std::string from, until, only;
};

struct DriverOptions {
  StageSelection selection;
  const std::atomic<bool>* stop_requested = nullptr;
  bool quiet = false;  // passed to the stages (no progress bars)
  // Every line the driver prints goes through here (stdout and logs/pipeline.log
  // in the command); unset: std::cout.
  std::function<void(const std::string&)> print;
};

struct DriverOutcome {
  int exit_code = 0;     // 0, or the code of a failed gate (10)
  std::string status;    // the run's status at the end: finished | gated-out | partial
  std::vector<std::string> ran, skipped;
};

// Runs the selected stages in order:
//  - a stage before the selection must be done (ConfigError naming it otherwise);
//  - without --from/--only, a done stage whose inputs and outputs still hash as
//    recorded is skipped; with them, the selected stages run again;
//  - a stage that returns a non-zero exit_code (the gate) marks the run
//    gated-out: later stages are skipped unless config.force_export;
//  - a stage that throws is marked failed (Interrupted: interrupted), the run
//    too, and the error propagates.
// RUN/eval/gates.json, when a stage wrote it, is copied into the manifest; the
// export stage's outputs under export/ become the manifest's exports.
DriverOutcome run_stages(RunManifest& manifest, const RunConfig& config, const std::vector<DriverStage>& stages,
                         const DriverOptions& options);

// The indices [first, last] a selection covers; ConfigError for an unknown
// stage name (listing the names) or an empty range.
std::pair<std::size_t, std::size_t> select_stages(const std::vector<std::string>& names, const StageSelection& selection);

}  // namespace character::pipeline
