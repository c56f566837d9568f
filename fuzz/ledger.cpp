// A data-generation ledger (pipeline/gen_ledger.cpp), as a resume reads it: a torn final
// line is cut, every other line must be a ledger entry.
#include "fuzz/fuzz_support.h"
#include "pipeline/gen_ledger.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace character;
  const auto path = fuzz::scratch_dir() / "dpo.ledger.jsonl";
  fuzz::write_bytes(path, fuzz::as_text(data, size));
  fuzz::refusing_with_errors([&] { pipeline::Ledger ledger(path); });
  return 0;
}
