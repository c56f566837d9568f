// Writing a Hugging Face model directory from a model in memory: config.json,
// generation_config.json, model.safetensors under the Hub's tensor names (per-expert
// keys, as transformers 5 save_pretrained writes them, fp32) and the tokenizer
// files copied from a tokenizer directory. What `character init-model`, the
// full-parameter trainer and the lab write; transformers loads the result as is.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "model/io/config.h"

namespace character::model {

class CausalLMImpl;

// Files of a Hugging Face tokenizer that a model directory carries.
const std::vector<std::string>& tokenizer_file_names();

// Copies the tokenizer files present in `from` to `to`; ConfigError naming `what`
// (e.g. "init-model: --tokenizer DIR") when there are none.
void copy_tokenizer_files(const std::filesystem::path& from, const std::filesystem::path& to,
                          const std::string& what);

struct ModelDirOptions {
  std::filesystem::path tokenizer_dir;          // its tokenizer files are copied (empty: none)
  std::string tokenizer_source = "tokenizer directory";  // names tokenizer_dir in errors
  nlohmann::json extra_config = nlohmann::json::object();  // merged into config.json (e.g. initializer_range)
};

// The files write_model_dir writes: config.json, generation_config.json,
// model.safetensors and the tokenizer files.
bool is_model_dir_file(const std::string& name);

// Why `out` may not be replaced by a new model directory, or "" when it may: it must not be
// the working directory, one of its ancestors or the file system's root, and what it holds
// must be files write_model_dir writes (so a replace never removes what it did not create).
std::string unreplaceable_model_dir(const std::filesystem::path& out);

// Writes the directory beside OUT (a hidden temp sibling) and then swaps it in: an
// existing OUT is moved aside and removed only once the new one is in place, so a failure
// leaves the old one. OUT may end in '/'. config.json is config_to_json(config) +
// extra_config + dtype float32 + transformers_version; the weights are
// hub_named_tensors(model) in fp32. ConfigError when tokenizer_dir is given but holds no
// tokenizer files, or when OUT exists and unreplaceable_model_dir says why not.
void write_model_dir(CausalLMImpl& model, const ModelConfig& config, const std::filesystem::path& out,
                     const ModelDirOptions& options);

}  // namespace character::model
