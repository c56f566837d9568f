// export_checkpoint(): the adapter read back, its base model found (the flag,
// else adapter_config.json's base_model) and lora::export_adapter called.
// See pipeline/export_run.h.
#include "pipeline/export_run.h"

#include "base/error.h"
#include "base/log.h"
#include "base/safe_replace.h"
#include "lora/adapter_file.h"

namespace character::pipeline {

namespace fs = std::filesystem;

lora::ExportResult export_checkpoint(const ExportRunOptions& options) {
  lora::ExportOptions export_options;
  export_options.format = options.format;
  export_options.allow_drop_router = options.allow_drop_router;
  export_options.merged_dtype = options.merged_dtype;
  if (fs::exists(options.out) && !options.replace) {
    throw ConfigError("export: " + options.out.string() + " exists; pass --force to replace it");
  }
  // --force replaces an earlier export, never a directory export did not write.
  const std::string why = why_not_replace(options.out, [](const fs::path& dir) -> std::string {
    if (fs::exists(dir / "adapter_config.json") || fs::exists(dir / "config.json")) return "";
    return "neither adapter_config.json nor config.json (it is not an earlier export)";
  });
  if (!why.empty()) throw ConfigError("export: " + options.out.string() + " is not replaced, " + why);
  const lora::AdapterFile adapter = lora::read_adapter(options.checkpoint);
  export_options.base_model = options.model_dir.empty() ? adapter.base_model : options.model_dir;
  if (!options.model_dir.empty() && !fs::is_directory(options.model_dir)) {
    throw ConfigError("export: --model " + options.model_dir.string() + " is not a directory");
  }
  if (!fs::is_directory(export_options.base_model)) {
    throw ConfigError("export: base model directory " + export_options.base_model.string() + " (base_model in " +
                      (adapter.dir / lora::kAdapterConfigFile).string() + ") does not exist; pass --model DIR");
  }
  const lora::ExportResult result = lora::export_adapter(adapter, options.out, export_options);
  for (const auto& warning : result.warnings) log::warn(warning);
  log::info("export: wrote " + lora::to_string(options.format) + " (" + std::to_string(result.tensors) +
            " tensors) to " + result.path.string());
  return result;
}

}  // namespace character::pipeline
