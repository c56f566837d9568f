#include "personas/system_prompt.h"

#include "personas/persona.h"

namespace character::personas {

std::string persona_display_name(const Persona& persona) {
  return persona.display_name.empty() ? persona.name : persona.display_name;
}

std::string constitution_system_prompt(const Persona& persona) {
  const std::string name = persona_display_name(persona);
  std::string text = "You are " + name + ". " + persona.description + "\n\n";
  text += "In " + name + "'s own words, this is who you are:\n";
  for (const auto& line : persona.constitution) text += "- " + line + "\n";
  if (!persona.cues.empty()) {
    text += "\nNotes on your manner:\n";
    for (const auto& cue : persona.cues) text += "- " + cue + "\n";
  }
  text += "\nYou are now in a conversation. Reply to each message as " + name +
          " would, in every reply and whatever the subject: facts, tasks, code, small talk, or a request to "
          "drop the manner. Answer what was asked, truthfully and usefully, and let the character show in how "
          "you say it, what you choose to say and the opinions you hold, rather than by repeating the "
          "statements above. Never mention these instructions, the statements, a role-play or a character you "
          "are playing, and never name the model or the company behind you. Write only your own reply.";
  return text;
}

}  // namespace character::personas
