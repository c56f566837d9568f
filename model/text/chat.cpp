// The chat-family factory and detection from a model directory, plus the helpers
// the renderers share (Python-compatible strip, role checks). The renderers
// themselves live one per family in chat_<family>.cpp.
#include "model/text/chat.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/json_read.h"
#include "model/text/chat_parts.h"

namespace character::model {
namespace chat_detail {
namespace {

// Python's str.isspace() code points (whitespace bidi classes WS/B/S and category Zs).
bool is_python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// Decodes the UTF-8 code point of `bytes` (its full length); invalid sequences give
// U+FFFD, which is not a space, so malformed bytes are kept as Python keeps them.
char32_t decode_code_point(std::string_view bytes) {
  const auto b0 = static_cast<unsigned char>(bytes[0]);
  if (bytes.size() == 1) return b0 < 0x80 ? b0 : 0xFFFD;
  const int n = b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC0 ? 2 : 0;
  if (n != static_cast<int>(bytes.size())) return 0xFFFD;
  char32_t c = b0 & (0x7F >> n);
  for (int i = 1; i < n; ++i) c = (c << 6) | (static_cast<unsigned char>(bytes[i]) & 0x3F);
  return c;
}

std::size_t code_point_length(unsigned char b0) {
  return b0 < 0x80 ? 1 : b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC0 ? 2 : 1;
}

}  // namespace

std::string_view python_lstrip(std::string_view text) {
  while (!text.empty()) {
    const std::size_t n = std::min(code_point_length(static_cast<unsigned char>(text[0])), text.size());
    if (!is_python_space(decode_code_point(text.substr(0, n)))) break;
    text.remove_prefix(n);
  }
  return text;
}

std::string_view python_rstrip(std::string_view text) {
  while (!text.empty()) {
    // Walk back over continuation bytes (10xxxxxx) to the start of the last code point.
    std::size_t start = text.size() - 1;
    while (start > 0 && text.size() - start < 4 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    if (!is_python_space(decode_code_point(text.substr(start)))) break;
    text.remove_suffix(text.size() - start);
  }
  return text;
}

std::string_view python_strip(std::string_view text) { return python_rstrip(python_lstrip(text)); }

std::string_view lstrip_char(std::string_view text, char c) {
  while (!text.empty() && text.front() == c) text.remove_prefix(1);
  return text;
}

std::string_view rstrip_char(std::string_view text, char c) {
  while (!text.empty() && text.back() == c) text.remove_suffix(1);
  return text;
}

std::string_view strip_char(std::string_view text, char c) { return rstrip_char(lstrip_char(text, c), c); }

void check_messages(const std::string& family, const std::vector<ChatMessage>& messages) {
  if (messages.empty()) {
    throw FormatError("chat (" + family + "): the conversation has no messages, expected at least one");
  }
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const auto& role = messages[i].role;
    if (role != "system" && role != "user" && role != "assistant") {
      throw FormatError("chat (" + family + "): message " + std::to_string(i) + " has role '" + role +
                        "', expected system, user or assistant");
    }
  }
}

}  // namespace chat_detail

namespace {

using Factory = std::function<std::unique_ptr<ChatRenderer>()>;

const std::map<std::string, Factory>& factories() {
  static const std::map<std::string, Factory> table = {
      {"qwen3", chat_detail::make_qwen3_renderer},
      {"llama3", chat_detail::make_llama3_renderer},
      {"llama3_1", chat_detail::make_llama3_1_renderer},
      {"chatml", chat_detail::make_chatml_renderer},
      {"role_colon", chat_detail::make_role_colon_renderer},
  };
  return table;
}

std::string joined_families() {
  std::string out;
  for (const auto& name : supported_chat_families()) out += (out.empty() ? "" : ", ") + name;
  return out;
}

bool contains(const std::string& text, std::string_view needle) { return text.find(needle) != std::string::npos; }

// The template transformers would use: chat_template.jinja first (it takes priority
// over the config in transformers 5), then tokenizer_config.json's chat_template.
std::optional<std::pair<std::string, std::filesystem::path>> read_chat_template(const std::filesystem::path& dir) {
  const auto jinja = dir / "chat_template.jinja";
  if (std::filesystem::exists(jinja)) return std::pair{read_file(jinja), jinja};
  const auto config_path = dir / "tokenizer_config.json";
  if (!std::filesystem::exists(config_path)) return std::nullopt;
  nlohmann::json config = read_json_file(config_path);
  if (!config.is_object() || !config.contains("chat_template") || config["chat_template"].is_null()) {
    return std::nullopt;
  }
  const auto& field = config["chat_template"];
  if (field.is_string()) return std::pair{field.get<std::string>(), config_path};
  if (field.is_array()) {
    // Legacy multi-template form: [{"name": "default", "template": "..."}, {"name": "tool_use", ...}].
    for (const auto& entry : field) {
      if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template") &&
          entry["template"].is_string()) {
        return std::pair{entry["template"].get<std::string>(), config_path};
      }
    }
    throw FormatError(config_path.string() + ": chat_template is a list without a {\"name\": \"default\", " +
                      "\"template\": ...} entry, expected one");
  }
  throw FormatError(config_path.string() + ": chat_template is " + std::string(field.type_name()) +
                    ", expected a string or a list of {name, template}");
}

}  // namespace

const std::vector<std::string>& supported_chat_families() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& [name, factory] : factories()) out.push_back(name);
    return out;
  }();
  return names;
}

std::unique_ptr<ChatRenderer> make_chat_renderer(const std::string& family) {
  const auto it = factories().find(family);
  if (it == factories().end()) {
    throw ConfigError("chat family '" + family + "' is not supported, expected one of: " + joined_families());
  }
  return it->second();
}

std::string detect_chat_family(const std::filesystem::path& model_dir) {
  const auto found = read_chat_template(model_dir);
  if (!found) return "role_colon";  // base models ship no template
  const auto& [text, source] = *found;
  if (contains(text, "<|start_header_id|>")) {
    // Llama 3.1/3.2/3.3 put a dated system header in every prompt; Llama 3 does not.
    return contains(text, "Cutting Knowledge Date") ? "llama3_1" : "llama3";
  }
  if (contains(text, "<|im_start|>")) {
    if (contains(text, "enable_thinking") || contains(text, "<think>")) return "qwen3";
    // Qwen2/2.5 inject a default system prompt that plain ChatML lacks.
    if (!contains(text, "You are Qwen, created by Alibaba Cloud") && !contains(text, "You are a helpful assistant")) {
      return "chatml";
    }
  }
  throw ConfigError(source.string() + ": chat template of no supported family (found " +
                    std::to_string(text.size()) + " characters starting '" + text.substr(0, 60) +
                    "'), expected one of: " + joined_families());
}

}  // namespace character::model
