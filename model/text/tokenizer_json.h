// The tokenizer.json pipeline (added tokens → normalizer → pre-tokenizer → BPE →
// post-processor; decoder for the way back) and the tokenizer.model one through
// the SentencePiece library. Internal to model/text: load_tokenizer() picks one.
#pragma once

#include <filesystem>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/text/tokenizer_parts.h"

namespace character::model::text {

// tokenizer.json with model.vocab and model.merges taken out of the document (null
// there) into flat vectors; merges in either format become (left, right) pairs.
struct ParsedTokenizerJson {
  nlohmann::json doc;
  std::vector<std::pair<std::string, TokenId>> vocab;
  std::vector<std::pair<std::string, std::string>> merges;
  bool has_vocab = false, has_merges = false;
};
// Invalid JSON or a malformed vocab/merges entry: FormatError naming `where`.
ParsedTokenizerJson parse_tokenizer_json(const std::string& text, const std::string& where);

class JsonTokenizer : public Tokenizer {
 public:
  // Parses `file`; `extra_added` (from tokenizer_config.json's added_tokens_decoder)
  // are added when tokenizer.json does not already list them.
  JsonTokenizer(const std::filesystem::path& file, const std::vector<AddedToken>& extra_added);
  ~JsonTokenizer() override;

  std::vector<TokenId> encode(std::string_view text, bool add_special_tokens = false) const override;
  std::string decode(std::span<const TokenId> ids, bool skip_special_tokens = false) const override;
  int64_t vocab_size() const override;
  std::optional<TokenId> token_to_id(std::string_view token) const override;
  std::string id_to_token(TokenId id) const override;
  bool is_special(TokenId id) const override;

 private:
  void add_token(AddedToken token);
  void encode_text(std::string_view text, bool at_start, std::vector<TokenId>& out) const;

  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<PostProcessor> post_processor_;
  std::unique_ptr<Decoder> decoder_;
  std::vector<AddedToken> added_;
  std::unordered_map<TokenId, size_t> added_by_id_;                   // index into added_
  std::unordered_map<std::string, size_t> added_by_content_;          // index into added_
  std::unique_ptr<AddedTokenMatcher> raw_matcher_;         // normalized=false tokens
  std::unique_ptr<AddedTokenMatcher> normalized_matcher_;  // normalized=true, content normalized
};

// tokenizer.model through sentencepiece::SentencePieceProcessor.
std::unique_ptr<Tokenizer> load_sentencepiece_model(const std::filesystem::path& file, bool add_bos, bool add_eos);

}  // namespace character::model::text
