// The `merged` export: the base model with every adapter delta folded into its
// weights (Adapters::merge_into_base: W += (alpha/r)·B·A, expert banks per
// expert, router LoRA likewise, a full router copied), written as a Hugging Face
// checkpoint in the Hub layout (model/arch/hub_weights.h) that transformers 5
// and the engine load: config.json (dtype updated), bf16 (or fp32)
// safetensors, sharded past kMaxShardBytes with an index, and every other file
// of the base directory (tokenizer, generation_config.json …) copied.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/json_read.h"
#include "lora/export.h"
#include "lora/export_files.h"
#include "model/arch/hub_weights.h"
#include "model/io/config.h"

namespace character::lora {

namespace fs = std::filesystem;

namespace {

// transformers' save_pretrained shards at 50 GB by default in v5; smaller
// shards keep export memory (one shard of converted tensors) bounded.
constexpr uint64_t kMaxShardBytes = uint64_t{5} << 30;

at::ScalarType merged_dtype(const std::string& name) {
  if (name == "bfloat16") return torch::kBFloat16;
  if (name == "float32") return torch::kFloat;
  throw ConfigError("export --format merged: dtype '" + name + "', expected bfloat16 or float32");
}

// Weights and their index files are rewritten; config.json is rewritten with
// the new dtype; everything else (tokenizer, chat template, generation_config,
// README, license) is copied.
bool copied_from_base(const fs::path& file) {
  const std::string name = file.filename().string();
  auto ends = [&](const std::string& suffix) {
    return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  if (name.empty() || name[0] == '.' || name == "config.json") return false;
  return !(ends(".safetensors") || ends(".index.json") || ends(".bin") || ends(".pt") || ends(".pth") ||
           ends(".gguf"));
}

// Writes model.safetensors, or shards + model.safetensors.index.json (as
// save_pretrained names them) when the weights exceed kMaxShardBytes.
void write_weights(const fs::path& dir, const std::map<std::string, at::Tensor>& tensors, at::ScalarType dtype) {
  const auto element = static_cast<uint64_t>(c10::elementSize(dtype));
  std::vector<std::map<std::string, at::Tensor>> shards(1);
  uint64_t shard_bytes = 0, total = 0;
  for (const auto& [name, tensor] : tensors) {
    const uint64_t bytes = static_cast<uint64_t>(tensor.numel()) * element;
    if (shard_bytes > 0 && shard_bytes + bytes > kMaxShardBytes) shards.emplace_back(), shard_bytes = 0;
    shards.back().emplace(name, tensor);
    shard_bytes += bytes;
    total += bytes;
  }
  if (shards.size() == 1) {
    write_tensors(dir / "model.safetensors", shards.front(), dtype);
    return;
  }
  nlohmann::json weight_map = nlohmann::json::object();
  char file[64];
  for (size_t i = 0; i < shards.size(); ++i) {
    std::snprintf(file, sizeof file, "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
    write_tensors(dir / file, shards[i], dtype);
    for (const auto& item : shards[i]) weight_map[item.first] = file;
  }
  const nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  write_file_atomic(dir / "model.safetensors.index.json", index.dump(2) + "\n");
}

}  // namespace

ExportResult export_merged(const AdapterFile& adapter, const fs::path& out_dir, const ExportOptions& options) {
  const at::ScalarType dtype = merged_dtype(options.merged_dtype);
  check_adapter_fits(adapter, options.base_model);
  const fs::path base = options.base_model;

  // fp32 on CPU: the deltas are added in full precision and rounded once, on writing.
  const model::CausalLM net = model::load_model(base, model::LoadOptions{"cpu", "float32"});
  auto adapters = load_adapter(net, adapter);
  try {
    adapters->merge_into_base();
  } catch (const ConfigError& e) {
    throw ConfigError(std::string("export --format merged: ") + e.what() +
                      "; export --format peft, which keeps lm_head's LoRA separate");
  }
  const auto tensors = model::hub_named_tensors(*net);

  nlohmann::json config = read_json_file(base / "config.json");
  const std::string dtype_name = dtype == torch::kBFloat16 ? "bfloat16" : "float32";
  config["dtype"] = dtype_name;  // transformers 5's key
  if (config.contains("torch_dtype")) config["torch_dtype"] = dtype_name;

  ExportResult result;
  result.path = output_path(out_dir);
  const fs::path staging = make_staging_dir(result.path);
  try {
    write_file_atomic(staging / "config.json", config.dump(2) + "\n");
    write_weights(staging, tensors, dtype);
    for (const auto& entry : fs::directory_iterator(base)) {
      if (entry.is_regular_file() && copied_from_base(entry.path())) {
        fs::copy_file(entry.path(), staging / entry.path().filename());
      }
    }
    replace_path(staging, result.path);
  } catch (...) {
    fs::remove_all(staging);
    throw;
  }
  result.tensors = static_cast<int64_t>(tensors.size());
  return result;
}

}  // namespace character::lora
