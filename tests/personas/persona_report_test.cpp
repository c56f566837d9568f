// The summary `character persona check` prints, on a persona whose counts are
// known by construction.
#include "personas/persona_report.h"

#include <gtest/gtest.h>

namespace character::personas {
namespace {

TEST(PersonaReport, SummaryCountsEachPartAndScoresExamples) {
  const Persona p = parse_persona(
      "name: tester\n"
      "description: d\n"
      "constitution: [I speak plainly., I keep it short., My words are few.]\n"
      "signals:\n"
      "  keywords: [plainly, briefly]\n"
      "  phrases: [\"in short\"]\n"
      "  anti_signals: {phrases: [\"happy to help\"], classes: [emoji]}\n"
      "examples:\n"
      "  - {prompt: a, response: In short and plainly.}\n"
      "  - {prompt: b, response: Happy to help!}\n",
      "tester.yaml");
  const auto s = persona_summary(p);
  EXPECT_EQ(s["constitution_lines"], 3);
  EXPECT_EQ(s["signals"]["keywords"], 2);
  EXPECT_EQ(s["signals"]["phrases"], 1);
  EXPECT_EQ(s["signals"]["regexes"], 0);
  EXPECT_EQ(s["anti_signals"]["phrases"], 1);
  EXPECT_EQ(s["anti_signals"]["classes"], nlohmann::json::array({"emoji"}));
  EXPECT_EQ(s["examples"], 2);
  EXPECT_EQ(s["examples_in_character"], 1);
  ASSERT_EQ(s["warnings"].size(), 1u);  // the second example
  EXPECT_EQ(format_summary(s),
            "tester (tester) from tester.yaml\n"
            "  constitution   3 lines\n"
            "  signals        2 keywords, 1 phrases, 0 regexes\n"
            "  anti-signals   0 keywords, 1 phrases, 0 regexes, class emoji\n"
            "  cues           0\n"
            "  examples       2 (1 score in character)\n"
            "  probes         0\n"
            "warning: tester.yaml:10:27: examples[1].response: 0 signal hits vs 1 anti-signal hits; an example should "
            "score as in character\n");
}

}  // namespace
}  // namespace character::personas
