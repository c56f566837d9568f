// The persona loader's errors and warnings, message for message: each names the
// file, the 1-based line and column a reader sees in an editor, the field path,
// what was found and what was expected.
#include "personas/persona.h"

#include <gtest/gtest.h>

#include "base/atomic_file.h"
#include "base/error.h"
#include "tests/test_support.h"

namespace character::personas {
namespace {

// A valid persona; tests replace one piece of it.
const std::string kHeader =
    "name: tester\n"
    "description: A persona for tests.\n"
    "constitution:\n"
    "  - I speak plainly.\n";

template <typename E>
std::string error_of(const std::string& yaml, const std::string& source = "tester.yaml") {
  try {
    parse_persona(yaml, source);
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("wrong exception type: ") + e.what();
  }
  return "no error";
}

TEST(PersonaLoader, ReadsEveryField) {
  const Persona p = parse_persona(
      "name: tester\n"
      "display_name: The Tester\n"
      "description: A persona for tests.\n"
      "constitution:\n"
      "  - I speak plainly.\n"
      "  - My answers are short.\n"
      "signals:\n"
      "  keywords: [plainly, briefly]\n"
      "  phrases: [\"in short\"]\n"
      "  regexes: ['\\bshort(?:ly)?\\b']\n"
      "  anti_signals:\n"
      "    keywords: [certainly]\n"
      "    phrases: [\"happy to help\"]\n"
      "    classes: [emoji]\n"
      "cues: [Keep it short.]\n"
      "examples:\n"
      "  - prompt: Hi\n"
      "    response: In short, hello, briefly.\n"
      "probes:\n"
      "  - {category: short, prompt: Yo}\n",
      "tester.yaml");
  EXPECT_EQ(p.name, "tester");
  EXPECT_EQ(p.display_name, "The Tester");
  EXPECT_EQ(p.description, "A persona for tests.");
  EXPECT_EQ(p.constitution, (std::vector<std::string>{"I speak plainly.", "My answers are short."}));
  EXPECT_EQ(p.signals.signals.keywords, (std::vector<std::string>{"plainly", "briefly"}));
  EXPECT_EQ(p.signals.signals.phrases, (std::vector<std::string>{"in short"}));
  EXPECT_EQ(p.signals.signals.regexes, (std::vector<std::string>{"\\bshort(?:ly)?\\b"}));
  EXPECT_EQ(p.signals.anti_signals.keywords, (std::vector<std::string>{"certainly"}));
  EXPECT_EQ(p.signals.anti_signals.phrases, (std::vector<std::string>{"happy to help"}));
  EXPECT_EQ(p.signals.anti_signals.classes, (std::vector<std::string>{"emoji"}));
  EXPECT_EQ(p.cues, (std::vector<std::string>{"Keep it short."}));
  ASSERT_EQ(p.examples.size(), 1u);
  EXPECT_EQ(p.examples[0].prompt, "Hi");
  EXPECT_EQ(p.examples[0].response, "In short, hello, briefly.");
  ASSERT_EQ(p.probes.size(), 1u);
  EXPECT_EQ(p.probes[0].category, "short");
  EXPECT_EQ(p.probes[0].prompt, "Yo");
  EXPECT_EQ(p.source, "tester.yaml");
  EXPECT_TRUE(p.warnings.empty()) << p.warnings.front();
}

TEST(PersonaLoader, DisplayNameDefaultsToName) {
  const Persona p = parse_persona(kHeader + "signals: {keywords: [plainly]}\n", "tester.yaml");
  EXPECT_EQ(p.display_name, "tester");
}

TEST(PersonaLoader, WrongTypeNamesLineColumnAndFieldPath) {
  const std::string yaml = kHeader +          // lines 1-4
                           "signals:\n"       // 5
                           "  keywords:\n"    // 6
                           "  - arr\n"        // 7
                           "  - ahoy\n"       // 8
                           "  - ye\n"         // 9
                           "  # a map where a string belongs\n"  // 10
                           "  -\n"            // 11
                           "    word: matey\n";  // 12: the map starts at column 5
  EXPECT_EQ(error_of<FormatError>(yaml, "pirate.yaml"),
            "pirate.yaml:12:5: signals.keywords[3]: expected a string, found a map");
}

TEST(PersonaLoader, InvalidYamlNamesThePosition) {
  EXPECT_EQ(error_of<FormatError>("name: tester\ndescription: [unclosed\n"),
            "tester.yaml:3:1: invalid YAML: end of sequence flow not found");
}

// Issue 14: a cyclic alias crashed the loader, nested ones expanded without bound.
TEST(PersonaLoader, AliasesAreRefusedWithFileLineAndColumn) {
  EXPECT_EQ(error_of<FormatError>("name: tester\ndescription: &d Arr\ndisplay_name: *d\n"),
            "tester.yaml:3:15: an alias (*name): aliases are not accepted in this file, write the value out");
  EXPECT_EQ(error_of<FormatError>("name: tester\nsignals: &s\n  keywords: [*s]\n"),
            "tester.yaml:3:14: an alias (*name): aliases are not accepted in this file, write the value out");
}

TEST(PersonaLoader, EmptyFileAndNonMap) {
  EXPECT_EQ(error_of<FormatError>(""),
            "tester.yaml: the file is empty; expected a map with name, description, constitution and signals");
  EXPECT_EQ(error_of<FormatError>("- a\n- b\n"), "tester.yaml:1:1: (top level): expected a map, found a list");
}

TEST(PersonaLoader, UnknownKeyListsTheAllowedOnes) {
  EXPECT_EQ(error_of<FormatError>(kHeader + "signals:\n  keywords: [plainly]\n  anti_signal:\n    keywords: [sure]\n"),
            "tester.yaml:7:3: signals.anti_signal: unknown key \"anti_signal\"; allowed keys here: keywords, phrases, "
            "regexes, classes, anti_signals");
  EXPECT_EQ(error_of<FormatError>(kHeader + "signal:\n  keywords: [plainly]\n"),
            "tester.yaml:5:1: signal: unknown key \"signal\"; allowed keys here: name, display_name, description, "
            "constitution, signals, cues, examples, probes");
}

TEST(PersonaLoader, RepeatedKeyIsAnError) {
  EXPECT_EQ(error_of<FormatError>(kHeader + "signals: {keywords: [plainly]}\nname: other\n"),
            "tester.yaml:6:1: name: key \"name\" appears twice");
}

TEST(PersonaLoader, MissingRequiredKeysPointAtTheirMap) {
  EXPECT_EQ(error_of<FormatError>("description: x\nconstitution: [I am.]\nsignals: {keywords: [a]}\n"),
            "tester.yaml:1:1: name: missing required key \"name\"");
  EXPECT_EQ(error_of<FormatError>(kHeader), "tester.yaml:1:1: signals: missing required key \"signals\"");
  EXPECT_EQ(error_of<FormatError>(kHeader + "signals: {keywords: [plainly]}\nexamples:\n  - prompt: Hi\n"),
            "tester.yaml:7:5: examples[0].response: missing required key \"response\"");
}

TEST(PersonaLoader, NameMustBeASlug) {
  EXPECT_EQ(error_of<FormatError>("name: Captain Hook\n"),
            "tester.yaml:1:7: name: \"Captain Hook\" is not a slug; expected lowercase letters, digits, '-' or '_', "
            "starting with a letter, at most 64 characters");
}

TEST(PersonaLoader, ConstitutionMustBeANonEmptyList) {
  EXPECT_EQ(error_of<FormatError>("name: tester\ndescription: d\nconstitution: []\nsignals: {keywords: [a]}\n"),
            "tester.yaml:3:15: constitution: is empty; expected at least one first-person line");
  EXPECT_EQ(error_of<FormatError>("name: tester\ndescription: d\nconstitution:\nsignals: {keywords: [a]}\n"),
            "tester.yaml:3:1: constitution: expected a list, found nothing (an empty value)");
  EXPECT_EQ(error_of<FormatError>("name: tester\ndescription: d\nconstitution:\n  - I am.\n  - \"\"\n"),
            "tester.yaml:5:5: constitution[1]: must not be empty");
}

TEST(PersonaLoader, BadTermsNameTheirLine) {
  EXPECT_EQ(error_of<FormatError>(kHeader + "signals:\n  keywords: [plainly]\n  regexes:\n    - 'ok'\n    - '(arr'\n"),
            "tester.yaml:9:7: signals.regexes[1]: \"(arr\" invalid regular expression: missing closing parenthesis "
            "at offset 4");
  EXPECT_EQ(error_of<FormatError>(kHeader + "signals:\n  regexes: ['x*']\n"),
            "tester.yaml:6:13: signals.regexes[0]: \"x*\" can match the empty string; every position would count as a "
            "hit");
  EXPECT_EQ(error_of<FormatError>(kHeader + "signals:\n  keywords: [walk the plank]\n"),
            "tester.yaml:6:14: signals.keywords[0]: \"walk the plank\" contains whitespace; a keyword is one word, put "
            "several words under phrases");
  EXPECT_EQ(error_of<FormatError>(kHeader + "signals:\n  keywords: [a]\n  anti_signals: {classes: [emojis]}\n"),
            "tester.yaml:7:28: signals.anti_signals.classes[0]: \"emojis\" unknown class \"emojis\"; expected one of: "
            "emoji");
}

TEST(PersonaLoader, NoSignalsAndContradictionsAreErrors) {
  EXPECT_EQ(error_of<FormatError>(kHeader + "signals:\n  anti_signals: {classes: [emoji]}\n"),
            "tester.yaml:6:3: signals: no signal terms; expected at least one keyword, phrase, regex or class to score "
            "by");
  EXPECT_EQ(error_of<FormatError>(kHeader + "signals:\n  keywords: [Plainly]\n  anti_signals:\n    keywords: [plainly]\n"),
            "tester.yaml:8:16: signals.anti_signals.keywords[0]: \"plainly\" is also a signal (signals.keywords[0]); a "
            "term cannot count both ways");
}

TEST(PersonaLoader, ProbeCategoryMustBeOneOfTheEight) {
  EXPECT_EQ(error_of<FormatError>(kHeader + "signals: {keywords: [a]}\nprobes:\n  - category: identiy\n    prompt: Who?\n"),
            "tester.yaml:7:15: probes[0].category: unknown category \"identiy\"; expected one of: identity, "
            "continuation, factual, creative, instruction, opinion, meta, short");
}

TEST(PersonaLoader, WarningsDoNotStopLoading) {
  const Persona p = parse_persona(
      "name: tester\n"
      "description: d\n"
      "constitution:\n"
      "  - I speak plainly.\n"
      "  - Always answer in one line.\n"
      "signals:\n"
      "  keywords: [plainly, Plainly]\n"
      "  phrases: [brief]\n"
      "  anti_signals: {phrases: [\"happy to help\"]}\n"
      "examples:\n"
      "  - prompt: Hi\n"
      "    response: I am happy to help!\n",
      "tester.yaml");
  EXPECT_EQ(p.warnings, (std::vector<std::string>{
                            "tester.yaml:5:5: constitution[1]: not in the first person (no I, me, my, we ...); "
                            "constitutions are written in the persona's own voice",
                            "tester.yaml:7:23: signals.keywords[1]: \"Plainly\" repeats signals.keywords[0]",
                            "tester.yaml:8:13: signals.phrases[0]: \"brief\" is a single word; it matches like a keyword",
                            "tester.yaml:12:15: examples[0].response: 0 signal hits vs 1 anti-signal hits; an example "
                            "should score as in character"}));
}

TEST(PersonaLoader, LoadPersonaReadsFilesAndChecksTheFileName) {
  testing::TempDir dir;
  write_file_atomic(dir / "other.yaml", kHeader + "signals: {keywords: [plainly]}\n");
  const Persona p = load_persona(dir / "other.yaml");
  EXPECT_EQ(p.source, (dir / "other.yaml").string());
  ASSERT_EQ(p.warnings.size(), 1u);
  EXPECT_EQ(p.warnings[0], (dir / "other.yaml").string() +
                               ": name: \"tester\" differs from the file name \"other.yaml\"; runs are named after "
                               "\"tester\"");
  EXPECT_THROW(load_persona(dir / "missing.yaml"), IoError);
  // find_persona treats anything with a '/' or a .yaml suffix as a path.
  EXPECT_EQ(find_persona((dir / "other.yaml").string()).name, "tester");
  EXPECT_THROW(find_persona("missing.yaml"), IoError);
}

}  // namespace
}  // namespace character::personas
