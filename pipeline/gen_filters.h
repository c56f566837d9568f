// Quality filters for generated text (teacher answers, student answers, reflections,
// interaction turns): thinking blocks stripped, hallucinated "User:"/"Assistant:"
// turns truncated or dropped, identity leaks (the teacher naming itself, its
// instructions or its constitution), length bounds, degenerate repetition, and
// answers cut by the token limit. Every drop is counted by its reason.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace character::personas {
class SignalMatcher;
}

namespace character::pipeline {

// Drop reasons, as they appear in the statistics.
inline constexpr const char* kDropMissingEnding = "missing_ending";       // finish_reason "length"
inline constexpr const char* kDropUnclosedThinking = "unclosed_thinking";  // "<think>" without "</think>"
inline constexpr const char* kDropHallucinatedTurn = "hallucinated_turn";
inline constexpr const char* kDropIdentityLeak = "identity_leak";
inline constexpr const char* kDropTooShort = "too_short";
inline constexpr const char* kDropTooLong = "too_long";
inline constexpr const char* kDropRepetition = "repetition";

enum class TurnPolicy { kTruncate, kDrop };

struct FilterOptions {
  // A line that opens a new speaker turn ("User:", "Assistant:", "Human:", a chat
  // template token) means the model went on writing the conversation: cut the text
  // there (kTruncate; dropped when too little is left) or drop it.
  TurnPolicy hallucinated_turns = TurnPolicy::kTruncate;
  bool check_identity = true;               // rejected student answers skip this
  std::vector<std::string> leak_keywords;   // extra whole-word leak terms (the teacher's family)
  std::string persona_text;  // constitution and description: leak terms found there are allowed
  std::size_t min_chars = 20;               // after stripping and truncation
  std::size_t max_chars = 16000;
  // Repetition: the share of word 4-grams that repeat an earlier one; degenerate
  // loops sit near 1, ordinary prose near 0. Checked from 24 words on.
  double max_repeated_ngrams = 0.5;
  bool keep_thinking = false;   // keep "<think>…</think>" blocks instead of stripping them
  bool require_ending = true;   // drop answers whose finish_reason is "length"
};

struct FilterVerdict {
  bool kept = false;
  std::string text;    // the cleaned text (when kept)
  std::string reason;  // a kDrop* name (when dropped)
  bool truncated = false;  // a hallucinated turn was cut off
};

class ResponseFilter {
 public:
  // ConfigError when an extra leak keyword cannot be matched as a word.
  explicit ResponseFilter(FilterOptions options);
  ~ResponseFilter();
  ResponseFilter(ResponseFilter&&) noexcept;
  ResponseFilter& operator=(ResponseFilter&&) noexcept;

  FilterVerdict apply(std::string_view text, std::string_view finish_reason) const;
  const FilterOptions& options() const { return options_; }

 private:
  FilterOptions options_;
  std::unique_ptr<personas::SignalMatcher> turns_;
  std::unique_ptr<personas::SignalMatcher> leaks_;
};

// Text without "<think>…</think>" blocks (and the whitespace after them); nullopt
// when a block is opened and never closed.
std::optional<std::string> strip_thinking(std::string_view text);

// Share of word n-grams (lowercased) that repeat an earlier one: 0 for no repeat.
double repeated_ngram_fraction(std::string_view text, std::size_t n = 4);

// The family of a model id for leak checks: "Qwen/Qwen3-235B-A22B" → "Qwen";
// "" when it has no leading run of at least 3 letters.
std::string model_family(std::string_view model_id);

// Counts of kept items and of drops by reason, per stage.
class DropCounter {
 public:
  void kept(const std::string& stage) { ++stages_[stage].kept; }
  void dropped(const std::string& stage, const std::string& reason) { ++stages_[stage].drops[reason]; }
  void truncated(const std::string& stage) { ++stages_[stage].truncated; }
  std::size_t total_dropped() const;
  std::size_t dropped_count(const std::string& stage, const std::string& reason) const;
  // {"stage": {"kept": n, "truncated": n, "dropped": {"reason": n}}}
  nlohmann::json to_json() const;
  // "identity_leak 2, too_short 1" over all stages ("none" when nothing was dropped)
  std::string summary() const;

 private:
  struct Stage {
    std::size_t kept = 0;
    std::size_t truncated = 0;
    std::map<std::string, std::size_t> drops;
  };
  std::map<std::string, Stage> stages_;
};

}  // namespace character::pipeline
