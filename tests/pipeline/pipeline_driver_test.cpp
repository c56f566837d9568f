// The stage loop of `character pipeline` (pipeline/pipeline_driver.h) on four
// small stages of its own that really read and write files in RUN/: skip on
// unchanged hashes, re-run on changed ones, --from/--until/--only, the gate stop
// and --force-export, interruption and failure records, and the printed lines.
#include "pipeline/pipeline_driver.h"

#include <gtest/gtest.h>

#include <map>

#include "base/atomic_file.h"
#include "base/error.h"
#include "tests/test_support.h"

namespace character::pipeline {
namespace {

namespace fs = std::filesystem;
using character::testing::TempDir;
using nlohmann::json;

// a → data/a.txt; b: data/a.txt → data/b.txt; gate: data/b.txt → eval/gates.json
// (fails when min_in_character_rate > 0.9, standing in for a measured rate of 0.9); export:
// export/peft/ (+ export/UNGATED when forced past a failed gate).
class DriverTest : public ::testing::Test {
 protected:
  DriverTest() {
    config_ = default_run_config();
    config_.persona = "pirate";
    config_.runs_dir = dir_.path();
    stages_ = {
        {"a",
         [this](const StageContext& ctx) {
           ++runs_["a"];
           fresh_["a"].push_back(ctx.fresh);
           if (fail_a_) throw FormatError("a: broken input");
           write_file_atomic(ctx.run_dir / "data" / "a.txt", "seed " + std::to_string(ctx.config.seed));
           StageResult r;
           r.outputs = {"data/a.txt"};
           r.counts = {{"rows", 1}};
           r.summary = "wrote a";
           return r;
         }},
        {"b",
         [this](const StageContext& ctx) {
           ++runs_["b"];
           fresh_["b"].push_back(ctx.fresh);
           if (interrupt_b_) {
             interrupt_b_ = false;
             throw Interrupted("b: stopped at batch 2");
           }
           write_file_atomic(ctx.run_dir / "data" / "b.txt", read_file(ctx.run_dir / "data" / "a.txt") + " b");
           StageResult r;
           r.inputs = {ctx.run_dir / "data" / "a.txt"};
           r.outputs = {"data/b.txt"};
           r.counts = {{"pairs", 2}, {"steps", 1}};
           r.usage = {{"requests", 3}};
           r.cost_usd = 0.5;
           r.warnings = {"b warns"};
           return r;
         }},
        {"gate",
         [this](const StageContext& ctx) {
           ++runs_["gate"];
           const bool passed = ctx.config.gates.min_in_character_rate <= 0.9;
           write_file_atomic(ctx.run_dir / "eval" / "gates.json",
                             json({{"passed", passed},
                                   {"gates", {{{"name", "in_character_rate"}, {"value", 1.0}, {"comparison", ">="},
                                               {"threshold", ctx.config.gates.min_in_character_rate},
                                               {"verdict", passed ? "pass" : "fail"}}}}})
                                 .dump());
           StageResult r;
           r.inputs = {ctx.run_dir / "data" / "b.txt"};
           r.outputs = {"eval/gates.json"};
           r.summary = passed ? "gates passed" : "a gate failed";
           r.exit_code = passed ? 0 : 10;
           return r;
         }},
        {"export",
         [this](const StageContext& ctx) {
           ++runs_["export"];
           write_file_atomic(ctx.run_dir / "export" / "peft" / "adapter_model.safetensors",
                             read_file(ctx.run_dir / "data" / "b.txt"));
           StageResult r;
           r.inputs = {ctx.run_dir / "data" / "b.txt"};
           r.outputs = {"export/peft"};
           if (ctx.config.force_export && ctx.config.gates.min_in_character_rate > 0.9) {
             write_file_atomic(ctx.run_dir / "export" / "UNGATED", "gates failed\n");
             r.outputs.push_back("export/UNGATED");
           }
           return r;
         }},
    };
  }

  RunManifest create() { return RunManifest::create(dir_ / "run", config_, {"a", "b", "gate", "export"}); }

  DriverOutcome drive(RunManifest& manifest, StageSelection selection = {}) {
    DriverOptions options;
    options.selection = std::move(selection);
    options.stop_requested = &stop_;
    options.print = [this](const std::string& line) { lines_.push_back(line); };
    lines_.clear();
    return run_stages(manifest, config_, stages_, options);
  }

  json manifest_on_disk() const { return json::parse(read_file(dir_ / "run" / "manifest.json")); }

  TempDir dir_;
  RunConfig config_;
  std::vector<DriverStage> stages_;
  std::map<std::string, int> runs_;
  std::map<std::string, std::vector<bool>> fresh_;  // StageContext::fresh of each call
  std::vector<std::string> lines_;
  std::atomic<bool> stop_{false};
  bool fail_a_ = false, interrupt_b_ = false;
};

TEST_F(DriverTest, FreshRunRunsEveryStageAndRecordsIt) {
  RunManifest manifest = create();
  const DriverOutcome outcome = drive(manifest);
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_EQ(outcome.status, "finished");
  EXPECT_EQ(outcome.ran, (std::vector<std::string>{"a", "b", "gate", "export"}));
  const json m = manifest_on_disk();
  EXPECT_EQ(m["status"], "finished");
  for (const char* s : {"a", "b", "gate", "export"}) EXPECT_EQ(m["stages"][s]["status"], "done") << s;
  EXPECT_EQ(m["stages"]["b"]["inputs"]["data/a.txt"], sha256_file(dir_ / "run" / "data" / "a.txt"));
  EXPECT_EQ(m["stages"]["b"]["counts"]["pairs"], 2);
  EXPECT_EQ(m["stages"]["b"]["usage"]["requests"], 3);
  EXPECT_EQ(m["totals"]["cost_usd"], 0.5);
  EXPECT_EQ(m["gates"]["passed"], true);
  ASSERT_EQ(m["exports"].size(), 1u);
  EXPECT_EQ(m["exports"][0]["format"], "peft");
  EXPECT_EQ(m["exports"][0]["path"], "export/peft");
  EXPECT_EQ(m["exports"][0]["gated"], true);
  ASSERT_EQ(lines_.size(), 5u);  // a line per stage and b's warning
  EXPECT_EQ(lines_[0].rfind("[1/4] a: wrote a (", 0), 0u) << lines_[0];
  EXPECT_EQ(lines_[1].rfind("[2/4] b: pairs 2, steps 1 (", 0), 0u) << lines_[1];
  EXPECT_NE(lines_[1].find("$0.50)"), std::string::npos) << lines_[1];
  EXPECT_EQ(lines_[2], "  warning: b warns");
}

TEST_F(DriverTest, ResumeSkipsDoneStagesWhoseHashesMatchAndRerunsChangedOnes) {
  RunManifest manifest = create();
  drive(manifest);
  RunManifest again = RunManifest::load(dir_ / "run");
  DriverOutcome outcome = drive(again);
  EXPECT_EQ(outcome.ran.size(), 0u);
  EXPECT_EQ(outcome.skipped.size(), 4u);
  EXPECT_EQ(runs_["a"], 1);
  EXPECT_EQ(lines_[0], "[1/4] a: done earlier, inputs unchanged: wrote a");
  EXPECT_EQ(outcome.status, "finished");

  // b's output edited: b runs again (and writes the same bytes, so gate and export stay).
  write_file_atomic(dir_ / "run" / "data" / "b.txt", "edited");
  outcome = drive(again);
  EXPECT_EQ(outcome.ran, std::vector<std::string>{"b"});
  EXPECT_EQ(lines_[1], "[2/4] b: running again: output data/b.txt changed");
  // It finished before: it starts over rather than resuming state from the earlier inputs.
  EXPECT_EQ(fresh_["b"], (std::vector<bool>{false, true}));
  EXPECT_EQ(runs_["gate"], 1);

  // a's output edited: a runs again and restores it; b's input is unchanged then.
  write_file_atomic(dir_ / "run" / "data" / "a.txt", "edited");
  outcome = drive(again);
  EXPECT_EQ(outcome.ran, std::vector<std::string>{"a"});
  EXPECT_EQ(manifest_on_disk()["stages"]["a"]["attempts"], 2);
}

TEST_F(DriverTest, FromUntilOnlySelectStages) {
  RunManifest manifest = create();
  DriverOutcome outcome = drive(manifest, {.from = "", .until = "b", .only = ""});
  EXPECT_EQ(outcome.ran, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(outcome.status, "partial");
  EXPECT_EQ(manifest_on_disk()["stages"]["gate"]["status"], "pending");

  outcome = drive(manifest, {.from = "b", .until = "", .only = ""});
  EXPECT_EQ(outcome.ran, (std::vector<std::string>{"b", "gate", "export"}));  // b again: --from re-runs
  EXPECT_EQ(runs_["a"], 1);
  EXPECT_EQ(outcome.status, "finished");

  outcome = drive(manifest, {.from = "", .until = "", .only = "gate"});
  EXPECT_EQ(outcome.ran, std::vector<std::string>{"gate"});
  EXPECT_EQ(runs_["gate"], 2);
}

TEST_F(DriverTest, SelectionErrorsNameTheProblem) {
  RunManifest manifest = create();
  try {
    drive(manifest, {.from = "gate", .until = "", .only = ""});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), "--from gate: the earlier stage a has not finished (status pending) in " +
                                         (dir_ / "run").string() + "; run it first (drop --from/--only)");
  }
  const std::vector<std::string> names = {"a", "b", "gate", "export"};
  try {
    select_stages(names, {.from = "", .until = "", .only = "train"});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "--only train: unknown stage, expected one of a, b, gate, export");
  }
  EXPECT_THROW(select_stages(names, {.from = "a", .until = "", .only = "b"}), ConfigError);
  EXPECT_THROW(select_stages(names, {.from = "gate", .until = "a", .only = ""}), ConfigError);
  EXPECT_EQ(select_stages(names, {}), (std::pair<std::size_t, std::size_t>{0, 3}));
  EXPECT_EQ(runs_["a"], 0);  // nothing ran
}

TEST_F(DriverTest, FailedGateExportsNothingAndExitsWithTheGateCode) {
  config_.gates.min_in_character_rate = 0.95;
  RunManifest manifest = create();
  DriverOutcome outcome = drive(manifest);
  EXPECT_EQ(outcome.exit_code, 10);
  EXPECT_EQ(outcome.status, "gated-out");
  EXPECT_EQ(runs_["export"], 0);
  EXPECT_FALSE(fs::exists(dir_ / "run" / "export"));
  json m = manifest_on_disk();
  EXPECT_EQ(m["status"], "gated-out");
  EXPECT_EQ(m["gates"]["passed"], false);
  EXPECT_EQ(m["stages"]["export"]["status"], "skipped");
  EXPECT_EQ(m["exports"], json::array());
  EXPECT_EQ(lines_.back(), "[4/4] export: skipped, gate failed");

  // Resumed as is: still gated out, still exit 10, gate not re-run.
  RunManifest again = RunManifest::load(dir_ / "run");
  outcome = drive(again);
  EXPECT_EQ(outcome.exit_code, 10);
  EXPECT_EQ(runs_["gate"], 1);
  EXPECT_EQ(runs_["export"], 0);

  // --force-export on resume: exported, marked ungated, still exit 10.
  config_.force_export = true;
  outcome = drive(again);
  EXPECT_EQ(outcome.exit_code, 10);
  EXPECT_EQ(outcome.ran, std::vector<std::string>{"export"});
  EXPECT_TRUE(fs::exists(dir_ / "run" / "export" / "UNGATED"));
  m = manifest_on_disk();
  ASSERT_EQ(m["exports"].size(), 1u);
  EXPECT_EQ(m["exports"][0]["gated"], false);
  EXPECT_EQ(m["status"], "gated-out");
}

TEST_F(DriverTest, InterruptedStageIsRecordedAndResumes) {
  interrupt_b_ = true;
  RunManifest manifest = create();
  EXPECT_THROW(drive(manifest), Interrupted);
  json m = manifest_on_disk();
  EXPECT_EQ(m["status"], "interrupted");
  EXPECT_EQ(m["stages"]["a"]["status"], "done");
  EXPECT_EQ(m["stages"]["b"]["status"], "interrupted");
  EXPECT_EQ(m["stages"]["b"]["error"], "b: stopped at batch 2");
  EXPECT_EQ(m["stages"]["gate"]["status"], "pending");

  RunManifest again = RunManifest::load(dir_ / "run");
  const DriverOutcome outcome = drive(again);
  EXPECT_EQ(outcome.ran, (std::vector<std::string>{"b", "gate", "export"}));
  EXPECT_EQ(runs_["a"], 1);
  EXPECT_EQ(manifest_on_disk()["stages"]["b"]["attempts"], 2);
  EXPECT_EQ(outcome.status, "finished");
  // An interrupted stage resumes its own state.
  EXPECT_EQ(fresh_["b"], (std::vector<bool>{false, false}));
}

TEST_F(DriverTest, StopFlagStopsBeforeTheNextStage) {
  RunManifest manifest = create();
  stop_ = true;
  try {
    drive(manifest);
    FAIL();
  } catch (const Interrupted& e) {
    EXPECT_EQ(std::string(e.what()), "pipeline: stopped before a; continue with --resume " + (dir_ / "run").string());
    EXPECT_EQ(e.exit_code(), 130);
  }
  EXPECT_EQ(runs_["a"], 0);
  EXPECT_EQ(manifest_on_disk()["status"], "interrupted");
}

TEST_F(DriverTest, FailingStageMarksStageAndRunFailedAndPropagates) {
  fail_a_ = true;
  RunManifest manifest = create();
  try {
    drive(manifest);
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_STREQ(e.what(), "a: broken input");
  }
  const json m = manifest_on_disk();
  EXPECT_EQ(m["status"], "failed");
  EXPECT_EQ(m["stages"]["a"]["status"], "failed");
  EXPECT_EQ(m["stages"]["a"]["error"], "a: broken input");
  EXPECT_EQ(m["stages"]["b"]["status"], "pending");
}

}  // namespace
}  // namespace character::pipeline
