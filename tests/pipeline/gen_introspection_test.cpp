// Self-interaction role swapping (exact message lists), the reflection prompts and
// requests, the constitution system prompt, and the resumable ledger.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "base/atomic_file.h"
#include "base/error.h"
#include "personas/persona.h"
#include "pipeline/gen_dpo.h"
#include "pipeline/gen_introspection.h"
#include "pipeline/gen_ledger.h"
#include "tests/test_support.h"

namespace character::pipeline {
namespace {

using character::testing::TempDir;

using Messages = std::vector<std::pair<std::string, std::string>>;

Messages pairs(const std::vector<remote::Message>& messages) {
  Messages out;
  for (const auto& m : messages) out.emplace_back(m.role, m.content);
  return out;
}

TEST(SelfInteraction, EachSideSeesItselfAsTheAssistant) {
  const std::vector<std::string> u = {"Hello.", "b1", "a2", "b3", "a4"};
  // Side 1 answers the opener.
  EXPECT_EQ(pairs(interaction_view("SYS-B", {u.begin(), u.begin() + 1}, 1)),
            (Messages{{"system", "SYS-B"}, {"user", "Hello."}}));
  // Side 0 (who opened) answers b1: its own opener is "assistant".
  EXPECT_EQ(pairs(interaction_view("SYS-A", {u.begin(), u.begin() + 2}, 0)),
            (Messages{{"system", "SYS-A"}, {"assistant", "Hello."}, {"user", "b1"}}));
  // Side 1 answers a2.
  EXPECT_EQ(pairs(interaction_view("SYS-B", {u.begin(), u.begin() + 3}, 1)),
            (Messages{{"system", "SYS-B"}, {"user", "Hello."}, {"assistant", "b1"}, {"user", "a2"}}));
  // Side 0 answers b3.
  EXPECT_EQ(pairs(interaction_view("SYS-A", {u.begin(), u.begin() + 4}, 0)),
            (Messages{{"system", "SYS-A"}, {"assistant", "Hello."}, {"user", "b1"}, {"assistant", "a2"}, {"user", "b3"}}));
  // No system prompt: none is sent.
  EXPECT_EQ(pairs(interaction_view("", {u.begin(), u.begin() + 1}, 1)), (Messages{{"user", "Hello."}}));
}

TEST(SelfInteraction, SavedTranscriptAlternatesFromUserWithoutSystemPrompt) {
  const auto m = interaction_messages({"Hello.", "b1", "a2", "b3"});
  ASSERT_EQ(m.size(), 4u);
  const std::vector<std::string> roles = {"user", "assistant", "user", "assistant"};
  const std::vector<std::string> texts = {"Hello.", "b1", "a2", "b3"};
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(m[i]["role"], roles[i]);
    EXPECT_EQ(m[i]["content"], texts[i]);
  }
}

TEST(SelfInteraction, VariantsAlternateAndSystemPromptsDiffer) {
  EXPECT_EQ(interaction_variant(0), InteractionVariant::kFree);
  EXPECT_EQ(interaction_variant(1), InteractionVariant::kLeading);
  const auto persona = personas::find_persona("pirate");
  const std::string free = interaction_system_prompt(persona, InteractionVariant::kFree);
  const std::string leading = interaction_system_prompt(persona, InteractionVariant::kLeading);
  EXPECT_NE(free, leading);
  for (const auto& line : persona.constitution) {
    EXPECT_NE(free.find(line), std::string::npos);
    EXPECT_NE(leading.find(line), std::string::npos);
  }
  EXPECT_NE(free.find("another Captain Saltmarrow"), std::string::npos);
  // Openers come from the variant's list, deterministically.
  const auto& free_openers = interaction_openers(InteractionVariant::kFree);
  const auto& leading_openers = interaction_openers(InteractionVariant::kLeading);
  for (std::size_t t = 0; t < 20; ++t) {
    const auto& list = t % 2 == 0 ? free_openers : leading_openers;
    const std::string opener = interaction_opener(t, 9);
    EXPECT_NE(std::find(list.begin(), list.end(), opener), list.end()) << t;
    EXPECT_EQ(opener, interaction_opener(t, 9));
  }
}

TEST(Reflection, TenPromptsAndIndependentSamples) {
  ASSERT_EQ(reflection_prompts().size(), 10u);
  const auto persona = personas::find_persona("pirate");
  IntrospectionOptions options;
  const auto r3 = reflection_request(persona, 3, options);
  const auto r13 = reflection_request(persona, 13, options);  // same prompt, next sample
  EXPECT_EQ(r3.messages.back().content, reflection_prompts()[3]);
  EXPECT_EQ(r13.messages.back().content, reflection_prompts()[3]);
  EXPECT_EQ(r3.messages.front().role, "system");
  EXPECT_EQ(r3.messages.front().content, constitution_system_prompt(persona));
  EXPECT_NE(r3.cache_salt, r13.cache_salt);  // distinct cache entries: independent samples
  EXPECT_NE(*r3.sampling.seed, *r13.sampling.seed);
  EXPECT_EQ(*r3.sampling.temperature, 0.7);
  EXPECT_EQ(*r3.sampling.top_p, 0.95);
  options.system_prompt = false;
  EXPECT_EQ(reflection_request(persona, 3, options).messages.size(), 1u);
}

TEST(DpoRequests, ChosenHasTheConstitutionRejectedDoesNot) {
  const auto persona = personas::find_persona("pirate");
  const std::string system = constitution_system_prompt(persona);
  for (const auto& line : persona.constitution) EXPECT_NE(system.find(line), std::string::npos);
  for (const auto& cue : persona.cues) EXPECT_NE(system.find(cue), std::string::npos);
  DpoStageOptions options;
  const auto chosen = chosen_request(system, "Tell me more please.", options);
  const auto rejected = rejected_request("Tell me more please.", options);
  EXPECT_EQ(pairs(chosen.messages), (Messages{{"system", system}, {"user", "Tell me more please."}}));
  EXPECT_EQ(pairs(rejected.messages), (Messages{{"user", "Tell me more please."}}));
  // Seeds follow the prompt, not its position: the same prompt is the same cached request.
  EXPECT_EQ(*chosen_request(system, "Tell me more please.", options).sampling.seed, *chosen.sampling.seed);
  EXPECT_NE(*chosen_request(system, "Tell me more.", options).sampling.seed, *chosen.sampling.seed);
}

LedgerEntry kept(const std::string& key, std::size_t index, int value) {
  LedgerEntry e;
  e.key = key;
  e.index = index;
  e.row = {{"v", value}};
  return e;
}

TEST(Ledger, ResumesRepairsATornLineAndRetriesFailures) {
  TempDir dir;
  const auto path = dir / "x.ledger.jsonl";
  {
    Ledger ledger(path);
    ledger.record(kept("x-00002", 2, 2));
    ledger.record(kept("x-00000", 0, 0));
    LedgerEntry dropped;
    dropped.key = "x-00001";
    dropped.index = 1;
    dropped.status = ItemStatus::kDropped;
    dropped.reason = "too_short";
    ledger.record(dropped);
    ledger.record(failed_entry("x-00003", 3, "teacher", remote::Failure{"HTTP 500: boom", 500, 3}));
  }
  // A kill in the middle of an append leaves a torn final line.
  {
    std::ofstream torn(path, std::ios::app);
    torn << R"({"key":"x-00004","index":4,"status":"ke)";
  }
  Ledger ledger(path);
  EXPECT_EQ(ledger.resumed(), 3u);
  EXPECT_TRUE(ledger.finished("x-00000"));
  EXPECT_TRUE(ledger.finished("x-00001"));   // dropped is final
  EXPECT_FALSE(ledger.finished("x-00003"));  // failed is asked again
  EXPECT_FALSE(ledger.finished("x-00004"));  // the torn line is gone
  EXPECT_EQ(read_file(path).back(), '\n');
  ledger.record(kept("x-00004", 4, 4));
  ledger.record(kept("x-00003", 3, 3));  // the retry succeeded: the latest entry wins
  Ledger reread(path);
  EXPECT_EQ(reread.count(ItemStatus::kKept), 4u);
  EXPECT_EQ(reread.count(ItemStatus::kFailed), 0u);

  const auto counts = finalize_stage(reread, dir / "x.jsonl", dir / "x.failures.jsonl");
  EXPECT_EQ(counts.kept, 4u);
  EXPECT_EQ(counts.dropped, 1u);
  EXPECT_EQ(counts.failed, 0u);
  EXPECT_EQ(read_file(dir / "x.jsonl"), "{\"v\":0}\n{\"v\":2}\n{\"v\":3}\n{\"v\":4}\n");  // item order
  EXPECT_FALSE(std::filesystem::exists(dir / "x.failures.jsonl"));
}

TEST(Ledger, FailuresAreWrittenNotDropped) {
  TempDir dir;
  Ledger ledger(dir / "y.ledger.jsonl");
  ledger.record(kept("y-00000", 0, 0));
  ledger.record(failed_entry("y-00001", 1, "student", remote::Failure{"timeout after 300 ms", 0, 6}));
  const auto counts = finalize_stage(ledger, dir / "y.jsonl", dir / "y.failures.jsonl");
  EXPECT_EQ(counts.failed, 1u);
  const auto lines = read_jsonl_lines(dir / "y.failures.jsonl");
  ASSERT_EQ(lines.size(), 1u);
  const auto f = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(f["key"], "y-00001");
  EXPECT_EQ(f["reason"], "student: timeout after 300 ms");
  EXPECT_EQ(f["detail"]["attempts"], 6);
}

TEST(Ledger, BadLineIsAFormatErrorNamingTheLine) {
  TempDir dir;
  const auto path = dir / "z.ledger.jsonl";
  write_file_atomic(path, "{\"key\":\"z-00000\",\"index\":0,\"status\":\"kept\",\"row\":{}}\n{\"key\":1}\n");
  try {
    Ledger ledger(path);
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("z.ledger.jsonl:2"), std::string::npos) << e.what();
  }
}

TEST(Ledger, KeysSortLikeIndicesAndSeedsAreStable) {
  EXPECT_EQ(item_key("dpo", 12), "dpo-00012");
  EXPECT_LT(item_key("dpo", 99), item_key("dpo", 100));
  EXPECT_EQ(derive_seed(1, "a"), derive_seed(1, "a"));
  EXPECT_NE(derive_seed(1, "a"), derive_seed(2, "a"));
  EXPECT_NE(derive_seed(1, "a"), derive_seed(1, "b"));
  EXPECT_GE(derive_seed(1, "a"), 0);
}

}  // namespace
}  // namespace character::pipeline
