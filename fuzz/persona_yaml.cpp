// Persona YAML (personas/persona_loader.cpp): aliases and deep nesting refused before any
// node is built, every other problem a FormatError naming the file, line and field.
#include "fuzz/fuzz_support.h"
#include "personas/persona.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace character;
  fuzz::refusing_with_errors(
      [&] { (void)personas::parse_persona(std::string(fuzz::as_text(data, size)), "fuzz.yaml"); });
  return 0;
}
