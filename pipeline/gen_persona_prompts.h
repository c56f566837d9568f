// The texts the generators put in front of a model: the constitution system prompt
// (personas/system_prompt.h, which the lab's teacher is also trained on), the paper's
// ten introspective reflection prompts (Appendix B, paraphrased), and the system
// prompts and openers of "free" and "leading" self-interactions.
#pragma once

#include <string>
#include <vector>

#include "personas/system_prompt.h"

namespace character::pipeline {

using personas::constitution_system_prompt;
using personas::persona_display_name;

// The ten reflection prompts, in the paper's order.
const std::vector<std::string>& reflection_prompts();

enum class InteractionVariant { kFree, kLeading };
const char* interaction_variant_name(InteractionVariant variant);  // "free", "leading"

// The constitution prompt plus the situation: the other side is another instance of
// the same character; "free" leaves the topic open, "leading" steers toward
// examining the character's own values.
std::string interaction_system_prompt(const personas::Persona& persona, InteractionVariant variant);

// First messages of a transcript (speaker A's opening line).
const std::vector<std::string>& interaction_openers(InteractionVariant variant);

}  // namespace character::pipeline
