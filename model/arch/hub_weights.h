// A loaded model's parameters under the names a Hugging Face Hub checkpoint
// uses (what transformers 5 save_pretrained writes and every loader reads):
// fused expert banks unstacked per expert and routers renamed by the
// architecture's ExpertNameRule (experts.h); everything else as registered.
// The inverse of the stacking that load_model does.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>

#include "model/arch/causal_lm.h"

namespace character::model {

// Name → tensor (views of the model's parameters, model dtype and device).
std::map<std::string, at::Tensor> hub_named_tensors(CausalLMImpl& model);

}  // namespace character::model
