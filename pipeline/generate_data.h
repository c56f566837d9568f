// The work of `character generate-data` as a function: prompts, DPO pairs,
// reflections and self-interactions for one persona into one directory, every
// stage resuming from its ledger and every remote answer cached under OUT/cache
// (docs/data.md). The command parses flags into GenerateDataOptions; the
// pipeline's generate-dpo and introspect stages fill the same struct.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "pipeline/scale.h"

namespace character::pipeline {

struct GenerateDataOptions {
  std::string persona;  // shipped name or YAML path
  // The teacher: an OpenAI-compatible endpoint; the key by environment-variable NAME.
  std::string teacher_url, teacher_model, teacher_key_env;
  int teacher_in_flight = 8;
  int teacher_retries = 5;
  double teacher_timeout_s = 300;
  std::optional<double> price_in, price_out;  // USD per million tokens
  // The student: a local model directory (engine) or an endpoint, not both.
  std::string student_dir, student_url, student_model, student_key_env, student_adapter;
  std::string device = "cpu";
  std::string dtype;  // local student; empty: the device default
  int64_t student_batch = 16;
  std::string out;
  std::string scale = "mini";
  ScaleOverrides overrides;
  std::string stage = "all";       // prompts | dpo | introspection | all
  std::string introspection_from;  // "" = student when there is one, else teacher
  bool resume = false;             // continue a run already in `out`
  uint64_t seed = 0;
  int max_tokens = 512;
  int introspection_max_tokens = 1024;
  double constitution_share = 0.5;
  // Coverage-guided augmentation of the DPO prompts (RunConfig::coverage_augment);
  // needs a local MoE student (student_dir) and the persona's probe prompts.
  bool coverage_augment = false;
  double coverage_pool_factor = 3.0;
  std::size_t min_chars = 20, max_chars = 16000;
  std::string hallucinated_turns = "truncate";
  bool keep_thinking = false;
  bool keep_unfinished = false;
  std::size_t chunk = 0;  // items per batch; 0 = the stages' defaults
  int question_max_tokens = 0;
  bool progress = true;   // progress lines with ETA on stderr
  // Checked between batches: when set, Interrupted after the ledgers are flushed.
  const std::atomic<bool>* stop_requested = nullptr;
};

struct GenerateDataResult {
  // What OUT/generation.json holds: counts per stage, filter statistics, usage, seconds.
  nlohmann::json summary;
  std::string line;             // the one-line summary the command prints
  nlohmann::json usage;         // {"teacher": UsageMeter json, "student": … when remote}
  double cost_usd = 0.0;        // 0 unless prices are set
};

// Runs the asked stages. ConfigError for contradictory options or a resume
// that asks for other data than the run in `out`; RemoteError, FormatError,
// IoError as the parts report them; Interrupted when stop_requested is set.
GenerateDataResult generate_data(const GenerateDataOptions& options);

// "1m05s" for an ETA or a duration.
std::string duration_text(double seconds);

}  // namespace character::pipeline
