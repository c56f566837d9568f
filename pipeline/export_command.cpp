// `character export CKPT --format tinker|peft|merged OUT`: converts an adapter
// directory (or a training checkpoint directory holding adapter/) into a Tinker
// archive, a PEFT adapter directory or a merged Hugging Face checkpoint
// (lora/export.h, docs/export.md). The base model comes from the adapter's
// adapter_config.json unless --model names it. The work is export_checkpoint()
// (pipeline/export_run.h), which the pipeline's export stage calls too.
#include <CLI/CLI.hpp>

#include <memory>

#include "lora/export.h"
#include "pipeline/commands.h"
#include "pipeline/export_run.h"

namespace character::pipeline {

namespace {

struct ExportArgs {
  std::string checkpoint;
  std::string out;
  std::string format;
  std::string model_dir;
  std::string dtype = "bfloat16";
  bool allow_drop_router = false;
  bool force = false;
};

int run_export(const ExportArgs& args) {
  ExportRunOptions options;
  options.checkpoint = args.checkpoint;
  options.out = args.out;
  options.format = lora::parse_export_format(args.format);
  options.model_dir = args.model_dir;
  options.merged_dtype = args.dtype;
  options.allow_drop_router = args.allow_drop_router;
  options.replace = args.force;
  export_checkpoint(options);
  return 0;
}

}  // namespace

void add_export_command(CLI::App& app) {
  auto args = std::make_shared<ExportArgs>();
  CLI::App* sub = app.add_subcommand(
      "export", "Export an adapter as a Tinker archive, a PEFT adapter or a merged Hugging Face checkpoint");
  sub->add_option("checkpoint", args->checkpoint, "Adapter directory, or a training checkpoint directory with adapter/")
      ->required()
      ->check(CLI::ExistingDirectory);
  sub->add_option("out", args->out, "Output: a .tar file (tinker) or a directory (peft, merged)")->required();
  sub->add_option("--format", args->format, "tinker | peft | merged")->required();
  sub->add_option("--model", args->model_dir, "Base model directory (default: base_model in adapter_config.json)");
  sub->add_option("--dtype", args->dtype, "merged: bfloat16 (default) or float32");
  sub->add_flag("--allow-drop-router", args->allow_drop_router,
                "tinker: write the archive without the adapter's router deltas (a warning names the formats that keep them)");
  sub->add_flag("--force", args->force, "Replace OUT if it exists");
  set_command_action(*sub, [args] { return run_export(*args); });
}

}  // namespace character::pipeline
