// Plain-text chat for models without a template (base models), as tinker-cookbook's
// RoleColonRenderer: "System: …\n\nUser: …\n\nAssistant: …\n\n", generation prompt
// "Assistant:" (the model writes the leading space); a turn ends at "\n\nUser:".
// Its Jinja form is ROLE_COLON in tools/oracle/fixtures_chat.py.
#include <string>

#include "model/text/chat_parts.h"

namespace character::model::chat_detail {
namespace {

class RoleColonRenderer final : public ChatRenderer {
 public:
  std::string family() const override { return "role_colon"; }
  // No special token ends a turn; the generator adds the tokenizer's eos itself.
  std::vector<std::string> stop_tokens() const override { return {}; }
  // Longest first: a generator cuts at the earliest match, so "\n\nUser:" leaves no
  // trailing newline; "\nUser:" catches a model that writes a single newline.
  std::vector<std::string> stop_strings() const override { return {"\n\nUser:", "\nUser:"}; }

  RenderedChat render(const std::vector<ChatMessage>& messages, const ChatOptions& options) const override {
    check_messages(family(), messages);
    ChatTextBuilder out;
    for (const auto& m : messages) {
      // Jinja's `capitalize` (first letter upper, rest lower) on system/user/assistant.
      const std::string role = m.role == "system" ? "System" : m.role == "user" ? "User" : "Assistant";
      out << role << ":";
      if (m.role == "assistant") out.begin_assistant();
      out << " " << m.content << "\n\n";
      if (m.role == "assistant") out.end_assistant();
    }
    if (options.add_generation_prompt) out << "Assistant:";
    return std::move(out).finish();
  }
};

}  // namespace

std::unique_ptr<ChatRenderer> make_role_colon_renderer() { return std::make_unique<RoleColonRenderer>(); }

}  // namespace character::model::chat_detail
