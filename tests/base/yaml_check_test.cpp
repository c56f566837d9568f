// base/yaml_check.h: aliases are refused before any node is built (a cyclic alias made a
// node that contains itself, nested ones expand without bound), with their line and
// column; nesting is bounded; plain YAML passes.
#include <gtest/gtest.h>
#include <gmock/gmock.h>
#include <yaml-cpp/yaml.h>

#include <string>

#include "base/yaml_check.h"

namespace character {
namespace {

using ::testing::HasSubstr;

// "line:col: message" of the check's exception (1-based, as the loaders print it), or "".
std::string problem(const std::string& text) {
  try {
    check_yaml(text);
  } catch (const YamlRefused& e) {
    return std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) + ": " + e.msg;
  } catch (const YAML::ParserException& e) {
    return "syntax: " + e.msg;
  }
  return "";
}

TEST(YamlCheck, PlainYamlAndJsonPass) {
  EXPECT_EQ(problem("name: pirate\nsignals:\n  keywords: [arr, matey]\n  weights: {a: 1}\n"), "");
  EXPECT_EQ(problem("{\"gates\": {\"min_in_character_rate\": 0.8}}"), "");
  EXPECT_EQ(problem(""), "");
  // An anchor alone is harmless: nothing refers to it.
  EXPECT_EQ(problem("a: &x [1, 2]\nb: 3\n"), "");
}

TEST(YamlCheck, AliasesAreRefusedWithTheirPosition) {
  EXPECT_EQ(problem("a: &x [1, 2]\nb: *x\n"),
            "2:4: an alias (*name): aliases are not accepted in this file, write the value out");
  // A cyclic alias: the node would contain itself.
  EXPECT_THAT(problem("a: &x\n  b: *x\n"), HasSubstr("2:6: an alias"));
  // "Billion laughs": each level doubles the one before.
  std::string laughs = "l0: &l0 [lol, lol]\n";
  for (int i = 1; i < 30; ++i) {
    laughs += "l" + std::to_string(i) + ": &l" + std::to_string(i) + " [*l" + std::to_string(i - 1) + ", *l" +
              std::to_string(i - 1) + "]\n";
  }
  EXPECT_THAT(problem(laughs), HasSubstr("2:10: an alias"));
  // Merge keys are aliases too.
  EXPECT_THAT(problem("base: &b {x: 1}\nother:\n  <<: *b\n"), HasSubstr("3:7: an alias"));
}

TEST(YamlCheck, NestingIsBounded) {
  const auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  EXPECT_EQ(problem(nested(kMaxYamlDepth)), "");
  EXPECT_THAT(problem(nested(kMaxYamlDepth + 1)), HasSubstr("nested deeper than 64 levels"));
  // Far deeper than yaml-cpp's own recursion limit: refused, not a crash.
  EXPECT_THAT(problem(nested(100000)), HasSubstr("nested deeper than 64 levels"));
}

TEST(YamlCheck, SyntaxErrorsAreParserExceptionsButNotRefusals) {
  EXPECT_THAT(problem("a: [1, 2\nb: 3\n"), HasSubstr("syntax: end of sequence"));
}

}  // namespace
}  // namespace character
