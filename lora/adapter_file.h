// Our adapter directory on disk: adapter_model.safetensors (fp32, tensors named
// as Adapters::named_parameters(), lora/adapters.h) and adapter_config.json
// {"format": "character-adapter", "version": 1, "base_model", "model_type",
// "rank", "alpha", "train_attn", "train_mlp", "train_unembed", "train_router",
// "router_lr_multiplier", "expert_lora", "seed"}. Training checkpoints hold one
// under adapter/; export (lora/export.h) and `character serve --adapter` read it.
#pragma once

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "lora/adapters.h"
#include "lora/lora_config.h"
#include "model/arch/causal_lm.h"

namespace character::lora {

inline constexpr const char* kAdapterWeightsFile = "adapter_model.safetensors";
inline constexpr const char* kAdapterConfigFile = "adapter_config.json";

// Writes the adapters of a model loaded from `base_model_dir` to `out_dir`
// (replaced if it exists): both files go to a temporary sibling directory that
// is renamed into place, so a reader never sees half an adapter.
void save_adapter(const Adapters& adapters, const std::filesystem::path& base_model_dir,
                  const std::filesystem::path& out_dir);

// An adapter directory read back (tensors fp32 on CPU).
struct AdapterFile {
  LoraConfig config;
  std::filesystem::path base_model;  // absolute, as written by save_adapter
  std::string model_type;
  std::map<std::string, at::Tensor> tensors;
  std::filesystem::path dir;         // the directory the files were read from
};

// Reads an adapter directory, or a training checkpoint directory that contains
// adapter/. CheckpointError naming the file and the field or tensor when
// something is missing or of the wrong dtype; FormatError for malformed JSON.
AdapterFile read_adapter(const std::filesystem::path& dir);
// read_adapter without the tensors (AdapterFile::tensors empty): the layout and
// base model of a saved adapter, e.g. to train on from it (`train --init-adapter`).
AdapterFile read_adapter_config(const std::filesystem::path& dir);

// Attaches adapters for file.config to `model` and loads the tensors: the
// model's model_type must equal the file's, and every tensor must be present
// with its shape and nothing else (CheckpointError naming the file and tensor).
std::shared_ptr<Adapters> load_adapter(const model::CausalLM& model, const AdapterFile& file);

}  // namespace character::lora
