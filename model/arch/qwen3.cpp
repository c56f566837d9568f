// Qwen3 dense: mirrors transformers 5.5.4 models/qwen3/modeling_qwen3.py.
// Llama plus RMSNorm on each query/key head (over head_dim, before rotary);
// head_dim is independent of hidden_size / num_attention_heads.
#include "model/arch/architectures.h"

namespace character::model {

const ArchSpec& qwen3_spec() {
  static const ArchSpec spec{"qwen3", "models/qwen3/modeling_qwen3.py", QkNorm::kPerHead, {}};
  return spec;
}

}  // namespace character::model
