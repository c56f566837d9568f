// The parts of a Hugging Face `tokenizers` pipeline, as tokenizer.json names them:
// normalizers, pre-tokenizers, the BPE model, post-processors and decoders, and the
// added-token vocabulary that is split out of the text before any of them runs.
// Internal to model/text; users see only tokenizer.h. Each part mirrors the Rust
// type of the same name in tokenizers 0.22 (tokenizers/src/{normalizers,...}).
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "model/text/tokenizer.h"

namespace character::model::text {

// A piece of text on its way through the pipeline. `at_start` is true when the piece
// begins at offset 0 of the original input (Metaspace's prepend_scheme "first").
struct Piece {
  std::string text;
  bool at_start = false;
};

// ---- patterns (pretokenize.cpp) ------------------------------------------------
// A tokenizer.json pattern: {"String": "..."} (literal) or {"Regex": "..."}, the latter
// compiled with PCRE2 in UTF + UCP mode so that \p{L}, \s and \w are Unicode-aware
// as in the Oniguruma regexes tokenizers uses.
class Pattern {
 public:
  Pattern(const nlohmann::json& j, const std::string& where);
  ~Pattern();
  Pattern(const Pattern&) = delete;
  Pattern& operator=(const Pattern&) = delete;
  // Non-overlapping matches as [begin, end) byte ranges, left to right.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;
  // Replaces every match with `content`.
  std::string replace_all(std::string_view text, std::string_view content) const;

 private:
  std::string literal_;
  void* regex_ = nullptr;  // pcre2_code_8*
};

// ---- normalizers (normalizers.cpp) --------------------------------------------
class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& text) const = 0;
};

// ---- pre-tokenizers (pretokenize.cpp) -----------------------------------------
class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Splits every piece into sub-pieces (and may rewrite them); empty pieces are dropped.
  virtual void pre_tokenize(std::vector<Piece>& pieces) const = 0;
};

// ---- post-processors (tokenizer_json.cpp) -------------------------------------
class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Applied only with add_special_tokens (single sequence; pairs are not supported).
  virtual void process(std::vector<TokenId>& ids) const = 0;
};

// ---- decoders (decoders.cpp) -----------------------------------------------------
class Decoder {
 public:
  virtual ~Decoder() = default;
  // tokenizers' `decode_chain`: token strings in, token strings out; the final text is
  // the concatenation of what the last decoder returns.
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// ---- the BPE model (bpe.cpp) -----------------------------------------------------
struct BpeOptions {
  std::optional<std::string> unk_token;
  std::string continuing_subword_prefix;
  std::string end_of_word_suffix;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
};

class BpeModel {
 public:
  // `merges` are (left, right) pairs in rank order; `where` prefixes error messages.
  BpeModel(std::vector<std::pair<std::string, TokenId>> vocab,
           const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options,
           const std::string& where);
  // Appends the ids of one pre-tokenized word to `out`.
  void tokenize(std::string_view word, std::vector<TokenId>& out) const;
  std::optional<TokenId> token_to_id(std::string_view token) const;
  const std::string* id_to_token(TokenId id) const;  // nullptr when unknown
  int64_t size() const { return static_cast<int64_t>(vocab_.size()); }

 private:
  struct Merge {
    uint32_t rank;
    TokenId new_id;
  };
  static uint64_t pair_key(TokenId a, TokenId b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  const Merge* find_merge(TokenId a, TokenId b) const;

  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, TokenId, StringHash, std::equal_to<>> vocab_;
  std::vector<const std::string*> vocab_r_;  // id → key in vocab_ (nodes are stable)
  std::unordered_map<uint64_t, Merge> merges_;
  BpeOptions options_;
  std::optional<TokenId> unk_id_;
  TokenId byte_ids_[256];  // <0xXX> tokens for byte_fallback, -1 when absent
  bool has_all_byte_ids_ = false;
};

// ---- added tokens (added_vocabulary.cpp) --------------------------------------
struct AddedToken {
  std::string content;
  TokenId id = 0;
  bool special = false;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
};

struct AddedSplit {
  std::string text;
  std::optional<TokenId> id;  // set when the piece is an added token
  bool at_start = false;
};

// Finds added tokens in text the way tokenizers' AddedVocabulary does (aho-corasick,
// leftmost-longest, then the single_word / lstrip / rstrip rules).
class AddedTokenMatcher {
 public:
  explicit AddedTokenMatcher(std::vector<AddedToken> tokens);
  bool empty() const { return tokens_.empty(); }
  // Splits `text` into pieces; added-token pieces carry their id.
  std::vector<AddedSplit> split(std::string_view text, bool at_start) const;

 private:
  std::vector<AddedToken> tokens_;
  // For each first byte, indices into tokens_ sorted by content length, longest first.
  std::vector<int> by_first_byte_[256];
};

// ---- UTF-8 helpers (byte_level.cpp) ---------------------------------------------
// Rust's String::from_utf8_lossy: each maximal invalid subsequence becomes U+FFFD.
std::string utf8_lossy(std::string_view bytes);
// Code point at `pos` (advanced past it); invalid bytes decode as 0xFFFD, one byte long.
char32_t next_code_point(std::string_view text, size_t& pos);
void append_utf8(std::string& out, char32_t cp);
// Bytes in the UTF-8 character at `pos`; 1 for an invalid byte.
size_t utf8_char_length(std::string_view text, size_t pos);
// GPT-2's bytes_to_unicode table: the printable code point standing for each byte.
const std::string& byte_to_unicode(uint8_t byte);
// Inverse of byte_to_unicode for one code point; -1 when it stands for no byte.
int unicode_to_byte(char32_t cp);

// ---- factories from tokenizer.json sections (normalizers/pretokenize/decoders.cpp)
// FormatError "<where>: <section> type "<type>" is not supported (supported: ...)".
[[noreturn]] void throw_unsupported(const std::string& where, const std::string& section,
                                    const std::string& type, const std::string& supported);
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j, const std::string& where);
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j, const std::string& where);
std::unique_ptr<Decoder> make_decoder(const nlohmann::json& j, const std::string& where);

}  // namespace character::model::text
