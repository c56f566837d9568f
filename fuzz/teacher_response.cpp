// A teacher's (or judge's) answer body (remote/batch.cpp, protocol.cpp parse_answer): bounded
// JSON, then the choices and usage, or a reason why the answer is malformed.
#include "base/json_read.h"
#include "fuzz/fuzz_support.h"
#include "remote/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace character;
  const auto answer = try_parse_json(fuzz::as_text(data, size));
  if (!answer) return 0;
  for (auto endpoint : {remote::Endpoint::kChat, remote::Endpoint::kCompletions}) {
    for (int n : {1, 3}) {
      std::string error;
      fuzz::refusing_with_errors([&] { (void)remote::parse_answer(endpoint, *answer, n, &error); });
    }
  }
  return 0;
}
