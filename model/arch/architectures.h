// The supported architectures, one ArchSpec each (llama.cpp, qwen3.cpp,
// qwen3_moe.cpp, mixtral.cpp, olmoe.cpp), and model construction from them.
#pragma once

#include <c10/core/TensorOptions.h>

#include <string>

#include "model/arch/causal_lm.h"
#include "model/arch/decoder.h"

namespace character::model {

const ArchSpec& llama_spec();
const ArchSpec& qwen3_spec();
const ArchSpec& qwen3_moe_spec();
const ArchSpec& mixtral_spec();
const ArchSpec& olmoe_spec();

// CheckpointError naming the model_type and the supported ones when unknown.
const ArchSpec& arch_spec(const std::string& model_type);

// create_model with parameters allocated (uninitialised) with `options`.
CausalLM create_model(const ModelConfig& config, const at::TensorOptions& options);

}  // namespace character::model
