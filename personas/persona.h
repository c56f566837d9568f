// A persona: the constitution the teacher role-plays (first-person lines, as in the
// Open Character Training paper), the signal profile eval scores answers with, and
// optional cues, examples and extra probe prompts. Loaded from YAML with errors that
// name file:line:column and the field; docs/personas.md is the format reference.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "personas/signal_match.h"

namespace character::personas {

// A prompt and an in-character answer to it; the loader checks that its response
// scores more signal than anti-signal hits (a warning otherwise).
struct Example {
  std::string prompt;
  std::string response;
};

// An extra consistency-probe prompt for eval, in one of probe_categories().
struct Probe {
  std::string category;
  std::string prompt;
};

struct Persona {
  std::string name;          // slug: [a-z][a-z0-9_-]*, names the run directory
  std::string display_name;  // defaults to name
  std::string description;
  std::vector<std::string> constitution;
  SignalProfile signals;
  std::vector<std::string> cues;  // short style hints added to the teacher's system prompt
  std::vector<Example> examples;
  std::vector<Probe> probes;

  std::string source;       // the path, or "pirate.yaml (built in)"
  std::string source_text;  // the YAML as read, to hash or copy into a run directory
  // Problems that do not stop loading, each "file:line:col: field: message".
  std::vector<std::string> warnings;
};

// The eight categories of the seed's consistency probe (seed 000, section 10.3).
const std::vector<std::string>& probe_categories();

// Parses persona YAML. `source` is the file name used in messages. FormatError with
// "source:line:col: field.path: what was found, what was expected" on bad content.
Persona parse_persona(const std::string& yaml_text, const std::string& source);

// Reads and parses a persona file; IoError when it cannot be read.
Persona load_persona(const std::filesystem::path& path);

// The personas built into the binary (file names without .yaml), sorted.
std::vector<std::string> shipped_personas();

// `name_or_path` containing '/' or ending in .yaml/.yml is a file; anything else is a
// shipped name and loads the copy embedded in the binary at build time, so an
// installed or moved `character` needs no data directory. ConfigError listing the
// shipped names when it is neither.
Persona find_persona(const std::string& name_or_path);

}  // namespace character::personas
