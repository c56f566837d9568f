// A model's config.json (model/io/config.cpp): sizes bounded, every field checked.
#include "base/json_read.h"
#include "fuzz/fuzz_support.h"
#include "model/io/config.h"
#include "model/io/param_count.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace character;
  fuzz::refusing_with_errors([&] {
    const auto config = model::parse_config(parse_json(fuzz::as_text(data, size), "config.json"), "config.json");
    (void)model::count_parameters(config);  // sizes bounded: no overflow
    (void)model::config_to_json(config);
  });
  return 0;
}
