// Pieces shared by the chat renderers (chat_*.cpp), not part of the public API:
// a text builder that records assistant spans, Python's str.strip for templates
// that `| trim`, role checks, and one factory per family.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model/text/chat.h"

namespace character::model::chat_detail {

// Appends rendered pieces and records [begin, end) byte spans of assistant text,
// as transformers' `{% generation %}` tracker does.
class ChatTextBuilder {
 public:
  ChatTextBuilder& operator<<(std::string_view piece) {
    result_.text.append(piece);
    return *this;
  }
  void begin_assistant() { span_begin_ = result_.text.size(); }
  void end_assistant() { result_.assistant_spans.emplace_back(span_begin_, result_.text.size()); }
  RenderedChat finish() && { return std::move(result_); }

 private:
  RenderedChat result_;
  std::size_t span_begin_ = 0;
};

// Python's str.strip() / lstrip() / rstrip() with no argument (Jinja's `trim` filter):
// removes leading/trailing code points for which str.isspace() is true, on UTF-8 text.
std::string_view python_strip(std::string_view text);
std::string_view python_lstrip(std::string_view text);
std::string_view python_rstrip(std::string_view text);
// Python's str.strip(chars) for one ASCII char, e.g. strip('\n').
std::string_view strip_char(std::string_view text, char c);
std::string_view lstrip_char(std::string_view text, char c);
std::string_view rstrip_char(std::string_view text, char c);

// FormatError unless every role is system, user or assistant and there is a message.
void check_messages(const std::string& family, const std::vector<ChatMessage>& messages);

std::unique_ptr<ChatRenderer> make_qwen3_renderer();
std::unique_ptr<ChatRenderer> make_llama3_renderer();
std::unique_ptr<ChatRenderer> make_llama3_1_renderer();
std::unique_ptr<ChatRenderer> make_chatml_renderer();
std::unique_ptr<ChatRenderer> make_role_colon_renderer();

}  // namespace character::model::chat_detail
