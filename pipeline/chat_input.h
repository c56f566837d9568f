// Conversation input shared by `character tokenize --chat` and `character
// generate --messages`: a JSON file or string holding [{"role","content"}...] or
// {"messages": [...]}, rendered with the model directory's chat family.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "model/text/chat.h"
#include "model/text/tokenizer.h"

namespace CLI {
class App;
}

namespace character::pipeline {

// Parses a conversation; FormatError naming `source`, the message index and the field.
std::vector<model::ChatMessage> parse_conversation(const std::string& json_text, const std::string& source);

// --chat-family and --no-thinking, as every command that renders a chat declares them.
struct ChatFlags {
  std::string family;  // empty = detect_chat_family(model_dir)
  bool no_thinking = false;
};
void add_chat_flags(CLI::App& sub, ChatFlags& flags);

struct RenderedPrompt {
  std::unique_ptr<model::ChatRenderer> renderer;  // the family used (its stop tokens/strings)
  std::vector<model::TokenId> ids;
};

// Renders `messages`, with the generation prompt, in the model directory's chat
// family (the flag wins over detection) and encodes the text as
// apply_chat_template(tokenize=True) does: the text carries its own special
// tokens, so none are added.
RenderedPrompt render_prompt(const std::filesystem::path& model_dir, const model::Tokenizer& tokenizer,
                             const std::vector<model::ChatMessage>& messages, const ChatFlags& flags);

}  // namespace character::pipeline
