// The stage table (names in pipeline order, name → function) and what the
// stage files share (pipeline/stage_support.h): run-directory paths, the final
// base model, the learning rate, and the options for generate_data and
// run_training built from the run's config.
#include "pipeline/stages.h"

#include <algorithm>
#include <map>

#include "base/atomic_file.h"
#include "base/error.h"
#include "pipeline/learning_rate.h"
#include "pipeline/stage_support.h"

namespace character::pipeline {

namespace fs = std::filesystem;

namespace {

using StageFunction = std::function<StageResult(const StageContext&)>;

const std::vector<std::pair<std::string, StageFunction>>& stage_table() {
  static const std::vector<std::pair<std::string, StageFunction>> table = {
      {"check", run_check_stage},           {"generate-dpo", run_generate_dpo_stage},
      {"train-dpo", run_train_dpo_stage},   {"introspect", run_introspect_stage},
      {"train-sft", run_train_sft_stage},   {"eval", run_eval_stage},
      {"gate", run_gate_stage},             {"export", run_export_stage},
  };
  return table;
}

// Rows of a JSONL file (non-blank lines), for sizing checkpoints before training.
int64_t jsonl_rows(const fs::path& file) {
  if (!fs::exists(file)) return 0;
  return static_cast<int64_t>(read_jsonl_lines(file).size());
}

}  // namespace

const std::vector<std::string>& stage_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& [name, function] : stage_table()) out.push_back(name);
    return out;
  }();
  return names;
}

std::function<StageResult(const StageContext&)> stage_function(const std::string& name) {
  for (const auto& [stage, function] : stage_table()) {
    if (stage == name) return function;
  }
  std::string known;
  for (const auto& n : stage_names()) known += (known.empty() ? "" : ", ") + n;
  throw ConfigError("stage \"" + name + "\", expected one of " + known);
}

fs::path data_dir(const StageContext& ctx) { return ctx.run_dir / "data"; }
fs::path train_dir(const StageContext& ctx, const std::string& name) { return ctx.run_dir / "checkpoints" / name; }
fs::path eval_dir(const StageContext& ctx) { return ctx.run_dir / "eval"; }
fs::path export_dir(const StageContext& ctx) { return ctx.run_dir / "export"; }

fs::path student_dir(const RunConfig& config) {
  if (config.student.empty()) {
    // The command fills in the lab student (pipeline/lab_default.h) before any stage runs.
    throw ConfigError("student: empty, expected a model directory (--student DIR or `student:` in the config; "
                      "`character pipeline` uses the lab student then)");
  }
  return fs::absolute(config.student).lexically_normal();
}

fs::path final_base_model(const StageContext& ctx) {
  return ctx.config.training.paper_mode ? fs::absolute(train_dir(ctx, "dpo-merged")) : student_dir(ctx.config);
}

double base_learning_rate(const RunConfig& config) {
  return config.training.learning_rate ? *config.training.learning_rate : default_learning_rate(student_dir(config));
}

fs::path run_relative(const StageContext& ctx, const fs::path& path) {
  const fs::path relative = path.lexically_relative(ctx.run_dir);
  if (relative.empty() || *relative.begin() == "..") return path;
  return relative;
}

GenerateDataOptions generation_options(const StageContext& ctx) {
  const RunConfig& c = ctx.config;
  if (c.teacher.url.empty()) {
    throw ConfigError("teacher.url: empty, expected the teacher's OpenAI-compatible base URL (--teacher-url)");
  }
  GenerateDataOptions g;
  g.persona = c.persona;
  g.teacher_url = c.teacher.url;
  g.teacher_model = c.teacher.model;
  g.teacher_key_env = c.teacher.api_key_env;
  g.teacher_in_flight = c.teacher.in_flight;
  g.teacher_retries = c.teacher.retries;
  g.teacher_timeout_s = c.teacher.timeout_s;
  g.price_in = c.teacher.price_in;
  g.price_out = c.teacher.price_out;
  g.student_dir = student_dir(c).string();
  g.device = c.device;
  g.dtype = c.dtype;
  g.out = data_dir(ctx).string();
  g.scale = c.scale;
  g.overrides = c.counts;
  g.resume = true;
  g.seed = c.seed;
  g.max_tokens = c.max_tokens;
  g.introspection_max_tokens = c.introspection_max_tokens;
  g.constitution_share = c.constitution_share;
  g.coverage_augment = c.coverage_augment;
  g.coverage_pool_factor = c.coverage_pool_factor;
  g.min_chars = static_cast<std::size_t>(std::max(c.min_chars, 0));
  g.max_chars = static_cast<std::size_t>(std::max(c.max_chars, 0));
  g.keep_unfinished = c.keep_unfinished;
  g.question_max_tokens = c.question_max_tokens;
  g.chunk = static_cast<std::size_t>(std::max(c.generation_chunk, 0));
  g.progress = !ctx.quiet;
  g.stop_requested = ctx.stop_requested;
  return g;
}

TrainRunOptions training_options(const StageContext& ctx, lora::TrainKind kind) {
  const RunConfig& c = ctx.config;
  const TrainingConfig& t = c.training;
  const bool dpo = kind == lora::TrainKind::kDpo;
  TrainRunOptions r;
  r.model_dir = dpo ? student_dir(c) : final_base_model(ctx);
  r.data_file = data_dir(ctx) / (dpo ? "dpo.jsonl" : "sft.jsonl");
  r.out_dir = train_dir(ctx, dpo ? "dpo" : "sft");
  // SFT continues from the DPO adapter at a lower rate; paper mode trains a
  // fresh adapter on the DPO-merged base at the full rate.
  if (!dpo && !t.paper_mode) r.init_adapter = train_dir(ctx, "dpo") / "adapter";
  r.device = c.device;
  r.dtype = c.dtype;
  r.lora = t.lora;
  auto& o = r.train;
  o.kind = kind;
  o.learning_rate = base_learning_rate(c) * (dpo || t.paper_mode ? 1.0 : t.sft_lr_factor);
  o.schedule = lora::parse_lr_schedule(t.schedule, "training.schedule");
  o.warmup_steps = t.warmup_steps;
  o.batch_size = t.batch_size;
  o.grad_accum = t.grad_accum;
  o.epochs = t.epochs;
  o.max_steps = t.max_steps;
  o.seed = c.seed;
  o.dpo_beta = t.dpo_beta;
  o.dpo_nll_coef = t.dpo_nll_coef;
  o.checkpoint_every = t.checkpoint_every;
  if (o.checkpoint_every == 0) {
    // About four checkpoints per stage, so a killed stage loses a quarter at most.
    const auto rows = static_cast<int64_t>(static_cast<double>(jsonl_rows(r.data_file)) * (1.0 - t.held_out));
    const int64_t micro = (std::max<int64_t>(rows, 1) + t.batch_size - 1) / std::max<int64_t>(t.batch_size, 1);
    const int64_t steps = t.max_steps > 0 ? t.max_steps : micro * std::max<int64_t>(t.epochs, 1) / std::max<int64_t>(t.grad_accum, 1);
    o.checkpoint_every = std::max<int64_t>(1, steps / 4);
  }
  // A stage called again continues from its newest checkpoint (a fresh start when there is none).
  o.resume = true;
  o.progress = !ctx.quiet;
  o.stop_requested = ctx.stop_requested;
  r.max_length = t.max_length;
  r.max_prompt_length = t.max_prompt_length;
  r.held_out = t.held_out;
  r.aux_loss_coef = t.aux_loss_coef;
  r.z_loss_coef = t.z_loss_coef;
  r.coverage_threshold = t.coverage_threshold;
  return r;
}

}  // namespace character::pipeline
