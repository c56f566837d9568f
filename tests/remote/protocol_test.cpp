// The OpenAI wire format: which fields a body carries, and which answers count
// as well-formed (anything else is retried as "malformed").
#include "remote/protocol.h"

#include <gtest/gtest.h>

namespace character::remote {
namespace {

using nlohmann::json;

TEST(Protocol, ChatBodyCarriesOnlyTheSetSamplingFields) {
  ChatRequest r;
  r.messages = {{"system", "s"}, {"user", "u"}};
  EXPECT_EQ(chat_body("m", r), json::parse(R"({"model":"m","messages":[
      {"role":"system","content":"s"},{"role":"user","content":"u"}]})"));

  r.sampling.temperature = 0.7;
  r.sampling.top_p = 0.9;
  r.sampling.max_tokens = 64;
  r.sampling.stop = {"\nUser:", "</s>"};
  r.sampling.n = 3;
  r.sampling.seed = 42;
  r.sampling.extra = {{"presence_penalty", 0.5}, {"temperature", 0.1}};
  r.cache_salt = "never-sent";
  const json body = chat_body("m", r);
  EXPECT_EQ(body["top_p"], 0.9);
  EXPECT_EQ(body["max_tokens"], 64);
  EXPECT_EQ(body["stop"], json::array({"\nUser:", "</s>"}));
  EXPECT_EQ(body["n"], 3);
  EXPECT_EQ(body["seed"], 42);
  EXPECT_EQ(body["presence_penalty"], 0.5);
  EXPECT_EQ(body["temperature"], 0.1);  // extra is merged last
  EXPECT_EQ(body.dump().find("never-sent"), std::string::npos);
}

TEST(Protocol, CompletionBodyHasPrompt) {
  CompletionRequest r;
  r.prompt = "Once";
  r.sampling.max_tokens = 5;
  EXPECT_EQ(completion_body("m", r), json::parse(R"({"model":"m","prompt":"Once","max_tokens":5})"));
}

TEST(Protocol, ParsesChoicesInIndexOrderWithUsage) {
  const json answer = json::parse(R"({"choices":[
      {"index":1,"message":{"role":"assistant","content":"b"},"finish_reason":"length"},
      {"index":0,"message":{"role":"assistant","content":"a"},"finish_reason":"stop"}],
      "usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}})");
  std::string error;
  const auto parsed = parse_answer(Endpoint::kChat, answer, 2, &error);
  ASSERT_TRUE(parsed) << error;
  ASSERT_EQ(parsed->choices.size(), 2u);
  EXPECT_EQ(parsed->choices[0].text, "a");
  EXPECT_EQ(parsed->choices[0].finish_reason, "stop");
  EXPECT_EQ(parsed->choices[1].text, "b");
  EXPECT_EQ(parsed->choices[1].finish_reason, "length");
  EXPECT_EQ(parsed->usage.prompt_tokens, 12);
  EXPECT_EQ(parsed->usage.completion_tokens, 5);
}

TEST(Protocol, NullContentIsEmptyText) {
  std::string error;
  const auto parsed = parse_answer(
      Endpoint::kChat, json::parse(R"({"choices":[{"message":{"content":null},"finish_reason":"content_filter"}]})"),
      1, &error);
  ASSERT_TRUE(parsed) << error;
  EXPECT_EQ(parsed->choices[0].text, "");
  EXPECT_EQ(parsed->usage.prompt_tokens, 0);
}

TEST(Protocol, CompletionAnswerUsesText) {
  std::string error;
  const auto parsed =
      parse_answer(Endpoint::kCompletions, json::parse(R"({"choices":[{"text":" upon a time"}]})"), 1, &error);
  ASSERT_TRUE(parsed) << error;
  EXPECT_EQ(parsed->choices[0].text, " upon a time");
}

TEST(Protocol, MalformedAnswersSayWhatIsMissing) {
  struct Case {
    Endpoint endpoint;
    const char* answer;
    int n;
    const char* expected;
  };
  const Case cases[] = {
      {Endpoint::kChat, R"([1,2])", 1, "expected a JSON object, found array"},
      {Endpoint::kChat, R"({"usage":{}})", 1, "no \"choices\" array"},
      {Endpoint::kChat, R"({"choices":[]})", 1, "no \"choices\" array"},
      {Endpoint::kChat, R"({"choices":[{"message":{"content":"a"}}]})", 2, "1 choices, expected n=2"},
      {Endpoint::kChat, R"({"choices":[{"text":"a"}]})", 1, "choices[0] has no string message.content"},
      {Endpoint::kChat, R"({"choices":[{"message":{"content":7}}]})", 1, "choices[0] has no string message.content"},
      {Endpoint::kCompletions, R"({"choices":[{"message":{"content":"a"}}]})", 1, "choices[0] has no string text"},
      {Endpoint::kChat, R"({"choices":["a"]})", 1, "choices[0] is not an object"},
  };
  for (const auto& c : cases) {
    std::string error;
    EXPECT_FALSE(parse_answer(c.endpoint, json::parse(c.answer), c.n, &error)) << c.answer;
    EXPECT_NE(error.find(c.expected), std::string::npos) << c.answer << " -> " << error;
    EXPECT_EQ(error.rfind("malformed answer: ", 0), 0u) << error;
  }
}

TEST(Protocol, NonNumericUsageIsIgnoredNotFatal) {
  std::string error;
  const auto parsed = parse_answer(
      Endpoint::kChat,
      json::parse(R"({"choices":[{"message":{"content":"a"}}],"usage":{"prompt_tokens":"many"}})"), 1, &error);
  ASSERT_TRUE(parsed) << error;
  EXPECT_EQ(parsed->usage.prompt_tokens, 0);
}

}  // namespace
}  // namespace character::remote
