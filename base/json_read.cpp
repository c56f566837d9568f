#include "base/json_read.h"

#include <algorithm>

#include "base/atomic_file.h"
#include "base/error.h"

namespace character {
namespace {

using nlohmann::json;

// The first pass: nlohmann's own SAX parser with a handler that only counts depth, so that
// a document too deep is refused before the value is built (the second pass).
class DepthCheck : public nlohmann::json_sax<json> {
 public:
  explicit DepthCheck(int max_depth) : max_depth_(max_depth) {}

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return enter(); }
  bool key(string_t&) override { return true; }
  bool end_object() override { return leave(); }
  bool start_array(std::size_t) override { return enter(); }
  bool end_array() override { return leave(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    error_ = e.what();
    return false;
  }

  // Empty when the text passed; else why it did not.
  const std::string& error() const { return error_; }
  bool too_deep() const { return too_deep_; }

 private:
  bool enter() {
    if (++depth_ <= max_depth_) return true;
    too_deep_ = true;
    return false;
  }
  bool leave() {
    --depth_;
    return true;
  }

  int max_depth_;
  int depth_ = 0;
  bool too_deep_ = false;
  std::string error_;
};

// Why `text` cannot be parsed within `max_depth` (empty when it can).
std::string check(std::string_view text, int max_depth) {
  // nlohmann's lexer takes a NUL byte for the end of input; JSON never holds one raw.
  if (const auto nul = text.find('\0'); nul != std::string_view::npos) {
    return "not valid JSON: NUL byte at offset " + std::to_string(nul);
  }
  DepthCheck handler(max_depth);
  if (json::sax_parse(text.begin(), text.end(), &handler)) return "";
  if (handler.too_deep()) return "JSON nested deeper than " + std::to_string(max_depth) + " levels";
  // nlohmann's message says where ("parse error at line 1, column 5: ...").
  return "not valid JSON: " + (handler.error().empty() ? std::string("parse error") : handler.error());
}

}  // namespace

void check_json(std::string_view text, const std::string& source, int max_depth) {
  if (const std::string why = check(text, max_depth); !why.empty()) throw FormatError(source + ": " + why);
}

json parse_json(std::string_view text, const std::string& source, int max_depth) {
  check_json(text, source, max_depth);
  return json::parse(text.begin(), text.end());
}

json read_json_file(const std::filesystem::path& path, int max_depth) {
  return parse_json(read_file(path), path.string(), max_depth);
}

std::optional<json> try_parse_json(std::string_view text, std::string* why, int max_depth) {
  std::string reason = check(text, max_depth);
  if (why) *why = reason;
  if (!reason.empty()) return std::nullopt;
  return json::parse(text.begin(), text.end());
}

std::string clip_utf8(std::string_view text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return std::string(text);
  std::size_t cut = max_bytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // not inside a character
  return std::string(text.substr(0, cut)) + "…";
}

std::string describe_json(const json& value, std::size_t max_chars) {
  const auto count = [](std::size_t n, const char* one, const char* many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
  };
  // A short flat list or object is shown as it is ([2, -1]); anything larger by its size.
  if (value.is_structured()) {
    const bool flat = value.size() <= 8 && std::none_of(value.begin(), value.end(), [](const json& v) {
                        return v.is_structured();
                      });
    if (!flat) {
      return value.is_object() ? "an object of " + count(value.size(), "key", "keys")
                               : "an array of " + count(value.size(), "element", "elements");
    }
  }
  return clip_utf8(value.dump(-1, ' ', false, json::error_handler_t::replace), max_chars);
}

}  // namespace character
