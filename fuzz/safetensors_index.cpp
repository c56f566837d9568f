// A sharded checkpoint's model.safetensors.index.json (model/io/safetensors_set.cpp): shard
// names may not leave the directory, every listed shard must exist.
#include "fuzz/fuzz_support.h"
#include "model/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace character;
  const auto dir = fuzz::scratch_dir() / "sharded";
  std::filesystem::create_directories(dir);
  fuzz::write_bytes(dir / "model.safetensors.index.json", fuzz::as_text(data, size));
  fuzz::refusing_with_errors([&] { (void)model::SafetensorsSet::open_dir(dir); });
  return 0;
}
