// Usage accounting per stage: counts, tokens and dollars add up, cache hits and
// failures cost nothing, and the JSON report carries cost only with prices.
#include "remote/usage.h"

#include <gtest/gtest.h>

#include "remote/client.h"
#include "tests/remote/client_support.h"

namespace character::remote {
namespace {

using testing::FaultServer;
namespace ft = character::remote::testing;

Result ok_result(std::int64_t prompt, std::int64_t completion, int attempts, bool cached) {
  Result r;
  r.response = Response{{Choice{"x", "stop"}}, TokenUsage{prompt, completion}, cached, attempts, {}};
  return r;
}

TEST(Usage, AddsUpPerStageWithCost) {
  UsageMeter meter(Prices{2.0, 8.0});
  meter.record("chosen", ok_result(100, 50, 1, false));
  meter.record("chosen", ok_result(200, 10, 3, false));
  meter.record("chosen", ok_result(999, 999, 0, true));  // a cache hit costs nothing
  Result failed;
  failed.failure = Failure{"HTTP 500: x", 500, 4};
  meter.record("judge", failed);
  meter.record("judge", ok_result(1000, 1000, 1, false));

  const StageUsage chosen = meter.stage("chosen");
  EXPECT_EQ(chosen.requests, 3);
  EXPECT_EQ(chosen.cache_hits, 1);
  EXPECT_EQ(chosen.http_attempts, 4);
  EXPECT_EQ(chosen.retries, 2);
  EXPECT_EQ(chosen.failures, 0);
  EXPECT_EQ(chosen.prompt_tokens, 300);
  EXPECT_EQ(chosen.completion_tokens, 60);
  EXPECT_DOUBLE_EQ(*chosen.cost_usd, (300 * 2.0 + 60 * 8.0) / 1e6);

  const StageUsage judge = meter.stage("judge");
  EXPECT_EQ(judge.failures, 1);
  EXPECT_EQ(judge.retries, 3);
  EXPECT_DOUBLE_EQ(*judge.cost_usd, (1000 * 2.0 + 1000 * 8.0) / 1e6);

  const StageUsage total = meter.total();
  EXPECT_EQ(total.requests, 5);
  EXPECT_EQ(total.http_attempts, 9);
  EXPECT_DOUBLE_EQ(*total.cost_usd, *chosen.cost_usd + *judge.cost_usd);

  const auto json = meter.to_json();
  EXPECT_EQ(json["stages"]["chosen"]["prompt_tokens"], 300);
  EXPECT_EQ(json["stages"]["judge"]["failures"], 1);
  EXPECT_EQ(json["total"]["requests"], 5);
  EXPECT_DOUBLE_EQ(json["total"]["cost_usd"].get<double>(), *total.cost_usd);
}

TEST(Usage, NoPricesNoCost) {
  UsageMeter meter;
  meter.record("s", ok_result(10, 10, 1, false));
  EXPECT_FALSE(meter.stage("s").cost_usd);
  EXPECT_FALSE(meter.to_json()["stages"]["s"].contains("cost_usd"));
  EXPECT_EQ(meter.stage("unseen").requests, 0);
}

TEST(Usage, ClientAccountsWhatTheServerReported) {
  FaultServer server;
  auto config = ft::config_for(server);
  config.prices = Prices{1.0, 4.0};
  Client client(config);
  client.complete_all({ft::chat("a"), ft::chat("b"), ft::chat("c")}, ft::in_stage("reflection"));
  const StageUsage u = client.usage().stage("reflection");
  EXPECT_EQ(u.requests, 3);
  EXPECT_EQ(u.prompt_tokens, 33);      // 11 per answer from the fault server
  EXPECT_EQ(u.completion_tokens, 21);  // 7 per answer
  EXPECT_DOUBLE_EQ(*u.cost_usd, (33 * 1.0 + 21 * 4.0) / 1e6);
}

}  // namespace
}  // namespace character::remote
