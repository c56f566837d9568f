// Parameter counts from config shapes, module by module as transformers'
// modeling_{llama,qwen3,qwen3_moe,mixtral,olmoe}.py build them (the config oracle
// fixture compares against the meta-device models' numel).
#include "model/io/param_count.h"

namespace character::model {

ParameterCount count_parameters(const ModelConfig& c) {
  const int64_t H = c.hidden_size, V = c.vocab_size, Dh = c.head_dim;
  const int64_t q_out = c.num_attention_heads * Dh, kv_out = c.num_key_value_heads * Dh;

  // Attention: q, k, v, o projections (biases when attention_bias) and qk-norm:
  // per head over Dh for qwen3/qwen3_moe, over the whole projection for olmoe.
  int64_t attention = H * q_out + 2 * H * kv_out + q_out * H;
  if (c.attention_bias) attention += q_out + 2 * kv_out + H;
  if (c.model_type == "qwen3" || c.model_type == "qwen3_moe") attention += 2 * Dh;
  if (c.model_type == "olmoe") attention += q_out + kv_out;

  // SwiGLU MLP: gate and up [I, H], down [H, I]; llama's mlp_bias adds 2I + H.
  const int64_t dense_mlp = 3 * H * c.intermediate_size + (c.mlp_bias ? 2 * c.intermediate_size + H : 0);
  const int64_t per_expert = 3 * H * c.expert_intermediate_size();
  const int64_t moe_block = c.num_experts * H /* router */ + c.num_experts * per_expert;

  ParameterCount count;
  count.per_expert = c.is_moe() ? per_expert : 0;
  count.total = V * H /* embed_tokens */ + H /* final norm */ + (c.tie_word_embeddings ? 0 : V * H /* lm_head */);
  for (int64_t layer = 0; layer < c.num_hidden_layers; ++layer) {
    const bool moe = c.is_moe_layer(layer);
    count.moe_layers += moe ? 1 : 0;
    count.total += 2 * H /* input and post-attention norms */ + attention + (moe ? moe_block : dense_mlp);
  }
  count.active = count.total - count.moe_layers * (c.num_experts - c.num_experts_per_tok) * count.per_expert;
  return count;
}

}  // namespace character::model
