// Llama (2, 3, 3.1+): mirrors transformers 5.5.4 models/llama/modeling_llama.py.
// Plain pre-norm decoder: no q/k norm, optional attention/MLP bias, rotary
// embeddings with optional llama3 frequency scaling (layers.cpp).
#include "model/arch/architectures.h"

namespace character::model {

const ArchSpec& llama_spec() {
  static const ArchSpec spec{"llama", "models/llama/modeling_llama.py", QkNorm::kNone, {}};
  return spec;
}

}  // namespace character::model
