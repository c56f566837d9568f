// The lab's sanity check: greedy answers of the trained teacher and student to
// prompts the corpus does not hold, scored with a persona's signal profile. The
// teacher under the persona's constitution system prompt should answer in
// character; the teacher without a system prompt and the student should not.
// Internal to lab/; build_lab() records the result in lab.json under "sanity".
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

#include "lab/lab.h"

namespace character::lab {

struct SanityOptions {
  std::string persona = "pirate";
  int prompts = 12;             // held-out prompts, spread over the categories
  int64_t max_new_tokens = 48;
  uint64_t seed = 0;            // the lab seed: the held-out prompts come from another seed
  double warn_below = 0.5;      // teacher in-persona rate under which the build warns
};

// {"persona", "prompts", "teacher_in_persona": {"in_character", "n", "rate"},
//  "teacher_no_system": {...}, "student": {...}, "samples": [...], "warning"?}
nlohmann::json run_sanity_check(const LabPaths& paths, const SanityOptions& options);

}  // namespace character::lab
