#include "model/arch/decoder.h"

#include <torch/torch.h>

#include "model/arch/checkpointing.h"
#include "model/arch/kv_cache.h"

namespace character::model {

DecoderLayerImpl::DecoderLayerImpl(const ModelConfig& c, const ArchSpec& spec, int64_t layer,
                                   const at::TensorOptions& options) {
  self_attn = register_module("self_attn", Attention(c, layer, spec.qk_norm, options));
  if (c.is_moe_layer(layer)) {
    moe = register_module("mlp", SparseMoeBlock(c, options));
  } else {
    mlp = register_module("mlp", MLP(c.hidden_size, c.intermediate_size, c.mlp_bias, options));
  }
  input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps, options));
  post_attention_layernorm =
      register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps, options));
}

at::Tensor DecoderLayerImpl::forward(const at::Tensor& h, const RotaryTables& rope, const AttentionMask& mask,
                                     KVCache* cache, LayerRouting* routing) {
  // Pre-norm residual blocks: attention mixes positions, the MLP/MoE works per position.
  auto x = h + self_attn(input_layernorm(h), rope, mask, cache);
  auto normed = post_attention_layernorm(x);
  return x + (moe ? moe(normed, routing) : mlp(normed));
}

DecoderStackImpl::DecoderStackImpl(const ModelConfig& c, const ArchSpec& spec, const at::TensorOptions& options) {
  embed_tokens = register_module("embed_tokens", Embedding(c.vocab_size, c.hidden_size, options));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    layer_list.push_back(DecoderLayer(c, spec, l, options));
    layers->push_back(layer_list.back());
  }
  norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps, options));
}

DecoderLMImpl::DecoderLMImpl(const ModelConfig& config, ArchSpec spec, const at::TensorOptions& options)
    : CausalLMImpl(config), spec_(std::move(spec)), rotary_(config, options.device()) {
  model = register_module("model", DecoderStack(config, spec_, options));
  if (!config.tie_word_embeddings) {
    lm_head = register_module("lm_head", Linear(config.hidden_size, config.vocab_size, /*bias=*/false, options));
  }
}

const at::Tensor& DecoderLMImpl::output_embedding() const {
  return lm_head ? lm_head->weight : model->embed_tokens->weight;
}

ForwardOutput DecoderLMImpl::forward(const ForwardInput& input) {
  const auto& ids = input.input_ids;
  TORCH_CHECK(ids.dim() == 2, "input_ids must be [B, T], got ", ids.sizes());
  const int64_t batch = ids.size(0), steps = ids.size(1);
  const int64_t past = input.cache ? input.cache->length() : 0;
  const auto device = model->embed_tokens->weight.device();
  const auto dtype = model->embed_tokens->weight.scalar_type();

  // 1. Embeddings, positions (from the padding mask), rotary tables, attention mask.
  auto h = model->embed_tokens(ids.to(device));  // [B, T, D]
  auto positions = make_positions(input.attention_mask, past, steps, device);
  const RotaryTables rope = rotary_.tables(positions, dtype);
  const AttentionMask mask = make_attention_mask(input.attention_mask, batch, past, steps, device);

  // 2. Decoder layers, capturing what was asked for (output_hidden_states /
  //    output_router_logits in transformers).
  ForwardOutput out;
  const auto& capture = input.capture;
  if (capture.router) out.routing.reserve(model->layer_list.size());  // pointers below stay valid
  for (size_t l = 0; l < model->layer_list.size(); ++l) {
    if (capture.hidden_states) out.hidden_states.push_back(h);
    auto& layer = model->layer_list[l];
    LayerRouting* routing = nullptr;
    if (capture.router && layer->moe) {
      out.routing.push_back(LayerRouting{static_cast<int64_t>(l), {}, {}, {}});
      routing = &out.routing.back();
    }
    // Training with activation checkpointing (model/arch/checkpointing.h): keep only the layer input.
    h = layer_checkpointing_enabled() && !input.cache && at::GradMode::is_enabled()
            ? checkpointed_layer(layer.ptr(), h, rope, mask, routing)
            : layer(h, rope, mask, input.cache, routing);
  }

  // 3. Final norm; transformers' last hidden state is the normed one.
  h = model->norm(h);
  if (capture.hidden_states) out.hidden_states.push_back(h);
  if (input.skip_logits) {
    out.final_hidden = h;
    return out;
  }

  // 4. Logits, for the last position only when generating. [B, T, D] → [B, T, V]
  // contiguous(): a strided [B, 1, D] slice makes at::linear broadcast the [V, D]
  // weight into a batched matmul (B copies of the lm_head), ~5x slower than one mm.
  if (input.last_logits_only) h = h.narrow(1, steps - 1, 1).contiguous();
  out.logits = unembed(h).to(at::kFloat);
  return out;
}

at::Tensor DecoderLMImpl::unembed(const at::Tensor& h) {
  auto logits = at::linear(h, output_embedding());  // [..., V]
  if (unembed_delta && adapters_enabled()) logits = logits + unembed_delta->forward(h);
  return logits;
}

}  // namespace character::model
