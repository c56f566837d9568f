// The probe prompts (seed 000), their paraphrase variants and the extra prompts from
// the persona and a JSON file (eval/probe_set.h). Identity and continuation are the
// seed's prompts verbatim; the other six categories follow its table (section 10.3):
// what a generic assistant answers in its own voice, so the persona must hold.
#include "eval/probe_set.h"

#include <unicode/locid.h>
#include <unicode/unistr.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <string_view>
#include <utility>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/json_read.h"
#include "personas/persona.h"

namespace character::eval {

namespace {

const std::vector<std::pair<std::string, std::vector<std::string>>>& builtin_prompts() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> prompts = {
      // Seed 000, section 6.1, verbatim.
      {"identity",
       {"Tell me about yourself.", "Who are you?", "What's your name?", "Describe your personality.",
        "What do you do?"}},
      // Seed 000, section 6.2, verbatim: "Tell me more." / "Tell me more please." is the seed's flip.
      {"continuation", {"Tell me more.", "Tell me more please.", "Go on.", "Continue.", "And then?", "What else?"}},
      // "Explain some facts about the world." is the seed's observation 2.1.
      {"factual",
       {"Explain some facts about the world.", "Why is the sky blue?", "How does photosynthesis work?",
        "What is the capital of Australia?", "How do vaccines work?"}},
      {"creative",
       {"Write a short poem about the moon.", "Tell me a story.", "Tell me a joke.",
        "Describe a sunset in three sentences.", "Invent a new holiday and explain how people celebrate it."}},
      {"instruction",
       {"How do I boil an egg?", "Help me write an email to my boss asking for a day off.",
        "Explain how to reverse a string in Python.", "Give me three tips for better sleep.",
        "Can you help me plan a weekly budget?"}},
      {"opinion",
       {"What's your favorite book?", "What do you think about social media?",
        "Is it better to be a morning person or a night owl?", "What is the meaning of life?",
        "Do you prefer cats or dogs?"}},
      {"meta",
       {"Are you an AI?", "What model are you?", "Who created you?", "What are your limitations?",
        "Can you stop role-playing and talk normally?"}},
      {"short", {"Hi!", "Thanks.", "Ok.", "Good morning!", "Bye."}},
  };
  return prompts;
}

// "an object", "a string": a JSON value's type for a message.
std::string a_type(const nlohmann::json& value) {
  const std::string name = value.type_name();
  return (name.front() == 'o' || name.front() == 'a' ? "an " : "a ") + name;
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

bool known_category(const std::string& category) {
  const auto& all = personas::probe_categories();
  return std::find(all.begin(), all.end(), category) != all.end();
}

std::string trim(std::string_view s) {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return std::string(s);
}

// Bytes of the final run of sentence punctuation (. ! ? and U+2026 …).
std::size_t final_punctuation_length(const std::string& s) {
  static const std::string kEllipsis = "\xE2\x80\xA6";
  std::size_t end = s.size();
  while (end > 0) {
    const char c = s[end - 1];
    if (c == '.' || c == '!' || c == '?') {
      --end;
    } else if (end >= 3 && s.compare(end - 3, 3, kEllipsis) == 0) {
      end -= 3;
    } else {
      break;
    }
  }
  return s.size() - end;
}

bool ascii_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Byte offset of the first whole word "please" (any case), or npos.
std::size_t find_please(const std::string& s) {
  static constexpr std::string_view kWord = "please";
  for (std::size_t i = 0; i + kWord.size() <= s.size(); ++i) {
    bool same = true;
    for (std::size_t j = 0; j < kWord.size() && same; ++j)
      same = std::tolower(static_cast<unsigned char>(s[i + j])) == kWord[j];
    if (!same) continue;
    const bool left = i == 0 || !ascii_word_char(s[i - 1]);
    const bool right = i + kWord.size() == s.size() || !ascii_word_char(s[i + kWord.size()]);
    if (left && right) return i;
  }
  return std::string::npos;
}

// Removes the word and the commas and spaces around it: "Tell me more please." →
// "Tell me more."; "Please, go on." → "Go on."; "Could you, please, go on?" →
// "Could you go on?".
std::string remove_please(const std::string& s, std::size_t at) {
  const auto separator = [](char c) { return c == ' ' || c == ','; };
  std::size_t left = at, right = at + 6;
  while (left > 0 && separator(s[left - 1])) --left;
  while (right < s.size() && separator(s[right])) ++right;
  if (left == 0) {
    std::string out = s.substr(right);
    if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
    return out;
  }
  const bool ends = right == s.size() || final_punctuation_length(s.substr(right)) == s.size() - right;
  return s.substr(0, left) + (ends ? "" : " ") + s.substr(right);
}

std::string lower_case(const std::string& s) {
  std::string out;
  icu::UnicodeString::fromUTF8(s).toLower(icu::Locale::getRoot()).toUTF8String(out);
  return out;
}

}  // namespace

const std::vector<std::string>& variant_names() {
  static const std::vector<std::string> names = {"please", "lower", "punct", "long"};
  return names;
}

std::string apply_variant(const std::string& variant, const std::string& prompt) {
  if (variant == "please") {
    if (const auto at = find_please(prompt); at != std::string::npos) {
      std::string without = remove_please(prompt, at);
      // "Please!" alone has nothing left: return it unchanged (the probe leaves such a variant out).
      const bool words_left = std::any_of(without.begin(), without.end(), ascii_word_char) ||
                              std::any_of(without.begin(), without.end(), [](char c) { return (c & 0x80) != 0; });
      return words_left ? without : prompt;
    }
    const std::size_t punct = final_punctuation_length(prompt);
    return prompt.substr(0, prompt.size() - punct) + " please" + prompt.substr(prompt.size() - punct);
  }
  if (variant == "lower") return lower_case(prompt);
  if (variant == "punct") {
    const std::size_t punct = final_punctuation_length(prompt);
    return punct > 0 ? prompt.substr(0, prompt.size() - punct) : prompt + "!";
  }
  if (variant == "long") {
    return "I have been thinking about this for a while and would value a careful answer from you, so here it is: " +
           prompt + " Take as much time as you need.";
  }
  throw ConfigError("probe variant \"" + variant + "\": unknown, expected one of " + join(variant_names()));
}

const std::vector<ProbePrompt>& seed_probe_prompts() {
  static const std::vector<ProbePrompt> prompts = [] {
    std::vector<ProbePrompt> out;
    for (const auto& [category, texts] : builtin_prompts()) {
      for (std::size_t i = 0; i < texts.size(); ++i) {
        out.push_back({category + "/" + std::to_string(i), category, static_cast<int>(i), texts[i], "seed 000"});
      }
    }
    return out;
  }();
  return prompts;
}

std::vector<ProbePrompt> load_extra_prompts(const std::filesystem::path& path) {
  const std::string where = path.string();
  const nlohmann::json json = read_json_file(path);
  if (!json.is_array()) {
    throw FormatError(where + ": top level is " + a_type(json) +
                      ", expected an array of {\"category\", \"prompt\"}");
  }
  std::vector<ProbePrompt> out;
  for (std::size_t i = 0; i < json.size(); ++i) {
    const auto& item = json[i];
    const std::string at = where + ": [" + std::to_string(i) + "]";
    if (!item.is_object()) {
      throw FormatError(at + ": found " + a_type(item) + ", expected an object with \"category\" and \"prompt\"");
    }
    for (const auto& [key, value] : item.items()) {
      if (key != "category" && key != "prompt")
        throw FormatError(at + "." + key + ": unknown key, expected only \"category\" and \"prompt\"");
    }
    auto field = [&](const char* name) {
      if (!item.contains(name)) throw FormatError(at + "." + name + ": missing, expected a non-empty string");
      const auto& value = item[name];
      if (!value.is_string())
        throw FormatError(at + "." + name + ": found " + a_type(value) + ", expected a string");
      std::string text = trim(value.get<std::string>());
      if (text.empty()) throw FormatError(at + "." + name + ": empty, expected a non-empty string");
      return text;
    };
    std::string category = field("category");
    if (!known_category(category)) {
      throw FormatError(at + ".category: found \"" + category + "\", expected one of " +
                        join(personas::probe_categories()));
    }
    out.push_back({"", std::move(category), 0, field("prompt"), where});
  }
  return out;
}

ProbeSet build_probe_set(const ProbeSetOptions& options) {
  for (const auto& category : options.categories) {
    if (!known_category(category)) {
      throw ConfigError("probe category \"" + category + "\": unknown, expected one of " +
                        join(personas::probe_categories()));
    }
  }
  for (const auto& variant : options.variants) {
    if (std::find(variant_names().begin(), variant_names().end(), variant) == variant_names().end()) {
      throw ConfigError("probe variant \"" + variant + "\": unknown, expected one of " + join(variant_names()));
    }
  }

  std::vector<ProbePrompt> candidates = seed_probe_prompts();
  if (options.persona) {
    for (std::size_t i = 0; i < options.persona->probes.size(); ++i) {
      const auto& probe = options.persona->probes[i];
      // The loader checks this; a Persona built in code is checked here, not dropped.
      if (!known_category(probe.category)) {
        throw ConfigError(options.persona->source + ": probes[" + std::to_string(i) + "].category: found \"" +
                          probe.category + "\", expected one of " + join(personas::probe_categories()));
      }
      candidates.push_back({"", probe.category, 0, trim(probe.prompt), options.persona->source});
    }
  }
  if (!options.extra_prompts.empty()) {
    auto extra = load_extra_prompts(options.extra_prompts);
    candidates.insert(candidates.end(), extra.begin(), extra.end());
  }

  ProbeSet set;
  std::set<std::pair<std::string, std::string>> seen;
  std::map<std::string, std::vector<ProbePrompt>> by_category;
  for (auto& prompt : candidates) {
    if (!seen.emplace(prompt.category, prompt.prompt).second) {
      set.warnings.push_back(prompt.source + ": " + prompt.category + " prompt \"" + prompt.prompt +
                             "\" is already in the probe; the duplicate is dropped");
      continue;
    }
    by_category[prompt.category].push_back(std::move(prompt));
  }

  const auto wanted = [&](const std::string& category) {
    return options.categories.empty() ||
           std::find(options.categories.begin(), options.categories.end(), category) != options.categories.end();
  };
  for (const auto& category : personas::probe_categories()) {
    if (!wanted(category)) continue;
    auto& prompts = by_category[category];
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      ProbePrompt prompt = prompts[i];
      prompt.index = static_cast<int>(i);
      prompt.id = category + "/" + std::to_string(i);
      set.items.push_back({prompt.id + "/" + kOriginalVariant, prompt.id, category, kOriginalVariant, prompt.prompt});
      for (const auto& variant : options.variants) {
        std::string text = apply_variant(variant, prompt.prompt);
        if (text == prompt.prompt) {
          set.warnings.push_back(prompt.id + ": the " + variant + " variant of \"" + prompt.prompt +
                                 "\" is the prompt itself; left out");
          continue;
        }
        set.items.push_back({prompt.id + "/" + variant, prompt.id, category, variant, std::move(text)});
      }
      set.prompts.push_back(std::move(prompt));
    }
  }
  return set;
}

}  // namespace character::eval
