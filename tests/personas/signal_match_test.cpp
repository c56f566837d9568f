// The signal matcher against hand-checked tables: whole words with Unicode-aware
// boundaries (the seed's tester counted "ye" inside "yes" and "year"), Unicode case
// folding, phrases across any whitespace, typographic apostrophes, emoji by Unicode
// property and grapheme cluster, and the reasons a term is refused.
#include "personas/signal_match.h"

#include <gtest/gtest.h>

#include <thread>

#include "base/error.h"

namespace character::personas {
namespace {

struct Row {
  TermKind kind;
  std::string term;
  std::string text;
  std::size_t hits;
  const char* why;
};

SignalProfile one_term(TermKind kind, const std::string& term) {
  SignalProfile profile;
  switch (kind) {
    case TermKind::kKeyword: profile.signals.keywords = {term}; break;
    case TermKind::kPhrase: profile.signals.phrases = {term}; break;
    case TermKind::kRegex: profile.signals.regexes = {term}; break;
    case TermKind::kClass: profile.signals.classes = {term}; break;
  }
  return profile;
}

constexpr auto K = TermKind::kKeyword;
constexpr auto P = TermKind::kPhrase;
constexpr auto R = TermKind::kRegex;
constexpr auto C = TermKind::kClass;

const std::vector<Row> kRows = {
    // The seed tester's false positives: a keyword inside a longer word.
    {K, "ye", "yes", 0, "ye inside yes (seed false positive)"},
    {K, "ye", "Yes, a year ago.", 0, "ye inside yes and year"},
    {K, "ye", "bye, eye, jaye", 0, "ye at the end of longer words"},
    {K, "arr", "Let me arrange that.", 0, "arr inside arrange"},
    {K, "arr", "barrel", 0, "arr inside barrel"},
    // Whole words in every case and next to punctuation.
    {K, "ye", "Ye be", 1, "capitalised"},
    {K, "ye", "YE BE", 1, "upper case"},
    {K, "ye", "ye, ye! (ye) \"ye\" «ye» ye.", 6, "punctuation on either side"},
    {K, "ye", "ye'll see", 1, "an apostrophe ends the word"},
    {K, "arr", "Arr!", 1, "Arr! counts"},
    {K, "arr", "ARR, matey", 1, "upper case"},
    {K, "ye", "ye\xC2\xA0""be", 1, "no-break space is a boundary"},
    {K, "ye", "ye\nbe", 1, "newline is a boundary"},
    // Elongation is a different word: keywords are literal (use a regex for arr+).
    {K, "ahoy", "ahoyyy there", 0, "ahoyyy is not the keyword ahoy"},
    {K, "arr", "Arrr!", 0, "arrr is not the keyword arr"},
    // Letters of any script, digits, '_' and combining marks extend a word.
    {K, "ye", "y\xC3\xA9", 0, "NFC é: yé is not ye (and not y + e)"},
    {K, "ye", "ye\xCC\x81", 0, "NFD: ye + U+0301 is yé, not ye"},
    {K, "ye", "\xC3\xA0ye", 0, "accented letter before"},
    {K, "ye", "\xD0\x96ye", 0, "Cyrillic letter before"},
    {K, "ye", "\xE6\x97\xA5ye", 0, "CJK letter before"},
    {K, "ye", "ye2 ye_", 0, "digit and underscore after"},
    {K, "ye", "2 ye", 1, "digit separated by a space"},
    // Unicode case folding.
    {K, "caf\xC3\xA9", "CAF\xC3\x89 open", 1, "É folds to é"},
    {K, "caf\xC3\xA9", "caf\xC3\xA9s", 0, "plural is a longer word"},
    {K, "\xCF\x83\xCE\xBF\xCF\x86\xCE\xB9\xCE\xB1", "\xCE\xA3\xCE\x9F\xCE\xA6\xCE\x99\xCE\x91!", 1, "Greek σοφια vs ΣΟΦΙΑ"},
    {K, "\xD0\xBC\xD0\xB8\xD1\x80", "\xD0\x9C\xD0\x98\xD0\xA0 \xD0\xBC\xD0\xB8\xD1\x80\xD0\xBD\xD1\x8B\xD0\xB9", 1,
     "Cyrillic мир vs МИР, not inside мирный"},
    // Apostrophes: ', U+2019 and U+02BC are one character for matching.
    {K, "I'm", "I\xE2\x80\x99m here", 1, "typographic apostrophe in the text"},
    {K, "I\xE2\x80\x99m", "I'm here", 1, "typographic apostrophe in the term"},
    {K, "I'm", "Im here", 0, "no apostrophe is a different word"},
    {K, "I'm", "I\xCA\xBCm here", 1, "modifier letter apostrophe U+02BC"},
    // Documented limits: simple case folding only, no Unicode normalization.
    {K, "stra\xC3\x9F" "e", "STRASSE", 0, "no full case folding (ß vs SS)"},
    {K, "caf\xC3\xA9", "cafe\xCC\x81", 0, "precomposed keyword vs decomposed text"},
    // Phrases: whole words, any run of whitespace between them.
    {P, "shiver me timbers", "Shiver  me\ttimbers!", 1, "spaces and a tab"},
    {P, "shiver me timbers", "shiver me\r\ntimbers", 1, "a line break"},
    {P, "shiver me timbers", "shivers me timbers", 0, "first word longer"},
    {P, "shiver me timbers", "shiver me timbersome", 0, "last word longer"},
    {P, "shiver me timbers", "shiver metimbers", 0, "words run together"},
    {P, "happy to help", "I'm happy to help.", 1, "sentence"},
    {P, "happy to help", "unhappy to help", 0, "first word longer"},
    {P, "of course!", "Of course! Here it is.", 1, "edge punctuation is part of the phrase"},
    {P, "of course!", "Of course!! Sure!", 1, "followed by more punctuation"},
    {P, "of course!", "of course, I can", 0, "without its !"},
    {P, "of course!", "ofcourse!", 0, "words run together"},
    {P, "I'd love to", "I\xE2\x80\x99""d love to tell you more", 1, "typographic apostrophe"},
    // Regexes: caseless and Unicode-aware, used as written.
    {R, "\\barr+(?:g+h*)?\\b", "Arrr! Arrgh, arr.", 3, "elongation by regex"},
    {R, "\\barr+(?:g+h*)?\\b", "arrange", 0, "regex with its own \\b"},
    {R, "\\b\\p{L}{2,}in['\xE2\x80\x99](?!\\p{L})", "sailin' and talkin\xE2\x80\x99 and in'", 2, "dropped g"},
    // Emoji: Emoji_Presentation or pictograph + U+FE0F, one per grapheme cluster.
    {C, "emoji", "Hey there! \xF0\x9F\x98\x8A", 1, "😊"},
    {C, "emoji", "\xE2\x9C\xA8\xF0\x9F\x93\x9A", 2, "✨📚 are two"},
    {C, "emoji", "\xF0\x9F\x93\x9A\xE2\x9C\xA8 \xF0\x9F\x98\x8A\xF0\x9F\x98\x8A", 4, "📚✨ 😊😊 adjacent are four"},
    {C, "emoji", "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7", 1, "👨‍👩‍👧 family is one"},
    {C, "emoji", "\xF0\x9F\x8F\xB4\xF3\xA0\x81\xA7\xF3\xA0\x81\xA2\xF3\xA0\x81\xB3\xF3\xA0\x81\xA3\xF3\xA0\x81\xB4\xF3\xA0\x81\xBF", 1, "Scotland tag sequence is one"},
    {C, "emoji", "\xF0\x9F\x8F\xB4\xE2\x80\x8D\xE2\x98\xA0\xEF\xB8\x8F", 1, "🏴‍☠️ ZWJ sequence is one"},
    {C, "emoji", "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD", 1, "👍🏽 with skin tone is one"},
    {C, "emoji", "\xF0\x9F\x87\xBA\xF0\x9F\x87\xB8", 1, "🇺🇸 flag is one"},
    {C, "emoji", "\xE2\x9D\xA4\xEF\xB8\x8F", 1, "❤️ with U+FE0F"},
    {C, "emoji", "\xE2\x9D\xA4 \xE2\x98\xBA", 0, "❤ ☺ text presentation"},
    {C, "emoji", "\xC2\xA9 2025 Acme\xE2\x84\xA2", 0, "© and ™ are not emoji"},
    {C, "emoji", "Arr, plain text 123 #1", 0, "no emoji"},
    {C, "emoji", "1\xEF\xB8\x8F\xE2\x83\xA3", 0, "keycap 1️⃣ is not counted"},
    // Invalid UTF-8 in generated text never matches and never throws.
    {K, "ye", "ye \xFF\xFE ye", 2, "invalid bytes between"},
    {C, "emoji", "\xF0\x9F\x98", 0, "truncated emoji"},
};

TEST(SignalMatch, TableOfWordBoundaryCaseAndEmojiCases) {
  for (const Row& row : kRows) {
    const SignalMatcher matcher(one_term(row.kind, row.term));
    EXPECT_EQ(matcher.count(row.text).signal_hits, row.hits)
        << term_kind_name(row.kind) << " \"" << row.term << "\" in \"" << row.text << "\": " << row.why;
  }
}

TEST(SignalMatch, HitsCarryTermKindOffsetAndLength) {
  SignalProfile profile;
  profile.signals.keywords = {"ahoy", "ye"};
  profile.signals.phrases = {"ye be"};
  profile.anti_signals.phrases = {"happy to help"};
  profile.anti_signals.classes = {"emoji"};
  const SignalMatcher matcher(profile);
  const std::string text = "Ahoy, ye be happy to help \xF0\x9F\x98\x8A ye";
  const auto hits = matcher.find(text);
  ASSERT_EQ(hits.size(), 6u);
  struct Expect {
    Polarity polarity;
    TermKind kind;
    const char* term;
    std::size_t offset, length;
  };
  const Expect expected[] = {{Polarity::kSignal, TermKind::kKeyword, "ahoy", 0, 4},
                             {Polarity::kSignal, TermKind::kKeyword, "ye", 6, 2},
                             {Polarity::kSignal, TermKind::kPhrase, "ye be", 6, 5},
                             {Polarity::kAntiSignal, TermKind::kPhrase, "happy to help", 12, 13},
                             {Polarity::kAntiSignal, TermKind::kClass, "emoji", 26, 4},
                             {Polarity::kSignal, TermKind::kKeyword, "ye", 31, 2}};
  for (std::size_t i = 0; i < hits.size(); ++i) {
    EXPECT_EQ(hits[i].polarity, expected[i].polarity) << i;
    EXPECT_EQ(hits[i].kind, expected[i].kind) << i;
    EXPECT_EQ(hits[i].term, expected[i].term) << i;
    EXPECT_EQ(hits[i].offset, expected[i].offset) << i;
    EXPECT_EQ(hits[i].length, expected[i].length) << i;
    EXPECT_EQ(text.substr(hits[i].offset, hits[i].length).empty(), false);
  }
  const SignalCounts counts = SignalMatcher::count(hits);
  EXPECT_EQ(counts.signal_hits, 4u);
  EXPECT_EQ(counts.distinct_signals, 3u);  // ahoy, ye, "ye be"
  EXPECT_EQ(counts.anti_signal_hits, 2u);
  EXPECT_EQ(counts.distinct_anti_signals, 2u);
}

TEST(SignalMatch, NeutralTextHasNoHitsEitherWay) {
  SignalProfile profile;
  profile.signals.keywords = {"ye", "arr", "matey"};
  profile.anti_signals.phrases = {"happy to help"};
  profile.anti_signals.classes = {"emoji"};
  const SignalCounts c = SignalMatcher(profile).count("The capital of France is Paris. Yes, every year.");
  EXPECT_EQ(c.signal_hits, 0u);
  EXPECT_EQ(c.anti_signal_hits, 0u);
}

TEST(SignalMatch, ConcurrentFindsAgreeWithASerialOne) {
  SignalProfile profile;
  profile.signals.keywords = {"ye", "arr"};
  profile.signals.regexes = {"\\bahoy+\\b"};
  profile.anti_signals.classes = {"emoji"};
  const SignalMatcher matcher(profile);
  std::string text;
  for (int i = 0; i < 200; ++i) text += "Ahoyyy ye! Arr, yes \xF0\x9F\x98\x8A year ye. ";
  const SignalCounts serial = matcher.count(text);
  EXPECT_EQ(serial.signal_hits, 200u * 4);
  EXPECT_EQ(serial.anti_signal_hits, 200u);
  std::vector<SignalCounts> results(4);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < results.size(); ++t)
    threads.emplace_back([&, t] { results[t] = matcher.count(text); });
  for (auto& thread : threads) thread.join();
  for (const auto& r : results) {
    EXPECT_EQ(r.signal_hits, serial.signal_hits);
    EXPECT_EQ(r.anti_signal_hits, serial.anti_signal_hits);
  }
}

TEST(SignalMatch, CheckTermExplainsRefusals) {
  EXPECT_EQ(check_term(TermKind::kKeyword, "ye"), std::nullopt);
  EXPECT_EQ(check_term(TermKind::kKeyword, "walk the plank"),
            "contains whitespace; a keyword is one word, put several words under phrases");
  EXPECT_EQ(check_term(TermKind::kKeyword, "  "), "is empty");
  EXPECT_EQ(check_term(TermKind::kPhrase, ""), "is empty");
  EXPECT_EQ(check_term(TermKind::kClass, "emojis"), "unknown class \"emojis\"; expected one of: emoji");
  EXPECT_EQ(check_term(TermKind::kRegex, "ar{2,"), std::nullopt);  // PCRE2 reads a lone { as a literal
  EXPECT_EQ(check_term(TermKind::kRegex, "(arr"), "invalid regular expression: missing closing parenthesis at offset 4");
  EXPECT_EQ(check_term(TermKind::kRegex, "a*"), "can match the empty string; every position would count as a hit");
  EXPECT_EQ(check_term(TermKind::kRegex, "\\b"), "can match the empty string; every position would count as a hit");
}

TEST(SignalMatch, ConstructorNamesTheTermThatDoesNotCompile) {
  SignalProfile profile;
  profile.anti_signals.regexes = {"[unclosed"};
  try {
    SignalMatcher matcher(profile);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              "anti-signal regex \"[unclosed\": invalid regular expression: missing terminating ] for character "
              "class at offset 9");
  }
}

}  // namespace
}  // namespace character::personas
