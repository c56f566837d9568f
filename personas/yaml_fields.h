// Typed reads of YAML nodes with errors that say where: "pirate.yaml:12:5:
// signals.keywords[3]: expected a string, found a map". Used by the persona loader;
// yaml-cpp itself converts silently or throws without the field's path.
#pragma once

#include <yaml-cpp/yaml.h>

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

namespace character::personas {

class FieldReader {
 public:
  explicit FieldReader(std::string source) : source_(std::move(source)) {}

  // "pirate.yaml:12:5: signals.keywords[3]" (the mark is 1-based line and column).
  std::string where(const YAML::Mark& mark, const std::string& path) const;
  std::string where(const YAML::Node& node, const std::string& path) const { return where(mark(node), path); }

  // Remembers where the keys of empty values are: yaml-cpp marks an empty value
  // ("constitution:" with nothing after it) at the next token, a line too late.
  void index_empty_values(const YAML::Node& root);
  // The node's position; for an indexed empty value, its key's.
  YAML::Mark mark(const YAML::Node& node) const;

  // Throws FormatError "<where>: <message>".
  [[noreturn]] void fail(const YAML::Mark& mark, const std::string& path, const std::string& message) const;
  [[noreturn]] void fail(const YAML::Node& node, const std::string& path, const std::string& message) const {
    fail(mark(node), path, message);
  }

  // A map whose keys are all in `allowed` and none twice; else FormatError naming
  // the key and listing the allowed ones.
  void check_map(const YAML::Node& node, const std::string& path, std::initializer_list<const char*> allowed) const;

  // The value under `key`; FormatError at the map when missing.
  YAML::Node require(const YAML::Node& map, const std::string& path, const char* key) const;

  // A non-empty scalar.
  std::string string(const YAML::Node& node, const std::string& path) const;
  // A list of non-empty scalars; an absent node gives an empty list.
  std::vector<std::string> strings(const YAML::Node& node, const std::string& path) const;
  // A list (sequence) node; FormatError otherwise.
  void check_list(const YAML::Node& node, const std::string& path) const;

  // "a string", "a list", "a map", "nothing (an empty value)".
  static std::string kind(const YAML::Node& node);
  // "signals" + "keywords" → "signals.keywords"; "constitution" + 3 → "constitution[3]".
  static std::string child(const std::string& path, const std::string& key) { return path.empty() ? key : path + "." + key; }
  static std::string item(const std::string& path, std::size_t i) { return path + "[" + std::to_string(i) + "]"; }

  const std::string& source() const { return source_; }

 private:
  std::string source_;
  std::vector<std::pair<YAML::Node, YAML::Mark>> empty_values_;  // value node, its key's mark
};

}  // namespace character::personas
