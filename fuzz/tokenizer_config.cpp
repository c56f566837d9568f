// tokenizer_config.json (model/text/tokenizer.cpp, chat.cpp) beside a fixed, valid
// tokenizer.json: special tokens, added tokens and the chat template of a fuzzed file.
#include <nlohmann/json.hpp>

#include "fuzz/fuzz_support.h"
#include "model/text/chat.h"
#include "model/text/tokenizer.h"

namespace {

// The smallest byte-level BPE tokenizer.json the engine loads: one token per byte.
std::string byte_level_tokenizer() {
  nlohmann::json vocab = nlohmann::json::object();
  // GPT-2's byte-to-unicode map: printable bytes as themselves, the rest shifted past 255.
  int shifted = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    const int code = printable ? b : 256 + shifted++;
    std::string utf8;
    if (code < 0x80) {
      utf8 = std::string(1, static_cast<char>(code));
    } else {
      utf8 = {static_cast<char>(0xC0 | (code >> 6)), static_cast<char>(0x80 | (code & 0x3F))};
    }
    vocab[utf8] = b;
  }
  return nlohmann::json{{"version", "1.0"},
                        {"added_tokens", nlohmann::json::array({{{"id", 256}, {"content", "<|im_end|>"},
                                                                 {"special", true}, {"single_word", false},
                                                                 {"lstrip", false}, {"rstrip", false},
                                                                 {"normalized", false}}})},
                        {"normalizer", nullptr},
                        {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false},
                                           {"trim_offsets", true}, {"use_regex", true}}},
                        {"post_processor", nullptr},
                        {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true},
                                     {"use_regex", true}}},
                        {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", nlohmann::json::array()}}}}
      .dump();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace character;
  const auto dir = fuzz::scratch_dir() / "tokenizer_config";
  static const bool ready = [&] {
    std::filesystem::create_directories(dir);
    fuzz::write_bytes(dir / "tokenizer.json", byte_level_tokenizer());
    return true;
  }();
  (void)ready;
  fuzz::write_bytes(dir / "tokenizer_config.json", fuzz::as_text(data, size));
  fuzz::refusing_with_errors([&] {
    const auto tokenizer = model::load_tokenizer(dir);
    (void)tokenizer->decode(tokenizer->encode("hi <|im_end|>", /*add_special_tokens=*/true));
  });
  fuzz::refusing_with_errors([&] { (void)model::detect_chat_family(dir); });
  return 0;
}
