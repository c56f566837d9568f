// MoE type analysis (eval/moe_type.h). The expert banks are read from the
// engine's parameters by their transformers 5 names; the SVDs run batched over
// the E experts of a projection (torch::linalg_svdvals), in float64 on CPU.
#include "eval/moe_type.h"

#include <torch/torch.h>

#include <map>

#include "base/error.h"
#include "eval/routing_metrics.h"
#include "lora/deltas.h"
#include "model/arch/causal_lm.h"
#include "model/arch/experts.h"

namespace character::eval {
namespace {

// Float64 on CPU (exact enough to put the 95% cut where numpy puts it); float32 on
// accelerators, where float64 SVD is slow.
at::Tensor for_svd(const at::Tensor& t) {
  return t.detach().to(t.device().is_cpu() ? torch::kDouble : torch::kFloat);
}

// Mean effective rank of the E matrices of `w` [E, R, C].
double mean_effective_rank(const at::Tensor& w, double energy) {
  const at::Tensor s = torch::linalg_svdvals(w).to(torch::kCPU, torch::kDouble);  // [E, min(R, C)]
  double sum = 0.0;
  for (int64_t e = 0; e < s.size(0); ++e) sum += static_cast<double>(effective_rank(s[e], energy));
  return sum / static_cast<double>(s.size(0));
}

ProjectionRank projection_rank(const std::string& name, const at::Tensor& w, double energy) {
  ProjectionRank p;
  p.name = name;
  p.rows = w.size(1);
  p.cols = w.size(2);
  const at::Tensor delta = w - w.mean(0, /*keepdim=*/true);  // [E, R, C]: each expert minus the mean expert
  p.mean_rank = mean_effective_rank(delta, energy);
  p.rank_ratio = p.mean_rank / static_cast<double>(std::min(p.rows, p.cols));
  return p;
}

std::vector<int64_t> chosen_layers(const std::vector<int64_t>& moe_layers, const MoeTypeOptions& options) {
  if (!options.layers.empty()) return options.layers;
  const auto n = static_cast<int64_t>(moe_layers.size());
  if (options.max_layers <= 0 || n <= options.max_layers) return moe_layers;
  std::vector<int64_t> out;  // evenly spaced, first and last included
  for (int64_t i = 0; i < options.max_layers; ++i) {
    const int64_t index = options.max_layers == 1 ? 0 : i * (n - 1) / (options.max_layers - 1);
    if (out.empty() || out.back() != moe_layers[static_cast<size_t>(index)]) out.push_back(moe_layers[static_cast<size_t>(index)]);
  }
  return out;
}

}  // namespace

std::string moe_verdict(double rank_ratio, double mean_cosine) {
  if (rank_ratio < 0.05 && mean_cosine > 0.25) return "pseudo";
  if (rank_ratio > 0.50 && mean_cosine < 0.10) return "native";
  return "unclear";
}

int64_t effective_rank(const at::Tensor& singular_values, double energy) {
  const at::Tensor s2 = singular_values.to(torch::kCPU, torch::kDouble).pow(2);  // σ² (σ descending)
  const double total = s2.sum().item<double>();
  if (!(total > 0.0)) return 0;
  const at::Tensor cumulative = s2.cumsum(0);
  const double* c = cumulative.data_ptr<double>();
  for (int64_t r = 0; r < cumulative.size(0); ++r)
    if (c[r] >= energy * total) return r + 1;
  return cumulative.size(0);
}

MoeLayerType analyze_expert_bank(int64_t layer, const at::Tensor& gate_up, const at::Tensor& down, double energy) {
  torch::NoGradGuard no_grad;
  if (gate_up.dim() != 3 || down.dim() != 3 || gate_up.size(0) != down.size(0) || gate_up.size(1) % 2 != 0 ||
      gate_up.size(0) < 2)
    throw ConfigError("MoE type, layer " + std::to_string(layer) + ": expert bank gate_up_proj " +
                      std::to_string(gate_up.dim()) + "-D, down_proj " + std::to_string(down.dim()) +
                      "-D; expected [E, 2F, D] and [E, D, F] with E ≥ 2");
  const at::Tensor gu = for_svd(gate_up);
  const at::Tensor dn = for_svd(down);
  const int64_t F = gu.size(1) / 2;
  MoeLayerType out;
  out.layer = layer;
  out.projections.push_back(projection_rank("gate", gu.narrow(1, 0, F), energy));  // [E, F, D]
  out.projections.push_back(projection_rank("up", gu.narrow(1, F, F), energy));    // [E, F, D]
  out.projections.push_back(projection_rank("down", dn, energy));                  // [E, D, F]
  out.rank_ratio = out.projections[0].rank_ratio;

  const int64_t E = gu.size(0);
  const at::Tensor flat = torch::cat({gu.reshape({E, -1}), dn.reshape({E, -1})}, 1);                 // [E, 2FD + DF]
  const at::Tensor unit = flat / flat.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-30);               // [E, P]
  const at::Tensor cosine = torch::matmul(unit, unit.t()).to(torch::kCPU, torch::kDouble).contiguous();  // [E, E]
  const double* c = cosine.data_ptr<double>();
  double sum = 0.0;
  for (int64_t i = 0; i < E; ++i)
    for (int64_t j = i + 1; j < E; ++j) sum += c[i * E + j];
  out.mean_cosine = sum / static_cast<double>(E * (E - 1) / 2);
  out.verdict = moe_verdict(out.rank_ratio, out.mean_cosine);
  return out;
}

MoeType analyze_moe_type(model::CausalLMImpl& model, const MoeTypeOptions& options) {
  const auto& config = model.config();
  if (!config.is_moe()) throw ConfigError("MoE type: model_type " + config.model_type + " has no MoE layers");
  std::vector<int64_t> moe_layers;
  for (int64_t l = 0; l < config.num_hidden_layers; ++l)
    if (config.is_moe_layer(l)) moe_layers.push_back(l);
  std::map<std::string, at::Tensor> params;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) params[item.key()] = item.value();
  std::map<std::string, std::shared_ptr<model::ExpertBankImpl>> banks;
  for (const auto& item : model.named_modules()) {
    if (auto bank = std::dynamic_pointer_cast<model::ExpertBankImpl>(item.value())) banks[item.key()] = bank;
  }

  MoeType out;
  out.energy = options.energy;
  std::map<std::string, int64_t> votes;
  for (int64_t layer : chosen_layers(moe_layers, options)) {
    const auto gate_up = params.find(model::fused_gate_up_name(layer));
    const auto down = params.find(model::fused_down_name(layer));
    if (!config.is_moe_layer(layer) || gate_up == params.end() || down == params.end()) {
      std::string list;
      for (int64_t l : moe_layers) list += (list.empty() ? "" : ", ") + std::to_string(l);
      throw ConfigError("MoE type: layer " + std::to_string(layer) + " is not an MoE layer of this " +
                        config.model_type + " model; MoE layers: " + list);
    }
    MoeLayerType t = analyze_expert_bank(layer, gate_up->second, down->second, options.energy);
    const std::string bank_name = model::fused_gate_up_name(layer).substr(0, model::fused_gate_up_name(layer).rfind('.'));
    if (auto bank = banks.find(bank_name); bank != banks.end()) {
      if (auto lora = std::dynamic_pointer_cast<lora::ExpertLoraDelta>(bank->second->delta)) {
        torch::NoGradGuard no_grad;
        const int64_t E = gate_up->second.size(0);
        const int64_t F = gate_up->second.size(1) / 2;
        t.adapter_rank = mean_effective_rank(for_svd(lora->delta_gate_up(E).narrow(1, 0, F)), options.energy);  // [E, F, D]
      }
    }
    ++votes[t.verdict];
    out.per_layer.push_back(std::move(t));
  }
  out.verdict = "unclear";
  for (const auto& [verdict, count] : votes)
    if (2 * count > static_cast<int64_t>(out.per_layer.size())) out.verdict = verdict;
  return out;
}

const char* moe_type_definition() {
  return "Per MoE layer and projection (gate, up, down): delta_e = W_e - mean over experts; effective rank = the "
         "fewest singular values of delta_e holding 95% of sum(sigma^2), averaged over experts; rank ratio = that "
         "rank / min(rows, cols) of the gate projection; mean cosine = mean over expert pairs of the cosine of the "
         "flattened experts (gate, up, down). Pseudo-MoE (upcycled): rank ratio < 5% and cosine > 0.25; native: rank "
         "ratio > 50% and cosine < 0.10; otherwise unclear. The model's verdict is that of more than half of the "
         "layers analysed, else unclear.";
}

nlohmann::json MoeType::to_json() const {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : per_layer) {
    nlohmann::json projections = nlohmann::json::array();
    for (const auto& p : l.projections)
      projections.push_back({{"name", p.name}, {"rows", p.rows}, {"cols", p.cols}, {"mean_rank", json_number(p.mean_rank)},
                             {"rank_ratio", json_number(p.rank_ratio)}});
    layers.push_back({{"layer", l.layer}, {"rank_ratio", json_number(l.rank_ratio)},
                      {"mean_cosine", json_number(l.mean_cosine)}, {"verdict", l.verdict},
                      {"projections", projections},
                      {"adapter_rank", json_number(l.adapter_rank)}});
  }
  return {{"per_layer", layers}, {"verdict", verdict}, {"energy", energy}, {"definition", moe_type_definition()}};
}

}  // namespace character::eval
