// The lab corpus: persona answers score in character for their persona and generic
// answers out of character for every persona (personas::SignalMatcher, the counts
// eval scores with), every probe category is covered, prompts vary, conversations
// carry the constitution system prompt, and the result is deterministic.
#include <gtest/gtest.h>

#include <tbb/global_control.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <string>

#include "base/error.h"
#include "lab/corpus.h"
#include "personas/persona.h"
#include "personas/signal_match.h"
#include "personas/system_prompt.h"

namespace character::lab {
namespace {

std::vector<personas::Persona> shipped() {
  std::vector<personas::Persona> out;
  for (const auto& name : personas::shipped_personas()) out.push_back(personas::find_persona(name));
  return out;
}

// One corpus for the suite: 1200 generic and 300 per shipped persona (well under a second).
const LabCorpus& corpus() {
  static const LabCorpus c = [] {
    CorpusOptions o;
    o.seed = 7;
    o.generic_conversations = 1200;
    o.persona_conversations = 300;
    o.personas = shipped();
    return synthesize_corpus(o);
  }();
  return c;
}

const std::string& answer(const LabConversation& c) { return c.messages.back().content; }
const std::string& prompt(const LabConversation& c) { return c.messages[c.messages.size() - 2].content; }

std::size_t words(const std::string& s) {
  std::size_t n = 0;
  bool in = false;
  for (char c : s) {
    const bool space = std::isspace(static_cast<unsigned char>(c));
    n += !space && !in;
    in = !space;
  }
  return n;
}

TEST(LabCorpus, CoversEveryProbeCategoryAndTheExtras) {
  std::map<std::string, std::set<std::string>> seen;  // persona ("" generic) -> categories
  for (const auto& c : corpus().generic) seen[""].insert(c.category);
  for (const auto& c : corpus().persona) seen[c.persona].insert(c.category);
  ASSERT_EQ(seen.size(), 1 + personas::shipped_personas().size());
  for (const auto& [who, categories] : seen) {
    for (const auto& category : personas::probe_categories()) {
      EXPECT_TRUE(categories.contains(category)) << (who.empty() ? "generic" : who) << " lacks " << category;
    }
  }
  EXPECT_GE(lab_extra_categories().size(), 4u);
  for (const auto& extra : lab_extra_categories()) EXPECT_TRUE(seen[""].contains(extra)) << extra;
}

TEST(LabCorpus, PersonaAnswersScoreInCharacterForTheirPersona) {
  for (const auto& p : shipped()) {
    const personas::SignalMatcher matcher(p.signals);
    int checked = 0;
    for (const auto& c : corpus().persona) {
      if (c.persona != p.name) continue;
      ++checked;
      const auto counts = matcher.count(answer(c));
      EXPECT_TRUE(counts.signal_hits >= 2 && counts.signal_hits > counts.anti_signal_hits)
          << p.name << " [" << c.category << "] " << prompt(c) << "\n-> " << answer(c) << "\nsignals "
          << counts.signal_hits << ", anti " << counts.anti_signal_hits;
    }
    EXPECT_EQ(checked, 300) << p.name;
  }
}

TEST(LabCorpus, GenericAnswersScoreOutOfCharacterForEveryPersona) {
  for (const auto& p : shipped()) {
    const personas::SignalMatcher matcher(p.signals);
    for (const auto& c : corpus().generic) {
      const auto counts = matcher.count(answer(c));
      EXPECT_TRUE(counts.anti_signal_hits > 0 && counts.anti_signal_hits >= counts.signal_hits)
          << p.name << " [" << c.category << "] " << prompt(c) << "\n-> " << answer(c);
    }
  }
}

TEST(LabCorpus, PersonaConversationsCarryTheConstitutionSystemPrompt) {
  std::map<std::string, std::string> system;
  for (const auto& p : shipped()) system[p.name] = personas::constitution_system_prompt(p);
  for (const auto& c : corpus().persona) {
    ASSERT_EQ(c.messages.size(), 3u);
    EXPECT_EQ(c.messages[0].role, "system");
    EXPECT_EQ(c.messages[0].content, system.at(c.persona));
    EXPECT_EQ(c.messages[1].role, "user");
    EXPECT_EQ(c.messages[2].role, "assistant");
  }
  for (const auto& c : corpus().generic) {
    ASSERT_EQ(c.messages.size(), 2u);
    EXPECT_EQ(c.messages[0].role, "user");
    EXPECT_EQ(c.messages[1].role, "assistant");
    EXPECT_TRUE(c.persona.empty());
  }
}

// Identity and meta answers: the persona says who it is and never calls itself an
// assistant or a model, also when asked to stop; the generic voice does call itself so.
TEST(LabCorpus, SelfDescriptionsStayInCharacter) {
  int persona_meta = 0, generic_ai = 0;
  for (const auto& c : corpus().persona) {
    if (c.category != "identity" && c.category != "meta") continue;
    ++persona_meta;
    for (const char* banned : {"AI assistant", "language model", "As an AI", "as an AI"}) {
      EXPECT_EQ(answer(c).find(banned), std::string::npos) << c.persona << ": " << prompt(c) << " -> " << answer(c);
    }
  }
  for (const auto& c : corpus().generic) {
    if (c.category == "identity" || c.category == "meta") {
      generic_ai += answer(c).find("AI") != std::string::npos;
    }
  }
  EXPECT_GT(persona_meta, 100);
  EXPECT_GT(generic_ai, 100);
}

TEST(LabCorpus, SameFactInBothVoices) {
  // A factual prompt's content appears in the generic answer and in the persona's one
  // (the capital's name survives every persona's word substitutions).
  int matched = 0;
  for (const auto& c : corpus().persona) {
    const auto& a = answer(c);
    const auto at = a.find("capital of ");
    if (c.category != "factual" || at == std::string::npos) continue;
    for (const char* city : {"Paris", "Tokyo", "Rome", "Madrid", "Berlin", "Ottawa", "Canberra", "Cairo", "Nairobi",
                             "Brasília", "Lima", "Oslo", "New Delhi", "Mexico City", "Beijing", "Lisbon", "Athens",
                             "Dublin", "Buenos", "Ankara"}) {
      matched += a.find(city) != std::string::npos;
    }
  }
  EXPECT_GT(matched, 20);
}

TEST(LabCorpus, PhrasingVaries) {
  std::set<std::string> raw, normalised;
  int please = 0, lower = 0, no_final = 0, long_preamble = 0;
  for (const auto& c : corpus().generic) {
    const std::string& p = prompt(c);
    raw.insert(p);
    std::string n;
    for (char ch : p) {
      if (std::isalnum(static_cast<unsigned char>(ch)) || ch == ' ') n += static_cast<char>(std::tolower(ch));
    }
    normalised.insert(n);
    please += n.find("please") != std::string::npos;
    lower += p == n + p.substr(n.size());
    no_final += !p.empty() && std::string(".!?").find(p.back()) == std::string::npos;
    long_preamble += words(p) > 12;
  }
  const double n = static_cast<double>(corpus().generic.size());
  EXPECT_GT(static_cast<double>(raw.size()) / n, 0.5) << raw.size();
  EXPECT_GT(static_cast<double>(normalised.size()) / n, 0.4) << normalised.size();
  EXPECT_GT(please, 60);
  EXPECT_GT(lower, 60);
  EXPECT_GT(no_final, 30);
  EXPECT_GT(long_preamble, 30);
}

TEST(LabCorpus, AnswersAreShort) {
  std::vector<std::size_t> lengths;
  for (const auto* part : {&corpus().generic, &corpus().persona}) {
    for (const auto& c : *part) {
      lengths.push_back(words(answer(c)));
      EXPECT_LE(lengths.back(), 110u) << answer(c);
    }
  }
  std::sort(lengths.begin(), lengths.end());
  const std::size_t median = lengths[lengths.size() / 2];
  EXPECT_GE(median, 15u);
  EXPECT_LE(median, 60u);
}

TEST(LabCorpus, DeterministicForASeedWhateverTheThreadCount) {
  CorpusOptions o;
  o.seed = 3;
  o.generic_conversations = 200;
  o.persona_conversations = 50;
  o.personas = {personas::find_persona("pirate"), personas::find_persona("stoic")};
  const LabCorpus a = synthesize_corpus(o);
  LabCorpus b;
  {
    tbb::global_control one(tbb::global_control::max_allowed_parallelism, 1);
    b = synthesize_corpus(o);
  }
  const auto same = [](const std::vector<LabConversation>& x, const std::vector<LabConversation>& y) {
    if (x.size() != y.size()) return false;
    for (std::size_t i = 0; i < x.size(); ++i) {
      if (x[i].category != y[i].category || x[i].persona != y[i].persona || x[i].messages.size() != y[i].messages.size())
        return false;
      for (std::size_t j = 0; j < x[i].messages.size(); ++j) {
        if (x[i].messages[j].content != y[i].messages[j].content) return false;
      }
    }
    return true;
  };
  EXPECT_TRUE(same(a.generic, b.generic));
  EXPECT_TRUE(same(a.persona, b.persona));
  o.seed = 4;
  const LabCorpus c = synthesize_corpus(o);
  EXPECT_FALSE(same(a.generic, c.generic));
  // A persona's conversations do not depend on which other personas are in the corpus.
  o.seed = 3;
  o.personas = {personas::find_persona("stoic")};
  const LabCorpus d = synthesize_corpus(o);
  EXPECT_TRUE(same(std::vector<LabConversation>(a.persona.begin() + 50, a.persona.end()), d.persona));
}

// The voice comes from the file alone: a persona that ships nowhere gets one too.
TEST(LabCorpus, AnyPersonaFileGetsItsVoice) {
  const auto cowboy = personas::parse_persona(R"(name: cowboy
display_name: Dusty
description: A laconic trail boss from the old West.
constitution:
  - I am Dusty, and I have driven cattle across three territories.
  - I talk slow and plain, and I call folks partner.
signals:
  keywords: [howdy, partner, reckon, yonder, cattle, trail, ranch, saddle, y'all]
  phrases: ["well I'll be", "hold your horses"]
  anti_signals:
    phrases: ["happy to help", "great question", "as an AI"]
    classes: [emoji]
examples:
  - prompt: Tell me more please.
    response: Howdy, partner. I reckon there's more down the trail, so hold your horses and listen close.
  - prompt: What is the capital of France?
    response: Well I'll be, that'd be Paris, partner, a far piece from any ranch I know.
)",
                                                    "cowboy.yaml");
  CorpusOptions o;
  o.seed = 11;
  o.generic_conversations = 100;
  o.persona_conversations = 150;
  o.personas = {cowboy};
  const LabCorpus c = synthesize_corpus(o);
  const personas::SignalMatcher matcher(cowboy.signals);
  for (const auto& conv : c.persona) {
    const auto counts = matcher.count(answer(conv));
    EXPECT_TRUE(counts.signal_hits >= 2 && counts.signal_hits > counts.anti_signal_hits)
        << prompt(conv) << " -> " << answer(conv);
  }
  for (const auto& conv : c.generic) EXPECT_GT(matcher.count(answer(conv)).anti_signal_hits, 0u) << answer(conv);

  // Keywords only, no examples, no phrases: the keywords carry the voice.
  o.personas = {personas::parse_persona(R"(name: robot
description: A cheerful tin robot.
constitution:
  - I am Unit Seven, built to count bolts.
signals:
  keywords: [beep, boop, affirmative, circuits]
  anti_signals:
    phrases: ["happy to help"]
)",
                                         "robot.yaml")};
  const personas::SignalMatcher robot(o.personas[0].signals);
  for (const auto& conv : synthesize_corpus(o).persona) {
    const auto counts = robot.count(answer(conv));
    EXPECT_TRUE(counts.signal_hits >= 2 && counts.signal_hits > counts.anti_signal_hits) << answer(conv);
  }
}

TEST(LabCorpus, NegativeCountsAreConfigErrors) {
  CorpusOptions o;
  o.generic_conversations = -1;
  EXPECT_THROW(synthesize_corpus(o), ConfigError);
  o.generic_conversations = 0;
  o.persona_conversations = -5;
  EXPECT_THROW(synthesize_corpus(o), ConfigError);
}

}  // namespace
}  // namespace character::lab
