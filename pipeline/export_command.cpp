// `character export CKPT --format tinker|peft|merged OUT`: converts an adapter
// directory (or a training checkpoint directory holding adapter/) into a Tinker
// archive, a PEFT adapter directory or a merged Hugging Face checkpoint
// (lora/export.h, docs/export.md). The base model comes from the adapter's
// adapter_config.json unless --model names it.
#include <CLI/CLI.hpp>

#include <filesystem>
#include <iostream>

#include "base/error.h"
#include "base/log.h"
#include "lora/adapter_file.h"
#include "lora/export.h"
#include "pipeline/commands.h"

namespace character::pipeline {

namespace {

namespace fs = std::filesystem;

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
  lora::ExportOptions options;
  options.format = lora::parse_export_format(args.format);
  options.allow_drop_router = args.allow_drop_router;
  options.merged_dtype = args.dtype;
  const fs::path out = args.out;
  if (fs::exists(out) && !args.force) {
    throw ConfigError("export: " + out.string() + " exists; pass --force to replace it");
  }
  const lora::AdapterFile adapter = lora::read_adapter(args.checkpoint);
  options.base_model = args.model_dir.empty() ? adapter.base_model : fs::path(args.model_dir);
  if (!args.model_dir.empty() && !fs::is_directory(options.base_model)) {
    throw ConfigError("export: --model " + args.model_dir + " is not a directory");
  }
  if (!fs::is_directory(options.base_model)) {
    throw ConfigError("export: base model directory " + options.base_model.string() + " (base_model in " +
                      (adapter.dir / lora::kAdapterConfigFile).string() + ") does not exist; pass --model DIR");
  }
  const lora::ExportResult result = lora::export_adapter(adapter, out, options);
  for (const auto& warning : result.warnings) log::warn(warning);
  log::info("export: wrote " + lora::to_string(options.format) + " (" + std::to_string(result.tensors) +
            " tensors) to " + result.path.string());
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
