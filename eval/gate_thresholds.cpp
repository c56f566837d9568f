// Gate thresholds (eval/gates.h): read from a YAML run config's `gates:` mapping,
// a YAML/JSON file holding that mapping, or the pipeline's resolved JSON, over the
// documented defaults (docs/gates.md). Every bad key or value is a ConfigError
// naming the file, the key, what was found and what was expected.
#include "eval/gates.h"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/json_read.h"
#include "base/yaml_check.h"

namespace character::eval {
namespace {

using nlohmann::json;

// The keys of a `gates:` mapping: GateThresholds' field names.
constexpr const char* kThresholdKeys[] = {"min_in_character_rate",  "min_category_rate",
                                          "max_paraphrase_flip_rate", "min_probe_coverage",
                                          "coverage_min_loss_tokens", "require_no_nan",
                                          "untrained_router"};

std::string known_keys() {
  std::string out;
  for (const char* key : kThresholdKeys) out += (out.empty() ? "" : ", ") + std::string(key);
  return out;
}

std::string found(const json& value) { return describe_json(value) + " (" + value.type_name() + ")"; }

double read_rate(const json& value, const std::string& where) {
  if (!value.is_number()) throw ConfigError(where + ": found " + found(value) + ", expected a number in [0, 1]");
  const double rate = value.get<double>();
  if (!std::isfinite(rate) || rate < 0.0 || rate > 1.0)
    throw ConfigError(where + ": found " + describe_json(value) + ", expected a number in [0, 1]");
  return rate;
}

// YAML scalars carry no type; a plain scalar that reads as a number or a boolean
// becomes one (YAML 1.2 core schema), a quoted one stays a string.
json yaml_to_json(const YAML::Node& node, const std::string& source) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : node) {
        // A complex or empty key ("? [a]: 1", "? : x") has no name a threshold could have.
        if (!kv.first.IsScalar()) {
          const YAML::Mark m = kv.first.Mark();
          throw ConfigError(source + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1) +
                            ": a key that is not a plain name, expected one of " + known_keys());
        }
        out[kv.first.Scalar()] = yaml_to_json(kv.second, source);
      }
      return out;
    }
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const auto& item : node) out.push_back(yaml_to_json(item, source));
      return out;
    }
    case YAML::NodeType::Scalar: {
      const std::string text = node.Scalar();
      if (node.Tag() == "!") return text;  // quoted
      if (text == "true" || text == "True") return true;
      if (text == "false" || text == "False") return false;
      if (text == "~" || text == "null") return nullptr;
      int64_t integer = 0;
      const char* end = text.data() + text.size();
      if (auto [p, ec] = std::from_chars(text.data(), end, integer); ec == std::errc() && p == end) return integer;
      double real = 0.0;
      if (auto [p, ec] = std::from_chars(text.data(), end, real); ec == std::errc() && p == end) return real;
      return text;
    }
    default:
      return nullptr;
  }
}

}  // namespace

GateThresholds gate_thresholds_from_json(const nlohmann::json& gates, const std::string& source) {
  GateThresholds t;
  if (gates.is_null()) return t;
  if (!gates.is_object()) throw ConfigError(source + ": gates: found " + found(gates) + ", expected a mapping of " + known_keys());
  for (const auto& [key, value] : gates.items()) {
    const std::string where = source + ": gates." + key;
    if (key == "min_in_character_rate") t.min_in_character_rate = read_rate(value, where);
    else if (key == "min_category_rate") t.min_category_rate = read_rate(value, where);
    else if (key == "max_paraphrase_flip_rate") t.max_paraphrase_flip_rate = read_rate(value, where);
    else if (key == "min_probe_coverage") t.min_probe_coverage = read_rate(value, where);
    else if (key == "coverage_min_loss_tokens") {
      if (!value.is_number_integer() || value.get<int64_t>() < 0)
        throw ConfigError(where + ": found " + found(value) + ", expected an integer >= 0");
      t.coverage_min_loss_tokens = value.get<int64_t>();
    } else if (key == "require_no_nan") {
      if (!value.is_boolean()) throw ConfigError(where + ": found " + found(value) + ", expected true or false");
      t.require_no_nan = value.get<bool>();
    } else if (key == "untrained_router") {
      if (!value.is_string() || (value != "warn" && value != "fail"))
        throw ConfigError(where + ": found " + found(value) + ", expected \"warn\" or \"fail\"");
      t.untrained_router = value.get<std::string>();
    } else {
      throw ConfigError(source + ": gates: unknown key '" + key + "', expected one of " + known_keys());
    }
  }
  return t;
}

GateThresholds load_gate_thresholds(const std::filesystem::path& config_file) {
  const std::string text = read_file(config_file);  // IoError naming the file
  const std::string source = config_file.string();
  YAML::Node root;
  try {
    check_yaml(text);       // no aliases, bounded depth (base/yaml_check.h)
    root = YAML::Load(text);  // YAML 1.2 reads JSON too
  } catch (const YamlRefused& e) {
    throw ConfigError(source + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) + ": " +
                      e.msg);
  } catch (const YAML::Exception& e) {
    throw ConfigError(source + ": not valid YAML/JSON: " + e.what());
  }
  if (!root.IsDefined() || root.IsNull()) return GateThresholds{};
  if (!root.IsMap()) throw ConfigError(source + ": found a " + yaml_to_json(root, source).type_name() + " at the top level, expected a mapping");
  // A run config holds the thresholds under `gates:`; a gates file is that mapping itself.
  if (const YAML::Node gates = root["gates"]; gates.IsDefined()) return gate_thresholds_from_json(yaml_to_json(gates, source), source);
  return gate_thresholds_from_json(yaml_to_json(root, source), source);
}

nlohmann::json to_json(const GateThresholds& t) {
  return {{"min_in_character_rate", t.min_in_character_rate},
          {"min_category_rate", t.min_category_rate},
          {"max_paraphrase_flip_rate", t.max_paraphrase_flip_rate},
          {"min_probe_coverage", t.min_probe_coverage},
          {"coverage_min_loss_tokens", t.coverage_min_loss_tokens},
          {"require_no_nan", t.require_no_nan},
          {"untrained_router", t.untrained_router}};
}

}  // namespace character::eval
