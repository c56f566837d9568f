// What the stage files (pipeline/stage_*.cpp) share: the fixed paths inside a
// run directory (DESIGN.md "Run directory"), the options they hand to the
// reusable functions (generate_data, run_training, export_checkpoint) built
// from the run's config, and the base model that evaluation and export use.
// Internal to the stages; the driver sees pipeline/stages.h.
#pragma once

#include <filesystem>
#include <string>

#include "pipeline/generate_data.h"
#include "pipeline/stages.h"
#include "pipeline/train_run.h"

namespace character::pipeline {

// RUN/data, RUN/checkpoints/<name>, RUN/eval, RUN/export.
std::filesystem::path data_dir(const StageContext& ctx);
std::filesystem::path train_dir(const StageContext& ctx, const std::string& name);  // "dpo", "sft", "dpo-merged"
std::filesystem::path eval_dir(const StageContext& ctx);
std::filesystem::path export_dir(const StageContext& ctx);

// The student directory; ConfigError when the config has none (`character
// pipeline` hands the stages a config with the lab student filled in).
std::filesystem::path student_dir(const RunConfig& config);

// The model the final adapter (RUN/checkpoints/sft/adapter) applies to: the
// student, or with training.paper_mode the DPO-merged student in
// RUN/checkpoints/dpo-merged that train-sft wrote. Eval and export use it.
std::filesystem::path final_base_model(const StageContext& ctx);

// training.learning_rate, or Tinker's default for the student (learning_rate.h).
double base_learning_rate(const RunConfig& config);

// generate-data's options for RUN/data: teacher, local student, scale, filters,
// seed; resume always on (a stage called again continues its ledgers).
GenerateDataOptions generation_options(const StageContext& ctx);

// run_training's options for one train stage (kind dpo or sft) from the
// training section: adapters, schedule, batches, checkpoints every
// `checkpoint_every` (or a few per stage), resume when a checkpoint exists.
TrainRunOptions training_options(const StageContext& ctx, lora::TrainKind kind);

// `path` relative to RUN when it lies inside it (what StageResult records).
std::filesystem::path run_relative(const StageContext& ctx, const std::filesystem::path& path);

}  // namespace character::pipeline
