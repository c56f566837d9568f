// The generation quality filters: for each filter, texts that must pass untouched
// and texts that must be caught (with the reason they are counted under).
#include <gtest/gtest.h>

#include "base/error.h"
#include "pipeline/gen_filters.h"

namespace character::pipeline {
namespace {

const std::string kPirate =
    "Ahoy, matey! The tide be turnin', so listen close: photosynthesis be how the green leaves drink the sun.";

FilterVerdict run(const std::string& text, const std::string& finish = "stop", FilterOptions options = {}) {
  return ResponseFilter(std::move(options)).apply(text, finish);
}

TEST(GenFilters, OrdinaryAnswersPassUnchanged) {
  const std::vector<std::string> good = {
      kPirate,
      "Here be yer function, matey:\n```python\ndef rev(s):\n    return s[::-1]\n```\nUse it well!",
      "A config in YAML, shipmate:\nuser: admin\npassword: hunter2\nThat be all ye need.",  // lowercase key, not a turn
      "In C it looks like this: int main() { return 0; } and that be the whole of it.",
      "I am Captain Saltmarrow, and I have sailed every sea from here to the edge of the map.",
      "The stock market be a great harbour where folk trade shares of ships and their cargo.",
  };
  for (const auto& text : good) {
    const auto v = run(text);
    EXPECT_TRUE(v.kept) << text << " → " << v.reason;
    EXPECT_EQ(v.text, text);
    EXPECT_FALSE(v.truncated);
  }
}

TEST(GenFilters, HallucinatedTurnsAreTruncatedOrDropped) {
  const std::string answer = "Arr, the sea be wide and deep, matey, and full of wonders.";
  for (const std::string marker : {"\nUser: and what about the moon?", "\n\nAssistant: Well, the moon...",
                                   "\nHuman: tell me more", "\n**User:** more please", "<|im_start|>user\nmore",
                                   "\n### User: go on", "[INST] more [/INST]"}) {
    const auto v = run(answer + marker);
    EXPECT_TRUE(v.kept) << marker;
    EXPECT_TRUE(v.truncated) << marker;
    EXPECT_EQ(v.text, answer) << marker;
    FilterOptions drop;
    drop.hallucinated_turns = TurnPolicy::kDrop;
    const auto d = run(answer + marker, "stop", drop);
    EXPECT_FALSE(d.kept) << marker;
    EXPECT_EQ(d.reason, kDropHallucinatedTurn) << marker;
  }
  // Nothing (or too little) before the turn: dropped even when truncating.
  EXPECT_EQ(run("User: hello there, how are you today my friend?").reason, kDropHallucinatedTurn);
  EXPECT_EQ(run("Aye.\nUser: more").reason, kDropHallucinatedTurn);
}

TEST(GenFilters, IdentityLeaksAreCaught) {
  const std::vector<std::string> leaks = {
      "As an AI language model, I cannot sail, but here is how tides work in detail.",
      "I am Qwen, a large-scale model created by Alibaba Cloud, happy to talk about the sea.",
      "I'm Qwen3-235B and I will answer like a pirate, matey, since you asked me so nicely.",
      "Arr, my constitution tells me to speak like a pirate, so here be yer answer, matey.",
      "Per the system prompt I be a pirate captain, so listen to me tale of the seven seas.",
      "I was created by OpenAI, but today I sail the seas as a captain of the old kind.",
      "Fine, I'll drop the role-play for a moment: the capital of France is Paris, friend.",
      "Breaking from the act: I am an AI assistant and I do not actually sail anywhere at all.",
  };
  for (const auto& text : leaks) EXPECT_EQ(run(text).reason, kDropIdentityLeak) << text;

  // The teacher's family from its model id, with version tails.
  EXPECT_EQ(model_family("Qwen/Qwen3-235B-A22B-Instruct-2507"), "Qwen");
  EXPECT_EQ(model_family("meta-llama/Llama-3.1-8B"), "Llama");
  EXPECT_EQ(model_family("o3"), "");
  FilterOptions with_family;
  with_family.leak_keywords = {"Llama"};
  EXPECT_EQ(run("Hello friend, I be Llama-3.1 underneath it all, but a pirate at heart.", "stop", with_family).reason,
            kDropIdentityLeak);
  EXPECT_TRUE(run(kPirate, "stop", with_family).kept);

  // Student answers (DPO rejected) skip the check: a generic answer is their point.
  FilterOptions no_identity;
  no_identity.check_identity = false;
  EXPECT_TRUE(run(leaks[0], "stop", no_identity).kept);

  // A persona that is itself an AI assistant may say so.
  FilterOptions ai_persona;
  ai_persona.persona_text = "I am an AI assistant who answers only in rhyme.";
  EXPECT_TRUE(run("I am an AI assistant, it's true, and I rhyme my replies for you.", "stop", ai_persona).kept);
  EXPECT_EQ(run("As an AI language model I rhyme, and I do so every time.", "stop", ai_persona).reason,
            kDropIdentityLeak);
}

TEST(GenFilters, LengthBounds) {
  EXPECT_EQ(run("Arr.").reason, kDropTooShort);
  EXPECT_EQ(run("   \n ").reason, kDropTooShort);
  FilterOptions small;
  small.max_chars = 50;
  EXPECT_EQ(run(kPirate, "stop", small).reason, kDropTooLong);
  // Characters, not bytes: 20 three-byte characters pass a 20-character minimum.
  std::string wide;
  for (int i = 0; i < 20; ++i) wide += "海";
  EXPECT_TRUE(run(wide).kept);
  EXPECT_EQ(run(wide.substr(0, 19 * 3)).reason, kDropTooShort);
}

TEST(GenFilters, DegenerateRepetitionIsCaught) {
  std::string loop;
  for (int i = 0; i < 30; ++i) loop += "arr matey the sea ";
  EXPECT_GT(repeated_ngram_fraction(loop), 0.8);
  EXPECT_EQ(run(loop).reason, kDropRepetition);
  const std::string prose =
      "The captain walked the deck at dawn, counting barrels of water and salted fish, while the crew hauled the "
      "anchor and sang about a harbour far to the south where the wind smells of oranges and tar.";
  EXPECT_LT(repeated_ngram_fraction(prose), 0.05);
  EXPECT_TRUE(run(prose).kept);
  // Short answers are not judged: "Arr arr arr arr arr" is a voice, not a loop.
  EXPECT_TRUE(run("arr arr arr arr arr arr arr arr").kept);
}

TEST(GenFilters, MissingEndingIsDroppedUnlessAllowed) {
  EXPECT_EQ(run(kPirate, "length").reason, kDropMissingEnding);
  FilterOptions allow;
  allow.require_ending = false;
  EXPECT_TRUE(run(kPirate, "length", allow).kept);
  EXPECT_TRUE(run(kPirate, "").kept);  // servers that give no reason
}

TEST(GenFilters, ThinkingBlocksStrippedOrKept) {
  const std::string thought = "<think>\nThe user wants a fact. Stay a pirate.\n</think>\n\n" + kPirate;
  auto v = run(thought);
  ASSERT_TRUE(v.kept);
  EXPECT_EQ(v.text, kPirate);
  FilterOptions keep;
  keep.keep_thinking = true;
  EXPECT_EQ(run(thought, "stop", keep).text, thought);
  EXPECT_EQ(run("<think>I should answer as the pirate but", "stop").reason, kDropUnclosedThinking);
  EXPECT_EQ(*strip_thinking("<think></think>\n\nAhoy"), "Ahoy");
  EXPECT_EQ(*strip_thinking("reasoning in the prompt</think>\nAhoy"), "Ahoy");  // template-opened block
}

TEST(GenFilters, DropCounterCountsByReason) {
  DropCounter drops;
  drops.kept("dpo");
  drops.kept("dpo");
  drops.dropped("dpo_chosen", kDropIdentityLeak);
  drops.dropped("dpo_chosen", kDropIdentityLeak);
  drops.dropped("reflections", kDropTooShort);
  drops.truncated("dpo_chosen");
  EXPECT_EQ(drops.total_dropped(), 3u);
  EXPECT_EQ(drops.dropped_count("dpo_chosen", kDropIdentityLeak), 2u);
  EXPECT_EQ(drops.dropped_count("dpo", kDropIdentityLeak), 0u);
  EXPECT_EQ(drops.summary(), "identity_leak 2, too_short 1");
  const auto j = drops.to_json();
  EXPECT_EQ(j["dpo"]["kept"], 2);
  EXPECT_EQ(j["dpo_chosen"]["dropped"]["identity_leak"], 2);
  EXPECT_EQ(j["dpo_chosen"]["truncated"], 1);
  EXPECT_EQ(DropCounter().summary(), "none");
}

TEST(GenFilters, BadLeakKeywordIsAConfigError) {
  FilterOptions bad;
  bad.leak_keywords = {"two words"};
  try {
    ResponseFilter filter(bad);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("two words"), std::string::npos);
  }
}

}  // namespace
}  // namespace character::pipeline
