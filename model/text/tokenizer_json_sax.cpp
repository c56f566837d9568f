// Parses tokenizer.json with nlohmann's SAX interface so that the two big arrays,
// model.vocab (~150k entries) and model.merges (~150-280k), go straight into flat
// vectors instead of a DOM of std::map nodes: this halves loading time for Qwen3
// and Llama 3 files. Everything else becomes an ordinary nlohmann::json document.
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json_read.h"
#include "model/text/tokenizer_json.h"

namespace character::model::text {
namespace {

using nlohmann::json;

class Handler {
 public:
  Handler(ParsedTokenizerJson& out, const std::string& where) : out_(out), where_(where), dom_(out.doc, true) {}

  bool null() { return value([&] { return dom_.null(); }, "null"); }
  bool boolean(bool v) { return value([&] { return dom_.boolean(v); }, "a boolean"); }
  bool number_float(double v, const std::string& s) { return value([&] { return dom_.number_float(v, s); }, "a float"); }
  bool binary(json::binary_t& v) { return value([&] { return dom_.binary(v); }, "binary"); }
  bool number_integer(int64_t v) {
    if (mode_ == Mode::kVocab) return add_id(v);
    return value([&] { return dom_.number_integer(v); }, "an integer");
  }
  bool number_unsigned(uint64_t v) {
    if (mode_ == Mode::kVocab) return add_id(static_cast<int64_t>(std::min<uint64_t>(v, INT64_MAX)));
    return value([&] { return dom_.number_unsigned(v); }, "an integer");
  }
  bool string(std::string& s) {
    if (mode_ == Mode::kMerges) return add_legacy_merge(s);
    if (mode_ == Mode::kMergePair) {
      if (pair_size_ == 0) out_.merges.emplace_back(std::move(s), std::string());
      if (pair_size_ == 1) out_.merges.back().second = std::move(s);
      ++pair_size_;
      return true;
    }
    return value([&] { return dom_.string(s); }, "a string");
  }
  bool key(std::string& k) {
    if (mode_ == Mode::kVocab) {
      pending_key_ = std::move(k);
      return true;
    }
    last_key_ = k;
    return dom_.key(k);
  }
  bool start_object(std::size_t n) {
    if (mode_ == Mode::kNone && path_.size() == 2 && path_[1] == "model" && last_key_ == "vocab") {
      mode_ = Mode::kVocab;
      out_.has_vocab = true;
      return true;
    }
    if (mode_ != Mode::kNone) fail("an object");
    check_depth();
    path_.push_back(last_key_);
    last_key_.clear();
    return dom_.start_object(n);
  }
  bool end_object() {
    if (mode_ == Mode::kVocab) {
      mode_ = Mode::kNone;
      return dom_.null();  // placeholder for model.vocab in the document
    }
    path_.pop_back();
    return dom_.end_object();
  }
  bool start_array(std::size_t n) {
    if (mode_ == Mode::kNone && path_.size() == 2 && path_[1] == "model" && last_key_ == "merges") {
      mode_ = Mode::kMerges;
      out_.has_merges = true;
      return true;
    }
    if (mode_ == Mode::kMerges) {
      mode_ = Mode::kMergePair;
      pair_size_ = 0;
      return true;
    }
    if (mode_ != Mode::kNone) fail("a nested array");
    check_depth();
    path_.push_back(last_key_);
    last_key_.clear();
    return dom_.start_array(n);
  }
  bool end_array() {
    if (mode_ == Mode::kMergePair) {
      if (pair_size_ != 2) fail("an array of " + std::to_string(pair_size_) + " strings");
      mode_ = Mode::kMerges;
      return true;
    }
    if (mode_ == Mode::kMerges) {
      mode_ = Mode::kNone;
      return dom_.null();  // placeholder for model.merges in the document
    }
    path_.pop_back();
    return dom_.end_array();
  }
  bool parse_error(std::size_t position, const std::string& token, const nlohmann::detail::exception& e) {
    throw FormatError(where_ + ": not valid JSON (" + e.what() + ")");
  }

 private:
  enum class Mode { kNone, kVocab, kMerges, kMergePair };

  // The same bound as every other JSON we read (base/json_read.h): the document built here
  // is copied and walked recursively later.
  void check_depth() const {
    if (static_cast<int>(path_.size()) >= kMaxJsonDepth) {
      throw FormatError(where_ + ": JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    }
  }

  template <typename F>
  bool value(F&& to_dom, const std::string& what) {
    if (mode_ != Mode::kNone) fail(what);
    return to_dom();
  }
  bool add_id(int64_t id) {
    if (id < 0 || id > INT32_MAX) {
      throw FormatError(where_ + ": model.vocab[\"" + pending_key_ + "\"] = " + std::to_string(id) +
                        ", expected an id in [0, 2^31)");
    }
    out_.vocab.emplace_back(std::move(pending_key_), static_cast<TokenId>(id));
    return true;
  }
  bool add_legacy_merge(const std::string& s) {
    const size_t space = s.find(' ');
    if (space == std::string::npos) {
      throw FormatError(where_ + ": model.merges[" + std::to_string(out_.merges.size()) + "] is \"" + s +
                        "\", expected \"left right\" or [\"left\", \"right\"]");
    }
    out_.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
    return true;
  }
  [[noreturn]] void fail(const std::string& found) {
    const bool vocab = mode_ == Mode::kVocab;
    throw FormatError(where_ + ": " + (vocab ? "model.vocab" : "model.merges") + " contains " + found +
                      (vocab ? ", expected token → integer id entries" : ", expected \"left right\" or [\"left\", \"right\"]"));
  }

  ParsedTokenizerJson& out_;
  const std::string& where_;
  nlohmann::detail::json_sax_dom_parser<json> dom_;
  Mode mode_ = Mode::kNone;
  std::vector<std::string> path_;  // keys of the open containers ("" for the root / array items)
  std::string last_key_;
  std::string pending_key_;
  int pair_size_ = 0;
};

}  // namespace

ParsedTokenizerJson parse_tokenizer_json(const std::string& text, const std::string& where) {
  // nlohmann's lexer takes a NUL byte for the end of input; JSON never holds one raw.
  if (const auto nul = text.find('\0'); nul != std::string::npos) {
    throw FormatError(where + ": not valid JSON: NUL byte at offset " + std::to_string(nul));
  }
  ParsedTokenizerJson parsed;
  Handler handler(parsed, where);
  json::sax_parse(text, &handler);
  return parsed;
}

}  // namespace character::model::text
