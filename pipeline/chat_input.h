// Conversation input shared by `character tokenize --chat` and `character
// generate --messages`: a JSON file or string holding [{"role","content"}...] or
// {"messages": [...]}, rendered with the model directory's chat family.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/text/chat.h"

namespace character::pipeline {

// Parses a conversation; FormatError naming `source`, the message index and the field.
std::vector<model::ChatMessage> parse_conversation(const std::string& json_text, const std::string& source);

struct ChatRenderChoice {
  std::string family;                // empty = detect_chat_family(model_dir)
  std::optional<bool> enable_thinking;  // qwen3 only
};

// The renderer for `model_dir` (the override wins over detection).
std::unique_ptr<model::ChatRenderer> chat_renderer_for(const std::filesystem::path& model_dir,
                                                       const ChatRenderChoice& choice);

}  // namespace character::pipeline
