// Loads tokenizer.json into the pipeline of tokenizer_parts.h and runs it the way
// tokenizers' TokenizerImpl::encode/decode do (tokenizer/mod.rs): added tokens are
// split out of the raw text, then out of each normalized piece; the rest goes
// through the pre-tokenizer and the BPE model; the post-processor adds BOS.
#include "model/text/tokenizer_json.h"

#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/json_read.h"

namespace character::model::text {
namespace {

using nlohmann::json;

// ---- post-processors ---------------------------------------------------------------

// TemplateProcessing's "single" template: special tokens around sequence "A".
class TemplatePostProcessor : public PostProcessor {
 public:
  TemplatePostProcessor(const json& j, const std::string& where) {
    const json& specials = j.at("special_tokens");
    for (const json& item : j.at("single")) {
      if (item.contains("Sequence")) {
        items_.push_back(std::nullopt);
        continue;
      }
      const auto name = item.at("SpecialToken").at("id").get<std::string>();
      if (!specials.contains(name)) {
        throw FormatError(where + ": post_processor TemplateProcessing uses special token \"" + name +
                          "\", which is missing from its special_tokens");
      }
      items_.push_back(specials.at(name).at("ids").get<std::vector<TokenId>>());
    }
  }
  void process(std::vector<TokenId>& ids) const override {
    std::vector<TokenId> out;
    out.reserve(ids.size() + 4);
    for (const auto& item : items_) {
      if (item) {
        out.insert(out.end(), item->begin(), item->end());
      } else {
        out.insert(out.end(), ids.begin(), ids.end());
      }
    }
    ids = std::move(out);
  }

 private:
  std::vector<std::optional<std::vector<TokenId>>> items_;  // nullopt = the sequence itself
};

// ByteLevel's post-processor only trims offsets; ids pass unchanged.
class NoOpPostProcessor : public PostProcessor {
 public:
  void process(std::vector<TokenId>&) const override {}
};

class SequencePostProcessor : public PostProcessor {
 public:
  explicit SequencePostProcessor(std::vector<std::unique_ptr<PostProcessor>> parts) : parts_(std::move(parts)) {}
  void process(std::vector<TokenId>& ids) const override {
    for (const auto& part : parts_) part->process(ids);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> parts_;
};

std::unique_ptr<PostProcessor> make_post_processor(const json& j, const std::string& where) {
  const auto type = j.at("type").get<std::string>();
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PostProcessor>> parts;
    for (const auto& part : j.at("processors")) parts.push_back(make_post_processor(part, where));
    return std::make_unique<SequencePostProcessor>(std::move(parts));
  }
  if (type == "TemplateProcessing") return std::make_unique<TemplatePostProcessor>(j, where);
  if (type == "ByteLevel") return std::make_unique<NoOpPostProcessor>();
  throw_unsupported(where, "post_processor", type, "Sequence, TemplateProcessing, ByteLevel");
}

// ---- the model section -------------------------------------------------------------

std::unique_ptr<BpeModel> make_model(const json& j, ParsedTokenizerJson& parsed, const std::string& where) {
  const auto type = j.value("type", std::string("<missing>"));
  if (type != "BPE") throw_unsupported(where, "model", type, "BPE");
  if (j.contains("dropout") && !j.at("dropout").is_null() && j.at("dropout").get<double>() != 0.0) {
    throw FormatError(where + ": model.dropout=" + describe_json(j.at("dropout")) +
                      " is not supported (expected null: BPE dropout is a training-time option)");
  }
  if (!parsed.has_vocab) throw FormatError(where + ": model.vocab is missing or not an object");
  if (!parsed.has_merges) throw FormatError(where + ": model.merges is missing or not an array");
  BpeOptions options;
  if (j.contains("unk_token") && !j.at("unk_token").is_null()) options.unk_token = j.at("unk_token").get<std::string>();
  if (j.contains("continuing_subword_prefix") && !j.at("continuing_subword_prefix").is_null()) {
    options.continuing_subword_prefix = j.at("continuing_subword_prefix").get<std::string>();
  }
  if (j.contains("end_of_word_suffix") && !j.at("end_of_word_suffix").is_null()) {
    options.end_of_word_suffix = j.at("end_of_word_suffix").get<std::string>();
  }
  options.fuse_unk = j.value("fuse_unk", false);
  options.byte_fallback = j.value("byte_fallback", false);
  options.ignore_merges = j.value("ignore_merges", false);
  return std::make_unique<BpeModel>(std::move(parsed.vocab), parsed.merges, std::move(options), where);
}

bool uses_byte_level(const json& j) {
  if (j.is_object()) {
    if (j.value("type", std::string()) == "ByteLevel") return true;
    for (const auto& [key, value] : j.items()) {
      if (uses_byte_level(value)) return true;
    }
  } else if (j.is_array()) {
    for (const auto& value : j) {
      if (uses_byte_level(value)) return true;
    }
  }
  return false;
}

}  // namespace

JsonTokenizer::JsonTokenizer(const std::filesystem::path& file, const std::vector<AddedToken>& extra_added) {
  const std::string where = file.string();
  ParsedTokenizerJson parsed = parse_tokenizer_json(read_file(file), where);
  const json& j = parsed.doc;
  try {
    if (!j.is_object() || !j.contains("model") || !j.at("model").is_object()) {
      throw FormatError(where + ": expected a JSON object with a \"model\" section (a Hugging Face tokenizer.json)");
    }
    model_ = make_model(j.at("model"), parsed, where);
    if (j.contains("normalizer") && !j.at("normalizer").is_null()) normalizer_ = make_normalizer(j.at("normalizer"), where);
    if (j.contains("pre_tokenizer") && !j.at("pre_tokenizer").is_null()) {
      pre_tokenizer_ = make_pre_tokenizer(j.at("pre_tokenizer"), where);
    }
    if (j.contains("post_processor") && !j.at("post_processor").is_null()) {
      post_processor_ = make_post_processor(j.at("post_processor"), where);
    }
    if (j.contains("decoder") && !j.at("decoder").is_null()) decoder_ = make_decoder(j.at("decoder"), where);
    kind = uses_byte_level(j.value("pre_tokenizer", json())) || uses_byte_level(j.value("decoder", json()))
               ? "byte_level_bpe"
               : "sentencepiece_bpe";
    for (const json& t : j.value("added_tokens", json::array())) {
      add_token(AddedToken{t.at("content").get<std::string>(), t.at("id").get<TokenId>(), t.value("special", false),
                           t.value("single_word", false), t.value("lstrip", false), t.value("rstrip", false),
                           t.value("normalized", !t.value("special", false))});
    }
  } catch (const json::exception& e) {
    throw FormatError(where + ": unexpected structure (" + e.what() + ")");
  }
  for (const AddedToken& t : extra_added) {
    if (!added_by_content_.contains(t.content) && !added_by_id_.contains(t.id)) add_token(t);
  }

  // Two matchers as in AddedVocabulary::refresh_added_tokens: tokens with
  // normalized=false match the raw text; the others match normalized pieces,
  // so their own content is normalized first.
  std::vector<AddedToken> raw, normalized;
  for (AddedToken t : added_) {
    if (t.normalized) {
      if (normalizer_) normalizer_->normalize(t.content);
      normalized.push_back(std::move(t));
    } else {
      raw.push_back(std::move(t));
    }
  }
  raw_matcher_ = std::make_unique<AddedTokenMatcher>(std::move(raw));
  normalized_matcher_ = std::make_unique<AddedTokenMatcher>(std::move(normalized));
}

JsonTokenizer::~JsonTokenizer() = default;

void JsonTokenizer::add_token(AddedToken token) {
  if (const auto it = added_by_content_.find(token.content); it != added_by_content_.end()) {
    added_[it->second] = std::move(token);  // a later entry for the same content wins
    added_by_id_[added_[it->second].id] = it->second;
    return;
  }
  added_by_content_[token.content] = added_.size();
  added_by_id_[token.id] = added_.size();
  added_.push_back(std::move(token));
}

void JsonTokenizer::encode_text(std::string_view text, bool at_start, std::vector<TokenId>& out) const {
  std::vector<Piece> pieces{Piece{std::string(text), at_start}};
  if (pre_tokenizer_) pre_tokenizer_->pre_tokenize(pieces);
  for (const Piece& piece : pieces) model_->tokenize(piece.text, out);
}

std::vector<TokenId> JsonTokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::vector<TokenId> ids;
  ids.reserve(text.size() / 3 + 4);
  for (AddedSplit& split : raw_matcher_->split(text, /*at_start=*/true)) {
    if (split.id) {
      ids.push_back(*split.id);
      continue;
    }
    std::string normalized = std::move(split.text);
    if (normalizer_) normalizer_->normalize(normalized);
    if (normalized.empty()) continue;
    if (normalized_matcher_->empty()) {
      encode_text(normalized, split.at_start, ids);
      continue;
    }
    for (const AddedSplit& inner : normalized_matcher_->split(normalized, split.at_start)) {
      if (inner.id) {
        ids.push_back(*inner.id);
      } else if (!inner.text.empty()) {
        encode_text(inner.text, inner.at_start, ids);
      }
    }
  }
  if (add_special_tokens && post_processor_) post_processor_->process(ids);
  return ids;
}

std::string JsonTokenizer::decode(std::span<const TokenId> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (const TokenId id : ids) {
    // Unknown ids are dropped, as tokenizers' decode does.
    const std::string* token = nullptr;
    if (const auto it = added_by_id_.find(id); it != added_by_id_.end()) {
      token = &added_[it->second].content;
    } else {
      token = model_->id_to_token(id);
    }
    if (!token) continue;
    if (skip_special_tokens) {
      const auto it = added_by_content_.find(*token);
      if (it != added_by_content_.end() && added_[it->second].special) continue;
    }
    tokens.push_back(*token);
  }
  if (!decoder_) {
    std::string joined;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i) joined += ' ';
      joined += tokens[i];
    }
    return joined;
  }
  decoder_->decode_chain(tokens);
  std::string text;
  for (const std::string& t : tokens) text += t;
  return text;
}

int64_t JsonTokenizer::vocab_size() const {
  int64_t extra = 0;
  for (const AddedToken& t : added_) {
    if (!model_->id_to_token(t.id)) ++extra;
  }
  return model_->size() + extra;
}

std::optional<TokenId> JsonTokenizer::token_to_id(std::string_view token) const {
  if (const auto it = added_by_content_.find(std::string(token)); it != added_by_content_.end()) {
    return added_[it->second].id;
  }
  return model_->token_to_id(token);
}

std::string JsonTokenizer::id_to_token(TokenId id) const {
  if (const auto it = added_by_id_.find(id); it != added_by_id_.end()) return added_[it->second].content;
  const std::string* token = model_->id_to_token(id);
  return token ? *token : std::string();
}

bool JsonTokenizer::is_special(TokenId id) const {
  const auto it = added_by_id_.find(id);
  return it != added_by_id_.end() && added_[it->second].special;
}

}  // namespace character::model::text
