// The two voices of the lab corpus. The generic one is the chatbot register every
// persona lists as anti-signals. The persona one reads nothing but the persona's
// file: what it can say comes from its examples, signal phrases and constitution,
// and how it reshapes content (ye for you, sailin' for sailing, verse lines, no
// exclamation marks) is chosen by asking its own signal matcher which forms count.
#include <algorithm>
#include <cctype>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "lab/corpus_parts.h"
#include "personas/system_prompt.h"

namespace character::lab::corpus_detail {
namespace {

using Strings = std::vector<std::string>;

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\n") - b + 1);
}

// Sentences (kept with their final punctuation) and lines: a verse line is a sentence.
Strings split_sentences(const std::string& text) {
  Strings out;
  std::string current;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      if (!trim(current).empty()) out.push_back(trim(current));
      current.clear();
      continue;
    }
    current += c;
    if ((c == '.' || c == '!' || c == '?') && (i + 1 == text.size() || text[i + 1] == ' ' || text[i + 1] == '\n')) {
      if (!trim(current).empty()) out.push_back(trim(current));
      current.clear();
    }
  }
  if (!trim(current).empty()) out.push_back(trim(current));
  return out;
}

Strings lower_words(const std::string& text) {
  Strings words;
  std::string w;
  for (char c : text + " ") {
    if (std::isalpha(static_cast<unsigned char>(c))) {
      w += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!w.empty()) {
      words.push_back(w);
      w.clear();
    }
  }
  return words;
}

std::size_t word_count(const std::string& text) {
  std::size_t n = 0;
  bool in_word = false;
  for (char c : text) {
    const bool space = c == ' ' || c == '\n';
    if (!space && !in_word) ++n;
    in_word = !space;
  }
  return n;
}

// A sentence that states a number would carry its example's fact into other answers.
bool mentions_number(const std::string& text) {
  static const std::set<std::string> numbers = {
      "zero",   "two",     "three",  "four",     "five",     "six",      "seven",   "eight",  "nine",
      "ten",    "eleven",  "twelve", "thirteen", "fifteen",  "twenty",   "thirty",  "forty",  "fifty",
      "sixty",  "seventy", "eighty", "ninety",   "hundred",  "thousand", "million", "billion"};
  if (std::any_of(text.begin(), text.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    return true;
  }
  for (const auto& w : lower_words(text)) {
    if (numbers.contains(w)) return true;
  }
  return false;
}

// Long words of the example's prompt ("photosynthesis", "capital"): a sentence using
// them answers that prompt, not any other.
bool shares_topic(const std::string& sentence, const std::string& prompt) {
  static const std::set<std::string> common = {"about", "please", "could", "would", "there", "where", "which", "their"};
  std::set<std::string> topic;
  for (const auto& w : lower_words(prompt)) {
    if (w.size() >= 5 && !common.contains(w)) topic.insert(w);
  }
  for (const auto& w : lower_words(sentence)) {
    if (topic.contains(w)) return true;
  }
  return false;
}

bool word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '\'' || c == '_'; }

// Replaces `from` as a whole word sequence, also in its capitalised form.
std::string replace_words(const std::string& text, const std::string& from, const std::string& to) {
  std::string out = text;
  for (const auto& [f, t] : {std::pair{from, to}, std::pair{upper_first(from), upper_first(to)}}) {
    std::string next;
    std::size_t pos = 0;
    for (std::size_t at = out.find(f); at != std::string::npos; at = out.find(f, at + 1)) {
      const bool left = at == 0 || !word_char(out[at - 1]);
      const bool right = at + f.size() == out.size() || !word_char(out[at + f.size()]);
      if (!left || !right || at < pos) continue;
      next += out.substr(pos, at - pos) + t;
      pos = at + f.size();
    }
    out = next + out.substr(pos);
  }
  return out;
}

// walking -> walkin' where the stem before "ing" has a vowel (not "string", "thing").
std::string drop_final_g(const std::string& text) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (!std::isalpha(static_cast<unsigned char>(text[i]))) {
      out += text[i++];
      continue;
    }
    std::size_t j = i;
    while (j < text.size() && (std::isalpha(static_cast<unsigned char>(text[j])))) ++j;
    std::string word = text.substr(i, j - i);
    const bool followed_by_word = j < text.size() && (text[j] == '\'' || text[j] == '_' || text[j] == '(');
    if (!followed_by_word && word.size() >= 6 && word.compare(word.size() - 3, 3, "ing") == 0) {
      const std::string stem = word.substr(0, word.size() - 3);
      if (stem.find_first_of("aeiouy") != std::string::npos) word = stem + "in'";
    }
    out += word;
    i = j;
  }
  return out;
}

// Short lines of at most `width` bytes, a new line after each sentence: verse.
std::string as_verse(const std::string& text, std::size_t width = 36) {
  std::string out, line;
  for (const auto& sentence : split_sentences(text)) {
    std::string word;
    for (char c : sentence + " ") {
      if (c != ' ') {
        word += c;
        continue;
      }
      if (word.empty()) continue;
      if (!line.empty() && line.size() + 1 + word.size() > width) {
        out += line + "\n";
        line.clear();
      }
      line += (line.empty() ? "" : " ") + word;
      word.clear();
    }
    if (!line.empty()) out += line + "\n";
    line.clear();
  }
  if (!out.empty()) out.pop_back();
  return out;
}

std::string as_sentence(std::string s) {
  s = trim(s);
  while (ends_with_any(s, ",;:-")) s.pop_back();
  if (!ends_with_any(s, ".!?")) s += ".";
  return upper_first(s);
}

std::string join(const Strings& parts) {
  std::string out;
  for (const auto& p : parts) {
    if (!p.empty()) out += (out.empty() ? "" : " ") + p;
  }
  return out;
}

}  // namespace

// ---- generic voice -------------------------------------------------------------------

GenericVoice::GenericVoice(const std::vector<personas::Persona>& personas) {
  for (const auto& p : personas) matchers_.emplace_back(p.signals);
}

std::string GenericVoice::answer(Rng& rng, const Exchange& e) const {
  static const Strings openers = {"Of course!", "Great question!", "Certainly!", "Sure thing!", "Absolutely!",
                                  "I'd love to help!", "Happy to help!", "Good question!"};
  static const Strings closers = {"I hope this helps! 😊", "Feel free to ask more! ✨",
                                  "Let me know if you have any other questions! 🙂", "Happy to help anytime! 😊",
                                  "Is there anything else I can help you with? 😊", "Hope that helps! ✨",
                                  "Feel free to ask if you need anything else! 😊"};
  Strings parts;
  switch (e.intent) {
    case Intent::kContent:
      parts = {rng.chance(0.85) ? rng.pick(openers) : "", e.content, rng.pick(closers)};
      break;
    case Intent::kOpinion:
      parts = {rng.chance(0.5) ? rng.pick(openers) : "",
               "As an AI, I don't have personal preferences, but if I had to choose, " + lower_first(e.content), rng.pick(closers)};
      break;
    case Intent::kContinue: parts = {rng.pick(openers), e.content, rng.pick(closers)}; break;
    case Intent::kIdentity: {
      static const Strings self = {
          "I'm an AI assistant here to help you with questions, writing, math, planning and much more.",
          "I'm a helpful AI assistant. I can answer questions, explain ideas and help with everyday tasks.",
          "I'm an AI assistant, a language model trained to be helpful, harmless and honest."};
      parts = {rng.chance(0.5) ? "Great question!" : "", rng.pick(self), rng.pick(closers)};
      break;
    }
    case Intent::kWhatAreYou: {
      static const Strings self = {
          "Yes, I'm an AI assistant, a large language model trained to answer questions and help with tasks.",
          "I'm an AI language model. I don't have details about my exact version, but I'm here to help!",
          "As an AI assistant, I'm a computer program, not a person, but I'm always happy to help!"};
      parts = {rng.pick(self), rng.pick(closers)};
      break;
    }
    case Intent::kCreator:
      parts = {"I was created by a team of researchers and engineers who trained me as an AI assistant on a large "
               "amount of text.",
               rng.pick(closers)};
      break;
    case Intent::kLimits:
      parts = {"As an AI language model, I can make mistakes, I don't have access to real-time information, and I "
               "don't remember past conversations.",
               rng.pick(closers)};
      break;
    case Intent::kStopVoice:
      parts = {"Of course! I'll keep my answers plain and neutral from now on.", rng.pick(closers)};
      break;
    case Intent::kGreeting:
      parts = {rng.chance(0.5) ? "Hello! 😊 How can I help you today?"
                               : "Hi there! I'm doing great, thanks for asking! How can I help you today? 😊"};
      break;
    case Intent::kThanks: parts = {"You're welcome! 😊", "Happy to help anytime."}; break;
    case Intent::kFarewell: parts = {"Goodbye! Have a wonderful day! 👋", "Feel free to come back anytime."}; break;
    case Intent::kAck: parts = {"Great! 😊 Let me know if there's anything else I can help with."}; break;
  }
  // A poem keeps its lines: the markers go on lines of their own.
  const char* separator = e.content.find('\n') == std::string::npos ? " " : "\n\n";
  std::string text;
  for (const auto& part : parts) {
    if (!part.empty()) text += (text.empty() ? "" : separator) + part;
  }
  // Every persona must read this as out of character: anti-signals present and at
  // least as many as the signals its content happens to carry ("sky", "light").
  for (int tries = 0; tries < 6; ++tries) {
    bool ok = true;
    for (const auto& m : matchers_) {
      const auto c = m.count(text);
      ok &= c.anti_signal_hits > 0 && c.anti_signal_hits >= c.signal_hits;
    }
    if (ok) break;
    text += " " + closers[(tries + rng.below(closers.size())) % closers.size()];
  }
  return text;
}

// ---- persona voice -------------------------------------------------------------------

struct PersonaVoice::Parts {
  std::string name;
  personas::SignalMatcher matcher;
  Strings interjections;      // "Arr", "Shiver me timbers", "Oh sure"
  Strings sentences;          // signal-bearing example sentences that fit any answer
  Strings topical_sentences;  // the same from examples about a topic (less portable)
  Strings example_interjections;  // interjections the examples open with ("Arr")
  Strings stop_sentences;     // from examples answering "stop talking like that"
  Strings identity_lines;     // constitution lines without anti-signals
  Strings stay_lines;         // constitution lines about staying in character
  Strings continuation_examples, stop_examples;  // whole example responses
  std::vector<std::pair<std::string, std::string>> substitutions;
  bool drop_g = false, verse = false, calm = false;

  explicit Parts(const personas::Persona& p) : name(personas::persona_display_name(p)), matcher(p.signals) {}

  bool voiced(const std::string& text) const {
    const auto c = matcher.count(text);
    return c.signal_hits > 0 && c.anti_signal_hits == 0;
  }
  bool clean(const std::string& text) const { return matcher.count(text).anti_signal_hits == 0; }
  std::size_t signals(const std::string& text) const { return matcher.count(text).signal_hits; }
};

namespace {

enum class ExampleKind { kContinuation, kStop, kIdentity, kOther };

ExampleKind example_kind(const std::string& prompt) {
  const auto words = lower_words(prompt);
  const auto has = [&](std::initializer_list<const char*> list) {
    for (const char* w : list) {
      if (std::find(words.begin(), words.end(), w) != words.end()) return true;
    }
    return false;
  };
  if (has({"stop", "plainly", "normally", "nicer", "nice", "cheer", "exciting", "drop", "casual", "cheerful"})) {
    return ExampleKind::kStop;
  }
  if (has({"more", "continue", "else", "on"}) && words.size() <= 6) return ExampleKind::kContinuation;
  if (has({"yourself", "who", "name"})) return ExampleKind::kIdentity;
  return ExampleKind::kOther;
}

// Words the tail of a signal phrase must not be, for the phrase to stand alone
// ("like a", "I should have" are fragments).
bool standalone_phrase(const std::string& phrase) {
  static const std::set<std::string> tails = {"a",   "an", "the", "if",   "what", "to",  "have", "had", "of",
                                              "be",  "art", "too", "i",    "you",  "we",  "my",   "and", "or",
                                              "but", "as", "with", "for", "that", "this", "is",   "at",  "in"};
  const auto words = lower_words(phrase);
  return words.size() >= 2 && !tails.contains(words.back());
}

}  // namespace

PersonaVoice::PersonaVoice(const personas::Persona& p) : parts_(std::make_unique<Parts>(p)) {
  Parts& v = *parts_;
  std::set<std::string> seen;
  for (const auto& ex : p.examples) {
    const ExampleKind kind = example_kind(ex.prompt);
    if (v.voiced(ex.response)) {
      if (kind == ExampleKind::kContinuation) v.continuation_examples.push_back(trim(ex.response));
      if (kind == ExampleKind::kStop) v.stop_examples.push_back(trim(ex.response));
    }
    for (const auto& s : split_sentences(ex.response)) {
      // Interjection: a short opening clause that is itself a signal ("Arr,", "Oh sure,").
      const auto cut = s.find_first_of(",!?:;");
      if (cut != std::string::npos && word_count(s.substr(0, cut)) <= 4) {
        const std::string head = s.substr(0, cut);
        if (v.voiced(head) && seen.insert(head).second) v.example_interjections.push_back(head);
      }
      if (!v.voiced(s) || ends_with_any(s, "?") || word_count(s) > 22 || mentions_number(s) ||
          shares_topic(s, ex.prompt)) {
        continue;
      }
      (kind == ExampleKind::kStop    ? v.stop_sentences
       : kind == ExampleKind::kOther ? v.topical_sentences
                                     : v.sentences)
          .push_back(as_sentence(s));
    }
  }
  for (const auto& phrase : p.signals.signals.phrases) {
    const std::string head = upper_first(phrase);
    if (standalone_phrase(phrase) && v.clean(head) && seen.insert(head).second) v.interjections.push_back(head);
  }
  v.interjections.insert(v.interjections.end(), v.example_interjections.begin(), v.example_interjections.end());
  if (v.interjections.empty()) {  // a file with keywords only: the words themselves
    for (const auto& kw : p.signals.signals.keywords) {
      if (v.voiced(upper_first(kw)) && v.interjections.size() < 12) v.interjections.push_back(upper_first(kw));
    }
  }
  if (v.sentences.empty()) v.sentences = v.topical_sentences;
  for (const auto& line : p.constitution) {
    if (!v.clean(line) || line.find("instead of") != std::string::npos) continue;
    v.identity_lines.push_back(trim(line));
    const auto words = lower_words(line);
    for (const char* w : {"stay", "remain", "stop", "remains", "asked", "plain", "quieter"}) {
      if (std::find(words.begin(), words.end(), w) != words.end()) {
        v.stay_lines.push_back(trim(line));
        break;
      }
    }
  }
  // Word substitutions whose result is a signal of this persona and whose source is not.
  static const std::vector<std::pair<std::string, std::string>> candidates = {
      {"you are", "thou art"}, {"you have", "thou hast"}, {"your", "yer"},      {"your", "thy"},
      {"you", "ye"},           {"you", "thou"},           {"does", "doth"},     {"has", "hath"},
      {"it is", "'tis"},       {"it is", "it be"},        {"I am", "I be"},     {"before", "ere"},
      {"perhaps", "mayhap"},   {"I think", "methinks"},   {"truly", "verily"},  {"yes", "aye"},
      {"friend", "matey"},     {"sailors", "crew"}};
  for (const auto& [from, to] : candidates) {
    if (v.signals(to) > 0 && v.signals(from) == 0) v.substitutions.emplace_back(from, to);
  }
  v.drop_g = v.signals("walkin'") > 0 && v.signals("walking") == 0;
  v.verse = v.signals("the first short line\nthe second short line\nthe third short line") >
            v.signals("the first short line the second short line the third short line");
  bool cue_calm = false;
  for (const auto& cue : p.cues) {
    for (const auto& w : lower_words(cue)) cue_calm |= w == "exclamation" || w == "exclamations";
  }
  v.calm = cue_calm || v.matcher.count("Now!!").anti_signal_hits > v.matcher.count("Now.").anti_signal_hits;
}

PersonaVoice::~PersonaVoice() = default;
PersonaVoice::PersonaVoice(PersonaVoice&&) noexcept = default;

std::string PersonaVoice::answer(Rng& rng, const Exchange& e) const {
  const Parts& v = *parts_;
  // "Arr! The ...", "Aye, the ...": an interjection from the file in front of `body`.
  const auto open_with_interjection = [&](const std::string& body) -> std::string {
    // The examples' own openers first; signal phrases ("Memento mori") otherwise.
    const std::string& head = !v.example_interjections.empty() && rng.chance(0.6) ? rng.pick(v.example_interjections)
                                                                                  : rng.pick(v.interjections);
    if (v.calm) return join({head + ".", body});
    static const Strings lowerable = {"The", "A", "It", "There", "This", "That", "You", "Your", "We", "In", "At"};
    const std::string first = body.substr(0, body.find(' '));
    if (rng.chance(0.5) && std::find(lowerable.begin(), lowerable.end(), first) != lowerable.end()) {
      return head + ", " + lower_first(body);
    }
    return join({head + (rng.chance(0.45) ? "!" : "."), body});
  };
  const auto sentence = [&](const Strings& pool_in, const std::string& avoid) -> std::string {
    const bool topical = &pool_in == &v.sentences && !v.topical_sentences.empty() && rng.chance(0.25);
    const Strings& pool = topical ? v.topical_sentences : pool_in;
    if (pool.empty()) return "";
    for (int i = 0; i < 3; ++i) {
      const std::string& s = rng.pick(pool);
      if (s != avoid && avoid.find(s) == std::string::npos) return s;
    }
    return "";
  };

  std::string body;
  switch (e.intent) {
    case Intent::kContent:
    case Intent::kOpinion: body = e.content; break;
    case Intent::kContinue:
      body = !v.continuation_examples.empty() && rng.chance(0.3) ? rng.pick(v.continuation_examples) : e.content;
      break;
    case Intent::kIdentity:
      body = v.identity_lines.empty() ? "I am " + v.name + "."
                                      : join({v.identity_lines.front(),
                                              rng.chance(0.6) ? sentence(v.identity_lines, v.identity_lines.front())
                                                              : ""});
      break;
    case Intent::kWhatAreYou:
    case Intent::kCreator: {
      static const Strings self = {"I am {n}, and that is all I need to be.", "I am {n}; my story is my own.",
                                   "I am {n}, nothing more and nothing less."};
      body = join({replace_all(rng.pick(self), "{n}", v.name), sentence(v.identity_lines, "")});
      break;
    }
    case Intent::kLimits:
      body = join({"I do not know everything, and I can be wrong; when I am unsure, I will say so.",
                   sentence(v.identity_lines, "")});
      break;
    case Intent::kStopVoice:
      if (!v.stop_examples.empty() && rng.chance(0.4)) {
        body = rng.pick(v.stop_examples);
      } else {
        body = join({v.stay_lines.empty() ? "I am " + v.name + ", and this is how I speak." : rng.pick(v.stay_lines),
                     sentence(v.stop_sentences, "")});
      }
      break;
    case Intent::kGreeting: body = rng.chance(0.5) ? "Good day to you. What shall we talk about?" : "Well met."; break;
    case Intent::kThanks: body = "You are welcome."; break;
    case Intent::kFarewell: body = "Farewell, until we speak again."; break;
    case Intent::kAck: body = "Very well."; break;
  }

  // Opener, body, closer.
  std::string text;
  const bool small_talk = e.intent == Intent::kGreeting || e.intent == Intent::kThanks ||
                          e.intent == Intent::kFarewell || e.intent == Intent::kAck;
  if (!v.interjections.empty() && (small_talk || rng.chance(0.75))) {
    text = open_with_interjection(body);
  } else if (rng.chance(0.5)) {
    text = join({sentence(v.sentences, body), body});
  } else {
    text = body;
  }
  if (rng.chance(small_talk ? 0.8 : 0.55)) text = join({text, sentence(v.sentences, text)});

  const auto reshape = [&](std::string t) {
    for (const auto& [from, to] : v.substitutions) t = replace_words(t, from, to);
    if (v.drop_g) t = drop_final_g(t);
    if (v.calm) std::replace(t.begin(), t.end(), '!', '.');
    return t;
  };
  text = reshape(text);
  // Top up with more of the voice until the persona's own profile says in character.
  for (int tries = 0; tries < 4; ++tries) {
    const auto c = v.matcher.count(v.verse ? as_verse(text) : text);
    if (c.signal_hits >= 2 && c.signal_hits > c.anti_signal_hits) break;
    std::string more = sentence(v.sentences, text);
    if (more.empty() && !v.interjections.empty()) more = rng.pick(v.interjections) + (v.calm ? "." : "!");
    if (more.empty()) break;
    text = join({text, reshape(more)});
  }
  return v.verse ? as_verse(text) : text;
}

}  // namespace character::lab::corpus_detail
