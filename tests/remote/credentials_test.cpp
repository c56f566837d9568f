// remote/credentials.h and the client's use of it (issue 14): a key given where its
// variable's name belongs, or credentials inside an endpoint URL, are refused before
// anything is written, and the refusal never prints them.
#include <gtest/gtest.h>
#include <gmock/gmock.h>

#include "base/error.h"
#include "base/log.h"
#include "remote/client.h"
#include "remote/credentials.h"

namespace character::remote {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(Credentials, VariableNamesAreUpperCaseLettersDigitsAndUnderscores) {
  for (const char* ok : {"TEACHER_API_KEY", "OPENAI_API_KEY", "_X", "K2"}) EXPECT_TRUE(is_key_variable_name(ok)) << ok;
  for (const char* bad : {"", "2KEY", "sk-proj-abc123", "sk_live_abcDEF123", "teacher_key", "KEY NAME", "KEY=1"}) {
    EXPECT_FALSE(is_key_variable_name(bad)) << bad;
  }
}

TEST(Credentials, UserInformationAndSecretQueryParametersAreFound) {
  EXPECT_EQ(credentials_in_url("https://api.example.com/v1"), std::nullopt);
  EXPECT_EQ(credentials_in_url("http://127.0.0.1:8000/v1?api-version=2024-06-01"), std::nullopt);
  EXPECT_EQ(credentials_in_url("https://me:s3cret@api.example.com/v1"), "user information (user:password@)");
  EXPECT_EQ(credentials_in_url("https://tok@api.example.com/v1"), "user information (user:password@)");
  EXPECT_EQ(credentials_in_url("https://api.example.com/v1?key=abc"), "the query parameter 'key'");
  EXPECT_EQ(credentials_in_url("https://x/v1?v=1&access_token=abc"), "the query parameter 'access_token'");
  EXPECT_EQ(credentials_in_url("https://x/v1#sig=abc"), "the query parameter 'sig'");
  // An '@' in the path is not user information.
  EXPECT_EQ(credentials_in_url("https://x/v1/models/@latest"), std::nullopt);
}

TEST(Credentials, UrlsForMessagesHideThem) {
  EXPECT_EQ(url_for_messages("https://me:s3cret@api.example.com/v1"), "https://***@api.example.com/v1");
  EXPECT_EQ(url_for_messages("https://api.example.com/v1?key=abc&v=2"), "https://api.example.com/v1?***");
  EXPECT_EQ(url_for_messages("https://api.example.com/v1"), "https://api.example.com/v1");
}

std::string client_error(const ClientConfig& config) {
  try {
    Client client(config);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(Credentials, TheClientRefusesAKeyAsTheVariableNameWithoutPrintingIt) {
  ClientConfig config;
  config.base_url = "http://127.0.0.1:1/v1";
  config.model = "m";
  config.api_key_env = "sk-proj-Hq7pLEAKMEnot9931";
  const std::string message = client_error(config);
  EXPECT_THAT(message, HasSubstr("api_key_env is not an environment variable name (not shown"));
  EXPECT_THAT(message, Not(HasSubstr("Hq7pLEAK")));
  // From now on the value is redacted wherever it would be printed.
  EXPECT_EQ(log::redact("got sk-proj-Hq7pLEAKMEnot9931 as a name"), "got *** as a name");
}

TEST(Credentials, TheClientRefusesCredentialsInTheUrlWithoutPrintingThem) {
  ClientConfig config;
  config.model = "m";
  config.base_url = "https://alice:Pa55wordLEAK@api.example.com/v1";
  std::string message = client_error(config);
  EXPECT_THAT(message, HasSubstr("base_url https://***@api.example.com/v1 holds credentials (user information"));
  EXPECT_THAT(message, Not(HasSubstr("Pa55word")));
  config.base_url = "https://api.example.com/v1?api_key=QueryLEAK123";
  message = client_error(config);
  EXPECT_THAT(message, HasSubstr("the query parameter 'api_key'"));
  EXPECT_THAT(message, Not(HasSubstr("QueryLEAK")));
}

}  // namespace
}  // namespace character::remote
