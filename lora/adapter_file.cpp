#include "lora/adapter_file.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <system_error>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/json_read.h"
#include "lora/export_files.h"
#include "model/arch/tensor_io.h"
#include "model/io/config.h"
#include "model/io/safetensors.h"

namespace character::lora {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFormat = "character-adapter";
constexpr int kVersion = 1;

nlohmann::json config_json(const LoraConfig& c, const fs::path& base_model, const std::string& model_type) {
  return {{"format", kFormat},
          {"version", kVersion},
          {"base_model", base_model.string()},
          {"model_type", model_type},
          {"rank", c.rank},
          {"alpha", c.alpha},
          {"train_attn", c.train_attn},
          {"train_mlp", c.train_mlp},
          {"train_unembed", c.train_unembed},
          {"train_router", to_string(c.train_router)},
          {"router_lr_multiplier", c.router_lr_multiplier},
          {"expert_lora", to_string(c.expert_lora)},
          {"seed", c.seed}};
}

// One required field of adapter_config.json, with a message naming the file and field.
template <typename T>
T field(const nlohmann::json& json, const char* name, const fs::path& file) {
  if (!json.contains(name)) throw CheckpointError(file.string() + ": missing field " + name);
  try {
    return json.at(name).get<T>();
  } catch (const nlohmann::json::exception&) {
    throw CheckpointError(file.string() + ": field " + name + " is " + describe_json(json.at(name)) + ", expected a " +
                          (std::is_same_v<T, std::string> ? "string"
                           : std::is_same_v<T, bool>      ? "boolean"
                                                          : "number"));
  }
}

}  // namespace

void save_adapter(const Adapters& adapters, const fs::path& base_model_dir, const fs::path& out_dir) {
  const fs::path base = fs::absolute(base_model_dir).lexically_normal();
  const std::string model_type = model::load_config(base).model_type;
  const fs::path target = output_path(out_dir);
  const fs::path staging = make_staging_dir(target);
  std::map<std::string, at::Tensor> tensors;
  for (const auto& [name, tensor] : adapters.named_parameters()) tensors.emplace(name, tensor);
  write_tensors(staging / kAdapterWeightsFile, tensors, torch::kFloat);
  write_file_atomic(staging / kAdapterConfigFile, config_json(adapters.config(), base, model_type).dump(2) + "\n");
  replace_path(staging, target);
}

AdapterFile read_adapter_config(const fs::path& dir_in) {
  fs::path dir = dir_in;
  if (!fs::exists(dir / kAdapterConfigFile) && fs::exists(dir / "adapter" / kAdapterConfigFile)) dir = dir / "adapter";
  const fs::path config_path = dir / kAdapterConfigFile;
  if (!fs::exists(config_path)) {
    throw CheckpointError(dir_in.string() + ": no " + kAdapterConfigFile + " (nor adapter/" + kAdapterConfigFile +
                          "), expected an adapter directory or a training checkpoint directory");
  }
  const nlohmann::json json = read_json_file(config_path);
  if (!json.is_object()) throw FormatError(config_path.string() + ": expected a JSON object");
  const auto format = field<std::string>(json, "format", config_path);
  if (format != kFormat) {
    throw CheckpointError(config_path.string() + ": format '" + format + "', expected '" + kFormat +
                          "' (a PEFT or Tinker adapter is an export, not something character reads back)");
  }
  const auto version = field<int>(json, "version", config_path);
  if (version != kVersion) {
    throw CheckpointError(config_path.string() + ": version " + std::to_string(version) + ", expected " +
                          std::to_string(kVersion));
  }

  AdapterFile file;
  file.dir = dir;
  file.base_model = field<std::string>(json, "base_model", config_path);
  file.model_type = field<std::string>(json, "model_type", config_path);
  auto& c = file.config;
  c.rank = field<int64_t>(json, "rank", config_path);
  c.alpha = field<double>(json, "alpha", config_path);
  c.train_attn = field<bool>(json, "train_attn", config_path);
  c.train_mlp = field<bool>(json, "train_mlp", config_path);
  c.train_unembed = field<bool>(json, "train_unembed", config_path);
  c.train_router = parse_router_training(field<std::string>(json, "train_router", config_path),
                                         config_path.string() + ": train_router");
  c.router_lr_multiplier = field<double>(json, "router_lr_multiplier", config_path);
  c.expert_lora = parse_expert_lora(field<std::string>(json, "expert_lora", config_path),
                                    config_path.string() + ": expert_lora");
  c.seed = field<uint64_t>(json, "seed", config_path);
  try {
    validate(c);
  } catch (const ConfigError& e) {
    throw CheckpointError(config_path.string() + ": " + e.what());
  }
  return file;
}

AdapterFile read_adapter(const fs::path& dir_in) {
  AdapterFile file = read_adapter_config(dir_in);
  const fs::path& dir = file.dir;
  const fs::path weights_path = dir / kAdapterWeightsFile;
  if (!fs::exists(weights_path)) throw CheckpointError(dir.string() + ": missing " + kAdapterWeightsFile);
  auto weights = model::SafetensorsFile::open(weights_path);
  for (const auto& name : weights->names()) {
    const auto view = weights->view(name);
    if (view.dtype != model::DType::F32) {
      throw CheckpointError(weights_path.string() + ": tensor " + name + " has dtype " +
                            std::string(model::dtype_name(view.dtype)) + ", expected F32");
    }
    file.tensors.emplace(name, model::to_tensor(view));
  }
  return file;
}

std::shared_ptr<Adapters> load_adapter(const model::CausalLM& model, const AdapterFile& file) {
  const auto& model_type = model->config().model_type;
  if (model_type != file.model_type) {
    throw CheckpointError((file.dir / kAdapterConfigFile).string() + ": model_type " + file.model_type +
                          ", but the model is " + model_type + " (expected the adapter's base model " +
                          file.base_model.string() + ")");
  }
  auto adapters = attach_adapters(model, file.config);
  try {
    adapters->load(file.tensors, (file.dir / kAdapterWeightsFile).string());
  } catch (...) {
    adapters->detach();  // leave the model bare, as it was
    throw;
  }
  return adapters;
}

}  // namespace character::lora
