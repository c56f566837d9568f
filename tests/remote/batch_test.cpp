// Batches: never more requests in flight than configured (the server counts), one
// result per request in input order (failures recorded, nothing dropped), results
// reported in completion order with their index, and progress that adds up.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "remote/client.h"
#include "tests/remote/client_support.h"
#include "tests/test_support.h"

namespace character::remote {
namespace {

using namespace std::chrono_literals;
using testing::FaultServer;
namespace ft = character::remote::testing;

std::vector<ChatRequest> prompts(int count) {
  std::vector<ChatRequest> out;
  for (int i = 0; i < count; ++i) out.push_back(ft::chat(ft::numbered("p", i)));
  return out;
}

TEST(Batch, ConcurrencyLimitIsReachedAndNeverExceeded) {
  for (int limit : {1, 3, 8}) {
    FaultServer server;
    server.set_default_delay(100ms);  // long enough that a full wave overlaps on a busy machine
    auto config = ft::config_for(server);
    config.max_in_flight = limit;
    Client client(config);
    const auto results = client.complete_all(prompts(2 * limit + 1));
    EXPECT_EQ(server.requests(), 2 * limit + 1);
    EXPECT_EQ(server.max_in_flight(), limit) << "limit " << limit;
    for (const auto& r : results) EXPECT_TRUE(r.ok());
  }
}

TEST(Batch, DefaultLimitIsEight) {
  ClientConfig config;
  EXPECT_EQ(config.max_in_flight, 8);
}

TEST(Batch, ResultsInInputOrderCallbacksInCompletionOrder) {
  FaultServer server;
  // p0 is slow, so it finishes last although it was sent first.
  server.script_for("p0", {ft::sleep_then_ok(300ms)});
  auto config = ft::config_for(server);
  config.max_in_flight = 4;
  Client client(config);
  std::vector<std::size_t> completion_order;
  std::vector<Progress> progress;
  BatchOptions options;
  options.on_result = [&](const Result& r) { completion_order.push_back(r.index); };
  options.on_progress = [&](const Progress& p) { progress.push_back(p); };
  const auto results = client.complete_all(prompts(6), options);
  ASSERT_EQ(results.size(), 6u);
  for (std::size_t i = 0; i < results.size(); ++i) {
    EXPECT_EQ(results[i].index, i);
    ASSERT_TRUE(results[i].ok());
    EXPECT_EQ(results[i].response->choices.at(0).text, "echo: p" + std::to_string(i));
  }
  ASSERT_EQ(completion_order.size(), 6u);
  EXPECT_EQ(completion_order.back(), 0u);
  EXPECT_EQ(std::set<std::size_t>(completion_order.begin(), completion_order.end()).size(), 6u);
  ASSERT_EQ(progress.size(), 6u);
  for (std::size_t i = 0; i < progress.size(); ++i) {
    EXPECT_EQ(progress[i].done, i + 1);
    EXPECT_EQ(progress[i].total, 6u);
  }
}

TEST(Batch, FailuresAreRecordedNeverDropped) {
  FaultServer server;
  // Each request meets its own fault. max_retries = 2: three attempts each.
  server.script_for("p1", {ft::status(429, "{}", "0"), ft::ok()});
  server.script_for("p2", {ft::status(500), ft::status(500), ft::ok()});
  server.script_for("p3", {ft::status(500, "down"), ft::status(503, "down"), ft::status(500, "still down")});
  server.script_for("p4", {ft::status(401, "bad key")});
  server.script_for("p5", {ft::truncated_json(), ft::malformed_json(), ft::no_choices()});
  server.script_for("p6", {ft::drop_connection(), ft::ok()});
  server.script_for("p7", {ft::slow_stream(3, 30ms)});
  Client client(ft::config_for(server));
  std::vector<Result> seen;
  BatchOptions options;
  options.stage = "dpo_chosen";
  options.on_result = [&](const Result& r) { seen.push_back(r); };
  const auto results = client.complete_all(prompts(10), options);
  ASSERT_EQ(results.size(), 10u);
  EXPECT_EQ(seen.size(), 10u);

  const int expected_attempts[10] = {1, 2, 3, 3, 1, 3, 2, 1, 1, 1};
  for (int i = 0; i < 10; ++i) {
    const auto& r = results[i];
    const int attempts = r.ok() ? r.response->attempts : r.failure->attempts;
    EXPECT_EQ(attempts, expected_attempts[i]) << "p" << i;
    EXPECT_EQ(server.requests_for("p" + std::to_string(i)), expected_attempts[i]) << "p" << i;
  }
  for (int i : {0, 1, 2, 6, 7, 8, 9}) EXPECT_TRUE(results[i].ok()) << "p" << i;
  ASSERT_FALSE(results[3].ok());
  EXPECT_EQ(results[3].failure->http_status, 500);
  EXPECT_EQ(results[3].failure->reason, "HTTP 500: still down");
  ASSERT_FALSE(results[4].ok());
  EXPECT_EQ(results[4].failure->http_status, 401);
  EXPECT_EQ(results[4].failure->reason, "HTTP 401: bad key");
  ASSERT_FALSE(results[5].ok());
  EXPECT_EQ(results[5].failure->http_status, 200);
  EXPECT_EQ(results[5].failure->reason, "malformed answer: no \"choices\" array (or it is empty)");

  const StageUsage usage = client.usage().stage("dpo_chosen");
  EXPECT_EQ(usage.requests, 10);
  EXPECT_EQ(usage.failures, 3);
  EXPECT_EQ(usage.http_attempts, 18);
  EXPECT_EQ(usage.retries, 8);
  EXPECT_EQ(usage.prompt_tokens, 7 * 11);
  EXPECT_EQ(usage.completion_tokens, 7 * 7);
  EXPECT_EQ(server.requests(), 18);
}

TEST(Batch, SeveralThreadsShareOneClient) {
  character::testing::TempDir dir;
  FaultServer server;
  server.set_default_delay(10ms);
  auto config = ft::config_for(server);
  config.max_in_flight = 2;
  config.cache_dir = dir.path();
  Client client(config);
  std::vector<std::thread> threads;
  std::vector<std::vector<Result>> results(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<ChatRequest> requests;
      for (int i = 0; i < 6; ++i) requests.push_back(ft::chat(ft::numbered(ft::numbered("t", t) + "-", i)));
      results[t] = client.complete_all(requests, ft::in_stage(ft::numbered("stage", t % 2)));
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& batch : results) {
    for (const auto& r : batch) EXPECT_TRUE(r.ok());
  }
  EXPECT_EQ(server.requests(), 24);
  EXPECT_LE(server.max_in_flight(), 8);  // each call keeps its own limit of 2
  EXPECT_EQ(client.usage().stage("stage0").requests, 12);
  EXPECT_EQ(client.usage().total().prompt_tokens, 24 * 11);
  EXPECT_EQ(client.cache()->misses(), 24);
}

}  // namespace
}  // namespace character::remote
