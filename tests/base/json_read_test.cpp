// base/json_read.h: JSON from outside is refused when nested deeper than the bound, before
// a value is built (a 100,000-deep array parses without recursion, but copying or dumping
// it would overflow the stack); error messages describe values instead of dumping them.
#include <gtest/gtest.h>
#include <gmock/gmock.h>

#include <string>

#include "base/error.h"
#include "base/json_read.h"

namespace character {
namespace {

using ::testing::HasSubstr;

std::string nested(int depth, char open = '[', char close = ']') {
  return std::string(depth, open) + std::string(depth, close);
}

std::string error_of(const std::string& text) {
  try {
    parse_json(text, "in.json");
  } catch (const FormatError& e) {
    return e.what();
  }
  return "";
}

TEST(JsonRead, DepthUpToTheBoundParsesAndDeeperIsAFormatError) {
  EXPECT_EQ(parse_json(nested(kMaxJsonDepth), "in.json").dump().size(), 2u * kMaxJsonDepth);
  EXPECT_EQ(error_of(nested(kMaxJsonDepth + 1)), "in.json: JSON nested deeper than 64 levels");
  // Objects count as levels too, mixed with arrays.
  std::string mixed;
  for (int i = 0; i < 40; ++i) mixed += "{\"a\":[";
  mixed += "1";
  for (int i = 0; i < 40; ++i) mixed += "]}";
  EXPECT_THAT(error_of(mixed), HasSubstr("nested deeper than 64 levels"));
  // The attack itself: far too deep for any recursion over the value.
  EXPECT_THAT(error_of(nested(1000000)), HasSubstr("nested deeper than 64 levels"));
}

TEST(JsonRead, SyntaxErrorsAndNulBytesSayWhere) {
  EXPECT_THAT(error_of("{\"a\": 1,"), AllOf(HasSubstr("in.json: not valid JSON"), HasSubstr("line 1")));
  // nlohmann's lexer would stop at a NUL and accept the prefix.
  EXPECT_EQ(error_of(std::string("{\"a\": 1}\0{", 10)), "in.json: not valid JSON: NUL byte at offset 8");
  EXPECT_THAT(error_of(""), HasSubstr("not valid JSON"));
}

TEST(JsonRead, TryParseGivesNothingAndTheReason) {
  std::string why;
  EXPECT_FALSE(try_parse_json(nested(100), &why));
  EXPECT_EQ(why, "JSON nested deeper than 64 levels");
  EXPECT_FALSE(try_parse_json("[1, 2", &why));
  EXPECT_THAT(why, HasSubstr("not valid JSON"));
  const auto ok = try_parse_json("{\"verdict\": \"in\"}", &why);
  ASSERT_TRUE(ok);
  EXPECT_EQ((*ok)["verdict"], "in");
  EXPECT_EQ(why, "");
  EXPECT_TRUE(try_parse_json(nested(3), nullptr, /*max_depth=*/3));
  EXPECT_FALSE(try_parse_json(nested(4), nullptr, /*max_depth=*/3));
}

TEST(JsonRead, DescribeShowsSmallValuesAndSizesOfLargeOnes) {
  using nlohmann::json;
  EXPECT_EQ(describe_json(json(3)), "3");
  EXPECT_EQ(describe_json(json("bf16")), "\"bf16\"");
  EXPECT_EQ(describe_json(json::parse("[2, -1]")), "[2,-1]");
  EXPECT_EQ(describe_json(json::parse("[[1], [2]]")), "an array of 2 elements");
  EXPECT_EQ(describe_json(json::parse("{\"a\": {\"b\": 1}}")), "an object of 1 key");
  EXPECT_EQ(describe_json(json(std::vector<int>(1000, 7))), "an array of 1000 elements");
  const std::string long_text(500, 'x');
  EXPECT_EQ(describe_json(json(long_text), 20), "\"" + std::string(19, 'x') + "…");
  // Clipped on a character boundary: "é" is two bytes.
  EXPECT_EQ(describe_json(json("ééééé"), 4), "\"é…");
}

}  // namespace
}  // namespace character
