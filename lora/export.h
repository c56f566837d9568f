// Export of an adapter (lora/adapter_file.h) into the formats the ecosystem
// loads (docs/export.md):
//   tinker — a tar: adapter_model.safetensors (fp32, Tinker's names and
//            shared-outer expert layout), adapter_config.json, checkpoint_complete;
//            cannot carry router deltas (Tinker never trains routers).
//   peft   — a directory PeftModel.from_pretrained loads onto the transformers 5
//            model: experts via target_parameters, router LoRA via
//            target_parameters ["mlp.gate.weight"], a full router via modules_to_save.
//   merged — a full Hugging Face checkpoint with every delta folded in (router too).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "lora/adapter_file.h"

namespace character::lora {

enum class ExportFormat { kTinker, kPeft, kMerged };

// "tinker" | "peft" | "merged"; ConfigError naming `field` otherwise.
ExportFormat parse_export_format(const std::string& value, const std::string& field = "--format");
std::string to_string(ExportFormat format);

struct ExportOptions {
  ExportFormat format = ExportFormat::kPeft;
  std::filesystem::path base_model;  // the base model directory (config, tokenizer, weights)
  // tinker: write the archive without the router deltas instead of refusing.
  bool allow_drop_router = false;
  // merged: "bfloat16" (default, as the Hub ships models) or "float32".
  std::string merged_dtype = "bfloat16";
};

// What an export did, for the command to print.
struct ExportResult {
  std::filesystem::path path;
  std::vector<std::string> warnings;  // e.g. router deltas dropped; printed loudly
  int64_t tensors = 0;                // tensors written
};

// Writes `adapter` in `options.format` to `out` (a .tar file for tinker, a
// directory otherwise), atomically: nothing appears at `out` unless the whole
// export succeeded. ConfigError when the format cannot represent the adapter
// (with the format that can); CheckpointError when the base model does not
// match the adapter.
ExportResult export_adapter(const AdapterFile& adapter, const std::filesystem::path& out, const ExportOptions& options);

// The formats, one file each (export_tinker.cpp, export_peft.cpp, export_merged.cpp).
ExportResult export_tinker(const AdapterFile& adapter, const std::filesystem::path& out_tar, const ExportOptions& options);
ExportResult export_peft(const AdapterFile& adapter, const std::filesystem::path& out_dir, const ExportOptions& options);
ExportResult export_merged(const AdapterFile& adapter, const std::filesystem::path& out_dir, const ExportOptions& options);

}  // namespace character::lora
