// What `character persona check` and `persona list` print: a summary of a loaded
// persona (sizes of each part, how its own examples score, warnings) as JSON, and
// the same as a few aligned lines of text.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "personas/persona.h"

namespace character::personas {

// {"name", "display_name", "source", "description", "constitution_lines",
//  "signals": {"keywords", "phrases", "regexes", "classes"}, "anti_signals": {...},
//  "cues", "examples", "examples_in_character", "probes", "warnings": [...]}.
// An example is in character when its response has more signal than anti-signal hits.
nlohmann::json persona_summary(const Persona& persona);

// The summary as text, one fact per line, warnings last.
std::string format_summary(const nlohmann::json& summary);

}  // namespace character::personas
