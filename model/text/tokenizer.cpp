// load_tokenizer(): picks tokenizer.json or tokenizer.model in a model directory and
// applies tokenizer_config.json (special-token names, added_tokens_decoder); plus the
// helpers every tokenizer shares: parallel batch encoding and streaming decode.
#include "model/text/tokenizer.h"

#include <tbb/parallel_for.h>

#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/json_read.h"
#include "model/text/tokenizer_json.h"

namespace character::model {
namespace {

using nlohmann::json;

struct TokenizerConfig {
  std::optional<std::string> bos_token, eos_token, pad_token;
  bool add_bos_token = true;  // LlamaTokenizer's default; used for tokenizer.model only
  bool add_eos_token = false;
  std::vector<text::AddedToken> added_tokens;
};

// A special token is a string, null, or an AddedToken object {"content": ...}.
std::optional<std::string> token_name(const json& config, const std::string& field, const std::string& where) {
  if (!config.contains(field) || config.at(field).is_null()) return std::nullopt;
  const json& value = config.at(field);
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content") && value.at("content").is_string()) {
    return value.at("content").get<std::string>();
  }
  throw FormatError(where + ": " + field + " is " + describe_json(value) +
                    ", expected a string, null or an object with a \"content\" string");
}

TokenizerConfig read_config(const std::filesystem::path& file) {
  TokenizerConfig config;
  if (!std::filesystem::exists(file)) return config;
  const std::string where = file.string();
  const json j = read_json_file(file);
  if (!j.is_object()) throw FormatError(where + ": expected a JSON object, found " + std::string(j.type_name()));
  config.bos_token = token_name(j, "bos_token", where);
  config.eos_token = token_name(j, "eos_token", where);
  config.pad_token = token_name(j, "pad_token", where);
  try {
    config.add_bos_token = j.value("add_bos_token", true);
    config.add_eos_token = j.value("add_eos_token", false);
    const json added = j.value("added_tokens_decoder", json::object());
    for (const auto& [id, t] : added.items()) {
      config.added_tokens.push_back(text::AddedToken{t.at("content").get<std::string>(), std::stoi(id),
                                                     t.value("special", false), t.value("single_word", false),
                                                     t.value("lstrip", false), t.value("rstrip", false),
                                                     t.value("normalized", !t.value("special", false))});
    }
  } catch (const std::exception& e) {  // json type errors, std::stoi on a non-numeric key
    throw FormatError(where + ": unexpected added_tokens_decoder / add_*_token structure (" + e.what() + ")");
  }
  return config;
}

void resolve(std::optional<TokenId>& slot, const std::optional<std::string>& name, const Tokenizer& tokenizer,
             const std::string& field, const std::filesystem::path& config_file) {
  if (!name) return;
  const auto id = tokenizer.token_to_id(*name);
  if (!id) {
    throw FormatError(config_file.string() + ": " + field + " \"" + *name + "\" is not in the tokenizer's vocabulary");
  }
  slot = id;
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& model_dir) {
  const auto json_file = model_dir / "tokenizer.json";
  const auto model_file = model_dir / "tokenizer.model";
  const auto config_file = model_dir / "tokenizer_config.json";
  const TokenizerConfig config = read_config(config_file);

  std::unique_ptr<Tokenizer> tokenizer;
  if (std::filesystem::exists(json_file)) {
    tokenizer = std::make_unique<text::JsonTokenizer>(json_file, config.added_tokens);
  } else if (std::filesystem::exists(model_file)) {
    tokenizer = text::load_sentencepiece_model(model_file, config.add_bos_token, config.add_eos_token);
  } else {
    throw FormatError(model_dir.string() + ": no tokenizer found (expected tokenizer.json or tokenizer.model)");
  }
  resolve(tokenizer->bos_id, config.bos_token, *tokenizer, "bos_token", config_file);
  resolve(tokenizer->eos_id, config.eos_token, *tokenizer, "eos_token", config_file);
  resolve(tokenizer->pad_id, config.pad_token, *tokenizer, "pad_token", config_file);
  return tokenizer;
}

std::vector<std::vector<TokenId>> encode_batch(const Tokenizer& tokenizer, const std::vector<std::string>& texts,
                                               bool add_special_tokens) {
  std::vector<std::vector<TokenId>> out(texts.size());
  tbb::parallel_for(size_t{0}, texts.size(), [&](size_t i) { out[i] = tokenizer.encode(texts[i], add_special_tokens); });
  return out;
}

// tokenizers' step_decode_stream (tokenizer/mod.rs): decode the window, emit what
// follows the already-emitted prefix once it does not end in U+FFFD, then slide
// the window so that only the ids behind the last emission are kept.
std::optional<std::string> DecodeStream::step(TokenId id) {
  ids_.push_back(id);
  const std::string text = tokenizer_.decode(ids_, skip_special_tokens_);
  const bool incomplete = text.size() >= 3 && text.compare(text.size() - 3, 3, "\xEF\xBF\xBD") == 0;
  if (text.size() <= prefix_.size() || incomplete) return std::nullopt;
  // tokenizers fails when the window no longer starts with the prefix; that cannot
  // happen with the decoders supported here, and emitting the tail is the safe choice.
  std::string new_text = text.substr(prefix_.size());
  const size_t new_prefix_index = ids_.size() - prefix_index_;
  ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_index_));
  prefix_ = tokenizer_.decode(ids_, skip_special_tokens_);
  prefix_index_ = new_prefix_index;
  return new_text;
}

}  // namespace character::model
