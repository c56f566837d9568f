// tokenizer.model (a SentencePiece ModelProto) through the SentencePiece library,
// for model directories that ship no tokenizer.json. Ids and text are exactly the
// library's; add_special_tokens adds BOS (and EOS) as tokenizer_config.json's
// add_bos_token / add_eos_token say, like transformers' LlamaTokenizer.
#include <sentencepiece_processor.h>

#include "base/error.h"
#include "model/text/tokenizer_json.h"

namespace character::model::text {
namespace {

class SentencePieceTokenizer : public Tokenizer {
 public:
  SentencePieceTokenizer(const std::filesystem::path& file, bool add_bos, bool add_eos)
      : add_bos_(add_bos), add_eos_(add_eos) {
    // The library reports most problems through its status, but a malformed model can also
    // throw from its trie builder (darts-clone: "zero-length key", found by fuzzing).
    sentencepiece::util::Status status;
    try {
      status = processor_.Load(file.string());
    } catch (const std::exception& e) {
      throw FormatError(file.string() + ": not a SentencePiece model (" + e.what() + ")");
    }
    if (!status.ok()) {
      throw FormatError(file.string() + ": not a SentencePiece model (" + status.ToString() + ")");
    }
    kind = "sentencepiece_model";
    if (processor_.bos_id() >= 0) bos_id = processor_.bos_id();
    if (processor_.eos_id() >= 0) eos_id = processor_.eos_id();
    if (processor_.pad_id() >= 0) pad_id = processor_.pad_id();
  }

  std::vector<TokenId> encode(std::string_view text, bool add_special_tokens) const override {
    std::vector<int> ids;
    const auto status = processor_.Encode(text, &ids);
    if (!status.ok()) throw FormatError("SentencePiece cannot encode the text: " + status.ToString());
    if (add_special_tokens && add_bos_ && bos_id) ids.insert(ids.begin(), *bos_id);
    if (add_special_tokens && add_eos_ && eos_id) ids.push_back(*eos_id);
    return {ids.begin(), ids.end()};
  }

  std::string decode(std::span<const TokenId> ids, bool skip_special_tokens) const override {
    std::vector<int> kept;
    kept.reserve(ids.size());
    for (const TokenId id : ids) {
      if (id < 0 || id >= processor_.GetPieceSize()) continue;  // dropped, as tokenizers does
      if (skip_special_tokens && is_special(id)) continue;
      kept.push_back(id);
    }
    std::string text;
    const auto status = processor_.Decode(kept, &text);
    if (!status.ok()) throw FormatError("SentencePiece cannot decode the ids: " + status.ToString());
    return text;
  }

  int64_t vocab_size() const override { return processor_.GetPieceSize(); }

  std::optional<TokenId> token_to_id(std::string_view token) const override {
    const int id = processor_.PieceToId(token);
    // PieceToId answers unk_id for unknown pieces.
    if (id < 0 || (processor_.IsUnknown(id) && processor_.IdToPiece(id) != token)) return std::nullopt;
    return id;
  }

  std::string id_to_token(TokenId id) const override {
    if (id < 0 || id >= processor_.GetPieceSize()) return {};
    return processor_.IdToPiece(id);
  }

  bool is_special(TokenId id) const override {
    if (id < 0 || id >= processor_.GetPieceSize()) return false;
    return processor_.IsControl(id) || processor_.IsUnknown(id);
  }

 private:
  sentencepiece::SentencePieceProcessor processor_;
  bool add_bos_, add_eos_;
};

}  // namespace

std::unique_ptr<Tokenizer> load_sentencepiece_model(const std::filesystem::path& file, bool add_bos, bool add_eos) {
  return std::make_unique<SentencePieceTokenizer>(file, add_bos, add_eos);
}

}  // namespace character::model::text
