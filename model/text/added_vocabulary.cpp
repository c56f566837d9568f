// Splitting added tokens out of text, as tokenizers' AddedVocabulary::find_matches
// (tokenizer/added_vocabulary.rs): leftmost-longest matching (its aho-corasick uses
// MatchKind::LeftmostLongest), then single_word, lstrip and rstrip. A per-first-byte
// bucket list is enough here: vocabularies have tens to hundreds of added tokens.
#include "model/text/tokenizer_parts.h"

#include <unicode/uchar.h>

#include <algorithm>

namespace character::model::text {
namespace {

// A word character for single_word: the Unicode \\w of Rust's regex crate, which
// tokenizers uses here (Alphabetic, marks, decimal digits, connector punctuation,
// Join_Control). Measured against tokenizers: U+0301 before a token counts as word.
bool is_word_char(char32_t c) {
  const auto cp = static_cast<UChar32>(c);
  if (u_hasBinaryProperty(cp, UCHAR_ALPHABETIC) || u_hasBinaryProperty(cp, UCHAR_JOIN_CONTROL)) return true;
  const auto type = u_charType(cp);
  return type == U_NON_SPACING_MARK || type == U_ENCLOSING_MARK || type == U_COMBINING_SPACING_MARK ||
         type == U_DECIMAL_DIGIT_NUMBER || type == U_CONNECTOR_PUNCTUATION;
}

bool is_whitespace(char32_t c) { return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_WHITE_SPACE); }

// Start of the UTF-8 character that ends just before `end`.
size_t previous_char_start(std::string_view s, size_t end) {
  size_t pos = end - 1;
  while (pos > 0 && end - pos < 4 && (static_cast<uint8_t>(s[pos]) & 0xC0) == 0x80) --pos;
  return pos;
}

char32_t char_at(std::string_view s, size_t pos) { return next_code_point(s, pos); }

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens) : tokens_(std::move(tokens)) {
  for (size_t i = 0; i < tokens_.size(); ++i) {
    if (tokens_[i].content.empty()) continue;
    by_first_byte_[static_cast<uint8_t>(tokens_[i].content[0])].push_back(static_cast<int>(i));
  }
  for (auto& bucket : by_first_byte_) {
    std::stable_sort(bucket.begin(), bucket.end(),
                     [&](int a, int b) { return tokens_[a].content.size() > tokens_[b].content.size(); });
  }
}

std::vector<AddedSplit> AddedTokenMatcher::split(std::string_view text, bool at_start) const {
  std::vector<AddedSplit> splits;
  const auto push_text = [&](size_t begin, size_t end) {
    splits.push_back({std::string(text.substr(begin, end - begin)), std::nullopt, at_start && begin == 0});
  };
  size_t start_offset = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    // Leftmost-longest: the first position with any match, the longest token there.
    const AddedToken* found = nullptr;
    for (const int index : by_first_byte_[static_cast<uint8_t>(text[pos])]) {
      const std::string& content = tokens_[index].content;
      if (text.compare(pos, content.size(), content) == 0) {
        found = &tokens_[index];
        break;
      }
    }
    if (!found) {
      ++pos;
      continue;
    }
    size_t start = pos;
    size_t stop = pos + found->content.size();
    pos = stop;  // the automaton resumes after the raw match, whatever the strips do

    if (found->single_word) {
      const bool start_space = start == 0 || !is_word_char(char_at(text, previous_char_start(text, start)));
      const bool stop_space = stop == text.size() || !is_word_char(char_at(text, stop));
      if (!start_space || !stop_space) continue;
    }
    if (found->lstrip) {
      size_t new_start = start;
      while (new_start > 0) {
        const size_t prev = previous_char_start(text, new_start);
        if (!is_whitespace(char_at(text, prev))) break;
        new_start = prev;
      }
      // The previous match may already have taken those spaces.
      start = std::max(new_start, start_offset);
    }
    if (found->rstrip) {
      while (stop < text.size()) {
        size_t next = stop;
        if (!is_whitespace(next_code_point(text, next))) break;
        stop = next;
      }
    }
    if (start_offset < start) push_text(start_offset, start);
    splits.push_back({std::string(text.substr(start, stop - start)), found->id, at_start && start == 0});
    start_offset = stop;
  }
  if (start_offset < text.size() || text.empty()) push_text(start_offset, text.size());
  return splits;
}

}  // namespace character::model::text
