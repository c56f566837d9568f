#include "pipeline/scale.h"


#include "base/error.h"

namespace character::pipeline {

namespace {

// quarter and half are the full counts divided by 4 and 2. Smoke keeps transcripts
// short (4 turns) so that a CPU test run stays in seconds.
const std::vector<Scale>& presets() {
  static const std::vector<Scale> table = {
      {"smoke", 16, 40, 4, 4},        {"micro", 100, 500, 50, 10},    {"mini", 250, 1500, 150, 10},
      {"quarter", 375, 2500, 500, 10}, {"half", 750, 5000, 1000, 10}, {"full", 1500, 10000, 2000, 10},
  };
  return table;
}

}  // namespace

const std::vector<std::string>& scale_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& s : presets()) out.push_back(s.name);
    return out;
  }();
  return names;
}

Scale scale_preset(const std::string& name) {
  for (const auto& s : presets()) {
    if (s.name == name) return s;
  }
  std::string known;
  for (const auto& n : scale_names()) known += (known.empty() ? "" : ", ") + n;
  throw ConfigError("--scale " + name + ": unknown preset, expected one of " + known);
}

Scale resolve_scale(const std::string& name, const ScaleOverrides& overrides) {
  Scale scale = scale_preset(name);
  auto apply = [](const std::optional<int>& value, int& field, const char* flag, int minimum) {
    if (!value) return;
    if (*value < minimum) {
      throw ConfigError(std::string(flag) + " " + std::to_string(*value) + ", expected ≥ " + std::to_string(minimum));
    }
    field = *value;
  };
  apply(overrides.dpo_pairs, scale.dpo_pairs, "--dpo-pairs", 0);
  apply(overrides.reflections, scale.reflections, "--reflections", 0);
  apply(overrides.interactions, scale.interactions, "--interactions", 0);
  apply(overrides.interaction_turns, scale.interaction_turns, "--interaction-turns", 2);
  return scale;
}

nlohmann::json to_json(const Scale& scale) {
  return {{"name", scale.name},
          {"dpo_pairs", scale.dpo_pairs},
          {"reflections", scale.reflections},
          {"interactions", scale.interactions},
          {"interaction_turns", scale.interaction_turns}};
}

}  // namespace character::pipeline
