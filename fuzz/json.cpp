// JSON from outside (base/json_read.h): whatever parses is within the depth bound, so that
// copying, comparing, dumping and describing it cannot recurse deeper than that.
#include "base/json_read.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace character;
  fuzz::refusing_with_errors([&] {
    const nlohmann::json value = parse_json(fuzz::as_text(data, size), "fuzz.json");
    const nlohmann::json copy = value;  // recursive copy
    if (copy != value) __builtin_trap();
    (void)value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    (void)describe_json(value);
  });
  return 0;
}
