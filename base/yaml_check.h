// YAML from outside the program (personas, run configs, gate configs) checked before it is
// loaded. yaml-cpp resolves an alias (*name) by sharing the anchored node, so a cyclic alias
// makes a node that contains itself (every walk over it recurses until the stack is gone)
// and nested aliases ("billion laughs") expand without bound in whatever reads them. None of
// our formats needs an alias, so they are refused, as is nesting deeper than any format has.
#pragma once

#include <yaml-cpp/exceptions.h>

#include <string>

namespace character {

inline constexpr int kMaxYamlDepth = 64;

// Valid YAML that we do not accept: an alias, or nesting deeper than the bound. `mark` is
// where (0-based line and column, as yaml-cpp counts), `msg` says what and what to do.
class YamlRefused : public YAML::ParserException {
 public:
  using YAML::ParserException::ParserException;
};

// Throws YamlRefused when `text` holds an alias or nests deeper than max_depth, and
// YAML::ParserException for a syntax error; the callers turn both into their
// "file:line:col: ..." error.
void check_yaml(const std::string& text, int max_depth = kMaxYamlDepth);

}  // namespace character
