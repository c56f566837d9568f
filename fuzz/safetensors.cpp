// A .safetensors file (model/io/safetensors.cpp): header length, JSON, dtypes, shapes and
// offsets checked against the file before any tensor is viewed.
#include "fuzz/fuzz_support.h"
#include "model/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace character;
  const auto path = fuzz::scratch_dir() / "model.safetensors";
  fuzz::write_bytes(path, fuzz::as_text(data, size));
  fuzz::refusing_with_errors([&] {
    const auto file = model::SafetensorsFile::open(path);
    std::size_t bytes = 0;
    for (const auto& name : file->names()) {
      const auto view = file->view(name);
      for (std::size_t i = 0; i < view.nbytes; i += 4096) bytes += static_cast<std::size_t>(view.data[i]);
    }
    (void)bytes;
  });
  return 0;
}
