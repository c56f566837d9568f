// Token usage and cost of teacher calls, per pipeline stage ("dpo_chosen",
// "judge", ...). Cache hits are counted but cost nothing: only answers that
// came over the network add tokens and dollars. Thread-safe.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "remote/types.h"

namespace character::remote {

// Dollars per one million tokens.
struct Prices {
  double input_per_million = 0.0;
  double output_per_million = 0.0;
};

struct StageUsage {
  std::int64_t requests = 0;       // logical requests (cache hits included)
  std::int64_t cache_hits = 0;
  std::int64_t http_attempts = 0;  // HTTP requests actually sent
  std::int64_t retries = 0;        // http_attempts beyond the first of each request
  std::int64_t failures = 0;       // requests that ended as a Failure
  std::int64_t prompt_tokens = 0;  // from network answers only
  std::int64_t completion_tokens = 0;
  std::optional<double> cost_usd;  // set when prices are configured
};

class UsageMeter {
 public:
  explicit UsageMeter(std::optional<Prices> prices = std::nullopt) : prices_(prices) {}

  // Records one finished request (a Response or a Failure) under `stage`.
  void record(const std::string& stage, const Result& result);

  StageUsage stage(const std::string& name) const;  // zeros for an unseen stage
  StageUsage total() const;
  // {"stages": {name: {...}}, "total": {...}}; cost_usd only with prices.
  nlohmann::json to_json() const;

 private:
  void add_cost(StageUsage& usage, const TokenUsage& tokens) const;

  std::optional<Prices> prices_;
  mutable std::mutex mutex_;
  std::map<std::string, StageUsage> stages_;
};

}  // namespace character::remote
