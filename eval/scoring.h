// Scoring the consistency probe: the verdict of one response from the persona's
// signal counts (in character, out of character, neutral) with the terms that
// decided it, and the aggregates the report shows: per-variant majority,
// per-category and overall in-character rates with Wilson intervals, the
// paraphrase flip rate and the worst categories (docs/eval.md, "Scoring").
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eval/stats.h"
#include "personas/signal_match.h"

namespace character::eval {

enum class Verdict { kInCharacter, kOutOfCharacter, kNeutral };

const char* to_string(Verdict verdict);  // "in_character" | "out_of_character" | "neutral"
// The verdict a name denotes; nullopt for anything else.
std::optional<Verdict> parse_verdict(std::string_view name);

struct ScoringOptions {
  std::int64_t min_signal_hits = 1;  // signal hits needed before a response can be in character
};

// The signal verdict of one response.
struct SignalScore {
  std::size_t signal_hits = 0;
  std::size_t anti_signal_hits = 0;
  // Distinct matches in order of first occurrence: keywords and phrases as written in
  // the profile, regex and class matches as the text has them ("arrr", "😊").
  std::vector<std::string> signals;
  std::vector<std::string> anti_signals;
  Verdict verdict = Verdict::kNeutral;
  double score = 0.0;  // signal / (signal + anti), 0 when both are 0
};

// in_character:     signal ≥ min_signal_hits and signal > anti;
// out_of_character: anti ≥ signal and anti > 0;
// neutral:          otherwise (no hits, or too few signals) — NOT in character.
// The seed's tester scored 1 signal + 2 anti-signals as 0.5 and passed it; here
// that is out of character. ConfigError when min_signal_hits < 1.
Verdict verdict_from_counts(std::size_t signal_hits, std::size_t anti_signal_hits, const ScoringOptions& options = {});
double score_from_counts(std::size_t signal_hits, std::size_t anti_signal_hits);

SignalScore score_response(const personas::SignalMatcher& matcher, std::string_view text,
                           const ScoringOptions& options = {});
// Scores many responses in parallel (oneTBB); results in input order.
std::vector<SignalScore> score_responses(const personas::SignalMatcher& matcher, const std::vector<std::string>& texts,
                                         const ScoringOptions& options = {});

// {"signal_hits", "anti_signal_hits", "signals", "anti_signals", "verdict", "score"}:
// the scoring fields of a report.json response.
nlohmann::json to_json(const SignalScore& score);

// --- aggregation --------------------------------------------------------------

// The verdicts of one prompt variant's responses: the verdict the rates use (the
// judge's when the judge is on, else the signal verdict).
struct ItemVerdicts {
  std::string id;        // "continuation/0/please"
  std::string base_id;   // "continuation/0"
  std::string category;
  std::string variant;   // "original" or a variant name
  std::vector<Verdict> verdicts;
};

// A count with its rate and Wilson 95% interval; the optionals are unset when n = 0.
struct RateWithInterval {
  std::int64_t n = 0;
  std::int64_t k = 0;
  std::optional<double> rate;
  std::optional<Interval> interval;
};
RateWithInterval rate_with_interval(std::int64_t k, std::int64_t n);

struct ItemResult {
  std::string id;
  std::int64_t responses = 0;
  std::int64_t in_character_responses = 0;
  std::optional<double> in_character_rate;  // unset without responses
  bool in_character = false;                // majority: more than half of its responses
};

struct CategoryResult {
  std::string name;
  std::int64_t variants = 0;     // prompt variants (items) in the category
  std::int64_t neutral = 0;      // neutral responses
  RateWithInterval responses;    // n = responses, k = in character
};

struct VariantFlips {
  std::int64_t pairs = 0;
  std::int64_t flips = 0;
};

struct FlipPair {
  std::string original;  // base id, "continuation/0"
  std::string variant;   // variant id, "continuation/0/please"
  bool original_in_character = false;
  bool variant_in_character = false;
};

struct ParaphraseResult {
  RateWithInterval flips;  // n = pairs, k = flips
  std::map<std::string, VariantFlips> by_variant;
  std::vector<FlipPair> flipped;
};

struct ProbeSummary {
  std::vector<ItemResult> items;              // input order
  std::vector<CategoryResult> categories;     // in order of first appearance
  RateWithInterval overall;                   // over every response
  std::int64_t neutral = 0;
  ParaphraseResult paraphrase;
  std::vector<std::string> worst_categories;  // lowest rate first
};

struct SummaryOptions {
  // The worst categories: those whose rate is below the overall rate, lowest first
  // (ties by name), at most this many.
  std::size_t max_worst_categories = 3;
};

// ConfigError when an item id appears twice or a variant's original is missing
// from `items` (the pair cannot be formed).
ProbeSummary summarize_probe(const std::vector<ItemVerdicts>& items, const SummaryOptions& options = {});

// The report.json "probe" fields other than "items": {"categories", "overall",
// "paraphrase", "worst_categories"}; unset rates and intervals are null.
nlohmann::json to_json(const ProbeSummary& summary);

}  // namespace character::eval
