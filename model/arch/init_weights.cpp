// transformers/modeling_utils.py PreTrainedModel._init_weights and the MoE
// overrides (modeling_qwen3_moe.py, modeling_mixtral.py, modeling_olmoe.py
// _init_weights: experts and router normal(0, initializer_range)).
#include "model/arch/init_weights.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <string_view>

#include "model/arch/causal_lm.h"

namespace character::model {

namespace {
bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}
}  // namespace

void init_weights(CausalLMImpl& model, const InitOptions& options) {
  torch::NoGradGuard no_grad;
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  for (auto& item : model.named_parameters(/*recurse=*/true)) {
    const std::string& name = item.key();
    at::Tensor& param = item.value();
    at::Tensor values;
    // Norm weights (input_layernorm, post_attention_layernorm, q_norm, k_norm, model.norm)
    // are 1-D and named "...norm.weight": "LayerNorm"/"RMSNorm" modules → ones.
    if (ends_with(name, "norm.weight")) {
      values = torch::ones(param.sizes(), torch::kFloat);
    } else if (ends_with(name, ".bias")) {
      values = torch::zeros(param.sizes(), torch::kFloat);
    } else {
      values = at::normal(0.0, options.initializer_range, param.sizes().vec(), generator, torch::kFloat);
    }
    // nn.Embedding(vocab, hidden, padding_idx=pad_token_id): _init_weights zeroes that row.
    const auto& pad = model.config().pad_token_id;
    if (name == "model.embed_tokens.weight" && pad && *pad >= 0 && *pad < values.size(0)) values[*pad].zero_();
    param.copy_(values.to(param.device(), param.scalar_type()));
  }
}

}  // namespace character::model
