// Conversation JSON → ChatMessage list, and the renderer choice for a model dir.
#include "pipeline/chat_input.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/json_read.h"

namespace character::pipeline {

std::vector<model::ChatMessage> parse_conversation(const std::string& json_text, const std::string& source) {
  nlohmann::json json = parse_json(json_text, source);
  if (json.is_object()) {
    if (!json.contains("messages")) {
      throw FormatError(source + ": object without a \"messages\" field, expected {\"messages\": [...]} or a list");
    }
    json = json["messages"];
  }
  if (!json.is_array() || json.empty()) {
    throw FormatError(source + ": expected a non-empty list of {\"role\", \"content\"} messages, found " +
                      std::string(json.type_name()));
  }
  std::vector<model::ChatMessage> messages;
  for (std::size_t i = 0; i < json.size(); ++i) {
    const auto& m = json[i];
    for (const char* field : {"role", "content"}) {
      if (!m.is_object() || !m.contains(field) || !m[field].is_string()) {
        throw FormatError(source + ": message " + std::to_string(i) + " has no string field \"" + field + "\"");
      }
    }
    messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  }
  return messages;
}

void add_chat_flags(CLI::App& sub, ChatFlags& flags) {
  std::string families;
  for (const auto& f : model::supported_chat_families()) families += (families.empty() ? "" : ", ") + f;
  sub.add_option("--chat-family", flags.family, "Chat family override (" + families + ")");
  sub.add_flag("--no-thinking", flags.no_thinking, "qwen3: render with enable_thinking=false");
}

RenderedPrompt render_prompt(const std::filesystem::path& model_dir, const model::Tokenizer& tokenizer,
                             const std::vector<model::ChatMessage>& messages, const ChatFlags& flags) {
  RenderedPrompt out;
  out.renderer = model::make_chat_renderer(flags.family.empty() ? model::detect_chat_family(model_dir) : flags.family);
  model::ChatOptions options;
  if (flags.no_thinking) options.enable_thinking = false;
  out.ids = tokenizer.encode(out.renderer->render(messages, options).text, /*add_special_tokens=*/false);
  return out;
}

}  // namespace character::pipeline
