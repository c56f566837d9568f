// The texts the generators put in front of a model: the constitution system prompt
// (the Open Character Training paper's Appendix A, in our own words), the paper's
// ten introspective reflection prompts (Appendix B, paraphrased), and the system
// prompts and openers of "free" and "leading" self-interactions.
#pragma once

#include <string>
#include <vector>

namespace character::personas {
struct Persona;
}

namespace character::pipeline {

// The persona's name as the model should use it: display_name, else name.
std::string persona_display_name(const personas::Persona& persona);

// System prompt for the teacher (DPO chosen) and for introspection sampling: who the
// character is, its constitution lines and cues, and how to answer (in character,
// truthfully, never naming the instructions, a role-play or the model behind it).
std::string constitution_system_prompt(const personas::Persona& persona);

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
