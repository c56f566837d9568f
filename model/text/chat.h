// Chat renderers, one per family, token for token equal to the family's
// `apply_chat_template`: qwen3 (thinking on/off), llama3, llama3_1, chatml, role_colon.
// They also report which byte spans the assistant wrote, for SFT masking.
// tools/oracle/fixtures_chat.py holds the reference templates the tests compare against.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace character::model {

// Roles other than system | user | assistant, and an empty conversation, are
// rejected with FormatError.
struct ChatMessage {
  std::string role;  // system | user | assistant
  std::string content;
};

struct ChatOptions {
  bool add_generation_prompt = true;
  // qwen3 only: as `enable_thinking` in apply_chat_template; unset = template default (on).
  std::optional<bool> enable_thinking;
  // llama3_1 only: as `date_string`; unset = the template's default "26 Jul 2024".
  // (Llama 3.2 templates default to today's date through strftime_now: pass it here.)
  std::optional<std::string> date_string;
};

struct RenderedChat {
  std::string text;
  // [begin, end) byte ranges of `text` written by the assistant, including the
  // end-of-turn marker the model must learn to emit; loss is taken on these.
  // One span per assistant message: everything after the role header through the
  // end-of-turn marker ("<|im_end|>", "<|eot_id|>"; role_colon: " content\n\n"),
  // without the separator that follows it (the "\n" after <|im_end|>), which the
  // model never writes. qwen3: a rendered <think> block is inside the span. The
  // same positions as `{% generation %}` blocks placed there give in transformers.
  std::vector<std::pair<std::size_t, std::size_t>> assistant_spans;
};

class ChatRenderer {
 public:
  virtual ~ChatRenderer() = default;
  virtual std::string family() const = 0;
  virtual RenderedChat render(const std::vector<ChatMessage>& messages, const ChatOptions& options) const = 0;
  // Token strings that end an assistant turn (e.g. "<|im_end|>", "<|eot_id|>").
  virtual std::vector<std::string> stop_tokens() const = 0;
  // Text that ends a turn when the family has no special stop token (role_colon: "\nUser:").
  virtual std::vector<std::string> stop_strings() const { return {}; }
};

// Families: "qwen3", "llama3", "llama3_1", "chatml", "role_colon". Unknown names: ConfigError.
std::unique_ptr<ChatRenderer> make_chat_renderer(const std::string& family);
// Picks the family from a model directory's chat template: chat_template.jinja if
// present (transformers 5 saves it there), else tokenizer_config.json's chat_template
// (a string, or a list of {name, template} where "default" is used); role_colon when
// there is no template; ConfigError for a template of no supported family.
std::string detect_chat_family(const std::filesystem::path& model_dir);
const std::vector<std::string>& supported_chat_families();

}  // namespace character::model
