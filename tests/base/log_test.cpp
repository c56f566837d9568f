#include "base/log.h"

#include <gtest/gtest.h>

#include "base/atomic_file.h"
#include "tests/test_support.h"

namespace character {
namespace {

TEST(Log, RegisteredSecretsNeverReachTheLogFile) {
  testing::TempDir dir;
  const std::string key = "sk-test-0123456789abcdefghij";
  log::register_secret(key);
  log::set_file(dir / "run.log");
  log::error("request to https://api.example/v1?key=" + key + " failed");
  log::set_file({});
  const std::string text = read_file(dir / "run.log");
  EXPECT_EQ(text.find(key), std::string::npos);
  EXPECT_NE(text.find("key=***"), std::string::npos);
  EXPECT_EQ(log::redact("Bearer " + key + key), "Bearer ******");
}

TEST(Log, ShortValuesAreNotTreatedAsSecrets) {
  log::register_secret("ab");
  EXPECT_EQ(log::redact("abc"), "abc");
}

}  // namespace
}  // namespace character
