// ChatML: "<|im_start|>{role}\n{content}<|im_end|>\n" per message, generation prompt
// "<|im_start|>assistant\n"; the template transformers documents (tools/oracle/
// fixtures_chat.py: CHATML). Qwen3-Instruct-2507 renders the same for these roles.
#include <string>

#include "model/text/chat_parts.h"

namespace character::model::chat_detail {
namespace {

class ChatmlRenderer final : public ChatRenderer {
 public:
  std::string family() const override { return "chatml"; }
  std::vector<std::string> stop_tokens() const override { return {"<|im_end|>"}; }

  RenderedChat render(const std::vector<ChatMessage>& messages, const ChatOptions& options) const override {
    check_messages(family(), messages);
    ChatTextBuilder out;
    for (const auto& m : messages) {
      out << "<|im_start|>" << m.role << "\n";
      if (m.role == "assistant") out.begin_assistant();
      out << m.content << "<|im_end|>";
      if (m.role == "assistant") out.end_assistant();
      out << "\n";
    }
    if (options.add_generation_prompt) out << "<|im_start|>assistant\n";
    return std::move(out).finish();
  }
};

}  // namespace

std::unique_ptr<ChatRenderer> make_chatml_renderer() { return std::make_unique<ChatmlRenderer>(); }

}  // namespace character::model::chat_detail
