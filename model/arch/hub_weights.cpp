#include "model/arch/hub_weights.h"

#include <torch/torch.h>

#include "model/arch/architectures.h"
#include "model/arch/experts.h"

namespace character::model {

std::map<std::string, at::Tensor> hub_named_tensors(CausalLMImpl& model) {
  const ModelConfig& config = model.config();
  std::map<std::string, at::Tensor> params;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) params[item.key()] = item.value();
  if (!config.is_moe()) return params;

  const auto& rule = arch_spec(config.model_type).experts;
  std::map<std::string, at::Tensor> out;
  for (int64_t layer = 0; layer < config.num_hidden_layers; ++layer) {
    if (!config.is_moe_layer(layer)) continue;
    const auto gate_up = params.extract(fused_gate_up_name(layer));
    const auto down = params.extract(fused_down_name(layer));
    const auto router = params.extract(router_name(layer));
    TORCH_CHECK(!gate_up.empty() && !down.empty() && !router.empty(), "hub_named_tensors: MoE layer ", layer,
                " lacks its fused expert bank or router");
    for (auto& [name, tensor] : unstack_experts(rule, layer, gate_up.mapped(), down.mapped())) out[name] = tensor;
    out[hub_router_name(rule, layer)] = router.mapped();
  }
  out.merge(params);
  return out;
}

}  // namespace character::model
