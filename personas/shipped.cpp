// Resolving a persona argument: a path loads that file, a bare name loads the copy
// compiled into the binary (personas/embedded.h). The embedded copy is preferred to
// the source tree's personas/ folder so that `character` behaves the same wherever
// it is installed, and a run's persona is the one this binary was tested with.
#include "personas/persona.h"

#include <algorithm>

#include "base/error.h"
#include "personas/embedded.h"

namespace character::personas {

namespace {

bool looks_like_path(const std::string& s) {
  auto ends_with = [&](const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return s.find('/') != std::string::npos || ends_with(".yaml") || ends_with(".yml");
}

}  // namespace

std::vector<std::string> shipped_personas() {
  std::vector<std::string> names;
  for (const auto& file : embedded_persona_files()) {
    std::string name(file.file_name);
    names.push_back(name.substr(0, name.size() - std::string(".yaml").size()));
  }
  std::sort(names.begin(), names.end());
  return names;
}

Persona find_persona(const std::string& name_or_path) {
  if (looks_like_path(name_or_path)) return load_persona(name_or_path);
  for (const auto& file : embedded_persona_files())
    if (file.file_name == name_or_path + ".yaml")
      return parse_persona(std::string(file.text), std::string(file.file_name) + " (built in)");
  std::string list;
  for (const auto& name : shipped_personas()) list += (list.empty() ? "" : ", ") + name;
  throw ConfigError("persona \"" + name_or_path + "\" is not a shipped persona (" + list +
                    "); to load a file give its path, e.g. ./" + name_or_path + ".yaml");
}

}  // namespace character::personas
