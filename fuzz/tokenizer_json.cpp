// tokenizer.json (model/text/tokenizer_json*.cpp): the model, normalizer, pre-tokenizer,
// decoder and added tokens of a fuzzed file, then a round of encode and decode.
#include "fuzz/fuzz_support.h"
#include "model/text/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace character;
  const auto dir = fuzz::scratch_dir() / "tokenizer_json";
  std::filesystem::create_directories(dir);
  fuzz::write_bytes(dir / "tokenizer.json", fuzz::as_text(data, size));
  fuzz::refusing_with_errors([&] {
    const auto tokenizer = model::load_tokenizer(dir);
    for (const char* text : {"Tell me more please.", " ünïcødé 😊\n\t<|im_end|> 123"}) {
      const auto ids = tokenizer->encode(text, /*add_special_tokens=*/true);
      (void)tokenizer->decode(ids);
    }
  });
  return 0;
}
