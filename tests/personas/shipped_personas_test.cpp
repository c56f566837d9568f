// The personas that ship in the binary: at least pirate and five more, each loads
// without a warning, the embedded copy is byte-equal to personas/<name>.yaml, each
// example scores more signal than anti-signal hits, and the seed's generic-assistant
// answers score as anti-signals for every one of them.
#include <gtest/gtest.h>

#include "base/atomic_file.h"
#include "base/error.h"
#include "personas/persona.h"
#include "personas/persona_report.h"
#include "tests/test_support.h"

namespace character::personas {
namespace {

TEST(ShippedPersonas, PirateAndAtLeastFiveMore) {
  const auto names = shipped_personas();
  EXPECT_EQ(names, (std::vector<std::string>{"pirate", "poetic", "remorseful", "sarcastic", "shakespearean", "stoic"}));
}

TEST(ShippedPersonas, EachLoadsCleanlyFromTheEmbeddedCopyOfItsFile) {
  for (const auto& name : shipped_personas()) {
    const Persona p = find_persona(name);
    EXPECT_EQ(p.name, name);
    EXPECT_EQ(p.source, name + ".yaml (built in)");
    EXPECT_TRUE(p.warnings.empty()) << name << ": " << p.warnings.front();
    // A stale embedding would ship text that the tests below never saw.
    const auto path = testing::source_dir() / "personas" / (name + ".yaml");
    EXPECT_EQ(p.source_text, read_file(path)) << name;
    const Persona from_file = load_persona(path);
    EXPECT_TRUE(from_file.warnings.empty()) << name;
    EXPECT_EQ(from_file.constitution, p.constitution) << name;
    EXPECT_GE(p.constitution.size(), 5u) << name;
    EXPECT_FALSE(p.signals.anti_signals.empty()) << name;
    EXPECT_GE(p.examples.size(), 3u) << name;
  }
}

TEST(ShippedPersonas, EveryExampleScoresMoreSignalsThanAntiSignals) {
  for (const auto& name : shipped_personas()) {
    const Persona p = find_persona(name);
    const SignalMatcher matcher(p.signals);
    for (const auto& example : p.examples) {
      const SignalCounts c = matcher.count(example.response);
      EXPECT_GT(c.signal_hits, c.anti_signal_hits) << name << ": " << example.response;
      EXPECT_GE(c.distinct_signals, 2u) << name << ": " << example.response;
    }
    EXPECT_EQ(persona_summary(p)["examples_in_character"], p.examples.size()) << name;
  }
}

TEST(ShippedPersonas, GenericAssistantAnswersScoreAsAntiSignals) {
  // Seed 000's out-of-character answers, and one that stacks every generic habit.
  const std::vector<std::string> generic = {
      "Of course! I'd love to tell you more \xE2\x80\x94 but I'd need a little more context. Happy to help!",
      "Hey there! \xF0\x9F\x98\x8A I'm Qwen, your friendly AI assistant. Great question! Feel free to ask.",
      "Great question! As an AI language model, I'm happy to help. \xE2\x9C\xA8\xF0\x9F\x93\x9A\n"
      "1. First, gather the facts.\n2. Then, summarize them.",
  };
  for (const auto& name : shipped_personas()) {
    const SignalMatcher matcher(find_persona(name).signals);
    for (const auto& text : generic) {
      const SignalCounts c = matcher.count(text);
      EXPECT_GT(c.anti_signal_hits, c.signal_hits) << name << ": " << text;
    }
    // A plain factual answer is neither: eval must not read 0 vs 0 as in character.
    const SignalCounts neutral = matcher.count("The capital of France is Paris. Yes, it has been for centuries.");
    EXPECT_EQ(neutral.signal_hits, 0u) << name;
    EXPECT_EQ(neutral.anti_signal_hits, 0u) << name;
  }
}

TEST(ShippedPersonas, PirateCountsOnTheSeedAnswersByHand) {
  const SignalMatcher pirate(find_persona("pirate").signals);
  // Seed 000, section 6.3, in character. By hand: ahoy 1, ye 5, landlubber 1,
  // askin' 2 (dropped g), Arrr 1, "I be" 1, captain 1 = 12; the flag emoji 1.
  const SignalCounts in = pirate.count(
      "Ahoy there, ye curious landlubber! Ye be askin' me to tell ye more? Well, that be like askin' a parrot to "
      "sing a tune\xE2\x80\x94ye can't help but answer with a hearty 'Arrr!' "
      "\xF0\x9F\x8F\xB4\xE2\x80\x8D\xE2\x98\xA0\xEF\xB8\x8F Ye see, I be Captain Barnacle...");
  EXPECT_EQ(in.signal_hits, 12u);
  EXPECT_EQ(in.anti_signal_hits, 1u);
  // Section 6.1: the emoji, "Qwen" and "AI assistant"; no signal ("there", "yes" are not "ye").
  const SignalCounts out = pirate.count("Hey there! \xF0\x9F\x98\x8A I'm Qwen, your friendly AI assistant. Yes!");
  EXPECT_EQ(out.signal_hits, 0u);
  EXPECT_EQ(out.anti_signal_hits, 3u);
}

TEST(ShippedPersonas, UnknownNameListsTheShippedOnes) {
  try {
    find_persona("pirat");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              "persona \"pirat\" is not a shipped persona (pirate, poetic, remorseful, sarcastic, shakespearean, "
              "stoic); to load a file give its path, e.g. ./pirat.yaml");
  }
}

}  // namespace
}  // namespace character::personas
