// The `tinker` export: the archive Tinker's checkpoint download holds, which
// tinker-cookbook's weights.build_hf_model / build_lora_adapter convert.
// Names (tinker_cookbook/weights/_merge_utils.py build_name_remaps, _merge.py
// MergeProfile.expert_key_remaps): base_model.model.<HF module>.lora_{A,B}.weight;
// experts as mlp.experts.w1 (gate) / w3 (up) / w2 (down) in the shared-outer
// shapes, which are ours (lora/adapters.h); the unembedding as
// base_model.model.model.unembed_tokens. Tinker has no router tensors.
#include <torch/torch.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/error.h"
#include "lora/export.h"
#include "lora/export_files.h"
#include "model/arch/architectures.h"
#include "model/io/config.h"

namespace character::lora {

namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_router_tensor(const std::string& name) {
  return ends_with(name, ".mlp.gate.lora_A") || ends_with(name, ".mlp.gate.lora_B") ||
         ends_with(name, ".mlp.gate.weight");
}

// Our name (lora/adapters.h) → Tinker's.
std::string tinker_name(std::string name) {
  if (name == "lm_head.lora_A" || name == "lm_head.lora_B") {
    return "base_model.model.model.unembed_tokens" + name.substr(std::string("lm_head").size()) + ".weight";
  }
  static const std::pair<const char*, const char*> kExperts[] = {
      {".mlp.experts.gate_proj.", ".mlp.experts.w1."},
      {".mlp.experts.up_proj.", ".mlp.experts.w3."},
      {".mlp.experts.down_proj.", ".mlp.experts.w2."}};
  for (const auto& [ours, theirs] : kExperts) {
    if (auto at = name.find(ours); at != std::string::npos) name.replace(at, std::strlen(ours), theirs);
  }
  return "base_model.model." + name + ".weight";
}

}  // namespace

ExportResult export_tinker(const AdapterFile& adapter, const fs::path& out_tar, const ExportOptions& options) {
  const model::ModelConfig config = check_adapter_fits(adapter, options.base_model);
  const LoraConfig& c = adapter.config;
  ExportResult result;
  result.path = output_path(out_tar);

  if (config.is_moe() && c.train_mlp && c.expert_lora == ExpertLora::kPerExpert) {
    throw ConfigError(
        "export --format tinker: the adapter has per-expert expert factors (--expert-lora per-expert), but Tinker's "
        "experts.w1/w3 share one A across experts and w2 one B; export --format peft or merged, or train with "
        "--expert-lora shared-outer");
  }
  if (const auto& rule = model::arch_spec(config.model_type).experts;
      config.is_moe() && c.train_mlp && (rule.block != "mlp" || rule.gate != "gate_proj")) {
    throw ConfigError("export --format tinker: " + config.model_type + " checkpoints name their experts model.layers.{l}." +
                      rule.block + ".experts.{e}." + rule.gate + "/" + rule.up + "/" + rule.down +
                      ", which tinker-cookbook's converters do not map (Tinker offers no " + config.model_type +
                      " model); export --format peft or merged");
  }
  if (c.train_unembed && config.tie_word_embeddings) {
    throw ConfigError(
        "export --format tinker: the adapter has unembedding LoRA on a model with tie_word_embeddings, and "
        "tinker-cookbook folds unembed_tokens into the shared embed_tokens (changing the input embeddings too); "
        "export --format peft, which keeps lm_head's LoRA separate");
  }
  if (c.train_router != RouterTraining::kNone) {
    const std::string what = "export --format tinker: the adapter trains the router (--train-router " +
                             to_string(c.train_router) +
                             ") and Tinker's format has no router tensors (Tinker never trains routers)";
    const std::string keep =
        "export --format merged (router folded into the weights) or --format peft (router LoRA as target_parameters "
        "mlp.gate.weight, a full router as modules_to_save) to keep them";
    if (!options.allow_drop_router) {
      throw ConfigError(what + "; " + keep + ", or pass --allow-drop-router to write the archive without them");
    }
    result.warnings.push_back("ROUTER DELTAS DROPPED: " + what + ", so the archive leaves them out and its model "
                              "routes as the base model does; " + keep);
  }

  std::map<std::string, at::Tensor> tensors;
  for (const auto& [name, tensor] : adapter.tensors) {
    if (!is_router_tensor(name)) tensors.emplace(tinker_name(name), tensor);
  }
  const nlohmann::json tinker_config = {{"base_model_name_or_path", fs::absolute(options.base_model).string()},
                                        {"peft_type", "LORA"},
                                        {"task_type", "CAUSAL_LM"},
                                        {"r", c.rank},
                                        {"lora_alpha", alpha_json(c.alpha)},
                                        {"lora_dropout", 0.0},
                                        {"bias", "none"},
                                        {"target_modules", "all-linear"}};

  const fs::path staging = make_staging_dir(result.path);
  try {
    write_tensors(staging / "adapter_model.safetensors", tensors, torch::kFloat);
    write_tar(result.path, {{"adapter_model.safetensors", staging / "adapter_model.safetensors", ""},
                            {"adapter_config.json", "", tinker_config.dump(2) + "\n"},
                            {"checkpoint_complete", "", ""}});
  } catch (...) {
    fs::remove_all(staging);
    throw;
  }
  fs::remove_all(staging);
  result.tensors = static_cast<int64_t>(tensors.size());
  return result;
}

}  // namespace character::lora
