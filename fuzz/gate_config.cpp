// A gate config (eval/gate_thresholds.cpp): YAML or JSON, aliases and deep nesting refused,
// every threshold checked.
#include "eval/gates.h"
#include "fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace character;
  const auto path = fuzz::scratch_dir() / "gates.yaml";
  fuzz::write_bytes(path, fuzz::as_text(data, size));
  fuzz::refusing_with_errors([&] { (void)eval::to_json(eval::load_gate_thresholds(path)); });
  return 0;
}
