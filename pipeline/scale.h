// Scale presets for data generation: how many DPO pairs, reflections and
// self-interactions a run asks for. The counts are the seed repository's (smoke
// 16/40/4 … full 1500/10000/2000, the paper's 10,000 reflections and 2,000
// interactions); explicit counts override a preset field by field.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace character::pipeline {

struct Scale {
  std::string name;
  int dpo_pairs = 0;
  int reflections = 0;        // spread evenly over the 10 reflection prompts
  int interactions = 0;       // self-interaction transcripts, half "free", half "leading"
  int interaction_turns = 10;  // K messages per transcript (the paper's ten-turn dialogues)
};

// The preset names in order of size: smoke, micro, mini, quarter, half, full.
const std::vector<std::string>& scale_names();

// ConfigError listing the names when `name` is none of them.
Scale scale_preset(const std::string& name);

// Explicit counts, each overriding its preset field when set.
struct ScaleOverrides {
  std::optional<int> dpo_pairs, reflections, interactions, interaction_turns;
};
// ConfigError naming the field when an override is negative (or turns < 2).
Scale resolve_scale(const std::string& name, const ScaleOverrides& overrides);

nlohmann::json to_json(const Scale& scale);

}  // namespace character::pipeline
