// Tokenizers as Hugging Face defines them, without Python: tokenizer.json with a
// byte-level BPE (Qwen, Llama 3) or a SentencePiece-style BPE with byte fallback
// (Llama 2, Mistral), and tokenizer.model through the SentencePiece library.
// Ids are identical to HF `tokenizers`; the oracle tests prove it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace character::model {

using TokenId = int32_t;

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Splits added/special tokens out of `text` first (as HF does), then runs the
  // normalizer, pre-tokenizer and model on the rest. With add_special_tokens, the
  // post-processor's template is applied (e.g. Llama's BOS).
  virtual std::vector<TokenId> encode(std::string_view text, bool add_special_tokens = false) const = 0;
  // Inverse of encode through the decoder; byte fallback and byte-level bytes are
  // reassembled; invalid UTF-8 at the end is kept as U+FFFD like HF.
  virtual std::string decode(std::span<const TokenId> ids, bool skip_special_tokens = false) const = 0;

  virtual int64_t vocab_size() const = 0;  // including added tokens
  virtual std::optional<TokenId> token_to_id(std::string_view token) const = 0;
  virtual std::string id_to_token(TokenId id) const = 0;  // raw vocabulary string; "" if unknown
  virtual bool is_special(TokenId id) const = 0;

  // From tokenizer_config.json when present (bos_token, eos_token, pad_token).
  std::optional<TokenId> bos_id, eos_id, pad_id;
  // "byte_level_bpe", "sentencepiece_bpe", "sentencepiece_model".
  std::string kind;
};

// Loads the tokenizer of a model directory: tokenizer.json if present, else
// tokenizer.model; tokenizer_config.json for special tokens. Unsupported
// model/pre-tokenizer/normalizer types throw FormatError naming the type.
// tokenizer.json: model BPE; normalizers NFC/NFD/NFKC/NFKD, Prepend, Replace, Sequence;
// pre-tokenizers Split, ByteLevel, Metaspace, Sequence; post-processors
// TemplateProcessing (single sequence), ByteLevel, Sequence; decoders ByteLevel,
// Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence. Truncation and padding
// in the file are ignored (transformers sets them per call).
// tokenizer.model: ids and text exactly as the SentencePiece library gives them;
// add_special_tokens adds BOS/EOS per add_bos_token (default true) / add_eos_token;
// added_tokens_decoder is not used there (SentencePiece splits its own pieces).
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& model_dir);

// Encodes many texts in parallel with oneTBB; result[i] == tokenizer.encode(texts[i], ...).
std::vector<std::vector<TokenId>> encode_batch(const Tokenizer& tokenizer, const std::vector<std::string>& texts,
                                               bool add_special_tokens = false);

// Streaming detokenization for generation, chunk for chunk as tokenizers'
// DecodeStream (the oracle test compares every step): feed ids one at a time; step()
// returns the text that the new id completes, or nullopt while the decoded tail is an
// incomplete UTF-8 sequence (ends in U+FFFD) or adds nothing. Only a short window of
// ids is re-decoded per step, so the cost does not grow with the sequence.
class DecodeStream {
 public:
  explicit DecodeStream(const Tokenizer& tokenizer, bool skip_special_tokens = false)
      : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}
  std::optional<std::string> step(TokenId id);

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  std::vector<TokenId> ids_;  // window: the ids behind `prefix_` plus the pending ones
  std::string prefix_;        // decode of ids_[0, prefix_index_)
  size_t prefix_index_ = 0;
};

}  // namespace character::model
