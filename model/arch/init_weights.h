// Random initialisation of a freshly created model, as transformers'
// PreTrainedModel._init_weights does it: normal(0, initializer_range) for linear,
// embedding, router and expert-bank weights, ones for RMSNorm weights, zeros for
// biases and the embedding row of pad_token_id. Deterministic for a seed.
#pragma once

#include <cstdint>

namespace character::model {

class CausalLMImpl;

struct InitOptions {
  uint64_t seed = 0;
  double initializer_range = 0.02;  // config.json initializer_range (transformers' default)
};

// Overwrites every parameter of `model` in named_parameters() order from one CPU
// generator seeded with options.seed, so a seed gives the same weights on every device.
void init_weights(CausalLMImpl& model, const InitOptions& options);

}  // namespace character::model
