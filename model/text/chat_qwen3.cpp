// Qwen3 chat format: ChatML turns plus <think> reasoning blocks, as the template in
// Qwen3's tokenizer_config.json renders them (tests/fixtures/tokenizers/qwen3). Only
// assistant turns after the last user query keep their reasoning; earlier ones are
// rendered without it. Tools and reasoning_content are not supported.
#include <string>
#include <string_view>

#include "model/text/chat_parts.h"

namespace character::model::chat_detail {
namespace {

constexpr std::string_view kThinkOpen = "<think>";
constexpr std::string_view kThinkClose = "</think>";

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool ends_with(std::string_view s, std::string_view p) { return s.size() >= p.size() && s.substr(s.size() - p.size()) == p; }

// A user message that only carries a tool result does not count as a query.
bool is_tool_response(std::string_view content) {
  return starts_with(content, "<tool_response>") && ends_with(content, "</tool_response>");
}

// Splits an assistant message at its </think> as the template does:
//   content   = message.split('</think>')[-1].lstrip('\n')
//   reasoning = message.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n')
struct AssistantParts {
  std::string_view content, reasoning;
};
AssistantParts split_reasoning(std::string_view message) {
  const auto first_close = message.find(kThinkClose);
  if (first_close == std::string_view::npos) return {message, {}};
  const auto last_close = message.rfind(kThinkClose);
  std::string_view content = lstrip_char(message.substr(last_close + kThinkClose.size()), '\n');
  std::string_view before = rstrip_char(message.substr(0, first_close), '\n');
  const auto last_open = before.rfind(kThinkOpen);
  if (last_open != std::string_view::npos) before = before.substr(last_open + kThinkOpen.size());
  return {content, lstrip_char(before, '\n')};
}

class Qwen3Renderer final : public ChatRenderer {
 public:
  std::string family() const override { return "qwen3"; }
  std::vector<std::string> stop_tokens() const override { return {"<|im_end|>", "<|endoftext|>"}; }

  RenderedChat render(const std::vector<ChatMessage>& messages, const ChatOptions& options) const override {
    check_messages(family(), messages);
    // The last real user query; with none, the last message's index (template default).
    std::size_t last_query = messages.size() - 1;
    for (std::size_t i = messages.size(); i-- > 0;) {
      if (messages[i].role == "user" && !is_tool_response(messages[i].content)) {
        last_query = i;
        break;
      }
    }
    ChatTextBuilder out;
    for (std::size_t i = 0; i < messages.size(); ++i) {
      const auto& m = messages[i];
      if (m.role != "assistant") {  // system (first or not) and user render alike
        out << "<|im_start|>" << m.role << "\n" << m.content << "<|im_end|>\n";
        continue;
      }
      const auto [content, reasoning] = split_reasoning(m.content);
      const bool is_last = i + 1 == messages.size();
      out << "<|im_start|>assistant\n";
      out.begin_assistant();
      if (i > last_query && (is_last || !reasoning.empty())) {
        out << "<think>\n" << strip_char(reasoning, '\n') << "\n</think>\n\n" << lstrip_char(content, '\n');
      } else {
        out << content;
      }
      out << "<|im_end|>";
      out.end_assistant();
      out << "\n";
    }
    if (options.add_generation_prompt) {
      out << "<|im_start|>assistant\n";
      // Only an explicit false closes an empty reasoning block; unset means thinking on.
      if (options.enable_thinking == false) out << "<think>\n\n</think>\n\n";
    }
    return std::move(out).finish();
  }
};

}  // namespace

std::unique_ptr<ChatRenderer> make_qwen3_renderer() { return std::make_unique<Qwen3Renderer>(); }

}  // namespace character::model::chat_detail
