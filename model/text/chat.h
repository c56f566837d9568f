// Chat renderers, one per family, token for token equal to the family's
// `apply_chat_template`: qwen3 (thinking on/off), llama3, chatml, role_colon.
// They also report which character spans the assistant wrote, for SFT masking.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace character::model {

struct ChatMessage {
  std::string role;  // system | user | assistant
  std::string content;
};

struct ChatOptions {
  bool add_generation_prompt = true;
  // qwen3 only: as `enable_thinking` in apply_chat_template; unset = template default (on).
  std::optional<bool> enable_thinking;
};

struct RenderedChat {
  std::string text;
  // [begin, end) byte ranges of `text` written by the assistant, including the
  // end-of-turn marker the model must learn to emit; loss is taken on these.
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

// Families: "qwen3", "llama3", "chatml", "role_colon". Unknown names: ConfigError.
std::unique_ptr<ChatRenderer> make_chat_renderer(const std::string& family);
// Picks the family from a model directory's tokenizer_config.json chat_template
// (and config.json model_type); role_colon when there is no template.
std::string detect_chat_family(const std::filesystem::path& model_dir);
const std::vector<std::string>& supported_chat_families();

}  // namespace character::model
