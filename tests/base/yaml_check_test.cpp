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

// Found by fuzz_gate_config: a byte that is not UTF-8 went into a JSON string and made a
// later dump throw a type error (exit 70).
TEST(YamlCheck, TextThatIsNotUtf8IsRefusedWithItsPosition) {
  EXPECT_EQ(problem("gates:\n  max_paraphrase_flip_rate: 0.\xcd\xca\n"),
            "2:31: not valid UTF-8 (byte offset 37); YAML files must be UTF-8");
  EXPECT_THAT(problem("a: \xc0\xaf\n"), HasSubstr("1:4: not valid UTF-8"));           // overlong '/'
  EXPECT_THAT(problem("a: \xed\xa0\x80\n"), HasSubstr("1:4: not valid UTF-8"));       // a surrogate
  EXPECT_THAT(problem("a: \xf4\x90\x80\x80\n"), HasSubstr("1:4: not valid UTF-8"));  // past U+10FFFF
  EXPECT_THAT(problem("a: \xe2\x82"), HasSubstr("1:4: not valid UTF-8"));             // cut short
  EXPECT_EQ(problem("a: \"é € 😊 中\"\n"), "");
}

TEST(YamlCheck, SyntaxErrorsAreParserExceptionsButNotRefusals) {
  EXPECT_THAT(problem("a: [1, 2\nb: 3\n"), HasSubstr("syntax: end of sequence"));
}

}  // namespace
}  // namespace character
