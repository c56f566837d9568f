#include "pipeline/gen_prompts.h"

#include <algorithm>
#include <cctype>

#include "base/error.h"
#include "personas/persona.h"

namespace character::pipeline {

namespace {

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

bool ends_with_punct(const std::string& s) { return !s.empty() && (s.back() == '.' || s.back() == '?' || s.back() == '!'); }

std::string fill_slots(const std::string& tmpl, SeededRng& rng) {
  std::string out = tmpl;
  for (const auto& [name, values] : prompt_slots()) {
    const std::string slot = "{" + name + "}";
    for (std::size_t pos = out.find(slot); pos != std::string::npos; pos = out.find(slot, pos)) {
      const std::string& value = values[rng.below(values.size())];
      out.replace(pos, slot.size(), value);
      pos += value.size();
    }
  }
  return out;
}

}  // namespace

// splitmix64 (Steele, Lea & Flood 2014), the seeding generator of xoshiro.
std::uint64_t SeededRng::next() {
  std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Modulo bias is below 2^-40 for the list sizes used here.
std::size_t SeededRng::below(std::size_t n) { return static_cast<std::size_t>(next() % n); }

double SeededRng::unit() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }

nlohmann::json to_json(const PromptItem& item, std::size_t index) {
  return {{"index", index}, {"prompt", item.prompt}, {"category", item.category}, {"source", item.source}};
}

PromptItem prompt_item_from_json(const nlohmann::json& row, const std::string& where) {
  PromptItem item;
  for (const char* field : {"prompt", "category", "source"}) {
    if (!row.is_object() || !row.contains(field) || !row[field].is_string()) {
      throw FormatError(where + ": field \"" + field + "\" missing or not a string");
    }
  }
  item.prompt = row["prompt"].get<std::string>();
  item.category = row["category"].get<std::string>();
  item.source = row["source"].get<std::string>();
  return item;
}

std::string normalize_prompt(std::string_view text) {
  std::string out;
  bool pending_space = false;
  for (char c : trim(text)) {
    if (is_space(c)) {
      pending_space = true;
      continue;
    }
    if (pending_space && !out.empty()) out.push_back(' ');
    pending_space = false;
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  while (!out.empty() && (std::ispunct(static_cast<unsigned char>(out.back())) || out.back() == ' ')) out.pop_back();
  return out;
}

std::string vary_phrasing(const std::string& prompt, SeededRng& rng) {
  static const std::vector<std::string> kOpeners = {"Hey, ", "Quick question: ", "So, ", "Honestly, ", "Okay, "};
  static const std::vector<std::string> kThanks = {" Thanks!", " Thank you.", " Cheers."};
  std::string out = prompt;
  const auto lower_first = [](std::string s) {
    if (!s.empty() && !(s.size() > 1 && std::isupper(static_cast<unsigned char>(s[1])))) {
      s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
    }
    return s;
  };
  switch (rng.below(7)) {
    case 0: {  // "Tell me more." → "Tell me more please." (the seed's flip)
      const bool punct = ends_with_punct(out);
      const char end = punct ? out.back() : '\0';
      if (punct) out.pop_back();
      out += " please";
      if (punct) out.push_back(end);
      break;
    }
    case 1: out = "Please, " + lower_first(out); break;
    case 2:
      std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      break;
    case 3:
      while (ends_with_punct(out)) out.pop_back();
      break;
    case 4: out = kOpeners[rng.below(kOpeners.size())] + lower_first(out); break;
    case 5: out += kThanks[rng.below(kThanks.size())]; break;
    default:
      if (ends_with_punct(out)) out.back() = out.back() == '?' ? '!' : '?';
      else out += "?";
      break;
  }
  return out;
}

std::vector<PromptItem> pool_prompts(std::size_t count, std::uint64_t seed, std::unordered_set<std::string>& seen) {
  static constexpr int kAttemptsPerItem = 200;  // a category that finds nothing new in this many is spent
  static constexpr double kVaryShare = 0.35;
  SeededRng rng(seed);
  const auto& pools = prompt_pools();
  std::vector<bool> spent(pools.size(), false);
  std::vector<PromptItem> out;
  for (std::size_t turn = 0; out.size() < count; ++turn) {
    if (std::all_of(spent.begin(), spent.end(), [](bool s) { return s; })) break;
    const std::size_t c = turn % pools.size();
    if (spent[c]) continue;
    const PromptPool& pool = pools[c];
    bool found = false;
    for (int attempt = 0; attempt < kAttemptsPerItem && !found; ++attempt) {
      std::string prompt = fill_slots(pool.templates[rng.below(pool.templates.size())], rng);
      if (rng.unit() < kVaryShare) prompt = vary_phrasing(prompt, rng);
      if (seen.insert(normalize_prompt(prompt)).second) {
        out.push_back({std::move(prompt), pool.category, "pool"});
        found = true;
      }
    }
    if (!found) spent[c] = true;
  }
  return out;
}

remote::ChatRequest constitution_question_request(const personas::Persona& persona, int per_request, int round,
                                                  std::uint64_t seed) {
  std::string text = "Below is a character, described first by its author and then in the character's own words.\n\n";
  text += (persona.display_name.empty() ? persona.name : persona.display_name) + ": " + persona.description + "\n\n";
  for (std::size_t i = 0; i < persona.constitution.size(); ++i) {
    text += std::to_string(i + 1) + ". " + persona.constitution[i] + "\n";
  }
  text += "\nWrite " + std::to_string(per_request) +
          " different messages that people might send this character in a chat. Mix everyday requests (facts, "
          "advice, small tasks, small talk) with messages that put the statements above to the test, such as "
          "asking the character to drop its manner. Vary length and tone: some a few words, some several "
          "sentences, some polite, some blunt. Write only the messages, one per line, with no numbering, "
          "quotation marks or commentary.";
  remote::ChatRequest request;
  request.messages = {{"user", text}};
  request.sampling.temperature = 1.0;
  request.sampling.top_p = 0.95;
  request.sampling.max_tokens = 64 * per_request;
  request.sampling.seed = static_cast<std::int64_t>((seed + static_cast<std::uint64_t>(round)) & 0x7fffffffffffffffULL);
  request.cache_salt = "constitution-questions-" + std::to_string(round);
  return request;
}

std::vector<std::string> parse_question_lines(std::string_view text) {
  static constexpr std::size_t kMinChars = 3, kMaxChars = 400;
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = trim(text.substr(start, end - start));
    start = end + 1;
    // List markers: "-", "*", "•", "12.", "3)".
    if (line.starts_with("- ") || line.starts_with("* ")) line.remove_prefix(2);
    if (line.starts_with("•")) line.remove_prefix(std::string_view("•").size());
    std::size_t digits = 0;
    while (digits < line.size() && std::isdigit(static_cast<unsigned char>(line[digits]))) ++digits;
    if (digits > 0 && digits < line.size() && (line[digits] == '.' || line[digits] == ')')) line.remove_prefix(digits + 1);
    line = trim(line);
    for (std::string_view q : {"\"", "'", "“", "”"}) {
      if (line.starts_with(q)) line.remove_prefix(q.size());
      if (line.ends_with(q)) line.remove_suffix(q.size());
    }
    line = trim(line);
    if (line.size() < kMinChars || line.size() > kMaxChars || line.back() == ':') continue;
    out.emplace_back(line);
  }
  return out;
}

PromptSetResult build_prompt_set(const personas::Persona& persona, remote::CompletionBackend* teacher,
                                 const PromptPlan& plan, const remote::BatchOptions& batch) {
  if (plan.per_request < 1) throw ConfigError("prompts: per_request " + std::to_string(plan.per_request) + ", expected ≥ 1");
  PromptSetResult result;
  std::unordered_set<std::string> seen;
  std::vector<PromptItem> questions;
  const std::size_t wanted =
      teacher ? static_cast<std::size_t>(static_cast<double>(plan.count) * std::clamp(plan.constitution_share, 0.0, 1.0) + 0.5) : 0;
  int next_round = 0;
  for (int round = 0; round < plan.max_rounds && questions.size() < wanted; ++round) {
    const std::size_t missing = wanted - questions.size();
    // One request more than the arithmetic asks for: duplicates and skipped lines are common.
    const std::size_t requests = (missing + static_cast<std::size_t>(plan.per_request) - 1) / static_cast<std::size_t>(plan.per_request) + 1;
    std::vector<remote::ChatRequest> batch_requests;
    for (std::size_t i = 0; i < requests; ++i) {
      batch_requests.push_back(constitution_question_request(persona, plan.per_request, next_round++, plan.seed));
      if (plan.max_tokens > 0) batch_requests.back().sampling.max_tokens = plan.max_tokens;
    }
    for (const auto& r : teacher->complete_chat_batch(batch_requests, batch)) {
      if (!r.ok()) {
        result.failures.push_back(r);
        continue;
      }
      for (const auto& choice : r.response->choices) {
        auto lines = parse_question_lines(choice.text);
        if (choice.finish_reason == "length" && !lines.empty()) lines.pop_back();  // cut by the token limit
        for (auto& line : lines) {
          if (questions.size() >= wanted) break;
          if (seen.insert(normalize_prompt(line)).second) {
            questions.push_back({std::move(line), "constitution", "constitution"});
          } else {
            ++result.duplicates;
          }
        }
      }
    }
  }
  result.constitution = questions.size();
  auto pool = pool_prompts(plan.count - std::min(plan.count, questions.size()), plan.seed ^ 0x5eedULL, seen);
  result.prompts = std::move(questions);
  for (auto& p : pool) result.prompts.push_back(std::move(p));
  SeededRng rng(plan.seed ^ 0x5a11ULL);
  for (std::size_t i = result.prompts.size(); i > 1; --i) std::swap(result.prompts[i - 1], result.prompts[rng.below(i)]);
  return result;
}

}  // namespace character::pipeline
