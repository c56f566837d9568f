// Decoders of tokenizer.json (tokenizers/src/decoders): ByteLevel (GPT-2 bytes back
// to UTF-8, lossy like Rust), and the SentencePiece chain Replace / ByteFallback /
// Fuse / Strip, plus Metaspace and Sequence. Each is a `decode_chain` over strings.
#include "model/text/tokenizer_parts.h"

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace character::model::text {
namespace {

const char* kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

class ByteLevelDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& token : tokens) {
      // A token whose characters are not all byte symbols (an added token with a
      // space, say) contributes its own UTF-8 bytes, as in decoders/byte_level.rs.
      const size_t mark = bytes.size();
      bool all = true;
      for (size_t pos = 0; pos < token.size() && all;) {
        const int byte = unicode_to_byte(next_code_point(token, pos));
        if (byte < 0) {
          all = false;
        } else {
          bytes += static_cast<char>(byte);
        }
      }
      if (!all) {
        bytes.resize(mark);
        bytes += token;
      }
    }
    tokens.assign(1, utf8_lossy(bytes));
  }
};

class ReplaceDecoder : public Decoder {
 public:
  ReplaceDecoder(const nlohmann::json& j, const std::string& where)
      : pattern_(j.at("pattern"), where), content_(j.at("content").get<std::string>()) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) token = pattern_.replace_all(token, content_);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

// "<0x41>" → 0x41; -1 for anything else. Like u8::from_str_radix, accepts either case.
int byte_token(const std::string& token) {
  if (token.size() != 6 || token.compare(0, 3, "<0x") != 0 || token[5] != '>') return -1;
  int value = 0;
  for (int k = 3; k < 5; ++k) {
    const char c = token[k];
    int digit = -1;
    if (c >= '0' && c <= '9') digit = c - '0';
    if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
    if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

bool is_valid_utf8(const std::string& bytes) { return utf8_lossy(bytes) == bytes; }

class ByteFallbackDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string pending;  // consecutive <0x..> bytes
    const auto flush = [&] {
      if (pending.empty()) return;
      if (is_valid_utf8(pending)) {
        out.push_back(pending);
      } else {
        // Not lossy decoding: one U+FFFD per byte (decoders/byte_fallback.rs).
        for (size_t k = 0; k < pending.size(); ++k) out.emplace_back(kReplacementChar);
      }
      pending.clear();
    };
    for (std::string& token : tokens) {
      const int byte = byte_token(token);
      if (byte >= 0) {
        pending += static_cast<char>(byte);
      } else {
        flush();
        out.push_back(std::move(token));
      }
    }
    flush();
    tokens = std::move(out);
  }
};

class FuseDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const std::string& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

class StripDecoder : public Decoder {
 public:
  StripDecoder(const nlohmann::json& j, const std::string& where)
      : start_(j.at("start").get<size_t>()), stop_(j.at("stop").get<size_t>()) {
    const auto content = j.at("content").get<std::string>();
    size_t pos = 0;
    content_ = content.empty() ? 0 : next_code_point(content, pos);
    if (content.empty() || pos != content.size()) {
      throw FormatError(where + ": Strip decoder content \"" + content + "\" must be one character");
    }
  }
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) {
      std::vector<char32_t> chars;
      for (size_t pos = 0; pos < token.size();) chars.push_back(next_code_point(token, pos));
      size_t begin = 0;
      while (begin < start_ && begin < chars.size() && chars[begin] == content_) ++begin;
      size_t end = chars.size();
      for (size_t k = 0; k < stop_ && end > begin && chars[end - 1] == content_; ++k) --end;
      std::string stripped;
      for (size_t k = begin; k < end; ++k) append_utf8(stripped, chars[k]);
      token = std::move(stripped);
    }
  }

 private:
  char32_t content_;
  size_t start_, stop_;
};

class MetaspaceDecoder : public Decoder {
 public:
  explicit MetaspaceDecoder(const nlohmann::json& j)
      : replacement_(j.value("replacement", std::string("\xE2\x96\x81"))),
        prepend_(j.value("prepend_scheme", std::string("always")) != "never") {}
  // As decoders/metaspace.rs: every replacement becomes a space, except in the first
  // token, where (with a prepend scheme) replacements are dropped.
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string& token = tokens[i];
      for (size_t pos = 0; pos < token.size();) {
        if (token.compare(pos, replacement_.size(), replacement_) == 0) {
          if (!(i == 0 && prepend_)) out += ' ';
          pos += replacement_.size();
        } else {
          out += token[pos++];
        }
      }
      tokens[i] = std::move(out);
    }
  }

 private:
  std::string replacement_;
  bool prepend_;
};

class SequenceDecoder : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts) : parts_(std::move(parts)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& part : parts_) part->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

}  // namespace

std::unique_ptr<Decoder> make_decoder(const nlohmann::json& j, const std::string& where) {
  const auto type = j.at("type").get<std::string>();
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Decoder>> parts;
    for (const auto& part : j.at("decoders")) parts.push_back(make_decoder(part, where));
    return std::make_unique<SequenceDecoder>(std::move(parts));
  }
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Replace") return std::make_unique<ReplaceDecoder>(j, where);
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") return std::make_unique<StripDecoder>(j, where);
  if (type == "Metaspace") return std::make_unique<MetaspaceDecoder>(j);
  throw_unsupported(where, "decoder", type, "Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace");
}

}  // namespace character::model::text
