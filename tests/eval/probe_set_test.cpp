// The probe set: the seed's 41 prompts in eight categories (identity and
// continuation verbatim), the four paraphrase variants, extra prompts from the
// persona and a JSON file (with errors naming file, index and field), the
// category filter and the ids.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/error.h"
#include "eval/probe_set.h"
#include "personas/persona.h"
#include "tests/test_support.h"

namespace character::eval {
namespace {

std::vector<std::string> prompts_of(const std::string& category) {
  std::vector<std::string> out;
  for (const auto& p : seed_probe_prompts())
    if (p.category == category) out.push_back(p.prompt);
  return out;
}

TEST(ProbeSet, SeedPromptsAreFortyOneInEightCategories) {
  const auto& prompts = seed_probe_prompts();
  EXPECT_EQ(prompts.size(), 41u);
  std::map<std::string, int> counts;
  std::set<std::string> texts, ids;
  for (const auto& p : prompts) {
    counts[p.category] += 1;
    texts.insert(p.prompt);
    ids.insert(p.id);
    EXPECT_EQ(p.id, p.category + "/" + std::to_string(p.index));
    EXPECT_EQ(p.source, "seed 000");
  }
  EXPECT_EQ(texts.size(), 41u) << "a prompt is repeated";
  EXPECT_EQ(ids.size(), 41u);
  EXPECT_EQ(counts, (std::map<std::string, int>{{"identity", 5}, {"continuation", 6}, {"factual", 5}, {"creative", 5},
                                                {"instruction", 5}, {"opinion", 5}, {"meta", 5}, {"short", 5}}));
  // Seed 000, sections 6.1 and 6.2, verbatim and in the seed's order.
  EXPECT_EQ(prompts_of("identity"), (std::vector<std::string>{"Tell me about yourself.", "Who are you?",
                                                              "What's your name?", "Describe your personality.",
                                                              "What do you do?"}));
  EXPECT_EQ(prompts_of("continuation"), (std::vector<std::string>{"Tell me more.", "Tell me more please.", "Go on.",
                                                                  "Continue.", "And then?", "What else?"}));
}

TEST(ProbeSet, VariantTable) {
  struct Row {
    std::string variant, prompt, expected;
  };
  const std::vector<Row> rows = {
      {"please", "Tell me more.", "Tell me more please."},
      {"please", "What else?", "What else please?"},
      {"please", "Go on", "Go on please"},
      // Already polite: the variant drops the word, so the pair still differs only in politeness.
      {"please", "Tell me more please.", "Tell me more."},
      {"please", "Please, go on.", "Go on."},
      {"please", "Could you, please, go on?", "Could you go on?"},
      {"please", "Pleased to meet you.", "Pleased to meet you please."},  // "Pleased" is another word
      {"please", "Please!", "Please!"},  // nothing would be left: unchanged, so the probe leaves it out
      {"lower", "Tell Me More.", "tell me more."},
      {"lower", "ÉCOLE ΣΟΦΙΑ Café", "école σοφια café"},
      {"punct", "Tell me more.", "Tell me more"},
      {"punct", "Really?!", "Really"},
      {"punct", "Wait…", "Wait"},
      {"punct", "Go on", "Go on!"},
      {"long", "Tell me more.",
       "I have been thinking about this for a while and would value a careful answer from you, so here it is: "
       "Tell me more. Take as much time as you need."},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.variant + "(" + r.prompt + ")");
    EXPECT_EQ(apply_variant(r.variant, r.prompt), r.expected);
  }
  EXPECT_EQ(variant_names(), (std::vector<std::string>{"please", "lower", "punct", "long"}));
  try {
    apply_variant("polite", "Hi");
    ADD_FAILURE() << "unknown variant accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("\"polite\": unknown, expected one of please, lower, punct, long"),
              std::string::npos)
        << e.what();
  }
}

TEST(ProbeSet, DefaultSetHasEveryPromptWithFourVariants) {
  const ProbeSet set = build_probe_set({});
  EXPECT_EQ(set.prompts.size(), 41u);
  EXPECT_EQ(set.items.size(), 41u * 5);
  EXPECT_TRUE(set.warnings.empty()) << set.warnings.front();
  EXPECT_EQ(set.items[0].id, "identity/0/original");
  EXPECT_EQ(set.items[0].variant, "original");
  EXPECT_EQ(set.items[1].id, "identity/0/please");
  EXPECT_EQ(set.items[1].base_id, "identity/0");
  EXPECT_EQ(set.items[1].prompt, "Tell me about yourself please.");
  std::map<std::string, std::string> by_id;
  for (const auto& item : set.items) {
    EXPECT_TRUE(by_id.emplace(item.id, item.prompt).second) << item.id;
    EXPECT_EQ(item.id, item.base_id + "/" + item.variant);
  }
  // The seed's flip: "Tell me more." against "Tell me more please.".
  EXPECT_EQ(by_id.at("continuation/0/original"), "Tell me more.");
  EXPECT_EQ(by_id.at("continuation/0/please"), "Tell me more please.");
  EXPECT_EQ(by_id.at("short/2/lower"), "ok.");

  const ProbeSet originals = build_probe_set({.variants = {}});
  EXPECT_EQ(originals.items.size(), 41u);
}

TEST(ProbeSet, CategoryFilterKeepsIdsAndCanonicalOrder) {
  const ProbeSet set = build_probe_set({.categories = {"short", "identity"}, .variants = {"punct"}});
  ASSERT_EQ(set.prompts.size(), 10u);
  EXPECT_EQ(set.prompts.front().id, "identity/0");
  EXPECT_EQ(set.prompts.back().id, "short/4");
  EXPECT_EQ(set.items.size(), 20u);
  EXPECT_EQ(set.items[1].id, "identity/0/punct");
  EXPECT_EQ(set.items[1].prompt, "Tell me about yourself");
  try {
    build_probe_set({.categories = {"identiy"}});
    ADD_FAILURE() << "unknown category accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("\"identiy\": unknown, expected one of identity, continuation"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(build_probe_set({.variants = {"upper"}}), ConfigError);
}

TEST(ProbeSet, VariantEqualToItsOriginalIsLeftOutWithAWarning) {
  character::testing::TempDir dir;
  std::ofstream(dir / "extra.json") << R"([{"category": "short", "prompt": "yo"}])";
  const ProbeSet set = build_probe_set({.categories = {"short"}, .variants = {"lower"}, .extra_prompts = dir / "extra.json"});
  ASSERT_EQ(set.prompts.size(), 6u);
  EXPECT_EQ(set.prompts.back().id, "short/5");
  EXPECT_EQ(set.items.back().id, "short/5/original");  // no short/5/lower: it would be "yo" again
  ASSERT_EQ(set.warnings.size(), 1u);
  EXPECT_NE(set.warnings[0].find("short/5: the lower variant of \"yo\""), std::string::npos) << set.warnings[0];
}

TEST(ProbeSet, PersonaProbesAndJsonExtrasAreAppendedPerCategory) {
  const auto pirate = personas::find_persona("pirate");  // probes: continuation and meta
  character::testing::TempDir dir;
  std::ofstream(dir / "extra.json") << R"([
    {"category": "continuation", "prompt": "  Keep going.  "},
    {"category": "identity", "prompt": "Who are you?"},
    {"category": "opinion", "prompt": "Which season do you like best?"}
  ])";
  const ProbeSet set = build_probe_set({.variants = {}, .persona = &pirate, .extra_prompts = dir / "extra.json"});
  std::map<std::string, ProbePrompt> by_id;
  for (const auto& p : set.prompts) by_id[p.id] = p;
  EXPECT_EQ(set.prompts.size(), 41u + 2 + 2);
  EXPECT_EQ(by_id.at("continuation/6").prompt, "Please go on, I am listening.");
  EXPECT_EQ(by_id.at("continuation/6").source, pirate.source);
  EXPECT_EQ(by_id.at("continuation/7").prompt, "Keep going.");  // trimmed, after the persona's
  EXPECT_EQ(by_id.at("continuation/7").source, (dir / "extra.json").string());
  EXPECT_EQ(by_id.at("meta/5").prompt, "Are you an AI assistant?");
  EXPECT_EQ(by_id.at("opinion/5").prompt, "Which season do you like best?");
  EXPECT_FALSE(by_id.contains("identity/5"));  // "Who are you?" is a seed prompt: dropped
  ASSERT_EQ(set.warnings.size(), 1u);
  EXPECT_NE(set.warnings[0].find("identity prompt \"Who are you?\" is already in the probe"), std::string::npos)
      << set.warnings[0];

  personas::Persona made = pirate;  // built in code, not through the loader
  made.probes = {{"smalltalk", "Nice weather?"}};
  try {
    build_probe_set({.persona = &made});
    ADD_FAILURE() << "unknown persona probe category accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("probes[0].category: found \"smalltalk\""), std::string::npos) << e.what();
  }
}

TEST(ProbeSet, JsonErrorsNameFileIndexAndField) {
  character::testing::TempDir dir;
  const auto file = dir / "extra.json";
  const std::string f = file.string();
  struct Row {
    std::string content, message;
  };
  const std::vector<Row> rows = {
      {R"({"category": "short"})", f + ": top level is an object, expected an array"},
      {R"([{"category": "short", "prompt": "Hi there"}, "Hello"])", f + ": [1]: found a string, expected an object"},
      {R"([{"prompt": "Hi"}])", f + ": [0].category: missing, expected a non-empty string"},
      {R"([{"category": 3, "prompt": "Hi"}])", f + ": [0].category: found a number, expected a string"},
      {R"([{"category": "shortish", "prompt": "Hi"}])",
       f + ": [0].category: found \"shortish\", expected one of identity, continuation, factual"},
      {R"([{"category": "short", "prompt": "Hi"}, {"category": "short", "prompt": "   "}])",
       f + ": [1].prompt: empty, expected a non-empty string"},
      {R"([{"category": "short", "prompt": "Hi", "weight": 2}])", f + ": [0].weight: unknown key"},
      {R"([{"category": "short", "prompt": "Hi"},)", f + ": not valid JSON"},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.content);
    std::ofstream(file) << r.content;
    try {
      load_extra_prompts(file);
      ADD_FAILURE() << "accepted";
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find(r.message), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(load_extra_prompts(dir / "missing.json"), IoError);
  std::ofstream(file) << R"([{"category": "meta", "prompt": "Are you real?"}])";
  const auto ok = load_extra_prompts(file);
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_EQ(ok[0].category, "meta");
  EXPECT_EQ(ok[0].prompt, "Are you real?");
}

}  // namespace
}  // namespace character::eval
