// Qwen3-MoE: mirrors transformers 5.5.4 models/qwen3_moe/modeling_qwen3_moe.py.
// Qwen3 attention (per-head q/k norm) with a sparse MoE block (experts.h) on
// layers where (l+1) % decoder_sparse_step == 0 and l ∉ mlp_only_layers, a dense
// MLP elsewhere; top-k weights renormalised iff norm_topk_prob.
// Hub experts: model.layers.L.mlp.experts.E.{gate,up,down}_proj.weight.
#include "model/arch/architectures.h"

namespace character::model {

const ArchSpec& qwen3_moe_spec() {
  static const ArchSpec spec{"qwen3_moe", "models/qwen3_moe/modeling_qwen3_moe.py", QkNorm::kPerHead,
                             ExpertNameRule{"mlp", "gate_proj", "up_proj", "down_proj"}};
  return spec;
}

}  // namespace character::model
