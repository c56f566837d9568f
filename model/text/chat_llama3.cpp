// Llama 3 chat formats. llama3: the Llama 3 template (tests/fixtures/tokenizers/llama3_1's
// tokenizer_config.json, TRL's llama3.jinja): "<|begin_of_text|>" then
// "<|start_header_id|>{role}<|end_header_id|>\n\n{content|trim}<|eot_id|>" per message.
// llama3_1: the Llama 3.1 Instruct template (TRL's llama3_1.jinja) without tools, which
// always opens with a system turn carrying "Cutting Knowledge Date"/"Today Date" lines.
#include <string>
#include <string_view>

#include "model/text/chat_parts.h"

namespace character::model::chat_detail {
namespace {

constexpr std::string_view kBos = "<|begin_of_text|>";

void render_turn(ChatTextBuilder& out, const ChatMessage& m) {
  out << "<|start_header_id|>" << m.role << "<|end_header_id|>\n\n";
  if (m.role == "assistant") out.begin_assistant();
  out << python_strip(m.content) << "<|eot_id|>";  // Jinja `| trim` is Python's str.strip()
  if (m.role == "assistant") out.end_assistant();
}

void render_generation_prompt(ChatTextBuilder& out, const ChatOptions& options) {
  if (options.add_generation_prompt) out << "<|start_header_id|>assistant<|end_header_id|>\n\n";
}

class Llama3Renderer : public ChatRenderer {
 public:
  std::string family() const override { return "llama3"; }
  std::vector<std::string> stop_tokens() const override { return {"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"}; }

  RenderedChat render(const std::vector<ChatMessage>& messages, const ChatOptions& options) const override {
    check_messages(family(), messages);
    ChatTextBuilder out;
    out << kBos;
    for (const auto& m : messages) render_turn(out, m);
    render_generation_prompt(out, options);
    return std::move(out).finish();
  }
};

class Llama31Renderer final : public Llama3Renderer {
 public:
  std::string family() const override { return "llama3_1"; }

  RenderedChat render(const std::vector<ChatMessage>& messages, const ChatOptions& options) const override {
    check_messages(family(), messages);
    // A leading system message is folded into the dated system turn; later ones stay turns.
    const bool has_system = messages.front().role == "system";
    ChatTextBuilder out;
    out << kBos << "<|start_header_id|>system<|end_header_id|>\n\n"
        << "Cutting Knowledge Date: December 2023\n"
        << "Today Date: " << options.date_string.value_or("26 Jul 2024") << "\n\n"
        << (has_system ? python_strip(messages.front().content) : std::string_view{}) << "<|eot_id|>";
    for (std::size_t i = has_system ? 1 : 0; i < messages.size(); ++i) render_turn(out, messages[i]);
    render_generation_prompt(out, options);
    return std::move(out).finish();
  }
};

}  // namespace

std::unique_ptr<ChatRenderer> make_llama3_renderer() { return std::make_unique<Llama3Renderer>(); }
std::unique_ptr<ChatRenderer> make_llama3_1_renderer() { return std::make_unique<Llama31Renderer>(); }

}  // namespace character::model::chat_detail
