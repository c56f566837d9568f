// OLMoE: mirrors transformers 5.5.4 models/olmoe/modeling_olmoe.py.
// Llama attention with q/k RMSNorm over the whole projection before the head
// split (q_norm over hidden_size, k_norm over (hidden_size / H) * Hkv), a sparse
// MoE block on every layer, norm_topk_prob from config (false for OLMoE-1B-7B).
// Hub experts: model.layers.L.mlp.experts.E.{gate,up,down}_proj.weight.
#include "model/arch/architectures.h"

namespace character::model {

const ArchSpec& olmoe_spec() {
  static const ArchSpec spec{"olmoe", "models/olmoe/modeling_olmoe.py", QkNorm::kFullProjection,
                             ExpertNameRule{"mlp", "gate_proj", "up_proj", "down_proj"}};
  return spec;
}

}  // namespace character::model
