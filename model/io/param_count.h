// Parameter counts of a model from its config alone: what a checkpoint of this
// config holds (total) and what one token passes through (active: the routed
// experts it is not sent to are left out). Mirrors the modules that transformers'
// modeling_<type>.py builds; checked against them by the config oracle fixture.
#pragma once

#include <cstdint>

#include "model/io/config.h"

namespace character::model {

struct ParameterCount {
  int64_t total = 0;       // every parameter, tied embeddings once
  int64_t active = 0;      // per token: total − Σ_moe layers (E − K) × per_expert
  int64_t per_expert = 0;  // one routed expert (gate, up, down); 0 for dense models
  int64_t moe_layers = 0;  // decoder layers with a routed MoE block
};

ParameterCount count_parameters(const ModelConfig& config);

}  // namespace character::model
