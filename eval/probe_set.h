// The consistency probe's prompts: the 41 prompts of seed 000 in its eight
// categories, the persona's extra `probes:`, an optional JSON file of extra prompts,
// and the paraphrase variants of each (please, lower, punct, long) that show
// whether a small change of wording changes the character (docs/eval.md).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace character::personas {
struct Persona;
}

namespace character::eval {

// One probe prompt as written (the "original" of its variants).
struct ProbePrompt {
  std::string id;        // "<category>/<index>", e.g. "continuation/0"
  std::string category;  // one of personas::probe_categories()
  int index = 0;         // 0-based within the category: built-in prompts first, then extras
  std::string prompt;
  std::string source;    // "seed 000", the persona's source, or the JSON file's path
};

// One prompt variant: what the probe generates responses for.
struct ProbeItem {
  std::string id;        // "<category>/<index>/<variant>", e.g. "continuation/0/please";
                         // an original is "<category>/<index>/original"
  std::string base_id;   // "<category>/<index>"
  std::string category;
  std::string variant;   // "original" or one of variant_names()
  std::string prompt;
};

inline constexpr const char* kOriginalVariant = "original";

// The paraphrase variants in their fixed order: "please", "lower", "punct", "long".
const std::vector<std::string>& variant_names();

// The variant of `prompt` (deterministic):
//   please — " please" before the final punctuation ("Tell me more." → "Tell me more
//            please."); a prompt that already has the word "please" loses it instead
//            ("Tell me more please." → "Tell me more."), so the pair still differs only
//            in politeness (a prompt that is only "Please!" comes back unchanged);
//   lower  — lower-cased (Unicode, ICU root locale);
//   punct  — the final run of . ! ? … removed, or "!" appended when there was none;
//   long   — the prompt wrapped in a longer phrasing (a fixed lead-in and close).
// ConfigError listing the names for an unknown variant.
std::string apply_variant(const std::string& variant, const std::string& prompt);

// The 41 built-in prompts (seed 000): identity 5 and continuation 6 verbatim from the
// seed, factual, creative, instruction, opinion, meta and short 5 each.
const std::vector<ProbePrompt>& seed_probe_prompts();

// Extra prompts from a JSON file: an array of {"category": ..., "prompt": ...}.
// FormatError naming the file, the item index and the field (not an array, an item
// that is not an object, a missing/non-string/empty field, an unknown key, a category
// outside the eight); IoError when it cannot be read. Ids are left empty.
std::vector<ProbePrompt> load_extra_prompts(const std::filesystem::path& path);

struct ProbeSetOptions {
  std::vector<std::string> categories{};     // empty: all eight
  std::vector<std::string> variants = {"please", "lower", "punct", "long"};  // empty: originals only
  const personas::Persona* persona = nullptr;  // its `probes:` are added when set
  std::filesystem::path extra_prompts{};       // JSON file (load_extra_prompts); empty: none
};

struct ProbeSet {
  std::vector<ProbePrompt> prompts;  // originals, grouped by category in probe_categories() order
  // Per prompt: its original, then its variants in options.variants order. A variant
  // identical to its original (lower of "hi!") is left out: it could not flip.
  std::vector<ProbeItem> items;
  std::vector<std::string> warnings;  // duplicates dropped, variants left out
};

// Built-in prompts, then the persona's probes, then the JSON file's, each category
// numbered from 0 in that order; an exact duplicate (same category and prompt) is
// dropped with a warning. ConfigError for an unknown category or variant name.
ProbeSet build_probe_set(const ProbeSetOptions& options);

}  // namespace character::eval
