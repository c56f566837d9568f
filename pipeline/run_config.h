// The resolved configuration of a `character pipeline` run: documented defaults,
// then a YAML file (--config), then flags, in rising precedence; scale presets set
// the data counts and --paper-scale the paper's hyperparameters. Recorded whole in
// the run's manifest.json; secrets appear only as environment-variable names.
// docs/pipeline.md lists every key.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "eval/eval_run.h"
#include "eval/gates.h"
#include "lora/lora_config.h"
#include "pipeline/scale.h"

namespace character::pipeline {

// An OpenAI-compatible endpoint (the teacher, or an optional judge).
struct EndpointConfig {
  std::string url;            // empty: none (the teacher then comes from the lab, issue 7)
  std::string model;
  std::string api_key_env;    // the NAME of the variable holding the key, never the key
  int in_flight = 8;
  int retries = 5;
  double timeout_s = 300;
  std::optional<double> price_in, price_out;  // USD per million tokens, for the cost column
};

// Hyperparameters shared by the DPO and SFT training stages.
struct TrainingConfig {
  lora::LoraConfig lora;                // rank, alpha, train_* switches, train_router, expert layout
  std::optional<double> learning_rate;  // unset: from the student's hidden size (Tinker's recipe)
  double sft_lr_factor = 0.25;          // SFT continues from the DPO adapter at lr × this
  bool paper_mode = false;              // fold DPO into the base and train a fresh SFT adapter
  int64_t batch_size = 8;
  int64_t grad_accum = 1;
  int64_t epochs = 1;
  int64_t max_steps = 0;                // > 0 overrides epochs (smoke runs)
  std::string schedule = "linear";
  int64_t warmup_steps = 0;
  double dpo_beta = 0.1;
  double dpo_nll_coef = 0.1;
  int64_t max_length = 2048;
  int64_t max_prompt_length = 1024;
  double held_out = 0.05;
  int64_t checkpoint_every = 0;         // 0: the stage picks (a few per stage, for resume)
  std::optional<double> aux_loss_coef;  // unset: the model's router_aux_loss_coef when routers train
  double z_loss_coef = 1e-3;
  int64_t coverage_threshold = 16;
};

struct RunConfig {
  std::string persona;                  // shipped name or YAML path
  std::string scale = "mini";           // scale_names()
  ScaleOverrides counts;                // explicit data counts over the preset
  bool paper_scale = false;             // the paper's hyperparameters (rank 64, batch 32, lr 5e-5, ...)
  std::filesystem::path student;        // model directory; empty: the lab student (issue 7)
  std::string device = "cpu";
  std::string dtype;
  uint64_t seed = 0;
  EndpointConfig teacher;
  EndpointConfig judge;                 // url empty: signal scoring only
  TrainingConfig training;
  eval::ProbeSettings probe;
  bool base_routing = true;             // eval also routes the probe through the base model
  eval::GateThresholds gates;
  std::vector<std::string> exports = {"tinker", "peft"};  // lora::ExportFormat names
  bool force_export = false;            // export even when a gate fails, marked ungated
  bool allow_drop_router = false;       // tinker export without router deltas
  std::filesystem::path runs_dir = "runs";
  // Data generation knobs (pipeline/generate_data_command.cpp's flags).
  int max_tokens = 512;
  int introspection_max_tokens = 1024;
  // generate-data's --min-chars, --max-chars, --keep-unfinished and
  // --question-max-tokens (0: the generator's default): tiny test runs need them.
  int min_chars = 20;
  int max_chars = 16000;
  bool keep_unfinished = false;
  int question_max_tokens = 0;
  int generation_chunk = 0;  // items per generation batch (stop/ledger granularity); 0: the defaults
  // Share of DPO prompts the teacher writes from the constitution (generate-data's
  // --constitution-share); the lab's teacher writes none, so lab runs use 0.
  double constitution_share = 0.5;
  // Coverage-guided prompt augmentation (router_train/coverage_augment.h): DPO
  // prompts are picked from a pool `coverage_pool_factor` times larger, with
  // phrasing variants, so their routes through the student cover the experts the
  // probe reaches. MoE students only.
  bool coverage_augment = false;
  double coverage_pool_factor = 3.0;
  // The persona lab (lab/lab.h), used for whatever of student and teacher is not
  // given: student empty → the lab student, teacher.url empty → the lab teacher
  // served on loopback.
  struct Lab {
    std::string size = "demo";
    std::filesystem::path dir;  // empty: lab::default_lab_dir(size, seed)
    uint64_t seed = 0;
  } lab;
};

// The defaults, with --paper-scale's and the scale's settings applied when asked.
RunConfig default_run_config();

// The paper's hyperparameters (LoRA rank 64, batch 32, lr 5e-5, β 0.1, NLL 0.1,
// one epoch) and paper_scale = true. A preset beneath explicit values: callers
// apply it before the YAML file's values and the flags.
void apply_paper_scale(RunConfig& config);

// Applies a YAML file over `config`. Unknown keys, wrong types, bad values:
// ConfigError "file:line:col: key.path: found X, expected Y". Missing: IoError.
void apply_config_file(RunConfig& config, const std::filesystem::path& file);

// The whole config as JSON (what --print-config shows and the manifest records)
// and back; the JSON form uses the YAML keys.
nlohmann::json to_json(const RunConfig& config);
RunConfig run_config_from_json(const nlohmann::json& json, const std::string& source);

// Every key of the YAML/JSON form as a dotted path ("training.lora.rank"), in
// --print-config order.
std::vector<std::string> run_config_keys();

// Every check that needs no I/O: counts ≥ 0, rates in range, known names.
void validate(const RunConfig& config);

}  // namespace character::pipeline
