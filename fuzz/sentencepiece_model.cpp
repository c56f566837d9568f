// tokenizer.model, a SentencePiece model file (model/text/sentencepiece_model.cpp and the
// SentencePiece library): a fuzzed protobuf, then a round of encode and decode.
#include "fuzz/fuzz_support.h"
#include "model/text/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace character;
  const auto dir = fuzz::scratch_dir() / "sentencepiece";
  std::filesystem::create_directories(dir);
  fuzz::write_bytes(dir / "tokenizer.model", fuzz::as_text(data, size));
  fuzz::refusing_with_errors([&] {
    const auto tokenizer = model::load_tokenizer(dir);
    (void)tokenizer->decode(tokenizer->encode("Tell me more please. 😊", /*add_special_tokens=*/true));
  });
  return 0;
}
