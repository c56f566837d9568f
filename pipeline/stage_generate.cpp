// The data stages of `character pipeline`: generate-dpo (prompts and DPO pairs:
// the teacher role-playing the constitution against the bare student) and
// introspect (reflections and self-interactions from the post-DPO student),
// both generate_data() (pipeline/generate_data.h) into RUN/data, resuming from
// the ledgers there when called again.
#include <string>

#include "pipeline/generate_data.h"
#include "pipeline/stage_support.h"

namespace character::pipeline {

namespace {

namespace fs = std::filesystem;

// kept/dropped/failed of one generation stage in the summary, as counts.
void add_counts(const nlohmann::json& summary, const std::string& stage, const std::string& unit, StageResult& r) {
  if (!summary.contains(stage)) return;
  const auto& s = summary[stage];
  r.counts[unit] = s.value("kept", 0);
  r.counts[stage + "_dropped"] = s.value("dropped", 0);
  r.counts[stage + "_failed"] = s.value("failed", 0);
}

void add_outputs(const StageContext& ctx, const std::vector<std::string>& files, StageResult& r) {
  for (const auto& name : files) {
    const fs::path path = data_dir(ctx) / name;
    if (fs::exists(path)) r.outputs.push_back(run_relative(ctx, path));
  }
}

// A stage run again on changed inputs (persona, DPO adapter) starts over: its
// ledgers hold answers to the earlier inputs. Teacher answers stay cached under
// RUN/data/cache, so asking again what did not change costs nothing.
void discard_earlier_data(const StageContext& ctx, const std::vector<std::string>& stages) {
  if (!ctx.fresh) return;
  for (const auto& stage : stages) {
    for (const char* suffix : {".jsonl", ".ledger.jsonl", ".failures.jsonl"}) fs::remove(data_dir(ctx) / (stage + suffix));
  }
}

StageResult finish(const GenerateDataResult& g, StageResult r) {
  r.usage = g.usage;
  r.cost_usd = g.cost_usd;
  r.summary = g.line;
  return r;
}

}  // namespace

StageResult run_generate_dpo_stage(const StageContext& ctx) {
  discard_earlier_data(ctx, {"prompts", "dpo"});
  GenerateDataOptions options = generation_options(ctx);
  options.stage = "dpo";
  const GenerateDataResult g = generate_data(options);
  StageResult r;
  if (fs::is_regular_file(ctx.config.persona)) r.inputs.push_back(ctx.config.persona);
  r.counts["prompts"] = g.summary.contains("prompts") ? g.summary["prompts"].value("count", 0) : 0;
  add_counts(g.summary, "dpo", "pairs", r);
  add_outputs(ctx, {"prompts.jsonl", "dpo.jsonl", "prompts.failures.jsonl", "dpo.failures.jsonl"}, r);
  if (r.counts.value("pairs", 0) == 0) {
    r.warnings.push_back("generate-dpo kept no DPO pair: train-dpo has nothing to train on (see " +
                         (data_dir(ctx) / "generation.json").string() + " for the filters' drops)");
  }
  return finish(g, std::move(r));
}

StageResult run_introspect_stage(const StageContext& ctx) {
  discard_earlier_data(ctx, {"reflections", "interactions", "sft"});
  GenerateDataOptions options = generation_options(ctx);
  options.stage = "introspection";
  options.introspection_from = "student";
  options.student_adapter = (train_dir(ctx, "dpo") / "adapter").string();
  const GenerateDataResult g = generate_data(options);
  StageResult r;
  r.inputs.push_back(run_relative(ctx, train_dir(ctx, "dpo") / "adapter"));
  add_counts(g.summary, "reflections", "reflections", r);
  add_counts(g.summary, "interactions", "interactions", r);
  add_outputs(ctx, {"reflections.jsonl", "interactions.jsonl", "sft.jsonl", "reflections.failures.jsonl",
                    "interactions.failures.jsonl"},
              r);
  return finish(g, std::move(r));
}

}  // namespace character::pipeline
