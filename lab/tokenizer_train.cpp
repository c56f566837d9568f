// SentencePiece BPE training and the Hugging Face files derived from its model.
// The settings keep the three encoders in agreement: identity normalization and no
// dummy prefix, so no normalizer is needed on the HF side and a Metaspace
// pre-tokenizer (prepend "never", no split) only swaps spaces for "▁"; the special
// tokens are user-defined symbols, which SentencePiece cuts out of any text exactly
// as HF cuts out added tokens. Merges are derived as transformers'
// SentencePieceExtractor does (generate_merges in tokenization_utils_base.py).
#include "lab/tokenizer_train.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/atomic_file.h"
#include "base/error.h"

namespace character::lab {
namespace {

using ordered_json = nlohmann::ordered_json;

constexpr const char* kEndOfText = "<|endoftext|>";
constexpr const char* kImStart = "<|im_start|>";
constexpr const char* kImEnd = "<|im_end|>";
constexpr const char* kMetaspace = "\xE2\x96\x81";  // U+2581 "▁", SentencePiece's space
// unk + the three specials + 256 byte pieces, plus at least a few characters.
constexpr int kMinVocabSize = 4 + 256 + 16;

// Plain ChatML, as tools/oracle/fixtures_chat.py's CHATML: no default system
// prompt, no thinking block, so model::detect_chat_family says "chatml".
constexpr const char* kChatTemplate =
    "{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

struct Piece {
  std::string text;
  bool normal = false;  // a learned piece or a character, not unk / special / byte
};

// Byte offsets of the UTF-8 code point boundaries inside `s` (not 0, not size).
std::vector<std::size_t> inner_boundaries(const std::string& s) {
  std::vector<std::size_t> out;
  for (std::size_t i = 1; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) out.push_back(i);
  }
  return out;
}

// generate_merges(vocab) without scores: every split of every piece into two pieces
// of the vocabulary, ordered by the merged piece's id, then by the left part's length.
// Special and byte pieces are never the result of a merge (SentencePiece does not
// build them from characters either).
ordered_json derive_merges(const std::vector<Piece>& pieces) {
  std::unordered_map<std::string, int> ids;
  for (int i = 0; i < static_cast<int>(pieces.size()); ++i) ids.emplace(pieces[i].text, i);
  ordered_json merges = ordered_json::array();
  for (const Piece& piece : pieces) {
    if (!piece.normal) continue;
    for (std::size_t cut : inner_boundaries(piece.text)) {
      std::string left = piece.text.substr(0, cut), right = piece.text.substr(cut);
      if (ids.contains(left) && ids.contains(right)) merges.push_back(ordered_json::array({left, right}));
    }
  }
  return merges;
}

ordered_json added_token(int id, const std::string& content) {
  return {{"id", id},          {"content", content},    {"single_word", false}, {"lstrip", false},
          {"rstrip", false},   {"normalized", false},   {"special", true}};
}

ordered_json tokenizer_json(const std::vector<Piece>& pieces, const std::vector<std::pair<int, std::string>>& specials) {
  ordered_json vocab = ordered_json::object();
  for (int i = 0; i < static_cast<int>(pieces.size()); ++i) vocab[pieces[i].text] = i;
  ordered_json added = ordered_json::array();
  for (const auto& [id, content] : specials) added.push_back(added_token(id, content));
  const ordered_json replace_pattern = {{"String", kMetaspace}};
  return {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", nullptr},  // identity normalization in SentencePiece
      {"pre_tokenizer", {{"type", "Metaspace"}, {"replacement", kMetaspace}, {"prepend_scheme", "never"},
                         {"split", false}}},
      {"post_processor", nullptr},
      // LlamaConverter's decoder without its Strip: there is no dummy prefix to remove.
      {"decoder", {{"type", "Sequence"},
                   {"decoders", ordered_json::array({{{"type", "Replace"}, {"pattern", replace_pattern}, {"content", " "}},
                                                     {{"type", "ByteFallback"}},
                                                     {{"type", "Fuse"}}})}}},
      {"model", {{"type", "BPE"},
                 {"dropout", nullptr},
                 {"unk_token", "<unk>"},
                 {"continuing_subword_prefix", nullptr},
                 {"end_of_word_suffix", nullptr},
                 {"fuse_unk", true},
                 {"byte_fallback", true},
                 {"ignore_merges", false},
                 {"vocab", vocab},
                 {"merges", derive_merges(pieces)}}},
  };
}

// No unk_token here: transformers would then make "<unk>" a special token cut out of
// text, which SentencePiece does not do (it stays in tokenizer.json's model).
ordered_json tokenizer_config(const std::vector<std::pair<int, std::string>>& specials) {
  ordered_json decoder = ordered_json::object();
  for (const auto& [id, content] : specials) {
    decoder[std::to_string(id)] = {{"content", content}, {"lstrip", false},       {"normalized", false},
                                   {"rstrip", false},    {"single_word", false}, {"special", true}};
  }
  return {{"tokenizer_class", "PreTrainedTokenizerFast"},
          {"bos_token", nullptr},
          {"eos_token", kImEnd},
          {"pad_token", kEndOfText},
          {"add_bos_token", false},
          {"add_eos_token", false},
          {"clean_up_tokenization_spaces", false},
          {"model_max_length", 4096},
          {"added_tokens_decoder", decoder},
          {"chat_template", kChatTemplate}};
}

std::string train_model_proto(const TokenizerTrainOptions& options) {
  const int threads = options.threads > 0 ? options.threads
                                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const std::unordered_map<std::string, std::string> args = {
      {"input", options.text_file.string()},
      {"model_type", "bpe"},
      {"vocab_size", std::to_string(options.vocab_size)},
      {"byte_fallback", "true"},
      {"character_coverage", "1.0"},
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"add_dummy_prefix", "false"},
      {"split_digits", "true"},
      {"unk_id", "0"},
      {"bos_id", "-1"},
      {"eos_id", "-1"},
      {"pad_id", "-1"},
      {"user_defined_symbols", std::string(kEndOfText) + "," + kImStart + "," + kImEnd},
      {"input_sentence_size", "0"},  // every line: no sampling, so no dependence on the seed's stream
      {"shuffle_input_sentence", "false"},
      {"hard_vocab_limit", "false"},
      {"num_threads", std::to_string(threads)},
      {"minloglevel", "2"},
  };
  sentencepiece::SetRandomGeneratorSeed(static_cast<unsigned int>(options.seed ^ (options.seed >> 32)));
  std::string proto;
  const auto status = sentencepiece::SentencePieceTrainer::Train(args, nullptr, &proto);
  if (!status.ok()) {
    throw FormatError(options.text_file.string() + ": the SentencePiece trainer refused the input (" +
                      status.ToString() + "), expected text lines that fill a vocabulary of " +
                      std::to_string(options.vocab_size));
  }
  return proto;
}

}  // namespace

void train_lab_tokenizer(const TokenizerTrainOptions& options) {
  if (options.vocab_size < kMinVocabSize) {
    throw ConfigError("tokenizer vocab_size=" + std::to_string(options.vocab_size) + ", expected >= " +
                      std::to_string(kMinVocabSize) + " (256 byte pieces, 4 special pieces and characters)");
  }
  if (options.threads < 0) {
    throw ConfigError("tokenizer threads=" + std::to_string(options.threads) + ", expected >= 0 (0: all)");
  }
  if (!std::filesystem::is_regular_file(options.text_file)) {
    throw IoError(options.text_file.string() + ": tokenizer training text not found (expected a file of lines)");
  }
  if (options.out_dir.empty()) throw ConfigError("tokenizer out_dir is empty, expected a directory path");

  const std::filesystem::path tmp = options.out_dir.string() + ".tmp";
  std::error_code ec;
  std::filesystem::remove_all(tmp, ec);
  std::filesystem::create_directories(tmp, ec);
  if (ec) throw IoError(tmp.string() + ": cannot create directory (" + ec.message() + ")");

  const std::string proto = train_model_proto(options);
  sentencepiece::SentencePieceProcessor sp;
  if (const auto status = sp.LoadFromSerializedProto(proto); !status.ok()) {
    throw FormatError("SentencePiece model from " + options.text_file.string() + " does not load (" +
                      status.ToString() + ")");
  }
  std::vector<Piece> pieces(static_cast<std::size_t>(sp.GetPieceSize()));
  std::vector<std::pair<int, std::string>> specials;
  for (int i = 0; i < sp.GetPieceSize(); ++i) {
    Piece& p = pieces[static_cast<std::size_t>(i)];
    p.text = sp.IdToPiece(i);
    const bool special = p.text == kEndOfText || p.text == kImStart || p.text == kImEnd;
    if (special) specials.emplace_back(i, p.text);
    p.normal = !special && !sp.IsUnknown(i) && !sp.IsControl(i) && !sp.IsByte(i) && !sp.IsUnused(i);
  }
  if (specials.size() != 3) {
    throw FormatError("SentencePiece model from " + options.text_file.string() + " has " +
                      std::to_string(specials.size()) + " of the 3 special pieces, expected all");
  }

  write_file_atomic(tmp / "tokenizer.model", proto);
  write_file_atomic(tmp / "tokenizer.json", tokenizer_json(pieces, specials).dump(1));
  write_file_atomic(tmp / "tokenizer_config.json", tokenizer_config(specials).dump(2) + "\n");
  const ordered_json special_map = {{"eos_token", kImEnd}, {"pad_token", kEndOfText},
                                    {"additional_special_tokens", ordered_json::array({kImStart})}};
  write_file_atomic(tmp / "special_tokens_map.json", special_map.dump(2) + "\n");

  std::filesystem::remove_all(options.out_dir, ec);
  if (ec) throw IoError(options.out_dir.string() + ": cannot replace the old directory (" + ec.message() + ")");
  std::filesystem::rename(tmp, options.out_dir, ec);
  if (ec) {
    throw IoError("cannot rename " + tmp.string() + " to " + options.out_dir.string() + " (" + ec.message() + ")");
  }
}

}  // namespace character::lab
