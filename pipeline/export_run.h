// The work of `character export` as a function: read an adapter (or a training
// checkpoint holding adapter/), find its base model and write one format of
// lora/export.h (docs/export.md). The command parses flags into
// ExportRunOptions; the pipeline's export stage fills the same struct.
#pragma once

#include <filesystem>
#include <string>

#include "lora/export.h"

namespace character::pipeline {

struct ExportRunOptions {
  std::filesystem::path checkpoint;  // adapter directory or training checkpoint directory
  std::filesystem::path out;         // .tar (tinker) or directory (peft, merged)
  lora::ExportFormat format = lora::ExportFormat::kPeft;
  std::filesystem::path model_dir;   // empty: base_model of the adapter's adapter_config.json
  std::string merged_dtype = "bfloat16";
  bool allow_drop_router = false;    // tinker: drop router deltas instead of refusing
  bool replace = false;              // replace `out` when it exists (--force)
};

// Writes the export; the result's warnings are logged too. ConfigError when
// `out` exists without `replace`, the base model directory is missing, or the
// format cannot hold the adapter (lora::export_adapter's message).
lora::ExportResult export_checkpoint(const ExportRunOptions& options);

}  // namespace character::pipeline
