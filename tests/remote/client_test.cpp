// The teacher client against a real HTTP server on loopback that injects faults:
// each scenario asserts how many HTTP requests the server saw, the attempts the
// client reports, and what a request that runs out of retries becomes.
#include "remote/client.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

#include "base/error.h"
#include "tests/remote/client_support.h"

namespace character::remote {
namespace {

using namespace std::chrono_literals;
using testing::FaultServer;
namespace ft = character::remote::testing;

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const RemoteError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected RemoteError";
  return "";
}

TEST(Client, ChatRoundTripSendsModelSamplingAndKey) {
  setenv("CHARACTER_TEST_TEACHER_KEY", "sk-roundtrip-0123456789", 1);
  FaultServer server;
  auto config = ft::config_for(server);
  config.api_key_env = "CHARACTER_TEST_TEACHER_KEY";
  config.headers = {{"X-Run", "r1"}};
  Client client(config);
  auto request = ft::chat("hello");
  request.sampling.temperature = 0.5;
  request.sampling.stop = {"\nUser:"};
  const Response r = client.complete(request);
  ASSERT_EQ(r.choices.size(), 1u);
  EXPECT_EQ(r.choices[0].text, "echo: hello");
  EXPECT_EQ(r.choices[0].finish_reason, "stop");
  EXPECT_EQ(r.usage.prompt_tokens, 11);
  EXPECT_EQ(r.usage.completion_tokens, 7);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_FALSE(r.from_cache);
  ASSERT_EQ(server.requests(), 1);
  const auto body = server.bodies().front();
  EXPECT_EQ(body["model"], "teacher-test");
  EXPECT_EQ(body["temperature"], 0.5);
  EXPECT_EQ(body["stop"], nlohmann::json::array({"\nUser:"}));
  EXPECT_EQ(server.authorizations().front(), "Bearer sk-roundtrip-0123456789");
}

TEST(Client, NChoicesComeBackInIndexOrder) {
  FaultServer server;
  Client client(ft::config_for(server));
  auto request = ft::chat("q");
  request.sampling.n = 3;
  const Response r = client.complete(request);
  ASSERT_EQ(r.choices.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(r.choices[i].text, "echo: q #" + std::to_string(i));
}

TEST(Client, TextCompletionsEndpoint) {
  FaultServer server;
  Client client(ft::config_for(server));
  CompletionRequest request;
  request.prompt = "Once upon";
  request.sampling.max_tokens = 8;
  const Response r = client.complete(request);
  EXPECT_EQ(r.choices.at(0).text, "echo: Once upon");
  EXPECT_EQ(server.bodies().front()["max_tokens"], 8);
}

TEST(Client, Http429HonoursRetryAfterThenSucceeds) {
  FaultServer server;
  server.script({ft::status(429, R"({"error":"rate limited"})", "1"), ft::ok()});
  Client client(ft::config_for(server));  // backoff alone would wait <= 20 ms
  const auto start = std::chrono::steady_clock::now();
  const Response r = client.complete(ft::chat("a"));
  const auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.attempts, 2);
  EXPECT_EQ(server.requests(), 2);
  EXPECT_GE(waited, 950ms);
  EXPECT_LT(waited, 3s);
  EXPECT_EQ(client.usage().stage("default").retries, 1);
}

TEST(Client, Http500TwiceThenSucceeds) {
  FaultServer server;
  server.script({ft::status(500), ft::status(503), ft::ok()});
  Client client(ft::config_for(server));
  const Response r = client.complete(ft::chat("a"));
  EXPECT_EQ(r.attempts, 3);
  EXPECT_EQ(server.requests(), 3);
  EXPECT_EQ(r.choices.at(0).text, "echo: a");
}

TEST(Client, Http500PastRetriesIsRemoteErrorWithStatusAndAttempts) {
  FaultServer server;
  server.script({ft::status(500, "boom-1"), ft::status(502, "boom-2"), ft::status(500, "boom-3"), ft::ok()});
  Client client(ft::config_for(server));  // max_retries = 2: three attempts
  const std::string message = message_of([&] { client.complete(ft::chat("a")); });
  EXPECT_NE(message.find("after 3 attempt(s): HTTP 500: boom-3"), std::string::npos) << message;
  EXPECT_NE(message.find("/v1/chat/completions"), std::string::npos) << message;
  EXPECT_EQ(server.requests(), 3);
  EXPECT_EQ(client.usage().stage("default").failures, 1);
}

TEST(Client, ClientErrorsAreNotRetried) {
  for (int code : {400, 401, 403, 404}) {
    FaultServer server;
    server.script({ft::status(code, R"({"error":"no such model"})"), ft::ok()});
    Client client(ft::config_for(server));
    const std::string message = message_of([&] { client.complete(ft::chat("a")); });
    EXPECT_NE(message.find("after 1 attempt(s): HTTP " + std::to_string(code) + ": {\"error\":\"no such model\"}"),
              std::string::npos)
        << message;
    EXPECT_EQ(server.requests(), 1) << code;
  }
}

TEST(Client, TimeoutIsRetried) {
  FaultServer server;
  server.script({ft::sleep_then_ok(700ms), ft::ok()});
  auto config = ft::config_for(server);
  config.timeout = 300ms;
  Client client(config);
  const Response r = client.complete(ft::chat("a"));
  EXPECT_EQ(r.attempts, 2);
  EXPECT_GE(r.latency, 300ms);
  EXPECT_EQ(server.requests(), 2);
}

TEST(Client, TimeoutsPastRetriesFail) {
  FaultServer server;
  server.script({ft::sleep_then_ok(500ms), ft::sleep_then_ok(500ms)});
  auto config = ft::config_for(server);
  config.timeout = 200ms;
  config.retry.max_retries = 1;
  Client client(config);
  const std::string message = message_of([&] { client.complete(ft::chat("a")); });
  EXPECT_NE(message.find("after 2 attempt(s): timeout after 200 ms"), std::string::npos) << message;
  EXPECT_EQ(server.requests(), 2);
}

TEST(Client, TruncatedJsonIsRetried) {
  FaultServer server;
  server.script({ft::truncated_json(), ft::ok()});
  Client client(ft::config_for(server));
  const Response r = client.complete(ft::chat("a"));
  EXPECT_EQ(r.attempts, 2);
  EXPECT_EQ(r.choices.at(0).text, "echo: a");
}

// Issue 14: the client kept a response body of any size in memory. Past
// max_response_bytes the transfer stops and the request fails without a retry, whether
// the size is declared up front or the body just keeps coming.
TEST(Client, AResponseLargerThanTheLimitFailsWithoutARetry) {
  FaultServer server;
  const std::string big(3u << 20, 'x');
  server.script({ft::status(200, "{\"pad\": \"" + big + "\"}")});
  auto config = ft::config_for(server);
  config.max_response_bytes = 1u << 20;
  Client client(config);
  const std::string message = message_of([&] { client.complete(ft::chat("a")); });
  EXPECT_NE(message.find("the response is larger than 1048576 bytes (max_response_bytes)"), std::string::npos)
      << message;
  EXPECT_EQ(server.requests(), 1);
  server.script({ft::slow_stream(40, std::chrono::milliseconds(1))});
  config.max_response_bytes = 64;
  Client small(config);
  EXPECT_NE(message_of([&] { small.complete(ft::chat("b")); }).find("larger than 64 bytes"), std::string::npos);
}

TEST(Client, MalformedJsonPastRetriesIsAFailureNamingIt) {
  FaultServer server;
  server.script({ft::malformed_json(), ft::malformed_json(), ft::malformed_json(), ft::ok()});
  Client client(ft::config_for(server));
  const std::string message = message_of([&] { client.complete(ft::chat("a")); });
  EXPECT_NE(message.find("after 3 attempt(s): malformed JSON (28 bytes): <html>Bad gateway?"), std::string::npos)
      << message;
  EXPECT_EQ(server.requests(), 3);
}

TEST(Client, AnswerWithoutChoicesIsRetried) {
  FaultServer server;
  server.script({ft::no_choices(), ft::ok()});
  Client client(ft::config_for(server));
  EXPECT_EQ(client.complete(ft::chat("a")).attempts, 2);
}

TEST(Client, DroppedConnectionIsRetried) {
  FaultServer server;
  server.script({ft::drop_connection(), ft::ok()});
  Client client(ft::config_for(server));
  const Response r = client.complete(ft::chat("a"));
  EXPECT_EQ(r.attempts, 2);
  EXPECT_EQ(server.requests(), 2);
}

TEST(Client, DroppedConnectionsPastRetriesNameTheTransportError) {
  FaultServer server;
  server.script({ft::drop_connection(), ft::drop_connection(), ft::drop_connection()});
  Client client(ft::config_for(server));
  const std::string message = message_of([&] { client.complete(ft::chat("a")); });
  EXPECT_NE(message.find("after 3 attempt(s): connection error: "), std::string::npos) << message;
}

TEST(Client, SlowStreamWithinTimeoutIsTolerated) {
  FaultServer server;
  server.script({ft::slow_stream(5, 80ms)});
  Client client(ft::config_for(server));
  const Response r = client.complete(ft::chat("slowly"));
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(r.choices.at(0).text, "echo: slowly");
  EXPECT_GE(r.latency, 350ms);
}

TEST(Client, SlowStreamPastTimeoutIsRetried) {
  FaultServer server;
  server.script({ft::slow_stream(10, 100ms), ft::ok()});
  auto config = ft::config_for(server);
  config.timeout = 350ms;
  Client client(config);
  EXPECT_EQ(client.complete(ft::chat("a")).attempts, 2);
}

TEST(Client, ConnectionRefusedIsRetriedThenFails) {
  // A port that was just free: bind, read the port, close.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t size = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &size);
  ::close(fd);
  ClientConfig config;
  config.base_url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/v1";
  config.model = "m";
  config.retry.max_retries = 2;
  config.retry.base_delay = 5ms;
  config.retry.max_delay = 20ms;
  Client client(config);
  const auto results = client.complete_all({ft::chat("a")});
  ASSERT_EQ(results.size(), 1u);
  ASSERT_FALSE(results[0].ok());
  EXPECT_EQ(results[0].failure->attempts, 3);
  EXPECT_EQ(results[0].failure->http_status, 0);
  EXPECT_NE(results[0].failure->reason.find("connection error: "), std::string::npos)
      << results[0].failure->reason;
}

TEST(Client, BadConfigIsConfigError) {
  ClientConfig config;
  config.base_url = "ftp://x";
  config.model = "m";
  try {
    Client client(config);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("base_url \"ftp://x\", expected an http:// or https:// URL"),
              std::string::npos)
        << e.what();
  }
  config.base_url = "http://127.0.0.1:1/v1";
  config.max_in_flight = 0;
  EXPECT_THROW(Client{config}, ConfigError);
}

TEST(Client, ConfigFromJson) {
  const auto config = client_config_from_json(
      nlohmann::json::parse(R"({"base_url":"https://api.example.com/v1","model":"gpt-x",
        "api_key_env":"EXAMPLE_KEY","timeout_s":30,"max_in_flight":4,"max_retries":7,
        "backoff_base_ms":250,"backoff_max_ms":8000,"jitter_seed":9,
        "price_input_per_million":2.5,"price_output_per_million":10,
        "cache_dir":"runs/x/cache","headers":{"OpenAI-Organization":"org-1"}})"),
      "run.json: teacher");
  EXPECT_EQ(config.base_url, "https://api.example.com/v1");
  EXPECT_EQ(config.api_key_env, "EXAMPLE_KEY");
  EXPECT_EQ(config.timeout, 30s);
  EXPECT_EQ(config.max_in_flight, 4);
  EXPECT_EQ(config.retry.max_retries, 7);
  EXPECT_EQ(config.retry.base_delay, 250ms);
  EXPECT_EQ(config.retry.max_delay, 8000ms);
  EXPECT_EQ(config.jitter_seed, 9u);
  ASSERT_TRUE(config.prices);
  EXPECT_EQ(config.prices->output_per_million, 10.0);
  EXPECT_EQ(config.cache_dir, "runs/x/cache");
  ASSERT_EQ(config.headers.size(), 1u);
  EXPECT_EQ(config.headers[0].second, "org-1");
  EXPECT_FALSE(client_config_from_json(nlohmann::json::object(), "t").prices);
}

TEST(Client, ConfigFromJsonNamesTheBadField) {
  try {
    client_config_from_json(nlohmann::json::parse(R"({"model":"m","max_in_flight":"eight"})"), "run.json: teacher");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "run.json: teacher: field \"max_in_flight\" is string \"eight\", expected a number");
  }
}

}  // namespace
}  // namespace character::remote
