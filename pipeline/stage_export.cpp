// The export stage of `character pipeline`: the final adapter
// (RUN/checkpoints/sft/adapter, over the base that eval used) in every format of
// config.exports, each through export_checkpoint() (pipeline/export_run.h), into
// RUN/export: <persona>.tinker.tar, peft/, merged/. Only after the gates passed
// (RUN/eval/gates.json), or with force_export, which marks the export with
// RUN/export/UNGATED and the result's exports as ungated. A Tinker archive
// cannot hold router deltas: without allow_drop_router that format is skipped
// with a warning naming the formats that keep them.
#include <string>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/json_read.h"
#include "lora/adapter_file.h"
#include "personas/persona.h"
#include "pipeline/export_run.h"
#include "pipeline/stage_support.h"

namespace character::pipeline {

namespace {

namespace fs = std::filesystem;

// gates.json's verdict and the failed gates' names.
struct GateVerdict {
  bool passed = false;
  std::string failed;  // "in_character_rate, min_category_rate"
};

GateVerdict read_gates(const fs::path& file) {
  if (!fs::exists(file)) throw ConfigError("export: " + file.string() + " does not exist; run the gate stage first");
  const nlohmann::json gates = read_json_file(file);
  if (!gates.is_object() || !gates.contains("passed") || !gates["passed"].is_boolean()) {
    throw FormatError(file.string() + ": field passed missing or not a boolean, expected gates.json of `character gate`");
  }
  GateVerdict v;
  v.passed = gates["passed"].get<bool>();
  for (const auto& gate : gates.value("gates", nlohmann::json::array())) {
    if (gate.value("verdict", "") == "fail") v.failed += (v.failed.empty() ? "" : ", ") + gate.value("name", "?");
  }
  return v;
}

fs::path export_path(const StageContext& ctx, lora::ExportFormat format, const std::string& persona) {
  switch (format) {
    case lora::ExportFormat::kTinker: return export_dir(ctx) / (persona + ".tinker.tar");
    case lora::ExportFormat::kPeft: return export_dir(ctx) / "peft";
    case lora::ExportFormat::kMerged: return export_dir(ctx) / "merged";
  }
  return {};
}

}  // namespace

StageResult run_export_stage(const StageContext& ctx) {
  const RunConfig& c = ctx.config;
  const fs::path gates_file = eval_dir(ctx) / "gates.json";
  const GateVerdict gates = read_gates(gates_file);
  StageResult r;
  r.inputs.push_back(run_relative(ctx, gates_file));
  const fs::path adapter_dir = train_dir(ctx, "sft") / "adapter";
  r.inputs.push_back(run_relative(ctx, adapter_dir));
  const fs::path ungated_marker = export_dir(ctx) / "UNGATED";
  if (!gates.passed && !c.force_export) {
    r.summary = "export: nothing exported, the gates failed (" + gates.failed + "); --force-export exports anyway";
    r.exit_code = GateFailure(r.summary).exit_code();
    return r;
  }

  const std::string persona = personas::find_persona(c.persona).name;
  const lora::AdapterFile adapter = lora::read_adapter_config(adapter_dir);
  const bool router_deltas = adapter.config.train_router != lora::RouterTraining::kNone;
  fs::create_directories(export_dir(ctx));
  std::string written;
  for (const auto& name : c.exports) {
    const lora::ExportFormat format = lora::parse_export_format(name, "exports");
    if (format == lora::ExportFormat::kTinker && router_deltas && !c.allow_drop_router) {
      r.warnings.push_back("export: tinker skipped: the adapter trains the routers (train_router " +
                           lora::to_string(adapter.config.train_router) +
                           ") and a Tinker archive cannot hold router deltas; the peft and merged exports keep them, "
                           "and allow_drop_router (--allow-drop-router) writes the archive without them");
      continue;
    }
    ExportRunOptions options;
    options.checkpoint = adapter_dir;
    options.out = export_path(ctx, format, persona);
    options.format = format;
    options.model_dir = final_base_model(ctx);
    options.allow_drop_router = c.allow_drop_router;
    options.replace = true;  // a resumed stage writes the same files again
    const lora::ExportResult result = export_checkpoint(options);
    for (const auto& warning : result.warnings) r.warnings.push_back(warning);
    r.outputs.push_back(run_relative(ctx, result.path));
    r.exports.push_back({{"format", name}, {"path", run_relative(ctx, result.path).string()}, {"gated", gates.passed}});
    written += (written.empty() ? "" : ", ") + name;
  }
  if (c.training.paper_mode && written.find("merged") == std::string::npos && !written.empty()) {
    r.warnings.push_back("export: paper mode: the adapter applies to the DPO-merged base " +
                         run_relative(ctx, final_base_model(ctx)).string() +
                         ", not to the student; export merged for a model that stands alone");
  }
  if (gates.passed) {
    fs::remove(ungated_marker);  // a forced export of an earlier attempt
  } else {
    write_file_atomic(ungated_marker, "This export did not pass the quality gates (failed: " + gates.failed +
                                          "); it was written with --force-export. See ../eval/gates.json.\n");
    r.outputs.push_back(run_relative(ctx, ungated_marker));
    r.warnings.push_back("export: UNGATED: the gates failed (" + gates.failed + ") and --force-export exported anyway");
  }
  r.counts["formats"] = r.exports.size();
  r.summary = "export: " + (written.empty() ? std::string("nothing written") : written) + (gates.passed ? "" : " (UNGATED)") +
              " → " + run_relative(ctx, export_dir(ctx)).string();
  return r;
}

}  // namespace character::pipeline
