#include "base/yaml_check.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <sstream>

namespace character {
namespace {

// Sees the events of the first document (YAML::Load reads only that one) without building
// nodes, so nothing is expanded or shared while checking.
class Check : public YAML::EventHandler {
 public:
  explicit Check(int max_depth) : max_depth_(max_depth) {}

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override {
    throw YamlRefused(mark, "an alias (*name): aliases are not accepted in this file, write the value out");
  }
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    enter(mark);
  }
  void OnSequenceEnd() override { --depth_; }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    enter(mark);
  }
  void OnMapEnd() override { --depth_; }

 private:
  void enter(const YAML::Mark& mark) {
    if (++depth_ > max_depth_) {
      throw YamlRefused(mark, "nested deeper than " + std::to_string(max_depth_) + " levels");
    }
  }

  int max_depth_;
  int depth_ = 0;
};

// The offset of the first byte that does not continue a well-formed UTF-8 sequence (RFC
// 3629: no overlongs, no surrogates, nothing past U+10FFFF), or npos. Written here because
// neither yaml-cpp nor nlohmann checks raw text: yaml-cpp passes invalid bytes through into
// strings, and nlohmann throws (a type error, not a character::Error) when it later dumps
// them into a message or a manifest.
std::size_t invalid_utf8_at(const std::string& s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    unsigned lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
    if (c < 0x80) n = 0;
    else if (c >= 0xC2 && c <= 0xDF) n = 1;
    else if (c == 0xE0) n = 2, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) n = 2;
    else if (c == 0xED) n = 2, hi = 0x9F;
    else if (c == 0xF0) n = 3, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) n = 3;
    else if (c == 0xF4) n = 3, hi = 0x8F;
    else return i;
    for (std::size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return i;
      const auto b = static_cast<unsigned char>(s[i + k]);
      if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return i;
    }
    i += n + 1;
  }
  return std::string::npos;
}

}  // namespace

void check_yaml(const std::string& text, int max_depth) {
  if (const std::size_t bad = invalid_utf8_at(text); bad != std::string::npos) {
    YAML::Mark mark;
    mark.pos = static_cast<int>(bad);
    for (std::size_t i = 0; i < bad; ++i) {
      if (text[i] == '\n') ++mark.line, mark.column = 0;
      else ++mark.column;
    }
    throw YamlRefused(mark, "not valid UTF-8 (byte offset " + std::to_string(bad) + "); YAML files must be UTF-8");
  }
  std::istringstream in(text);
  YAML::Parser parser(in);
  Check check(max_depth);
  parser.HandleNextDocument(check);
}

}  // namespace character
