// The optional LLM judge: asks a model behind remote::CompletionBackend (the
// teacher client) whether each probe response is in character, with a rubric built
// from the persona's constitution and signal profile. Answers are cached in a JSONL
// file keyed by SHA-256 of (model, rubric, prompt, response), so a rerun of an eval
// makes no calls for what it has already judged (docs/eval.md, "The judge").
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "eval/scoring.h"

namespace character::personas {
struct Persona;
}
namespace character::remote {
class CompletionBackend;
}

namespace character::eval {

// The cache's file name inside an eval's out directory.
inline constexpr const char* kJudgeCacheFile = "judge_cache.jsonl";

struct JudgeOptions {
  std::filesystem::path cache_file{};  // JSONL; empty: no cache
  std::string stage = "judge";       // the backend's usage accounting stage
  int max_tokens = 256;
  double temperature = 0.0;          // greedy: the same question gets the same verdict
};

struct JudgeItem {
  std::string prompt;    // the probe prompt as the model saw it
  std::string response;  // the model's answer
};

struct JudgeVerdict {
  Verdict verdict = Verdict::kNeutral;
  std::string reason;
  bool malformed = false;  // the answer had no usable JSON verdict: neutral, reason says why
  bool cached = false;     // answered from the cache (or by an identical item of the same call)
};

struct JudgeStats {
  std::int64_t items = 0;      // verdicts asked for
  std::int64_t calls = 0;      // requests sent to the backend
  std::int64_t cached = 0;     // verdicts that needed no request
  std::int64_t malformed = 0;  // verdicts from malformed answers (counted per item)
};

// The parsed judge answer. Tolerates <think>…</think> blocks, ``` fences and prose
// around the JSON object; "In Character" / "in-character" normalise to in_character.
// An answer without a JSON object whose "verdict" is one of the three is malformed:
// neutral, with a reason quoting the start of the answer.
JudgeVerdict parse_judge_answer(std::string_view answer);

// The rubric (the judge's system message): the persona's description, constitution,
// signal and anti-signal terms, the three verdicts and the answer format.
std::string judge_rubric(const personas::Persona& persona);
// The user message for one item: the prompt and the response, delimited.
std::string judge_user_message(const JudgeItem& item);
// Lower-case hex SHA-256 of the JSON array [model, rubric, prompt, response].
std::string judge_cache_key(std::string_view model, std::string_view rubric, const JudgeItem& item);

class Judge {
 public:
  // Reads the cache file when it exists; FormatError naming file:line for a line
  // that is not a cache entry. `backend` must outlive the judge.
  Judge(remote::CompletionBackend& backend, const personas::Persona& persona, JudgeOptions options = {});

  // One verdict per item, in order. Items already in the cache, or repeated within
  // `items`, cost no request; the rest go to the backend as one batch, and each
  // answer is appended to the cache as it arrives. RemoteError after the batch when
  // some requests failed (the answers that came are cached: a rerun asks only for
  // the rest). Not thread-safe.
  std::vector<JudgeVerdict> judge(const std::vector<JudgeItem>& items);

  const std::string& rubric() const { return rubric_; }
  const std::string& model() const { return model_; }
  const JudgeStats& stats() const { return stats_; }
  // The report's "judge" block: {"model", "rubric", "calls", "cached", "items", "malformed"}.
  nlohmann::json report_json() const;

 private:
  remote::CompletionBackend& backend_;
  JudgeOptions options_;
  std::string model_;
  std::string rubric_;
  std::map<std::string, std::string> cache_;  // key → raw answer text
  JudgeStats stats_;
};

}  // namespace character::eval
