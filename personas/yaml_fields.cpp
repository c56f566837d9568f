// Typed YAML reads for the persona loader: every failure is a FormatError that
// carries file:line:column from yaml-cpp's Mark (0-based there, 1-based here) and
// the dotted field path.
#include "personas/yaml_fields.h"

#include <set>

#include "base/error.h"

namespace character::personas {

std::string FieldReader::where(const YAML::Mark& mark, const std::string& path) const {
  std::string out = source_;
  if (!mark.is_null()) {
    out += ':';
    out += std::to_string(mark.line + 1);
    out += ':';
    out += std::to_string(mark.column + 1);
  }
  if (!path.empty()) {
    out += ": ";
    out += path;
  }
  return out;
}

void FieldReader::index_empty_values(const YAML::Node& node) {
  if (node.IsMap()) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (it->second.IsNull()) empty_values_.emplace_back(it->second, it->first.Mark());
      index_empty_values(it->second);
    }
  } else if (node.IsSequence()) {
    for (const auto& child : node) index_empty_values(child);
  }
}

YAML::Mark FieldReader::mark(const YAML::Node& node) const {
  if (node.IsDefined() && node.IsNull())
    for (const auto& [value, key_mark] : empty_values_)
      if (value.is(node)) return key_mark;
  return node.Mark();
}

void FieldReader::fail(const YAML::Mark& mark, const std::string& path, const std::string& message) const {
  throw FormatError(where(mark, path) + ": " + message);
}

std::string FieldReader::kind(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "nothing (an empty value)";
  if (node.IsScalar()) return "a string";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a map";
  return "an unknown YAML node";
}

void FieldReader::check_map(const YAML::Node& node, const std::string& path,
                            std::initializer_list<const char*> allowed) const {
  if (!node.IsMap())
    fail(node, path.empty() ? "(top level)" : path, "expected a map, found " + kind(node));
  std::set<std::string> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const YAML::Node key = it->first;
    if (!key.IsScalar()) fail(key, path.empty() ? "(top level)" : path, "expected a string key, found " + kind(key));
    const std::string name = key.Scalar();
    bool known = false;
    for (const char* a : allowed) known = known || name == a;
    if (!known) {
      std::string list;
      for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      fail(key, child(path, name), "unknown key \"" + name + "\"; allowed keys here: " + list);
    }
    // yaml-cpp keeps both entries of a repeated key and reads the first: say so instead.
    if (!seen.insert(name).second) fail(key, child(path, name), "key \"" + name + "\" appears twice");
  }
}

YAML::Node FieldReader::require(const YAML::Node& map, const std::string& path, const char* key) const {
  const YAML::Node value = map[key];
  if (!value.IsDefined())
    fail(map, child(path, key), std::string("missing required key \"") + key + "\"");
  return value;
}

std::string FieldReader::string(const YAML::Node& node, const std::string& path) const {
  if (!node.IsScalar()) fail(node, path, "expected a string, found " + kind(node));
  const std::string value = node.Scalar();
  if (value.find_first_not_of(" \t\r\n") == std::string::npos) fail(node, path, "must not be empty");
  return value;
}

void FieldReader::check_list(const YAML::Node& node, const std::string& path) const {
  if (!node.IsSequence()) fail(node, path, "expected a list, found " + kind(node));
}

std::vector<std::string> FieldReader::strings(const YAML::Node& node, const std::string& path) const {
  std::vector<std::string> out;
  if (!node.IsDefined()) return out;
  check_list(node, path);
  for (std::size_t i = 0; i < node.size(); ++i) out.push_back(string(node[i], item(path, i)));
  return out;
}

}  // namespace character::personas
