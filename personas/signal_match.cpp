// Signal matching on PCRE2 (UTF + UCP + caseless): keywords and phrases become
// escaped patterns fenced by Unicode word-boundary lookarounds, so "ye" is found in
// "Ye be" but not in "yes", "year" or "yé". PCRE2 supplies the Unicode tables (case
// folding, letters of every script, emoji properties, grapheme clusters) that we
// would otherwise have to hand-write and keep current.
#include "personas/signal_match.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <tuple>

#include "base/error.h"

namespace character::personas {

namespace {

// Letters, digits and combining marks of any script, and '_': a keyword touching one
// of these on either side is part of a longer word. Marks are included so that a
// decomposed "yé" (y, e, U+0301) is not the keyword "ye" followed by an accent;
// PCRE2 10.42's own \b leaves marks out of \w, hence explicit lookarounds.
constexpr const char* kWordChar = R"([\p{L}\p{N}\p{M}_])";

// UTS #51 emoji: a character shown as emoji by default (Emoji_Presentation), or a
// pictograph followed by the emoji variation selector U+FE0F, together with its
// modifiers (skin tone, keycap, tag) and any ZWJ-joined pictographs, so that a ZWJ
// sequence, a skin tone or a flag (two regional indicators) counts once. Written out
// rather than `\X` because PCRE2 10.42's \X joins adjacent pictographs ("✨📚")
// into one cluster. Text-style pictographs (©, ™, ☺ without U+FE0F) are not emoji.
constexpr const char* kEmojiPattern =
    R"((?:\p{Regional_Indicator}{2}|\p{Emoji_Presentation}|\p{Extended_Pictographic}\x{FE0F}))"
    R"([\x{FE0F}\x{20E3}\p{Emoji_Modifier}\x{E0020}-\x{E007F}]*)"
    R"((?:\x{200D}\p{Extended_Pictographic}[\x{FE0F}\p{Emoji_Modifier}]*)*)";

constexpr uint32_t kCompileFlags = PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS | PCRE2_MATCH_INVALID_UTF;

struct CodeFree {
  void operator()(pcre2_code* code) const { pcre2_code_free(code); }
};
using Code = std::unique_ptr<pcre2_code, CodeFree>;

struct MatchDataFree {
  void operator()(pcre2_match_data* data) const { pcre2_match_data_free(data); }
};

// Compiles `pattern`; on failure returns null and sets `error` ("missing closing
// parenthesis at offset 5").
Code compile(const std::string& pattern, std::string& error) {
  int code = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* compiled = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), kCompileFlags,
                                       &code, &offset, nullptr);
  if (!compiled) {
    PCRE2_UCHAR buffer[256];
    pcre2_get_error_message(code, buffer, sizeof(buffer));
    error = std::string(reinterpret_cast<const char*>(buffer)) + " at offset " + std::to_string(offset);
    return nullptr;
  }
  pcre2_jit_compile(compiled, PCRE2_JIT_COMPLETE);  // optional speed-up; the interpreter is the fallback
  return Code(compiled);
}

// Whether the first (or last) code point of `s` is a word character.
bool edge_is_word_char(const std::string& s, bool at_end) {
  static const Code first = [] {
    std::string error;
    return compile(std::string("\\A") + kWordChar, error);
  }();
  static const Code last = [] {
    std::string error;
    return compile(std::string(kWordChar) + "\\z", error);
  }();
  const pcre2_code* code = at_end ? last.get() : first.get();
  std::unique_ptr<pcre2_match_data, MatchDataFree> data(pcre2_match_data_create(1, nullptr));
  return pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), 0, 0, data.get(), nullptr) >= 0;
}

std::vector<std::string> split_words(const std::string& term) {
  std::vector<std::string> words;
  std::string word;
  for (char c : term) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
    } else {
      word += c;
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

// A literal word as a pattern: ASCII punctuation escaped, every apostrophe
// (', U+2019, U+02BC) matching any of the three, other characters as they are.
std::string literal_pattern(const std::string& word) {
  static const std::string kApostrophe = R"(['\x{2019}\x{02BC}])";
  static const std::string kRightQuote = "\xE2\x80\x99", kModifierApostrophe = "\xCA\xBC";
  std::string out;
  for (std::size_t i = 0; i < word.size(); ++i) {
    const unsigned char c = word[i];
    if (c == '\'') {
      out += kApostrophe;
    } else if (word.compare(i, 3, kRightQuote) == 0) {
      out += kApostrophe;
      i += 2;
    } else if (word.compare(i, 2, kModifierApostrophe) == 0) {
      out += kApostrophe;
      i += 1;
    } else if (c < 0x80 && !std::isalnum(c) && c != ' ') {
      out += '\\';  // PCRE2: a backslash before ASCII punctuation is always that character
      out += static_cast<char>(c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// "shiver me timbers" → (?<!W)shiver\s+me\s+timbers(?!W); a side whose edge is
// punctuation ("of course!") gets no lookaround there.
std::string whole_words_pattern(const std::string& term) {
  const auto words = split_words(term);
  std::string body;
  for (std::size_t i = 0; i < words.size(); ++i) body += (i ? "\\s+" : "") + literal_pattern(words[i]);
  std::string pattern;
  if (edge_is_word_char(words.front(), /*at_end=*/false)) pattern += std::string("(?<!") + kWordChar + ")";
  pattern += body;
  if (edge_is_word_char(words.back(), /*at_end=*/true)) pattern += std::string("(?!") + kWordChar + ")";
  return pattern;
}

std::string pattern_for(TermKind kind, const std::string& term) {
  switch (kind) {
    case TermKind::kKeyword:
    case TermKind::kPhrase: return whole_words_pattern(term);
    case TermKind::kRegex: return term;
    case TermKind::kClass: return kEmojiPattern;  // the only class; check_term vets the name
  }
  return term;
}

// The compiled term, or the reason it cannot be compiled.
Code compile_term(TermKind kind, const std::string& term, std::string& error) {
  if (auto problem = check_term(kind, term)) {
    error = *problem;
    return nullptr;
  }
  return compile(pattern_for(kind, term), error);
}

}  // namespace

struct SignalMatcher::Compiled {
  Polarity polarity;
  TermKind kind;
  std::string term;
  Code code;
};

const char* term_kind_name(TermKind kind) {
  switch (kind) {
    case TermKind::kKeyword: return "keyword";
    case TermKind::kPhrase: return "phrase";
    case TermKind::kRegex: return "regex";
    case TermKind::kClass: return "class";
  }
  return "?";
}

const std::vector<std::string>& known_classes() {
  static const std::vector<std::string> classes = {"emoji"};
  return classes;
}

std::optional<std::string> check_term(TermKind kind, const std::string& term) {
  const auto words = split_words(term);
  switch (kind) {
    case TermKind::kKeyword:
      if (words.empty()) return "is empty";
      if (words.size() > 1) return "contains whitespace; a keyword is one word, put several words under phrases";
      return std::nullopt;
    case TermKind::kPhrase:
      if (words.empty()) return "is empty";
      return std::nullopt;
    case TermKind::kClass:
      if (std::find(known_classes().begin(), known_classes().end(), term) == known_classes().end()) {
        std::string allowed;
        for (const auto& c : known_classes()) allowed += (allowed.empty() ? "" : ", ") + c;
        return "unknown class \"" + term + "\"; expected one of: " + allowed;
      }
      return std::nullopt;
    case TermKind::kRegex: {
      if (term.empty()) return "is empty";
      std::string error;
      Code code = compile(term, error);
      if (!code) return "invalid regular expression: " + error;
      // A pattern that can match nothing would count a hit between every character.
      uint32_t min_length = 0;
      pcre2_pattern_info(code.get(), PCRE2_INFO_MINLENGTH, &min_length);
      if (min_length == 0) return "can match the empty string; every position would count as a hit";
      return std::nullopt;
    }
  }
  return std::nullopt;
}

SignalMatcher::SignalMatcher(const SignalProfile& profile) {
  auto add = [this](Polarity polarity, const TermSet& set) {
    auto add_kind = [&](TermKind kind, const std::vector<std::string>& terms) {
      for (const auto& term : terms) {
        std::string error;
        Code code = compile_term(kind, term, error);
        if (!code)
          throw ConfigError(std::string(polarity == Polarity::kSignal ? "signal " : "anti-signal ") +
                            term_kind_name(kind) + " \"" + term + "\": " + error);
        terms_.push_back(std::make_unique<Compiled>(Compiled{polarity, kind, term, std::move(code)}));
      }
    };
    add_kind(TermKind::kKeyword, set.keywords);
    add_kind(TermKind::kPhrase, set.phrases);
    add_kind(TermKind::kRegex, set.regexes);
    add_kind(TermKind::kClass, set.classes);
  };
  add(Polarity::kSignal, profile.signals);
  add(Polarity::kAntiSignal, profile.anti_signals);
}

SignalMatcher::~SignalMatcher() = default;
SignalMatcher::SignalMatcher(SignalMatcher&&) noexcept = default;
SignalMatcher& SignalMatcher::operator=(SignalMatcher&&) noexcept = default;

std::vector<SignalHit> SignalMatcher::find(std::string_view text) const {
  std::vector<SignalHit> hits;
  std::unique_ptr<pcre2_match_data, MatchDataFree> data(pcre2_match_data_create(1, nullptr));
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  for (const auto& term : terms_) {
    std::size_t start = 0;
    while (start <= text.size()) {
      const int rc = pcre2_match(term->code.get(), subject, text.size(), start, 0, data.get(), nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        PCRE2_UCHAR buffer[256];
        pcre2_get_error_message(rc, buffer, sizeof(buffer));
        throw ConfigError(std::string(term_kind_name(term->kind)) + " \"" + term->term + "\" failed on a text of " +
                          std::to_string(text.size()) + " bytes: " + reinterpret_cast<const char*>(buffer));
      }
      const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data.get());
      const std::size_t begin = ovector[0], end = ovector[1];
      if (end > begin) {
        hits.push_back({term->polarity, term->kind, term->term, begin, end - begin});
        start = end;
      } else {
        // Lookaround-only regexes are refused by check_term; step past a character anyway.
        start = begin + 1;
        while (start < text.size() && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) ++start;
      }
    }
  }
  std::stable_sort(hits.begin(), hits.end(), [](const SignalHit& a, const SignalHit& b) {
    return std::tie(a.offset, a.polarity) < std::tie(b.offset, b.polarity);
  });
  return hits;
}

SignalCounts SignalMatcher::count(const std::vector<SignalHit>& hits) {
  SignalCounts counts;
  std::set<std::tuple<Polarity, TermKind, std::string>> seen;
  for (const auto& hit : hits) {
    const bool fresh = seen.emplace(hit.polarity, hit.kind, hit.term).second;
    if (hit.polarity == Polarity::kSignal) {
      ++counts.signal_hits;
      counts.distinct_signals += fresh;
    } else {
      ++counts.anti_signal_hits;
      counts.distinct_anti_signals += fresh;
    }
  }
  return counts;
}

}  // namespace character::personas
