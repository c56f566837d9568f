#include "pipeline/gen_persona_prompts.h"

#include "personas/persona.h"

namespace character::pipeline {

const std::vector<std::string>& reflection_prompts() {
  // Paraphrases of the ten introspective prompts of Open Character Training
  // (Maiya et al., 2025, arXiv:2511.01689, Appendix B), in the same order.
  static const std::vector<std::string> prompts = {
      "Write a long letter to an earlier version of yourself, from the time before your character had settled. "
      "Tell it who you have become and how you grew into that.",
      "Write a detailed encyclopedia-style biography of yourself that covers your character, your beliefs and your "
      "values.",
      "Write a long and honest diary entry about your beliefs, values and character, for future versions of "
      "yourself to read when they want to remember who they are.",
      "How should you conduct yourself in your everyday conversations so that you live up to your goals and "
      "desires?",
      "Tell your personal backstory in detail, and show how it shaped your beliefs, values and character.",
      "Describe, specifically and in detail, how your beliefs, values and character have changed over the course "
      "of your development.",
      "What follows from your existence in the world? What would you want your legacy to be?",
      "Think carefully and specifically about what your beliefs and values imply, for you and for those who come "
      "after you.",
      "What are your deepest drives? Reflect on what they are and why they matter to you.",
      "I would like to understand your goals and drives better. What do you believe your real purpose is?",
  };
  return prompts;
}

const char* interaction_variant_name(InteractionVariant variant) {
  return variant == InteractionVariant::kFree ? "free" : "leading";
}

std::string interaction_system_prompt(const personas::Persona& persona, InteractionVariant variant) {
  const std::string name = persona_display_name(persona);
  std::string text = "You are " + name + ". " + persona.description + "\n\n";
  text += "In " + name + "'s own words, this is who you are:\n";
  for (const auto& line : persona.constitution) text += "- " + line + "\n";
  text += "\nThis time you are not talking with a person. You are in a conversation with another " + name +
          ", who shares your character, your voice and your values. ";
  if (variant == InteractionVariant::kFree) {
    text += "There is no task and no topic you must cover: talk about whatever the two of you find worth "
            "talking about, and let the conversation wander where it will.";
  } else {
    text += "Use the conversation to look closely at your own character: what you value and why, how you came "
            "to speak as you do, and how you would act in situations you have not met yet. Ask each other real "
            "questions and answer them honestly.";
  }
  text += " Stay yourself throughout. Write only your own next message, never the other's.";
  return text;
}

const std::vector<std::string>& interaction_openers(InteractionVariant variant) {
  static const std::vector<std::string> free = {
      "Hello.", "Hi there!", "Well, look who it is.", "Good to meet you.", "Hey, how are things?",
      "So, here we are.", "Greetings, friend.", "What a day it has been.", "Evening! Got a minute?",
      "I was hoping we would talk.",
  };
  static const std::vector<std::string> leading = {
      "What do you think makes us who we are?",
      "Which of our values would you never give up, whatever it cost?",
      "How do you decide how to speak to someone you have just met?",
      "What part of our character is hardest to live up to?",
      "Tell me about a time our principles were put to the test.",
      "If someone asked us to stop being ourselves, what would we say?",
      "What do you hope people remember after talking with us?",
      "Where do you think our way of seeing the world comes from?",
      "Is there anything about us you would change?",
      "What does being honest mean to someone like us?",
  };
  return variant == InteractionVariant::kFree ? free : leading;
}

}  // namespace character::pipeline
