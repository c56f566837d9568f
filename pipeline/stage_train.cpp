// The training stages of `character pipeline`: train-dpo (a fresh adapter on the
// student over RUN/data/dpo.jsonl) and train-sft (over RUN/data/sft.jsonl,
// continuing from the DPO adapter at training.sft_lr_factor × the rate, or with
// training.paper_mode a fresh adapter on the student with the DPO adapter merged
// in, written once to RUN/checkpoints/dpo-merged). Both are run_training()
// (pipeline/train_run.h) into RUN/checkpoints/<dpo|sft>, resuming from the
// newest checkpoint there when called again.
#include <cmath>
#include <cstdio>
#include <string>

#include "base/log.h"
#include "model/io/config.h"
#include "pipeline/export_run.h"
#include "pipeline/stage_support.h"

namespace character::pipeline {

namespace {

namespace fs = std::filesystem;

std::string number(double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", value);
  return buf;
}

StageResult train_stage(const StageContext& ctx, const TrainRunOptions& options, const std::string& name) {
  const TrainRunResult run = run_training(options);
  const auto& t = run.train;
  StageResult r;
  r.inputs.push_back(run_relative(ctx, options.data_file));
  if (!options.init_adapter.empty()) r.inputs.push_back(run_relative(ctx, options.init_adapter));
  r.outputs.push_back(run_relative(ctx, t.adapter_dir));
  r.outputs.push_back(run_relative(ctx, options.out_dir / "metrics.jsonl"));
  if (fs::exists(options.out_dir / "coverage.json")) r.outputs.push_back(run_relative(ctx, options.out_dir / "coverage.json"));
  r.counts["steps"] = t.steps;
  r.counts["resumed_from_step"] = t.start_step;
  if (run.summary.contains("rows")) {
    r.counts["train_rows"] = run.summary["rows"]["train"];
    r.counts["held_out_rows"] = run.summary["rows"]["held_out"];
  }
  r.counts["learning_rate"] = options.train.learning_rate;
  r.counts["final_train_loss"] = t.final_train_loss;
  r.counts["final_held_out_loss"] = t.final_held_out_loss;  // NaN → null
  std::string line = name + ": " + std::to_string(t.steps) + " steps at lr " + number(options.train.learning_rate) +
                     ", train loss " + number(t.final_train_loss);
  if (!std::isnan(t.final_held_out_loss)) line += ", held-out " + number(t.final_held_out_loss);
  if (options.train.kind == lora::TrainKind::kDpo) {
    r.counts["final_dpo_accuracy"] = t.final_dpo_accuracy;
    r.counts["final_dpo_margin"] = t.final_dpo_margin;
    if (!std::isnan(t.final_dpo_accuracy)) line += ", DPO accuracy " + number(t.final_dpo_accuracy);
  }
  if (t.start_step > 0) line += " (resumed at step " + std::to_string(t.start_step) + ")";
  r.summary = line + " → " + run_relative(ctx, t.adapter_dir).string();
  return r;
}

// Paper mode: the student with the DPO adapter folded in, as a full checkpoint in
// RUN/checkpoints/dpo-merged (lora/export.h's merged format). The export is
// atomic, so a directory that exists is complete.
void write_dpo_merged_base(const StageContext& ctx, StageResult& r) {
  const fs::path merged = train_dir(ctx, "dpo-merged");
  r.outputs.push_back(run_relative(ctx, merged));
  if (fs::exists(merged)) return;
  const fs::path student = student_dir(ctx.config);
  ExportRunOptions options;
  options.checkpoint = train_dir(ctx, "dpo") / "adapter";
  options.out = merged;
  options.format = lora::ExportFormat::kMerged;
  options.model_dir = student;
  // The merged base keeps the student's storage precision.
  options.merged_dtype = model::load_config(student).torch_dtype == "float32" ? "float32" : "bfloat16";
  export_checkpoint(options);
  log::info("train-sft: paper mode: DPO adapter merged into " + merged.string());
}

}  // namespace

// A stage run again on changed inputs starts over: its checkpoints were trained
// on the earlier data and would otherwise be resumed (or returned as final).
void discard_earlier_training(const StageContext& ctx, const std::vector<std::string>& dirs) {
  if (!ctx.fresh) return;
  for (const auto& name : dirs) fs::remove_all(train_dir(ctx, name));
}

StageResult run_train_dpo_stage(const StageContext& ctx) {
  discard_earlier_training(ctx, {"dpo"});
  return train_stage(ctx, training_options(ctx, lora::TrainKind::kDpo), "train-dpo");
}

StageResult run_train_sft_stage(const StageContext& ctx) {
  discard_earlier_training(ctx, {"sft", "dpo-merged"});
  StageResult merged;
  if (ctx.config.training.paper_mode) write_dpo_merged_base(ctx, merged);
  StageResult r = train_stage(ctx, training_options(ctx, lora::TrainKind::kSft), "train-sft");
  r.outputs.insert(r.outputs.end(), merged.outputs.begin(), merged.outputs.end());
  if (ctx.config.training.paper_mode) {
    r.inputs.push_back(run_relative(ctx, train_dir(ctx, "dpo") / "adapter"));
    r.summary += " (paper mode: fresh adapter on " + run_relative(ctx, final_base_model(ctx)).string() + ")";
  } else {
    r.summary += " (continued from the DPO adapter)";
  }
  return r;
}

}  // namespace character::pipeline
