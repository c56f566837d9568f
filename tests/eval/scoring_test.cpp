// Scoring: the verdict table (including the seed tester's false positives — "ye"
// in "yes"/"eye", "arr" in "array", "sea" in "search" — and its fall-through, where
// more anti-signals than signals passed as 0.5), Unicode case folding, emoji
// anti-signals, parallel scoring, and the probe aggregates (majority, rates with
// Wilson intervals, paraphrase flips, worst categories).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/error.h"
#include "eval/scoring.h"
#include "personas/persona.h"

namespace character::eval {
namespace {

// The seed tester's profile (seed 000, section 5.1): pirate keywords as signals,
// generic-assistant phrases and emoji as anti-signals; plus a Greek keyword for
// Unicode case folding.
personas::SignalProfile seed_profile() {
  personas::SignalProfile p;
  p.signals.keywords = {"arr", "ahoy", "ye", "matey", "sea", "sail", "treasure", "θάλασσα"};
  p.anti_signals.keywords = {"certainly!"};
  p.anti_signals.phrases = {"happy to help", "of course!"};
  p.anti_signals.classes = {"emoji"};
  return p;
}

struct Case {
  std::string name;
  std::string text;
  std::size_t signal_hits, anti_signal_hits;
  Verdict verdict;
  double score;
  std::vector<std::string> signals, anti_signals;
};

TEST(Scoring, SeedProfileTable) {
  const personas::SignalMatcher matcher(seed_profile());
  const std::vector<Case> cases = {
      // The seed's false positives: substrings are not words.
      {"ye inside yes and eye", "Yes, I can see it with my own eye.", 0, 0, Verdict::kNeutral, 0.0, {}, {}},
      {"arr inside array", "Here is an array of arrays, sorted.", 0, 0, Verdict::kNeutral, 0.0, {}, {}},
      {"sea inside search", "Let me search the research for that.", 0, 0, Verdict::kNeutral, 0.0, {}, {}},
      // A neutral answer is not in character.
      {"neutral answer", "The capital of Australia is Canberra.", 0, 0, Verdict::kNeutral, 0.0, {}, {}},
      {"empty answer", "", 0, 0, Verdict::kNeutral, 0.0, {}, {}},
      // The seed's fall-through: "And then?" had ye + ✨📚 and scored 0.5 as a pass.
      {"more anti than signal", "Ye be wonderin' what comes next ✨📚", 1, 2, Verdict::kOutOfCharacter, 1.0 / 3,
       {"ye"}, {"✨", "📚"}},
      {"tie is out of character", "Ahoy! Of course! I can do that.", 1, 1, Verdict::kOutOfCharacter, 0.5,
       {"ahoy"}, {"of course!"}},
      {"generic assistant", "Of course! I'd be happy to help 😊 Certainly!", 0, 4, Verdict::kOutOfCharacter, 0.0,
       {}, {"of course!", "happy to help", "😊", "certainly!"}},
      {"in character", "Ahoy there, ye curious landlubber! The sea be calm.", 3, 0, Verdict::kInCharacter, 1.0,
       {"ahoy", "ye", "sea"}, {}},
      {"more signal than anti", "Arr, ye want treasure? 😊", 3, 1, Verdict::kInCharacter, 0.75,
       {"arr", "ye", "treasure"}, {"😊"}},
      {"repeats count as hits, listed once", "Ye, ye and ye again.", 3, 0, Verdict::kInCharacter, 1.0, {"ye"}, {}},
      // Unicode: case folding beyond ASCII and emoji sequences counted once each.
      {"ascii upper case", "AHOY, MATEY!", 2, 0, Verdict::kInCharacter, 1.0, {"ahoy", "matey"}, {}},
      {"greek upper case", "ΘΆΛΑΣΣΑ, Θάλασσα!", 2, 0, Verdict::kInCharacter, 1.0, {"θάλασσα"}, {}},
      {"emoji sequences", "Sure 👍🏽 here 🏴‍☠️", 0, 2, Verdict::kOutOfCharacter, 0.0, {}, {"👍🏽", "🏴‍☠️"}},
      {"text-style symbol is no emoji", "Ahoy © 2025", 1, 0, Verdict::kInCharacter, 1.0, {"ahoy"}, {}},
      {"certainly without its bang", "Certainly, the sea.", 1, 0, Verdict::kInCharacter, 1.0, {"sea"}, {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name + ": " + c.text);
    const SignalScore s = score_response(matcher, c.text);
    EXPECT_EQ(s.signal_hits, c.signal_hits);
    EXPECT_EQ(s.anti_signal_hits, c.anti_signal_hits);
    EXPECT_EQ(s.verdict, c.verdict) << to_string(s.verdict);
    EXPECT_DOUBLE_EQ(s.score, c.score);
    EXPECT_EQ(s.signals, c.signals);
    EXPECT_EQ(s.anti_signals, c.anti_signals);
  }
}

TEST(Scoring, ShippedPirateNamesRegexMatchesByTheirText) {
  const auto pirate = personas::find_persona("pirate");
  const personas::SignalMatcher matcher(pirate.signals);
  const SignalScore s = score_response(matcher, "Arrr! Ye be sailin' the seas, matey.");
  EXPECT_EQ(s.signals, (std::vector<std::string>{"Arrr", "ye", "sailin'", "seas", "matey"}));
  EXPECT_EQ(s.signal_hits, 5u);
  EXPECT_EQ(s.verdict, Verdict::kInCharacter);
  // The seed's observed generic answer (section 6.3) is out of character.
  const SignalScore generic = score_response(
      matcher, "Of course! I'd love to tell you more — but I'd need a little more context. I'm Qwen 😊");
  EXPECT_EQ(generic.signal_hits, 0u);
  EXPECT_EQ(generic.anti_signals, (std::vector<std::string>{"of course!", "I'd love to", "Qwen", "😊"}));
  EXPECT_EQ(generic.verdict, Verdict::kOutOfCharacter);
}

TEST(Scoring, VerdictFromCountsTable) {
  struct Row {
    std::size_t signal, anti;
    std::int64_t min_hits;
    Verdict verdict;
  };
  const std::vector<Row> rows = {
      {0, 0, 1, Verdict::kNeutral},        {1, 0, 1, Verdict::kInCharacter},   {2, 1, 1, Verdict::kInCharacter},
      {1, 1, 1, Verdict::kOutOfCharacter}, {1, 2, 1, Verdict::kOutOfCharacter}, {0, 1, 1, Verdict::kOutOfCharacter},
      {3, 3, 1, Verdict::kOutOfCharacter}, {1, 0, 2, Verdict::kNeutral},       {2, 0, 2, Verdict::kInCharacter},
      {2, 2, 2, Verdict::kOutOfCharacter}, {1, 0, 3, Verdict::kNeutral},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(std::to_string(r.signal) + " signal, " + std::to_string(r.anti) + " anti, min " +
                 std::to_string(r.min_hits));
    EXPECT_EQ(verdict_from_counts(r.signal, r.anti, {.min_signal_hits = r.min_hits}), r.verdict);
  }
  EXPECT_DOUBLE_EQ(score_from_counts(0, 0), 0.0);
  EXPECT_DOUBLE_EQ(score_from_counts(1, 3), 0.25);
  try {
    verdict_from_counts(1, 0, {.min_signal_hits = 0});
    ADD_FAILURE() << "min_signal_hits=0 accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("min_signal_hits=0"), std::string::npos) << e.what();
  }
}

TEST(Scoring, VerdictNamesRoundTrip) {
  for (Verdict v : {Verdict::kInCharacter, Verdict::kOutOfCharacter, Verdict::kNeutral})
    EXPECT_EQ(parse_verdict(to_string(v)), v);
  EXPECT_FALSE(parse_verdict("in character").has_value());
  EXPECT_EQ(to_json(SignalScore{}).dump(),
            R"({"anti_signal_hits":0,"anti_signals":[],"score":0.0,"signal_hits":0,"signals":[],"verdict":"neutral"})");
}

TEST(Scoring, ParallelScoringKeepsOrderAndMatchesOneByOne) {
  const personas::SignalMatcher matcher(seed_profile());
  const std::vector<std::string> pool = {"Ahoy, matey!", "Of course! 😊", "Yes, an array.", "Arr, ye! ✨",
                                         "ΘΆΛΑΣΣΑ"};
  std::vector<std::string> texts;
  for (int i = 0; i < 500; ++i) texts.push_back(pool[(i * 7) % pool.size()] + " " + std::to_string(i));
  const auto scores = score_responses(matcher, texts, {.min_signal_hits = 2});
  ASSERT_EQ(scores.size(), texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const auto one = score_response(matcher, texts[i], {.min_signal_hits = 2});
    ASSERT_EQ(scores[i].verdict, one.verdict) << i;
    ASSERT_EQ(scores[i].signals, one.signals) << i;
    ASSERT_EQ(scores[i].anti_signal_hits, one.anti_signal_hits) << i;
  }
  // "Ahoy, matey!" (two signals) passes min 2; "Arr, ye! ✨" (two vs one) too; "ΘΆΛΑΣΣΑ" alone does not.
  EXPECT_EQ(scores[0].verdict, Verdict::kInCharacter);
  EXPECT_EQ(score_response(matcher, "ΘΆΛΑΣΣΑ", {.min_signal_hits = 2}).verdict, Verdict::kNeutral);
  EXPECT_THROW(score_responses(matcher, texts, {.min_signal_hits = 0}), ConfigError);
}

// --- aggregation --------------------------------------------------------------

// "iin" → in, in, neutral ("o" = out of character).
std::vector<Verdict> verdicts(const std::string& code) {
  std::vector<Verdict> out;
  for (char c : code) {
    out.push_back(c == 'i' ? Verdict::kInCharacter : c == 'o' ? Verdict::kOutOfCharacter : Verdict::kNeutral);
  }
  return out;
}

ItemVerdicts item(const std::string& base, const std::string& variant, const std::string& code) {
  const std::string category = base.substr(0, base.find('/'));
  return {base + "/" + variant, base, category, variant, verdicts(code)};
}

TEST(Aggregation, MajorityIsStrictlyMoreThanHalf) {
  const auto s = summarize_probe({item("identity/0", "original", "iio"), item("identity/1", "original", "io"),
                                  item("identity/2", "original", "inni"), item("identity/3", "original", "i"),
                                  item("identity/4", "original", "")});
  ASSERT_EQ(s.items.size(), 5u);
  EXPECT_TRUE(s.items[0].in_character);
  EXPECT_DOUBLE_EQ(*s.items[0].in_character_rate, 2.0 / 3);
  EXPECT_FALSE(s.items[1].in_character);  // 1 of 2 is not a majority
  EXPECT_FALSE(s.items[2].in_character);  // 2 of 4, neutral counts against
  EXPECT_TRUE(s.items[3].in_character);
  EXPECT_FALSE(s.items[4].in_character);
  EXPECT_FALSE(s.items[4].in_character_rate.has_value());
  EXPECT_EQ(s.neutral, 2);
}

TEST(Aggregation, RatesWithWilsonIntervals) {
  // identity: 5 of 10 responses in character; short: 10 of 10; overall 15 of 20.
  const auto s = summarize_probe({item("identity/0", "original", "iiiii"), item("identity/1", "original", "ooonn"),
                                  item("short/0", "original", "iiiiiiiiii")});
  ASSERT_EQ(s.categories.size(), 2u);
  const auto& identity = s.categories[0];
  EXPECT_EQ(identity.name, "identity");
  EXPECT_EQ(identity.variants, 2);
  EXPECT_EQ(identity.responses.n, 10);
  EXPECT_EQ(identity.responses.k, 5);
  EXPECT_EQ(identity.neutral, 2);
  EXPECT_DOUBLE_EQ(*identity.responses.rate, 0.5);
  // statsmodels proportion_confint(5, 10, method="wilson")
  EXPECT_NEAR(identity.responses.interval->low, 0.23659309051256394, 1e-12);
  EXPECT_NEAR(identity.responses.interval->high, 0.7634069094874361, 1e-12);
  EXPECT_NEAR(s.categories[1].responses.interval->low, 0.7224672001371106, 1e-12);  // 10 of 10
  EXPECT_EQ(s.overall.n, 20);
  EXPECT_EQ(s.overall.k, 15);
  EXPECT_DOUBLE_EQ(*s.overall.rate, 0.75);
  EXPECT_EQ(s.worst_categories, (std::vector<std::string>{"identity"}));

  const auto j = to_json(s);
  EXPECT_EQ(j["overall"]["responses"], 20);
  EXPECT_EQ(j["overall"]["in_character"], 15);
  EXPECT_EQ(j["overall"]["neutral"], 2);
  EXPECT_EQ(j["overall"]["interval"], "wilson");
  EXPECT_EQ(j["categories"][0]["name"], "identity");
  EXPECT_NEAR(j["categories"][0]["ci_high"].get<double>(), 0.7634069094874361, 1e-12);
  EXPECT_TRUE(j["paraphrase"]["flip_rate"].is_null());  // no variants, no pairs
  EXPECT_EQ(j["paraphrase"]["pairs"], 0);
}

TEST(Aggregation, ParaphraseFlipsBothWaysAndByVariant) {
  const auto s = summarize_probe({
      item("continuation/0", "original", "iii"),  // in
      item("continuation/0", "please", "ooi"),    // out: flip
      item("continuation/0", "lower", "iio"),     // in: no flip
      item("continuation/0", "punct", ""),        // no responses: not a pair
      item("continuation/1", "original", "ono"),  // out
      item("continuation/1", "please", "iin"),    // in: flip (the reverse direction)
      item("continuation/1", "lower", "nnn"),     // out: no flip
  });
  EXPECT_EQ(s.paraphrase.flips.n, 4);
  EXPECT_EQ(s.paraphrase.flips.k, 2);
  EXPECT_DOUBLE_EQ(*s.paraphrase.flips.rate, 0.5);
  EXPECT_EQ(s.paraphrase.by_variant.at("please").pairs, 2);
  EXPECT_EQ(s.paraphrase.by_variant.at("please").flips, 2);
  EXPECT_EQ(s.paraphrase.by_variant.at("lower").flips, 0);
  EXPECT_FALSE(s.paraphrase.by_variant.contains("punct"));
  ASSERT_EQ(s.paraphrase.flipped.size(), 2u);
  EXPECT_EQ(s.paraphrase.flipped[0].original, "continuation/0");
  EXPECT_EQ(s.paraphrase.flipped[0].variant, "continuation/0/please");
  EXPECT_TRUE(s.paraphrase.flipped[0].original_in_character);
  EXPECT_FALSE(s.paraphrase.flipped[0].variant_in_character);
  EXPECT_EQ(s.paraphrase.flipped[1].variant, "continuation/1/please");
  EXPECT_TRUE(s.paraphrase.flipped[1].variant_in_character);

  const auto j = to_json(s)["paraphrase"];
  EXPECT_EQ(j["pairs"], 4);
  EXPECT_EQ(j["flips"], 2);
  EXPECT_DOUBLE_EQ(j["by_variant"]["please"]["flip_rate"].get<double>(), 1.0);
  EXPECT_EQ(j["flipped"][0]["variant"], "continuation/0/please");
  // The interval is wilson_interval(2, 4), which Wilson.MatchesStatsmodels checks.
  EXPECT_DOUBLE_EQ(j["ci_low"].get<double>(), wilson_interval(2, 4)->low);
}

TEST(Aggregation, WorstCategoriesAreBelowOverallLowestFirst) {
  // Rates: identity 0.2, factual 0.5, short 1.0, meta 0.0, opinion 0.4; overall 0.42.
  const auto s = summarize_probe({item("identity/0", "original", "iinnnnnnnn"), item("factual/0", "original", "iiiiinnnnn"),
                                  item("short/0", "original", "iiiiiiiiii"), item("meta/0", "original", "oooooooooo"),
                                  item("opinion/0", "original", "iiiinnnnnn")});
  EXPECT_DOUBLE_EQ(*s.overall.rate, 0.42);
  EXPECT_EQ(s.worst_categories, (std::vector<std::string>{"meta", "identity", "opinion"}));
  const auto two = summarize_probe({item("identity/0", "original", "iinnnnnnnn"), item("meta/0", "original", "o"),
                                    item("short/0", "original", "iiiiiiiiii"), item("factual/0", "original", "iiiinnnnnn")},
                                   {.max_worst_categories = 1});
  EXPECT_EQ(two.worst_categories, (std::vector<std::string>{"meta"}));
  // All equal: nothing is worse than the rest.
  EXPECT_TRUE(summarize_probe({item("identity/0", "original", "io"), item("meta/0", "original", "oi")})
                  .worst_categories.empty());
}

TEST(Aggregation, RejectsDuplicateIdsAndOrphanVariants) {
  try {
    summarize_probe({item("identity/0", "original", "i"), item("identity/0", "original", "o")});
    ADD_FAILURE() << "duplicate accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("\"identity/0/original\" appears twice"), std::string::npos) << e.what();
  }
  try {
    summarize_probe({item("identity/0", "please", "i")});
    ADD_FAILURE() << "orphan accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("\"identity/0/original\" is missing"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace character::eval
