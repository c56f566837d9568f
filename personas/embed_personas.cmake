# Writes OUTPUT, a C++ file holding every DIR/*.yaml as a raw string literal
# (personas/embedded.h). Run at build time: cmake -DDIR=... -DOUTPUT=... -P this.
file(GLOB files "${DIR}/*.yaml")
list(SORT files)
set(delimiter "persona_yaml")
set(entries "")
foreach(file IN LISTS files)
  file(READ "${file}" content)
  string(FIND "${content}" ")${delimiter}\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${file} contains \")${delimiter}\"\", which ends the raw string it is embedded in")
  endif()
  get_filename_component(name "${file}" NAME)
  string(APPEND entries "      {\"${name}\", R\"${delimiter}(${content})${delimiter}\"},\n")
endforeach()
set(code "// Generated from personas/*.yaml by personas/embed_personas.cmake; do not edit.
#include \"personas/embedded.h\"

namespace character::personas {

const std::vector<EmbeddedPersonaFile>& embedded_persona_files() {
  static const std::vector<EmbeddedPersonaFile> files = {
${entries}  };
  return files;
}

}  // namespace character::personas
")
file(WRITE "${OUTPUT}" "${code}")
