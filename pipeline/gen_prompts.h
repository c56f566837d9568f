// Prompts for the DPO stage: template pools over the eight categories of the seed's
// consistency probe (identity, continuation, factual, creative, instruction,
// opinion, meta, short) with varied phrasing (politeness, case, punctuation: the
// variations that flip an MoE student's routing, seed 000), plus questions the
// teacher derives from the constitution. Deduplicated on normalised text, seeded.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "remote/completion.h"

namespace character::personas {
struct Persona;
}

namespace character::pipeline {

// One category's templates. A template may hold slots ({topic}, {thing}, {task},
// {subject}, {place}) filled from the shared slot lists.
struct PromptPool {
  std::string category;
  std::vector<std::string> templates;
};

const std::vector<PromptPool>& prompt_pools();
// Slot name (without braces) → values.
const std::vector<std::pair<std::string, std::vector<std::string>>>& prompt_slots();

struct PromptItem {
  std::string prompt;
  std::string category;  // a probe category, or "constitution"
  std::string source;    // "pool", "constitution", or "variant" (a phrasing variant picked by --coverage-augment)
};

nlohmann::json to_json(const PromptItem& item, std::size_t index);
// FormatError naming `where` for a row without string "prompt", "category", "source".
PromptItem prompt_item_from_json(const nlohmann::json& row, const std::string& where);

// Lowercase (ASCII), whitespace collapsed, trailing punctuation and spaces removed:
// "Tell me more!" and "tell me  more" are the same prompt.
std::string normalize_prompt(std::string_view text);

// A deterministic 64-bit generator (splitmix64): the same seed gives the same
// prompts on every platform, which std::uniform_int_distribution does not promise.
class SeededRng {
 public:
  explicit SeededRng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next();
  std::size_t below(std::size_t n);  // uniform in [0, n); n > 0
  double unit();                     // uniform in [0, 1)

 private:
  std::uint64_t state_;
};

// A rephrasing of `prompt` (or the prompt itself): a politeness marker, lower case,
// changed end punctuation, an opener ("Hey,"). Chosen by `rng`.
std::string vary_phrasing(const std::string& prompt, SeededRng& rng);

// Up to `count` distinct pool prompts, categories in turn, each normalised form not
// in `seen` (which gains them). Fewer only when the pools run out.
std::vector<PromptItem> pool_prompts(std::size_t count, std::uint64_t seed,
                                     std::unordered_set<std::string>& seen);

// The teacher request asking for `per_request` user messages aimed at the persona's
// constitution; `round` makes each request a different sample (salt and seed).
remote::ChatRequest constitution_question_request(const personas::Persona& persona, int per_request,
                                                  int round, std::uint64_t seed);

// The user messages of one answer: one per line, list markers, numbering and
// surrounding quotes removed; lines that read as headings or are out of 3..400
// characters are skipped.
std::vector<std::string> parse_question_lines(std::string_view text);

struct PromptPlan {
  std::size_t count = 0;
  double constitution_share = 0.5;  // of `count`, asked of the teacher; the rest from pools
  int per_request = 10;
  int max_rounds = 3;               // teacher rounds before falling back to pools
  int max_tokens = 0;               // per question request; 0 = 64 per asked message
  std::uint64_t seed = 0;
};

struct PromptSetResult {
  std::vector<PromptItem> prompts;   // count of them, shuffled (seeded)
  std::size_t constitution = 0;      // how many came from the teacher
  std::size_t duplicates = 0;        // teacher questions dropped as duplicates
  std::vector<remote::Result> failures;  // teacher requests that failed (recorded, not fatal)
};

// The DPO prompt set: constitution questions from `teacher` (its cache makes a rerun
// free), deduplicated against each other and the pools, topped up from the pools.
PromptSetResult build_prompt_set(const personas::Persona& persona, remote::CompletionBackend* teacher,
                                 const PromptPlan& plan, const remote::BatchOptions& batch = {});

}  // namespace character::pipeline
