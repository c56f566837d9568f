// Mixtral: mirrors transformers 5.5.4 models/mixtral/modeling_mixtral.py.
// Llama attention (no q/k norm) with a sparse MoE block on every layer; top-k
// weights always renormalised (config.cpp sets norm_topk_prob). Router jitter is
// training-only and not applied here. transformers 5 renames the Hub's
// block_sparse_moe to mlp (conversion_mapping.py "mixtral"); Hub experts are
// model.layers.L.block_sparse_moe.experts.E.{w1 (gate), w3 (up), w2 (down)}.weight.
#include "model/arch/architectures.h"

namespace character::model {

const ArchSpec& mixtral_spec() {
  static const ArchSpec spec{"mixtral", "models/mixtral/modeling_mixtral.py", QkNorm::kNone,
                             ExpertNameRule{"block_sparse_moe", "w1", "w3", "w2"}};
  return spec;
}

}  // namespace character::model
