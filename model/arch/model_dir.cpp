#include "model/arch/model_dir.h"

#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/safe_replace.h"
#include "model/arch/causal_lm.h"
#include "model/arch/hub_weights.h"
#include "model/arch/tensor_io.h"
#include "model/io/safetensors.h"

namespace character::model {

namespace fs = std::filesystem;

namespace {

// Written as save_pretrained does; without it transformers' tokenizer loader takes
// the directory for an old Mistral checkpoint and warns about its regex.
constexpr const char* kTransformersVersion = "5.5.4";

}  // namespace

const std::vector<std::string>& tokenizer_file_names() {
  static const std::vector<std::string> names = {
      "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
      "added_tokens.json", "vocab.json", "merges.txt", "chat_template.jinja", "chat_template.json"};
  return names;
}

void copy_tokenizer_files(const fs::path& from, const fs::path& to, const std::string& what) {
  bool any = false;
  for (const auto& name : tokenizer_file_names()) {
    if (!fs::exists(from / name)) continue;
    fs::copy_file(from / name, to / name, fs::copy_options::overwrite_existing);
    any = true;
  }
  if (!any) throw ConfigError(what + " " + from.string() + " holds no tokenizer files, expected tokenizer.json or "
                              "tokenizer.model");
}

bool is_model_dir_file(const std::string& name) {
  const auto& tokenizer = tokenizer_file_names();
  return name == "config.json" || name == "generation_config.json" || name == "model.safetensors" ||
         std::find(tokenizer.begin(), tokenizer.end(), name) != tokenizer.end();
}

std::string unreplaceable_model_dir(const fs::path& out) {
  return why_not_replace(out, [](const fs::path& dir) -> std::string {
    for (const auto& entry : fs::directory_iterator(dir)) {
      const std::string name = entry.path().filename().string();
      if (!entry.is_regular_file() || !is_model_dir_file(name)) return name + ", which a model directory written here would not hold";
    }
    return "";
  });
}

void write_model_dir(CausalLMImpl& model, const ModelConfig& config, const fs::path& out,
                     const ModelDirOptions& options) {
  if (!options.extra_config.is_object()) {
    throw ConfigError("model directory " + out.string() + ": extra config is " +
                      std::string(options.extra_config.type_name()) + ", expected a JSON object");
  }
  if (const std::string why = unreplaceable_model_dir(out); !why.empty()) {
    throw ConfigError("model directory " + out.string() + ": not replaced, " + why);
  }
  // Everything goes into a hidden sibling first; renames swap it in whole.
  const fs::path target = normal_target(out);
  const std::string stamp = std::to_string(::getpid());
  const fs::path tmp = target.parent_path() / ("." + target.filename().string() + ".tmp-" + stamp);
  fs::remove_all(tmp);
  fs::create_directories(tmp);

  nlohmann::json config_json = config_to_json(config);
  config_json.update(options.extra_config);
  config_json["dtype"] = "float32";  // the weights below are written in fp32
  config_json["transformers_version"] = kTransformersVersion;
  write_file_atomic(tmp / "config.json", config_json.dump(2) + "\n");

  nlohmann::json generation{{"_from_model_config", true}, {"transformers_version", kTransformersVersion}};
  if (config.bos_token_id) generation["bos_token_id"] = *config.bos_token_id;
  if (!config.eos_token_id.empty()) generation["eos_token_id"] = config.eos_token_id.front();
  if (config.pad_token_id) generation["pad_token_id"] = *config.pad_token_id;
  write_file_atomic(tmp / "generation_config.json", generation.dump(2) + "\n");

  // fp32 tensors under the Hub's names (per-expert keys), as published checkpoints store them.
  {
    torch::NoGradGuard no_grad;
    TensorsToWrite tensors;
    for (const auto& [name, tensor] : hub_named_tensors(model)) tensors.add(name, tensor.detach().to(torch::kFloat));
    write_safetensors(tmp / "model.safetensors", tensors.records(), {{"format", "pt"}});
  }
  if (!options.tokenizer_dir.empty()) copy_tokenizer_files(options.tokenizer_dir, tmp, options.tokenizer_source);

  std::error_code ec;
  const fs::path old = target.parent_path() / ("." + target.filename().string() + ".old-" + stamp);
  const bool replacing = fs::exists(target);
  if (replacing) {
    fs::rename(target, old, ec);
    if (ec) throw IoError("cannot move " + target.string() + " aside to " + old.string() + ": " + ec.message());
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    std::error_code restore;
    if (replacing) fs::rename(old, target, restore);
    throw IoError("cannot rename " + tmp.string() + " to " + target.string() + ": " + ec.message());
  }
  if (replacing) fs::remove_all(old, ec);  // only files write_model_dir wrote (unreplaceable_model_dir)
}

}  // namespace character::model
