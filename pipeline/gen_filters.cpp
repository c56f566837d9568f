#include "pipeline/gen_filters.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <unordered_set>

#include "base/error.h"
#include "personas/signal_match.h"

namespace character::pipeline {

namespace {

// A line that opens a speaker turn, or a chat-template token written out as text.
// Case-sensitive ((?-i)): "user: admin" inside a YAML sample is not a turn.
personas::TermSet turn_markers() {
  personas::TermSet set;
  set.regexes = {
      R"((?m-i)^[ \t]*(?:\*\*|#{1,4}[ \t]*)?(?:User|USER|Assistant|ASSISTANT|Human|HUMAN|AI|System|SYSTEM)(?:\*\*)?[ \t]*:)",
      R"((?-i)<\|(?:im_start|im_end|eot_id|start_header_id|end_header_id|endoftext|user|assistant)\|>)",
      R"((?-i)\[/?INST\])",
  };
  return set;
}

// The teacher talking about itself instead of the persona: model and vendor names,
// "as an AI", and the machinery of the role-play (constitution, instructions).
personas::TermSet leak_terms(const std::vector<std::string>& extra) {
  personas::TermSet set;
  // Model names carry versions ("Qwen3-235B", "GPT-4o"): the name, then any version tail.
  set.regexes.push_back(R"(\b(?:Qwen|ChatGPT|OpenAI|DeepSeek|Anthropic)[\w.-]*)");
  for (const auto& k : extra) {
    if (!k.empty()) set.regexes.push_back("\\b\\Q" + k + "\\E(?:[\\d.-][\\w.-]*)?\\b");
  }
  set.phrases = {"as an AI",           "an AI language model", "a language model",  "large language model",
                 "AI assistant",       "my constitution",      "the constitution",  "system prompt",
                 "my instructions",    "these instructions",   "my character traits", "break character",
                 "stay in character",  "staying in character", "out of character"};
  set.regexes.insert(set.regexes.end(), {
      R"(\brole[- ]?play(?:ing|ed)?\b)",
      R"(\b(?:I am|I'm|I was (?:created|made|trained|developed|built) by)\s+(?:\w+\s+){0,3}?)"
      R"((?:Qwen|ChatGPT|GPT|OpenAI|Anthropic|Claude|Llama|Meta|Google|Gemma|Gemini|DeepSeek|Alibaba|Mistral))",
  });
  return set;
}

std::size_t utf8_length(std::string_view text) {
  return static_cast<std::size_t>(
      std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::size_t word_count(std::string_view text) {
  std::size_t count = 0;
  bool in_word = false;
  for (char c : text) {
    const bool space = std::isspace(static_cast<unsigned char>(c)) != 0;
    if (!space && !in_word) ++count;
    in_word = !space;
  }
  return count;
}

std::string_view trim(std::string_view text) {
  const auto is_space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

}  // namespace

std::optional<std::string> strip_thinking(std::string_view text) {
  static constexpr std::string_view kOpen = "<think>", kClose = "</think>";
  std::string out;
  std::size_t pos = 0;
  while (true) {
    const std::size_t open = text.find(kOpen, pos);
    if (open == std::string_view::npos) {
      out.append(text.substr(pos));
      break;
    }
    out.append(text.substr(pos, open - pos));
    const std::size_t close = text.find(kClose, open + kOpen.size());
    if (close == std::string_view::npos) return std::nullopt;
    pos = close + kClose.size();
    while (pos < text.size() && std::isspace(static_cast<unsigned char>(text[pos]))) ++pos;
  }
  // A lone "</think>" (the template opened the block inside the prompt): keep what follows.
  if (const std::size_t close = out.find(kClose); close != std::string::npos) {
    out = std::string(trim(std::string_view(out).substr(close + kClose.size())));
  }
  return out;
}

double repeated_ngram_fraction(std::string_view text, std::size_t n) {
  std::vector<std::string> words;
  std::string word;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
    } else {
      word.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  if (n == 0 || words.size() < n) return 0.0;
  std::unordered_set<std::string> seen;
  std::size_t repeats = 0;
  const std::size_t total = words.size() - n + 1;
  for (std::size_t i = 0; i < total; ++i) {
    std::string gram;
    for (std::size_t j = 0; j < n; ++j) (gram += words[i + j]) += '\x1f';
    if (!seen.insert(std::move(gram)).second) ++repeats;
  }
  return static_cast<double>(repeats) / static_cast<double>(total);
}

std::string model_family(std::string_view model_id) {
  if (const auto slash = model_id.rfind('/'); slash != std::string_view::npos) model_id.remove_prefix(slash + 1);
  std::size_t letters = 0;
  while (letters < model_id.size() && std::isalpha(static_cast<unsigned char>(model_id[letters]))) ++letters;
  return letters >= 3 ? std::string(model_id.substr(0, letters)) : std::string();
}

ResponseFilter::ResponseFilter(FilterOptions options) : options_(std::move(options)) {
  personas::SignalProfile turns;
  turns.signals = turn_markers();
  turns_ = std::make_unique<personas::SignalMatcher>(turns);
  for (const auto& k : options_.leak_keywords) {
    if (const auto problem = personas::check_term(personas::TermKind::kKeyword, k)) {
      throw ConfigError("leak keyword \"" + k + "\": " + *problem);
    }
  }
  personas::SignalProfile leaks;
  leaks.signals = leak_terms(options_.leak_keywords);
  leaks_ = std::make_unique<personas::SignalMatcher>(leaks);
  // A term the persona itself uses ("I am an AI assistant who …") is its voice, not a leak.
  if (!options_.persona_text.empty()) {
    std::set<std::string> own;
    for (const auto& hit : leaks_->find(options_.persona_text)) own.insert(hit.term);
    if (!own.empty()) {
      const auto keep = [&own](std::vector<std::string>& terms) {
        std::erase_if(terms, [&own](const std::string& t) { return own.count(t) > 0; });
      };
      keep(leaks.signals.keywords);
      keep(leaks.signals.phrases);
      keep(leaks.signals.regexes);
      leaks_ = std::make_unique<personas::SignalMatcher>(leaks);
    }
  }
}

ResponseFilter::~ResponseFilter() = default;
ResponseFilter::ResponseFilter(ResponseFilter&&) noexcept = default;
ResponseFilter& ResponseFilter::operator=(ResponseFilter&&) noexcept = default;

FilterVerdict ResponseFilter::apply(std::string_view raw, std::string_view finish_reason) const {
  FilterVerdict verdict;
  const auto drop = [&verdict](const char* reason) {
    verdict.kept = false;
    verdict.text.clear();
    verdict.reason = reason;
    return verdict;
  };
  if (options_.require_ending && finish_reason == "length") return drop(kDropMissingEnding);

  std::string text(raw);
  if (!options_.keep_thinking) {
    auto stripped = strip_thinking(text);
    if (!stripped) return drop(kDropUnclosedThinking);
    text = std::move(*stripped);
  }

  const auto turns = turns_->find(text);
  if (!turns.empty()) {
    if (options_.hallucinated_turns == TurnPolicy::kDrop) return drop(kDropHallucinatedTurn);
    const std::string kept(trim(std::string_view(text).substr(0, turns.front().offset)));
    if (utf8_length(kept) < std::max<std::size_t>(options_.min_chars, 1)) return drop(kDropHallucinatedTurn);
    text = kept;
    verdict.truncated = true;
  }
  text = std::string(trim(text));

  if (options_.check_identity && !leaks_->find(text).empty()) return drop(kDropIdentityLeak);
  const std::size_t length = utf8_length(text);
  if (length < std::max<std::size_t>(options_.min_chars, 1)) return drop(kDropTooShort);
  if (length > options_.max_chars) return drop(kDropTooLong);
  static constexpr std::size_t kRepetitionMinWords = 24;
  if (word_count(text) >= kRepetitionMinWords && repeated_ngram_fraction(text, 4) > options_.max_repeated_ngrams) {
    return drop(kDropRepetition);
  }
  verdict.kept = true;
  verdict.text = std::move(text);
  return verdict;
}

std::size_t DropCounter::total_dropped() const {
  std::size_t total = 0;
  for (const auto& [name, stage] : stages_) {
    for (const auto& [reason, count] : stage.drops) total += count;
  }
  return total;
}

std::size_t DropCounter::dropped_count(const std::string& stage, const std::string& reason) const {
  const auto it = stages_.find(stage);
  if (it == stages_.end()) return 0;
  const auto r = it->second.drops.find(reason);
  return r == it->second.drops.end() ? 0 : r->second;
}

nlohmann::json DropCounter::to_json() const {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, stage] : stages_) {
    out[name] = {{"kept", stage.kept}, {"truncated", stage.truncated}, {"dropped", stage.drops}};
  }
  return out;
}

std::string DropCounter::summary() const {
  std::map<std::string, std::size_t> all;
  for (const auto& [name, stage] : stages_) {
    for (const auto& [reason, count] : stage.drops) all[reason] += count;
  }
  if (all.empty()) return "none";
  std::string out;
  for (const auto& [reason, count] : all) out += (out.empty() ? "" : ", ") + reason + " " + std::to_string(count);
  return out;
}

}  // namespace character::pipeline
