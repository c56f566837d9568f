// Finds a persona's signal and anti-signal terms in a text: keywords and phrases
// as whole words with Unicode-aware boundaries and case folding, raw regexes, and
// character classes (emoji). It reports hits and raw counts only; turning counts
// into an in-character verdict is eval's job. See docs/personas.md, "Matching".
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace character::personas {

// One side of a signal profile: the terms that count as signals, or as anti-signals.
struct TermSet {
  std::vector<std::string> keywords;  // single words, matched as whole words
  std::vector<std::string> phrases;   // several words, whole words, any whitespace between
  std::vector<std::string> regexes;   // PCRE2 patterns, caseless + Unicode, used as written
  std::vector<std::string> classes;   // named character classes: "emoji"

  bool empty() const { return keywords.empty() && phrases.empty() && regexes.empty() && classes.empty(); }
  std::size_t size() const { return keywords.size() + phrases.size() + regexes.size() + classes.size(); }
};

struct SignalProfile {
  TermSet signals;
  TermSet anti_signals;
};

enum class TermKind { kKeyword, kPhrase, kRegex, kClass };
enum class Polarity { kSignal, kAntiSignal };

const char* term_kind_name(TermKind kind);  // "keyword", "phrase", "regex", "class"

// The character classes a TermSet may name, in the order docs/personas.md lists them.
const std::vector<std::string>& known_classes();

struct SignalHit {
  Polarity polarity = Polarity::kSignal;
  TermKind kind = TermKind::kKeyword;
  std::string term;         // the term as written in the profile
  std::size_t offset = 0;   // byte offset of the match in the UTF-8 text
  std::size_t length = 0;   // bytes
};

struct SignalCounts {
  std::size_t signal_hits = 0;      // every match of every signal term
  std::size_t anti_signal_hits = 0;
  std::size_t distinct_signals = 0;  // signal terms that matched at least once
  std::size_t distinct_anti_signals = 0;
};

// Problems with one term before it is compiled: nullopt when the term is usable,
// else why not ("contains whitespace; use phrases for several words"). The loader
// reports these with the term's line; the matcher throws them as ConfigError.
std::optional<std::string> check_term(TermKind kind, const std::string& term);

// Compiles every term of a profile once; find() may then be called concurrently
// from several threads (each call uses its own PCRE2 match data).
class SignalMatcher {
 public:
  // ConfigError naming the term when one does not compile (see check_term).
  explicit SignalMatcher(const SignalProfile& profile);
  ~SignalMatcher();
  SignalMatcher(SignalMatcher&&) noexcept;
  SignalMatcher& operator=(SignalMatcher&&) noexcept;

  // Every hit of every term, ordered by offset (then signals before anti-signals).
  // Different terms may overlap ("ye" inside the phrase "ye be"); one term's own
  // matches never do. Invalid UTF-8 in `text` is tolerated: it never matches.
  std::vector<SignalHit> find(std::string_view text) const;
  static SignalCounts count(const std::vector<SignalHit>& hits);
  SignalCounts count(std::string_view text) const { return count(find(text)); }

 private:
  struct Compiled;
  std::vector<std::unique_ptr<Compiled>> terms_;
};

}  // namespace character::personas
