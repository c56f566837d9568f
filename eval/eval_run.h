// `character eval` as a function: loads a model (and adapter), runs the
// consistency probe, scores every response, runs the routing analyses on MoE
// students, evaluates the gates, and writes OUT/report.json, report.md and
// report.html (docs/eval.md). The pipeline's eval stage calls the same function.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "eval/gates.h"

namespace character::eval {

// How the probe samples and scores. Unset sampling fields come from the model's
// generation_config.json (the run's sampling settings).
struct ProbeSettings {
  int64_t samples = 3;            // sampled responses per prompt variant, plus one greedy
  bool greedy = true;             // also one greedy response per prompt variant
  int64_t max_new_tokens = 96;
  std::optional<double> temperature, top_p;
  uint64_t seed = 0;
  // Paraphrase variants of each prompt (eval/probe_set.h): "please", "lower",
  // "punct", "long". Empty: originals only (no flip rate).
  std::vector<std::string> variants = {"please", "lower", "punct", "long"};
  std::vector<std::string> categories;      // empty: all categories
  std::filesystem::path extra_prompts;      // JSON file of {"category", "prompt"} items (optional)
  int64_t batch_rows = 16;                  // prompts generated per engine batch
};

struct EvalOptions {
  std::filesystem::path model_dir;
  std::filesystem::path adapter_dir;        // empty: the base model alone
  std::string persona;                      // shipped name or YAML path (personas/persona.h)
  std::filesystem::path out_dir;            // report.json, report.md, report.html, judge_cache.jsonl
  std::string device = "cpu";
  std::string dtype;                        // empty: the device default
  ProbeSettings probe;
  // Training coverage files (router_train coverage.json), merged; empty: the
  // adapter directory's sibling coverage.json when there is one.
  std::vector<std::filesystem::path> coverage_files;
  bool base_routing = false;                // also route the probe through the base model: drift base → tuned
  // LLM judge through the teacher client (remote/): off unless judge_url is set.
  std::string judge_url, judge_model, judge_key_env;
  GateThresholds gates;
  bool progress = true;                     // progress lines on stderr
  const std::atomic<bool>* stop_requested = nullptr;  // set: stop between generation batches (Interrupted)
  std::string code_version;                 // recorded in report.json (the CLI passes its version)
};

struct EvalSummary {
  std::filesystem::path report_json, report_md, report_html;
  double in_character_rate = 0.0;
  bool gates_passed = false;
  // What `character eval` prints at the end (added for the command's summary).
  int64_t responses = 0;
  std::optional<double> ci_low, ci_high;     // Wilson 95% of in_character_rate
  std::vector<std::string> worst_categories;
  std::vector<std::string> warnings;
  GateOutcome gates;
};

// {"report_json", "report_md", "report_html", "in_character_rate", "ci_low",
// "ci_high", "responses", "worst_categories", "warnings", "gates_passed", "gates"}.
nlohmann::json to_json(const EvalSummary& summary);

// Runs everything and writes the reports atomically (a half-finished eval leaves
// no report.json). ConfigError / FormatError / IoError for bad input, naming it.
EvalSummary run_eval(const EvalOptions& options);

}  // namespace character::eval
