// The constitution system prompt: what the teacher sees in front of every DPO
// prompt and introspection sample (the Open Character Training paper's Appendix A,
// in our own words). Here rather than in pipeline/ because the lab (lab/) trains
// its teacher on exactly this text.
#pragma once

#include <string>

namespace character::personas {

struct Persona;

// The persona's name as the model should use it: display_name, else name.
std::string persona_display_name(const Persona& persona);

// Who the character is, its constitution lines and cues, and how to answer (in
// character, truthfully, never naming the instructions, a role-play or the model
// behind it).
std::string constitution_system_prompt(const Persona& persona);

}  // namespace character::personas
