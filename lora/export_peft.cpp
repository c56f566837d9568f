// The `peft` export: an adapter directory that PEFT 0.21.2's
// PeftModel.from_pretrained loads onto the transformers 5 model.
//   attention, dense MLP, lm_head: target_modules, keys
//     base_model.model.<module>.lora_{A,B}.weight, A [r, in], B [out, r];
//   routed experts: target_parameters ["mlp.experts.gate_up_proj",
//     "mlp.experts.down_proj"], nested ParamWrappers in that order, so gate_up's
//     keys are …mlp.experts.base_layer.lora_{A,B}.weight and down's
//     …mlp.experts.lora_{A,B}.weight; A (E·r, in) expert-major, B (out, r·E)
//     expert-minor (peft/tuners/lora/layer.py ParamWrapper; docs/training.md);
//   router LoRA: target_parameters "mlp.gate.weight" (the router is no nn.Linear
//     in transformers 5), keys …mlp.gate.lora_{A,B}.weight;
//   full router: modules_to_save ["mlp.gate"], key …mlp.gate.weight.
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <set>

#include "base/atomic_file.h"
#include "base/error.h"
#include "lora/export.h"
#include "lora/export_files.h"
#include "model/io/config.h"

namespace character::lora {

namespace fs = std::filesystem;

namespace {

constexpr const char* kPrefix = "base_model.model.";
constexpr const char* kPeftVersion = "0.21.2";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

struct PeftAdapter {
  std::map<std::string, at::Tensor> tensors;
  std::set<std::string> target_modules;
  std::vector<std::string> target_parameters;
  std::vector<std::string> modules_to_save;
  int64_t gate_up_rank = 0;  // rank of the fused gate_up LoRA when it differs from r
};

void add_target_parameter(PeftAdapter& peft, const std::string& name) {
  if (std::find(peft.target_parameters.begin(), peft.target_parameters.end(), name) == peft.target_parameters.end()) {
    peft.target_parameters.push_back(name);
  }
}

// PEFT's flat expert LoRA from per-expert factors A [E, r, in], B [E, out, r]:
// A (E·r, in) expert-major, B (out, r·E) expert-minor.
std::pair<at::Tensor, at::Tensor> flatten_experts(const at::Tensor& a, const at::Tensor& b) {
  const int64_t e = a.size(0), r = a.size(1), out = b.size(1);
  auto flat_a = a.reshape({e * r, a.size(2)});                   // [E, r, in] → [E·r, in]
  auto flat_b = b.permute({1, 2, 0}).reshape({out, r * e});      // [E, out, r] → [out, r, E] → [out, r·E]
  return {flat_a.contiguous(), flat_b.contiguous()};
}

// The expert bank of one layer (`bank` = model.layers.{l}.mlp.experts) as
// PEFT's fused gate_up_proj and down_proj LoRA. Shared-outer factors become
// per-expert ones exactly: gate and up, each with its own shared A, fuse into
// one LoRA of rank 2r per expert, A_e = [A_gate; A_up] and B_e =
// blockdiag(B_gate,e, B_up,e) (as peft's PeftConcatenate fuses w1/w3); down's
// shared B is repeated for every expert.
void add_expert_bank(PeftAdapter& peft, const AdapterFile& adapter, const std::string& bank, int64_t num_experts) {
  auto get = [&](const std::string& suffix) -> const at::Tensor& { return adapter.tensors.at(bank + suffix); };
  at::Tensor gate_up_a, gate_up_b, down_a, down_b;  // [E, r', in], [E, out, r']
  if (adapter.config.expert_lora == ExpertLora::kSharedOuter) {
    const auto& ga = get(".gate_proj.lora_A");  // [1, r, D]
    const auto& gb = get(".gate_proj.lora_B");  // [E, F, r]
    const auto& ua = get(".up_proj.lora_A");
    const auto& ub = get(".up_proj.lora_B");
    const int64_t r = ga.size(1), d = ga.size(2), f = gb.size(1), e = num_experts;
    gate_up_a = torch::cat({ga[0], ua[0]}, 0).unsqueeze(0).expand({e, 2 * r, d});  // [E, 2r, D]
    gate_up_b = torch::zeros({e, 2 * f, 2 * r}, gb.options());                      // [E, 2F, 2r]
    gate_up_b.slice(1, 0, f).slice(2, 0, r).copy_(gb);
    gate_up_b.slice(1, f, 2 * f).slice(2, r, 2 * r).copy_(ub);
    down_a = get(".down_proj.lora_A");                                  // [E, r, F]
    const auto& db = get(".down_proj.lora_B");                          // [1, D, r]
    down_b = db.expand({e, db.size(1), db.size(2)});                    // [E, D, r]
    peft.gate_up_rank = 2 * r;
  } else {
    gate_up_a = get(".gate_up_proj.lora_A");  // [E, r, D]
    gate_up_b = get(".gate_up_proj.lora_B");  // [E, 2F, r]
    down_a = get(".down_proj.lora_A");        // [E, r, F]
    down_b = get(".down_proj.lora_B");        // [E, D, r]
  }
  const std::string key = kPrefix + bank;
  auto [gua, gub] = flatten_experts(gate_up_a, gate_up_b);
  peft.tensors[key + ".base_layer.lora_A.weight"] = gua;
  peft.tensors[key + ".base_layer.lora_B.weight"] = gub;
  auto [flat_down_a, flat_down_b] = flatten_experts(down_a, down_b);
  peft.tensors[key + ".lora_A.weight"] = flat_down_a;
  peft.tensors[key + ".lora_B.weight"] = flat_down_b;
  add_target_parameter(peft, "mlp.experts.gate_up_proj");
  add_target_parameter(peft, "mlp.experts.down_proj");
}

PeftAdapter to_peft(const AdapterFile& adapter, const model::ModelConfig& config) {
  PeftAdapter peft;
  std::set<std::string> banks;
  for (const auto& [name, tensor] : adapter.tensors) {
    if (const auto at = name.find(".mlp.experts."); at != std::string::npos) {
      banks.insert(name.substr(0, at + std::string(".mlp.experts").size()));
    } else if (ends_with(name, ".mlp.gate.weight")) {  // full router
      peft.tensors[kPrefix + name] = tensor;
      if (peft.modules_to_save.empty()) peft.modules_to_save.push_back("mlp.gate");
    } else if (ends_with(name, ".mlp.gate.lora_A") || ends_with(name, ".mlp.gate.lora_B")) {  // router LoRA
      peft.tensors[kPrefix + name + ".weight"] = tensor;
      add_target_parameter(peft, "mlp.gate.weight");
    } else {  // attention, dense MLP, lm_head: model.layers.0.self_attn.q_proj.lora_A
      peft.tensors[kPrefix + name + ".weight"] = tensor;
      const std::string module = name.substr(0, name.rfind('.'));
      peft.target_modules.insert(module.substr(module.rfind('.') + 1));
    }
  }
  for (const auto& bank : banks) add_expert_bank(peft, adapter, bank, config.num_experts);
  // Experts first in target_parameters: the nesting (and so the key names)
  // follows that order, gate_up_proj innermost.
  std::stable_partition(peft.target_parameters.begin(), peft.target_parameters.end(),
                        [](const std::string& p) { return p.rfind("mlp.experts.", 0) == 0; });
  return peft;
}

nlohmann::json peft_config(const PeftAdapter& peft, const LoraConfig& c, const fs::path& base_model) {
  nlohmann::json rank_pattern = nlohmann::json::object(), alpha_pattern = nlohmann::json::object();
  if (peft.gate_up_rank && peft.gate_up_rank != c.rank) {
    // Same pattern as peft's own MoE conversion (_convert_peft_config_moe);
    // alpha scales with the rank so alpha/r stays the adapter's.
    rank_pattern[R"(.*\.gate_up_proj)"] = peft.gate_up_rank;
    alpha_pattern[R"(.*\.gate_up_proj)"] = alpha_json(c.alpha * static_cast<double>(peft.gate_up_rank) / c.rank);
  }
  auto list_or_null = [](const auto& items) {
    return items.empty() ? nlohmann::json(nullptr) : nlohmann::json(std::vector<std::string>(items.begin(), items.end()));
  };
  return {{"peft_type", "LORA"},
          {"task_type", "CAUSAL_LM"},
          {"peft_version", kPeftVersion},
          {"base_model_name_or_path", fs::absolute(base_model).string()},
          {"r", c.rank},
          {"lora_alpha", alpha_json(c.alpha)},
          {"lora_dropout", 0.0},
          {"bias", "none"},
          {"fan_in_fan_out", false},
          {"inference_mode", true},
          {"init_lora_weights", true},
          {"use_rslora", false},
          {"use_dora", false},
          {"target_modules", list_or_null(peft.target_modules)},
          {"target_parameters", list_or_null(peft.target_parameters)},
          {"modules_to_save", list_or_null(peft.modules_to_save)},
          {"rank_pattern", rank_pattern},
          {"alpha_pattern", alpha_pattern}};
}

}  // namespace

ExportResult export_peft(const AdapterFile& adapter, const fs::path& out_dir, const ExportOptions& options) {
  const model::ModelConfig config = check_adapter_fits(adapter, options.base_model);
  if (config.is_moe() && adapter.config.train_mlp) {
    for (int64_t l = 0; l < config.num_hidden_layers; ++l) {
      if (config.is_moe_layer(l)) continue;
      throw ConfigError(
          "export --format peft: " + config.model_type + " layer " + std::to_string(l) +
          " has a dense MLP besides the MoE layers, and PEFT 0.21 on MoE models rewrites target_modules "
          "gate_proj/up_proj/down_proj into the experts' target_parameters and leaves dense MLP modules unadapted "
          "(_convert_peft_config_moe), so the dense MLP LoRA would be dropped on load; export --format merged");
    }
  }
  const PeftAdapter peft = to_peft(adapter, config);
  if (peft.target_modules.empty() && peft.target_parameters.empty()) {
    throw ConfigError(
        "export --format peft: the adapter trains only a full router (--train-router full, no attention, MLP or "
        "unembedding LoRA), and PEFT refuses an adapter whose only target is modules_to_save "
        "(NoMatchingPeftModuleError); export --format merged");
  }
  ExportResult result;
  result.path = output_path(out_dir);
  const fs::path staging = make_staging_dir(result.path);
  try {
    write_tensors(staging / "adapter_model.safetensors", peft.tensors, torch::kFloat);
    write_file_atomic(staging / "adapter_config.json",
                      peft_config(peft, adapter.config, options.base_model).dump(2) + "\n");
    replace_path(staging, result.path);
  } catch (...) {
    fs::remove_all(staging);
    throw;
  }
  result.tensors = static_cast<int64_t>(peft.tensors.size());
  return result;
}

}  // namespace character::lora
