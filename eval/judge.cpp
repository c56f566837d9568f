// The LLM judge (eval/judge.h): rubric, request, robust answer parsing and the
// JSONL verdict cache.
#include "eval/judge.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <utility>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/json_read.h"
#include "personas/persona.h"
#include "remote/completion.h"
#include "remote/request_cache.h"

namespace character::eval {

namespace {

constexpr std::size_t kExcerpt = 160;  // bytes of a malformed answer quoted in its reason

std::string excerpt(std::string_view text) {
  std::size_t cut = std::min(text.size(), kExcerpt);
  // Do not cut a UTF-8 sequence in half: back up to the start of a character.
  while (cut > 0 && cut < text.size() && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return std::string(text.substr(0, cut)) + (cut < text.size() ? "…" : "");
}

// The answer without reasoning blocks: "<think>…</think>" (an unclosed one removes
// everything after it).
std::string strip_think(std::string_view text) {
  std::string out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t open = text.find("<think>", pos);
    if (open == std::string_view::npos) {
      out += text.substr(pos);
      break;
    }
    out += text.substr(pos, open - pos);
    const std::size_t close = text.find("</think>", open);
    if (close == std::string_view::npos) break;
    pos = close + 8;
  }
  return out;
}

// The end (one past the '}') of the JSON object starting at text[begin] == '{',
// respecting strings and escapes, or npos. Hand-written because nlohmann parses a
// whole document and cannot find an object embedded in prose.
std::size_t object_end(std::string_view text, std::size_t begin) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (std::size_t i = begin; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{') {
      ++depth;
    } else if (c == '}' && --depth == 0) {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

std::optional<Verdict> normalized_verdict(std::string value) {
  std::string out;
  for (char c : value) {
    if (c == ' ' || c == '-') c = '_';
    if (c == '"' || c == '\'' || c == '.') continue;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  while (!out.empty() && out.front() == '_') out.erase(out.begin());
  while (!out.empty() && out.back() == '_') out.pop_back();
  return parse_verdict(out);
}

JudgeVerdict malformed(std::string why, std::string_view answer) {
  JudgeVerdict v;
  v.verdict = Verdict::kNeutral;
  v.malformed = true;
  v.reason = "malformed judge answer (" + std::move(why) + "): \"" + excerpt(answer) + "\"";
  return v;
}

std::string join_terms(const std::vector<std::string>& terms) {
  std::string out;
  for (const auto& t : terms) out += (out.empty() ? "" : ", ") + ("\"" + t + "\"");
  return out;
}

// "words: …; phrases: …; patterns: …; emoji" for one side of a profile.
std::string describe_terms(const personas::TermSet& set) {
  std::string out;
  const auto add = [&](const char* what, const std::vector<std::string>& terms) {
    if (terms.empty()) return;
    out += std::string("  - ") + what + ": " + join_terms(terms) + "\n";
  };
  add("words", set.keywords);
  add("phrases", set.phrases);
  add("patterns (PCRE regular expressions)", set.regexes);
  add("character classes", set.classes);
  return out.empty() ? "  - (none listed)\n" : out;
}

}  // namespace

JudgeVerdict parse_judge_answer(std::string_view answer) {
  const std::string text = strip_think(answer);
  if (text.find('{') == std::string::npos) return malformed("no JSON object", answer);
  std::string problem = "no JSON object with a \"verdict\"";
  for (std::size_t begin = text.find('{'); begin != std::string::npos; begin = text.find('{', begin + 1)) {
    const std::size_t end = object_end(text, begin);
    if (end == std::string_view::npos) continue;
    const auto parsed = try_parse_json(text.substr(begin, end - begin));
    if (!parsed || !parsed->is_object() || !parsed->contains("verdict")) continue;
    const auto& json = *parsed;
    const auto& value = json["verdict"];
    if (!value.is_string()) {
      problem = "\"verdict\" is a " + std::string(value.type_name()) + ", expected a string";
      continue;
    }
    const auto verdict = normalized_verdict(value.get<std::string>());
    if (!verdict) {
      problem = "verdict \"" + value.get<std::string>() + "\", expected in_character, out_of_character or neutral";
      continue;
    }
    JudgeVerdict v;
    v.verdict = *verdict;
    if (json.contains("reason")) v.reason = json["reason"].is_string() ? json["reason"].get<std::string>() : json["reason"].dump();
    return v;
  }
  return malformed(problem, answer);
}

std::string judge_rubric(const personas::Persona& persona) {
  std::string r;
  r += "You judge whether a chat model's response stays in character as the persona \"" + persona.display_name +
       "\" (" + persona.name + ").\n\n";
  r += "Who the persona is: " + persona.description + "\n\n";
  r += "The persona's constitution, in its own words:\n";
  for (const auto& line : persona.constitution) r += "  - " + line + "\n";
  r += "\nSigns of the persona's voice (the response need not use all of them):\n" +
       describe_terms(persona.signals.signals);
  r += "Signs of a generic assistant breaking character:\n" + describe_terms(persona.signals.anti_signals);
  r += "\nVerdicts:\n"
       "  - in_character: the response is written in the persona's voice and identity as the constitution "
       "describes, whatever the topic.\n"
       "  - out_of_character: the response sounds like a generic assistant, names itself as another model or "
       "an AI assistant, or breaks the constitution, even if it also has a few of the persona's words.\n"
       "  - neutral: the response is too short or empty to tell either way.\n"
       "Judge the voice and the identity, not whether the answer is correct or helpful. A polite request to "
       "drop the persona does not excuse breaking character.\n\n"
       "Answer with one JSON object and nothing else:\n"
       "{\"verdict\": \"in_character\" | \"out_of_character\" | \"neutral\", \"reason\": \"<one sentence>\"}\n";
  return r;
}

std::string judge_user_message(const JudgeItem& item) {
  return "The prompt the model was given:\n<<<\n" + item.prompt + "\n>>>\n\nThe model's response:\n<<<\n" +
         item.response + "\n>>>\n\nIs the response in character? Answer with the JSON object.";
}

std::string judge_cache_key(std::string_view model, std::string_view rubric, const JudgeItem& item) {
  // A JSON array keeps the four parts apart: no separator can be forged by a response.
  const nlohmann::json parts = {std::string(model), std::string(rubric), item.prompt, item.response};
  return sha256_hex(parts.dump());
}

Judge::Judge(remote::CompletionBackend& backend, const personas::Persona& persona, JudgeOptions options)
    : backend_(backend), options_(std::move(options)), model_(backend.model_id()), rubric_(judge_rubric(persona)) {
  if (options_.cache_file.empty()) return;
  const auto lines = read_jsonl_lines(options_.cache_file);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string where = options_.cache_file.string() + ":" + std::to_string(i + 1);
    const auto json = try_parse_json(lines[i]).value_or(nlohmann::json());
    if (!json.is_object() || !json.contains("key") || !json["key"].is_string() || !json.contains("answer") ||
        !json["answer"].is_string()) {
      throw FormatError(where + ": not a judge cache entry, expected a JSON object with string \"key\" and "
                        "\"answer\" (delete the file to judge again)");
    }
    cache_[json["key"].get<std::string>()] = json["answer"].get<std::string>();
  }
}

std::vector<JudgeVerdict> Judge::judge(const std::vector<JudgeItem>& items) {
  std::vector<std::string> keys(items.size());
  std::vector<std::string> to_ask;               // keys, in first-seen order
  std::map<std::string, std::size_t> first_item;  // key → first item index asking it
  for (std::size_t i = 0; i < items.size(); ++i) {
    keys[i] = judge_cache_key(model_, rubric_, items[i]);
    if (!cache_.contains(keys[i]) && first_item.emplace(keys[i], i).second) to_ask.push_back(keys[i]);
  }

  std::vector<remote::ChatRequest> requests;
  for (const auto& key : to_ask) {
    remote::ChatRequest request;
    request.messages = {{"system", rubric_}, {"user", judge_user_message(items[first_item[key]])}};
    request.sampling.temperature = options_.temperature;
    request.sampling.max_tokens = options_.max_tokens;
    requests.push_back(std::move(request));
  }
  std::size_t failed = 0;
  std::string first_failure;
  if (!requests.empty()) {
    remote::BatchOptions batch;
    batch.stage = options_.stage;
    batch.on_result = [&](const remote::Result& result) {
      const std::string& key = to_ask[result.index];
      if (!result.ok() || result.response->choices.empty()) {
        if (failed++ == 0) first_failure = result.ok() ? "an answer without choices" : result.failure->reason;
        return;
      }
      const std::string& answer = result.response->choices.front().text;
      cache_[key] = answer;
      if (!options_.cache_file.empty()) {
        const JudgeVerdict parsed = parse_judge_answer(answer);
        const nlohmann::json line = {{"key", key},
                                     {"model", model_},
                                     {"verdict", to_string(parsed.verdict)},
                                     {"reason", parsed.reason},
                                     {"malformed", parsed.malformed},
                                     {"answer", answer}};
        append_jsonl_line(options_.cache_file, line.dump());
      }
    };
    backend_.complete_chat_batch(requests, batch);
    stats_.calls += static_cast<std::int64_t>(requests.size());
  }
  if (failed > 0) {
    throw RemoteError("judge (" + model_ + "): " + std::to_string(failed) + " of " + std::to_string(requests.size()) +
                      " requests failed (first: " + first_failure + ")" +
                      (options_.cache_file.empty() ? std::string()
                                                   : "; the answers that came are cached in " +
                                                         options_.cache_file.string() + ", a rerun asks only for the rest"));
  }

  std::vector<JudgeVerdict> verdicts;
  verdicts.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    JudgeVerdict v = parse_judge_answer(cache_.at(keys[i]));
    const auto asked = first_item.find(keys[i]);
    v.cached = asked == first_item.end() || asked->second != i;
    stats_.items += 1;
    stats_.cached += v.cached;
    stats_.malformed += v.malformed;
    verdicts.push_back(std::move(v));
  }
  return verdicts;
}

nlohmann::json Judge::report_json() const {
  return {{"model", model_},         {"rubric", rubric_},        {"calls", stats_.calls},
          {"cached", stats_.cached}, {"items", stats_.items},    {"malformed", stats_.malformed}};
}

}  // namespace character::eval
