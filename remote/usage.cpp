#include "remote/usage.h"

namespace character::remote {
namespace {

nlohmann::json usage_json(const StageUsage& u) {
  nlohmann::json j = {{"requests", u.requests},         {"cache_hits", u.cache_hits},
                      {"http_attempts", u.http_attempts}, {"retries", u.retries},
                      {"failures", u.failures},         {"prompt_tokens", u.prompt_tokens},
                      {"completion_tokens", u.completion_tokens}};
  if (u.cost_usd) j["cost_usd"] = *u.cost_usd;
  return j;
}

void accumulate(StageUsage& into, const StageUsage& from) {
  into.requests += from.requests;
  into.cache_hits += from.cache_hits;
  into.http_attempts += from.http_attempts;
  into.retries += from.retries;
  into.failures += from.failures;
  into.prompt_tokens += from.prompt_tokens;
  into.completion_tokens += from.completion_tokens;
  if (from.cost_usd) into.cost_usd = into.cost_usd.value_or(0.0) + *from.cost_usd;
}

}  // namespace

void UsageMeter::add_cost(StageUsage& usage, const TokenUsage& tokens) const {
  if (!prices_) return;
  const double cost = static_cast<double>(tokens.prompt_tokens) * prices_->input_per_million / 1e6 +
                      static_cast<double>(tokens.completion_tokens) * prices_->output_per_million / 1e6;
  usage.cost_usd = usage.cost_usd.value_or(0.0) + cost;
}

void UsageMeter::record(const std::string& stage, const Result& result) {
  std::lock_guard lock(mutex_);
  StageUsage& u = stages_[stage];
  if (prices_ && !u.cost_usd) u.cost_usd = 0.0;
  u.requests += 1;
  const int attempts = result.ok() ? result.response->attempts : result.failure->attempts;
  u.http_attempts += attempts;
  u.retries += attempts > 1 ? attempts - 1 : 0;
  if (!result.ok()) {
    u.failures += 1;
    return;
  }
  if (result.response->from_cache) {
    u.cache_hits += 1;
    return;
  }
  u.prompt_tokens += result.response->usage.prompt_tokens;
  u.completion_tokens += result.response->usage.completion_tokens;
  add_cost(u, result.response->usage);
}

StageUsage UsageMeter::stage(const std::string& name) const {
  std::lock_guard lock(mutex_);
  const auto it = stages_.find(name);
  return it == stages_.end() ? StageUsage{} : it->second;
}

StageUsage UsageMeter::total() const {
  std::lock_guard lock(mutex_);
  StageUsage sum;
  for (const auto& [name, u] : stages_) accumulate(sum, u);
  if (prices_ && !sum.cost_usd) sum.cost_usd = 0.0;
  return sum;
}

nlohmann::json UsageMeter::to_json() const {
  nlohmann::json stages = nlohmann::json::object();
  {
    std::lock_guard lock(mutex_);
    for (const auto& [name, u] : stages_) stages[name] = usage_json(u);
  }
  return {{"stages", stages}, {"total", usage_json(total())}};
}

}  // namespace character::remote
