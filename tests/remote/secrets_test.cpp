// The API key is sent to the server and appears nowhere else: not in exception
// messages, failure records, the log file, any cache file, or the usage report,
// even when the server echoes it back in an error body.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "base/error.h"
#include "base/log.h"
#include "remote/client.h"
#include "tests/remote/client_support.h"
#include "tests/test_support.h"

namespace character::remote {
namespace {

using testing::FaultServer;
namespace ft = character::remote::testing;

constexpr const char* kKeyVar = "CHARACTER_TEST_SECRET_KEY";
constexpr const char* kKey = "sk-live-Zq81mXv0PLEASEneverLEAK4242";

std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(Secrets, ApiKeyNeverLeavesTheAuthorizationHeader) {
  setenv(kKeyVar, kKey, 1);
  character::testing::TempDir dir;
  const auto log_path = dir / "run.log";
  log::set_file(log_path);

  FaultServer server;
  server.script_for("fails", {ft::echo_authorization(500), ft::echo_authorization(502),
                              ft::echo_authorization(503)});
  server.script_for("denied", {ft::echo_authorization(401)});
  auto config = ft::config_for(server);
  config.api_key_env = kKeyVar;
  config.cache_dir = dir / "cache";
  config.prices = Prices{3.0, 15.0};
  Client client(config);

  // A batch: one success (cached), one failure after retries with the key echoed back.
  const auto results = client.complete_all({ft::chat("works"), ft::chat("fails")}, ft::in_stage("teacher"));
  ASSERT_TRUE(results[0].ok());
  ASSERT_FALSE(results[1].ok());
  const std::string reason = results[1].failure->reason;
  EXPECT_EQ(reason.find(kKey), std::string::npos) << reason;
  EXPECT_NE(reason.find("Incorrect API key provided: Bearer ***"), std::string::npos) << reason;

  // A single call that fails at once: the exception message.
  std::string message;
  try {
    client.complete(ft::chat("denied"));
  } catch (const RemoteError& e) {
    message = e.what();
  }
  ASSERT_FALSE(message.empty());
  EXPECT_EQ(message.find(kKey), std::string::npos) << message;
  EXPECT_NE(message.find("HTTP 401"), std::string::npos) << message;
  log::error(message);
  log::set_file({});

  // The key did travel, in the header and only there.
  const auto auths = server.authorizations();
  ASSERT_EQ(auths.size(), 5u);
  for (const auto& a : auths) EXPECT_EQ(a, std::string("Bearer ") + kKey);

  const std::string log_text = slurp(log_path);
  EXPECT_NE(log_text.find("retrying in"), std::string::npos) << log_text;  // the log was written
  EXPECT_NE(log_text.find("Bearer ***"), std::string::npos) << log_text;
  EXPECT_EQ(log_text.find(kKey), std::string::npos) << log_text;

  int cache_files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir / "cache")) {
    if (!entry.is_regular_file()) continue;
    ++cache_files;
    EXPECT_EQ(slurp(entry.path()).find(kKey), std::string::npos) << entry.path();
  }
  EXPECT_EQ(cache_files, 1);

  const std::string usage = client.usage().to_json().dump();
  EXPECT_EQ(usage.find(kKey), std::string::npos);
  EXPECT_NE(usage.find("\"teacher\""), std::string::npos) << usage;

  // Nothing else under the run directory holds it either.
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir.path())) {
    if (!entry.is_regular_file()) continue;
    EXPECT_EQ(slurp(entry.path()).find(kKey), std::string::npos) << entry.path();
  }
}

// True when any 6 consecutive characters of the key appear in `text`.
bool holds_part_of_key(const std::string& text) {
  const std::string key = kKey;
  for (std::size_t i = 0; i + 6 <= key.size(); ++i) {
    if (text.find(key.substr(i, 6)) != std::string::npos) return true;
  }
  return false;
}

// Issue 14: the error body was cut to 200 bytes before redaction, so a key that the cut
// split reached stderr and the ledger all but its last characters. Every cut position
// across the key is tried.
TEST(Secrets, AnEchoedKeyThatTheExcerptCutsLeavesNoPartOfIt) {
  setenv(kKeyVar, kKey, 1);
  character::testing::TempDir dir;
  FaultServer server;
  const std::string prefix = R"({"error":{"message":")";
  for (int pad = 150; pad <= 200; ++pad) {
    const std::string name = "cut" + std::to_string(pad);
    server.script_for(name, {[=](const httplib::Request& req, httplib::Response& res) {
                        res.status = 400;
                        res.set_content(prefix + std::string(pad, 'x') + req.get_header_value("Authorization") +
                                            "\"}}",
                                        "application/json");
                      }});
  }
  auto config = ft::config_for(server);
  config.api_key_env = kKeyVar;
  config.cache_dir = dir / "cache";
  Client client(config);
  for (int pad = 150; pad <= 200; ++pad) {
    std::string message;
    try {
      client.complete(ft::chat("cut" + std::to_string(pad)));
    } catch (const RemoteError& e) {
      message = e.what();
    }
    ASSERT_FALSE(message.empty()) << pad;
    EXPECT_FALSE(holds_part_of_key(message)) << "padding " << pad << ": " << message;
  }
}

TEST(Secrets, UnsetKeyVariableIsConfigErrorNamingOnlyTheVariable) {
  unsetenv("CHARACTER_TEST_MISSING_KEY");
  ClientConfig config;
  config.base_url = "http://127.0.0.1:1/v1";
  config.model = "m";
  config.api_key_env = "CHARACTER_TEST_MISSING_KEY";
  try {
    Client client(config);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "teacher client: api_key_env names $CHARACTER_TEST_MISSING_KEY, which is not set or empty; "
                 "expected the API key in that environment variable");
  }
}

TEST(Secrets, ConfigFileMayNotHoldAKey) {
  try {
    client_config_from_json(nlohmann::json::parse(R"({"model":"m","api_key":"sk-in-a-file-1234"})"), "run.json: teacher");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).find("sk-in-a-file-1234"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("run.json: teacher: field \"api_key\" is not accepted"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace character::remote
