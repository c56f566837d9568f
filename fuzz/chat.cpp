// Chat rendering of arbitrary messages (model/text/chat*.cpp) in every family, with and
// without thinking and the generation prompt: a ConfigError/FormatError for a role or a
// conversation a family does not take, never a crash.
#include "base/json_read.h"
#include "fuzz/fuzz_support.h"
#include "model/text/chat.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace character;
  fuzz::refusing_with_errors([&] {
    const nlohmann::json list = parse_json(fuzz::as_text(data, size), "messages.json");
    if (!list.is_array()) return;
    std::vector<model::ChatMessage> messages;
    for (const auto& m : list) {
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
          !m["content"].is_string()) {
        return;
      }
      messages.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
    }
    for (const auto& family : model::supported_chat_families()) {
      const auto renderer = model::make_chat_renderer(family);
      for (int variant = 0; variant < 4; ++variant) {
        model::ChatOptions options;
        options.add_generation_prompt = variant & 1;
        options.enable_thinking = (variant & 2) != 0;
        fuzz::refusing_with_errors([&] { (void)renderer->render(messages, options); });
      }
    }
  });
  return 0;
}
