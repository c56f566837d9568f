// The answer cache: a rerun sends no request (the server counts) and reports
// hits; keys change with anything that changes the answer, never with the key;
// failures are not cached; a damaged entry is a FormatError naming the file.
#include "remote/request_cache.h"

#include <gtest/gtest.h>

#include <fstream>

#include "base/error.h"
#include "remote/client.h"
#include "tests/remote/client_support.h"
#include "tests/test_support.h"

namespace character::remote {
namespace {

using namespace std::chrono_literals;
using testing::FaultServer;
namespace ft = character::remote::testing;

TEST(Sha256, MatchesFips180Vectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

std::vector<ChatRequest> prompts(int count) {
  std::vector<ChatRequest> out;
  for (int i = 0; i < count; ++i) out.push_back(ft::chat(ft::numbered("c", i)));
  return out;
}

TEST(Cache, RerunSendsNoRequestAndCountsHits) {
  character::testing::TempDir dir;
  FaultServer server;
  auto config = ft::config_for(server);
  config.cache_dir = dir / "cache";
  config.prices = Prices{1.0, 2.0};
  std::vector<Result> first;
  {
    Client client(config);
    first = client.complete_all(prompts(5), ft::in_stage("s"));
    EXPECT_EQ(client.cache()->misses(), 5);
    EXPECT_EQ(client.cache()->hits(), 0);
    EXPECT_GT(*client.usage().stage("s").cost_usd, 0.0);
  }
  ASSERT_EQ(server.requests(), 5);
  Client client(config);  // a fresh process would see the same directory
  const auto second = client.complete_all(prompts(5), ft::in_stage("s"));
  EXPECT_EQ(server.requests(), 5);
  EXPECT_EQ(client.cache()->hits(), 5);
  EXPECT_EQ(client.cache()->misses(), 0);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(second[i].ok());
    EXPECT_TRUE(second[i].response->from_cache);
    EXPECT_EQ(second[i].response->attempts, 0);
    EXPECT_EQ(second[i].response->choices.at(0).text, first[i].response->choices.at(0).text);
  }
  const StageUsage usage = client.usage().stage("s");
  EXPECT_EQ(usage.requests, 5);
  EXPECT_EQ(usage.cache_hits, 5);
  EXPECT_EQ(usage.http_attempts, 0);
  EXPECT_EQ(usage.prompt_tokens, 0);
  EXPECT_EQ(*usage.cost_usd, 0.0);  // a rerun costs nothing
  // The single-request path reads the same cache.
  EXPECT_TRUE(client.complete(ft::chat("c2")).from_cache);
  EXPECT_EQ(server.requests(), 5);
}

TEST(Cache, AnythingThatChangesTheAnswerChangesTheKey) {
  const auto body = chat_body("m", ft::chat("x"));
  const std::string k = RequestCache::key("http://a/v1", "/chat/completions", "m", "", body);
  EXPECT_EQ(k.size(), 64u);
  EXPECT_EQ(k, RequestCache::key("http://a/v1", "/chat/completions", "m", "", body));
  auto hotter = ft::chat("x");
  hotter.sampling.temperature = 1.0;
  EXPECT_NE(k, RequestCache::key("http://a/v1", "/chat/completions", "m", "", chat_body("m", hotter)));
  EXPECT_NE(k, RequestCache::key("http://b/v1", "/chat/completions", "m", "", body));
  EXPECT_NE(k, RequestCache::key("http://a/v1", "/completions", "m", "", body));
  EXPECT_NE(k, RequestCache::key("http://a/v1", "/chat/completions", "m2", "", body));
  EXPECT_NE(k, RequestCache::key("http://a/v1", "/chat/completions", "m", "sample-1", body));
}

TEST(Cache, SaltGivesIndependentSamples) {
  character::testing::TempDir dir;
  FaultServer server;
  auto config = ft::config_for(server);
  config.cache_dir = dir.path();
  Client client(config);
  auto a = ft::chat("x");
  auto b = ft::chat("x");
  b.cache_salt = "sample-1";
  const auto results = client.complete_all({a, b, a});
  EXPECT_EQ(server.requests(), 2);  // the third is sent once, with the first
  ASSERT_TRUE(results[2].ok());
  EXPECT_TRUE(results[2].response->from_cache);
  EXPECT_FALSE(results[0].response->from_cache);
  EXPECT_EQ(results[2].response->choices.at(0).text, results[0].response->choices.at(0).text);
  EXPECT_EQ(client.usage().stage("default").cache_hits, 1);
  EXPECT_EQ(client.usage().stage("default").requests, 3);
  EXPECT_EQ(client.cache()->misses(), 2);
}

TEST(Cache, IdenticalFailedRequestsInABatchShareOneFailure) {
  character::testing::TempDir dir;
  FaultServer server;
  server.script({ft::status(403, "forbidden")});
  auto config = ft::config_for(server);
  config.cache_dir = dir.path();
  Client client(config);
  const auto results = client.complete_all({ft::chat("x"), ft::chat("x")});
  EXPECT_EQ(server.requests(), 1);
  ASSERT_FALSE(results[1].ok());
  EXPECT_EQ(results[1].failure->reason, "HTTP 403: forbidden");
  EXPECT_EQ(client.usage().stage("default").failures, 2);
}

TEST(Cache, TheApiKeyIsNotPartOfTheKey) {
  character::testing::TempDir dir;
  FaultServer server;
  auto config = ft::config_for(server);
  config.cache_dir = dir.path();
  config.api_key_env = "CHARACTER_TEST_CACHE_KEY";
  setenv("CHARACTER_TEST_CACHE_KEY", "sk-first-key-aaaaaaaa", 1);
  Client(config).complete(ft::chat("x"));
  setenv("CHARACTER_TEST_CACHE_KEY", "sk-rotated-key-bbbbbbbb", 1);
  EXPECT_TRUE(Client(config).complete(ft::chat("x")).from_cache);
  EXPECT_EQ(server.requests(), 1);
}

TEST(Cache, FailuresAreNotCached) {
  character::testing::TempDir dir;
  FaultServer server;
  server.script({ft::status(401)});
  auto config = ft::config_for(server);
  config.cache_dir = dir.path();
  Client client(config);
  EXPECT_FALSE(client.complete_all({ft::chat("x")})[0].ok());
  EXPECT_TRUE(client.complete_all({ft::chat("x")})[0].ok());
  EXPECT_EQ(server.requests(), 2);
  EXPECT_EQ(client.complete(ft::chat("x")).attempts, 0);  // now cached
}

TEST(Cache, DamagedEntryIsFormatErrorNamingTheFile) {
  character::testing::TempDir dir;
  FaultServer server;
  auto config = ft::config_for(server);
  config.cache_dir = dir.path();
  Client client(config);
  client.complete(ft::chat("x"));
  const std::string key = RequestCache::key(server.base_url(), "/chat/completions", "teacher-test", "",
                                            chat_body("teacher-test", ft::chat("x")));
  const auto path = client.cache()->path_for(key);
  ASSERT_TRUE(std::filesystem::exists(path));
  std::ofstream(path) << "{\"half\":";
  try {
    client.complete(ft::chat("x"));
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(path.string() + ": not a character-remote-cache-v1 entry"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace character::remote
