// Quality gates: thresholds on what an eval report measured (overall and
// lowest-category in-character rate, paraphrase flip rate, probe training
// coverage for MoE students, no NaN), each gate's value, threshold and verdict,
// and the files CI reads: gates.json and JUnit XML. docs/gates.md has the
// defaults and why; `character gate` and the pipeline's gate stage call this.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace character::eval {

// Thresholds; every field has a documented default (docs/gates.md).
struct GateThresholds {
  double min_in_character_rate = 0.80;     // overall rate over every probe response
  double min_category_rate = 0.60;         // the lowest of the eight category rates
  double max_paraphrase_flip_rate = 0.15;  // share of (prompt, paraphrase) pairs that flip
  double min_probe_coverage = 0.90;        // MoE: share of probe assignments on covered experts
  int64_t coverage_min_loss_tokens = 16;   // an expert is covered from this many loss-bearing tokens
  bool require_no_nan = true;              // NaN/Inf anywhere in logits or metrics fails
  // MoE student with adapters but no router training: "warn" (a note naming
  // --train-router, the default) or "fail" (an extra gate that fails).
  std::string untrained_router = "warn";
};

// Reads the `gates:` mapping of a YAML run config (or a YAML/JSON file whose top
// level is that mapping) over the defaults; unknown keys and wrong types are a
// ConfigError naming the file and the key. Missing file: IoError.
GateThresholds load_gate_thresholds(const std::filesystem::path& config_file);
// The same from an already parsed node/JSON (the pipeline's resolved config).
GateThresholds gate_thresholds_from_json(const nlohmann::json& gates, const std::string& source);
nlohmann::json to_json(const GateThresholds& thresholds);

enum class GateVerdict { kPass, kFail, kSkip };
const char* to_string(GateVerdict verdict);  // "pass" | "fail" | "skip"

struct GateResult {
  std::string name;        // "in_character_rate", "min_category_rate", ...
  std::optional<double> value;  // unset when skipped
  double threshold = 0.0;
  std::string comparison;  // ">=" or "<="
  GateVerdict verdict = GateVerdict::kSkip;
  std::string note;        // why skipped, which category, the remedy
};

struct GateOutcome {
  std::vector<GateResult> gates;
  std::vector<std::string> notes;  // e.g. the --train-router remedy for an MoE student
  bool passed() const;             // no gate failed (skips do not fail)
  std::string failed_names() const;  // the failed gates' names, ", "-separated
};

// Evaluates the thresholds on an eval report (eval/report.json, the schema of
// docs/eval.md). FormatError naming `source` and the field when the report lacks
// what a gate needs.
GateOutcome evaluate_gates(const nlohmann::json& report, const GateThresholds& thresholds, const std::string& source);

// gates.json: {"format": "character-gates", "version": 1, "passed", "thresholds",
// "gates": [{"name", "value", "threshold", "comparison", "verdict", "note"}], "notes"}.
nlohmann::json to_json(const GateOutcome& outcome, const GateThresholds& thresholds);
// JUnit XML: one <testsuite name="character.gates"> with a <testcase> per gate,
// <failure> for a failed gate and <skipped> for a skipped one.
std::string to_junit_xml(const GateOutcome& outcome, const std::string& suite_name = "character.gates");

// Writes DIR/gates.json and DIR/gates.junit.xml atomically.
void write_gate_files(const GateOutcome& outcome, const GateThresholds& thresholds, const std::filesystem::path& dir);

// The gate table as aligned text for a terminal (name, value, threshold, verdict).
std::string format_gate_table(const GateOutcome& outcome);

// The eval directory of RUN_OR_EVAL_DIR: the directory itself when it holds
// report.json, else DIR/eval (a pipeline run directory). IoError naming the
// paths tried when neither holds a report.
std::filesystem::path find_eval_dir(const std::filesystem::path& run_or_eval_dir);
// EVAL_DIR/report.json parsed; IoError when missing, FormatError when it is not
// JSON or not a "character-eval-report".
nlohmann::json read_eval_report(const std::filesystem::path& eval_dir);

}  // namespace character::eval
