// The shipped persona files, compiled into the binary. The definition is generated
// at build time by personas/embed_personas.cmake from personas/*.yaml, so a moved
// or installed `character` still has them and always the versions it was tested with.
#pragma once

#include <string_view>
#include <vector>

namespace character::personas {

struct EmbeddedPersonaFile {
  std::string_view file_name;  // "pirate.yaml"
  std::string_view text;       // the file's bytes
};

// Sorted by file name.
const std::vector<EmbeddedPersonaFile>& embedded_persona_files();

}  // namespace character::personas
