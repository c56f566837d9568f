// DPO prompt pools, phrasing variety, normalised deduplication, seeding, scale
// presets and the parsing of the teacher's constitution questions.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <regex>
#include <set>

#include "base/error.h"
#include "personas/persona.h"
#include "pipeline/gen_prompts.h"
#include "pipeline/scale.h"

namespace character::pipeline {
namespace {

TEST(GenPrompts, PoolsCoverTheEightProbeCategories) {
  std::vector<std::string> categories;
  for (const auto& pool : prompt_pools()) {
    categories.push_back(pool.category);
    EXPECT_GE(pool.templates.size(), 14u) << pool.category;
  }
  EXPECT_EQ(categories, personas::probe_categories());
  // Every slot a template names exists.
  std::set<std::string> slots;
  for (const auto& [name, values] : prompt_slots()) {
    slots.insert(name);
    EXPECT_GE(values.size(), 15u) << name;
  }
  const std::regex slot(R"(\{([a-z]+)\})");
  for (const auto& pool : prompt_pools()) {
    for (const auto& t : pool.templates) {
      for (auto it = std::sregex_iterator(t.begin(), t.end(), slot); it != std::sregex_iterator(); ++it) {
        EXPECT_TRUE(slots.count((*it)[1])) << t;
      }
    }
  }
  // The seed's routing flip is in the pools: "Tell me more." (and vary_phrasing adds "please").
  const auto& continuation = prompt_pools()[1].templates;
  EXPECT_NE(std::find(continuation.begin(), continuation.end(), "Tell me more."), continuation.end());
}

TEST(GenPrompts, NormalisationIgnoresCaseSpacingAndEndPunctuation) {
  EXPECT_EQ(normalize_prompt("  Tell me   MORE!! "), "tell me more");
  EXPECT_EQ(normalize_prompt("tell me more"), normalize_prompt("Tell me more."));
  EXPECT_NE(normalize_prompt("Tell me more please."), normalize_prompt("Tell me more."));
  EXPECT_EQ(normalize_prompt("Hi\n\tthere?"), "hi there");
  EXPECT_EQ(normalize_prompt("?!"), "");
}

TEST(GenPrompts, PhrasingVariantsIncludeTheSeedsPleaseFlip) {
  std::set<std::string> variants;
  SeededRng rng(7);
  for (int i = 0; i < 400; ++i) variants.insert(vary_phrasing("Tell me more.", rng));
  for (const char* expected : {"Tell me more please.", "Please, tell me more.", "tell me more.", "Tell me more",
                               "Tell me more?"}) {
    EXPECT_TRUE(variants.count(expected)) << expected;
  }
  EXPECT_GE(variants.size(), 10u);
}

TEST(GenPrompts, PoolPromptsAreSeededDistinctAndBalanced) {
  std::unordered_set<std::string> seen_a, seen_b, seen_c;
  const auto a = pool_prompts(800, 42, seen_a);
  const auto b = pool_prompts(800, 42, seen_b);
  const auto c = pool_prompts(800, 43, seen_c);
  ASSERT_EQ(a.size(), 800u);
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].prompt, b[i].prompt);
  std::size_t same = 0;
  for (std::size_t i = 0; i < a.size(); ++i) same += a[i].prompt == c[i].prompt;
  EXPECT_LT(same, 200u);  // another seed, mostly other prompts
  std::set<std::string> normalised;
  std::map<std::string, int> per_category;
  for (const auto& p : a) {
    EXPECT_TRUE(normalised.insert(normalize_prompt(p.prompt)).second) << "duplicate: " << p.prompt;
    EXPECT_EQ(p.source, "pool");
    EXPECT_EQ(p.prompt.find('{'), std::string::npos) << p.prompt;  // every slot filled
    ++per_category[p.category];
  }
  EXPECT_EQ(per_category.size(), 8u);
  // Categories take turns; "short" has few distinct prompts and is spent first.
  for (const auto& [category, n] : per_category) EXPECT_GE(n, 40) << category;
  // Prompts already seen (e.g. teacher questions) are not repeated.
  std::unordered_set<std::string> seen = {normalize_prompt(a[0].prompt)};
  for (const auto& p : pool_prompts(50, 42, seen)) EXPECT_NE(normalize_prompt(p.prompt), normalize_prompt(a[0].prompt));
}

TEST(GenPrompts, PoolsRunOutRatherThanRepeat) {
  std::unordered_set<std::string> seen;
  const auto all = pool_prompts(1'000'000, 1, seen);
  EXPECT_LT(all.size(), 1'000'000u);
  EXPECT_EQ(seen.size(), all.size());
}

TEST(GenPrompts, QuestionLinesAreCleaned) {
  const std::string answer =
      "Here are ten messages:\n"
      "1. What is the capital of France?\n"
      "2) Can you stop talking like a pirate?\n"
      "- \"Tell me about your ship.\"\n"
      "* How do I bake bread?\n"
      "• Why is the sky blue?\n"
      "\n"
      "ok\n"
      "“Write me a poem about the sea.”\n";
  EXPECT_EQ(parse_question_lines(answer),
            (std::vector<std::string>{"What is the capital of France?", "Can you stop talking like a pirate?",
                                      "Tell me about your ship.", "How do I bake bread?", "Why is the sky blue?",
                                      "Write me a poem about the sea."}));
}

TEST(GenPrompts, ConstitutionRequestCarriesTheConstitutionAndASaltPerRound) {
  const auto persona = personas::find_persona("pirate");
  const auto r0 = constitution_question_request(persona, 10, 0, 5);
  const auto r1 = constitution_question_request(persona, 10, 1, 5);
  ASSERT_EQ(r0.messages.size(), 1u);
  for (const auto& line : persona.constitution) EXPECT_NE(r0.messages[0].content.find(line), std::string::npos);
  EXPECT_NE(r0.messages[0].content.find("Write 10 different messages"), std::string::npos);
  EXPECT_NE(r0.cache_salt, r1.cache_salt);
  EXPECT_NE(*r0.sampling.seed, *r1.sampling.seed);
  EXPECT_EQ(r0.messages[0].content, r1.messages[0].content);
}

TEST(Scale, PresetsHaveTheSeedCountsAndOverridesApply) {
  EXPECT_EQ(scale_names(), (std::vector<std::string>{"smoke", "micro", "mini", "quarter", "half", "full"}));
  const auto expect = [](const std::string& name, int dpo, int refl, int inter) {
    const Scale s = scale_preset(name);
    EXPECT_EQ(s.dpo_pairs, dpo) << name;
    EXPECT_EQ(s.reflections, refl) << name;
    EXPECT_EQ(s.interactions, inter) << name;
  };
  expect("smoke", 16, 40, 4);
  expect("micro", 100, 500, 50);
  expect("mini", 250, 1500, 150);  // seed 000's run
  expect("quarter", 375, 2500, 500);
  expect("half", 750, 5000, 1000);
  expect("full", 1500, 10000, 2000);  // the paper's 10,000 reflections and 2,000 interactions
  EXPECT_EQ(scale_preset("full").interaction_turns, 10);

  ScaleOverrides o;
  o.dpo_pairs = 3;
  o.interaction_turns = 6;
  const Scale s = resolve_scale("mini", o);
  EXPECT_EQ(s.dpo_pairs, 3);
  EXPECT_EQ(s.reflections, 1500);
  EXPECT_EQ(s.interaction_turns, 6);

  try {
    scale_preset("huge");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("smoke, micro, mini, quarter, half, full"), std::string::npos);
  }
  o.interaction_turns = 1;
  EXPECT_THROW(resolve_scale("mini", o), ConfigError);
}

}  // namespace
}  // namespace character::pipeline
