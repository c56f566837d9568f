// The server side of the wire format: request bodies as the OpenAI API reference
// shows them are accepted and mapped to ChatRequest / CompletionRequest; bad ones
// are refused with the status and "param" OpenAI gives; answers and stream chunks
// carry the documented fields. (The server itself, end to end on the engine:
// tests/pipeline/serve_test.cpp.)
#include <gtest/gtest.h>

#include "remote/completion.h"
#include "remote/server_protocol.h"

namespace character::remote {
namespace {

using nlohmann::json;

// What the refusal of `body` says: {status, param, message}.
struct Refusal {
  int status = 0;
  std::string param, message;
};

template <class Parse>
Refusal refusal(Parse parse, const json& body) {
  try {
    parse(body, "m", RequestLimits{});
  } catch (const InvalidRequest& e) {
    return {e.status(), e.param(), e.what()};
  }
  ADD_FAILURE() << "accepted: " << body;
  return {};
}

Refusal chat_refusal(const json& body) { return refusal(parse_chat_body, body); }

TEST(ServerProtocol, AcceptsTheDocumentedChatRequest) {
  // The shape of the chat/create example, with the newer fields.
  const json body = json::parse(R"({
    "model": "m",
    "messages": [
      {"role": "developer", "content": "You are a helpful assistant."},
      {"role": "user", "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": "!"}]},
      {"role": "assistant", "content": null},
      {"role": "user", "content": "Again"}
    ],
    "n": 2, "max_completion_tokens": 7, "temperature": 0.5, "top_p": 0.9, "stop": "END",
    "seed": 42, "stream": true, "stream_options": {"include_usage": true},
    "logprobs": false, "presence_penalty": 0, "user": "someone", "response_format": {"type": "text"},
    "top_k": -1, "min_p": 0.05, "repetition_penalty": 1.1,
    "chat_template_kwargs": {"enable_thinking": false}
  })");
  const ParsedChat p = parse_chat_body(body, "m");
  ASSERT_EQ(p.request.messages.size(), 4u);
  EXPECT_EQ(p.request.messages[0].role, "system");
  EXPECT_EQ(p.request.messages[1].content, "Hello!");
  EXPECT_EQ(p.request.messages[2].content, "");
  const Sampling& s = p.request.sampling;
  EXPECT_EQ(s.n, 2);
  EXPECT_EQ(s.max_tokens, 7);
  EXPECT_EQ(s.temperature, 0.5);
  EXPECT_EQ(s.top_p, 0.9);
  EXPECT_EQ(s.stop, std::vector<std::string>{"END"});
  EXPECT_EQ(s.seed, 42);
  EXPECT_EQ(s.extra["top_k"], 0);
  EXPECT_EQ(s.extra["min_p"], 0.05);
  EXPECT_EQ(s.extra["repetition_penalty"], 1.1);
  EXPECT_EQ(s.extra["chat_template_kwargs"]["enable_thinking"], false);
  EXPECT_TRUE(p.stream);
  EXPECT_TRUE(p.include_usage);

  const ParsedChat minimal = parse_chat_body({{"model", "m"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}}, "m");
  EXPECT_FALSE(minimal.request.sampling.temperature);
  EXPECT_FALSE(minimal.request.sampling.max_tokens);
  EXPECT_EQ(minimal.request.sampling.n, 1);
  EXPECT_FALSE(minimal.stream);
}

TEST(ServerProtocol, RefusesWithTheParamNamed) {
  const json ok = {{"model", "m"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  auto with = [&](const std::string& field, const json& value) {
    json b = ok;
    b[field] = value;
    return b;
  };
  struct Case {
    json body;
    int status;
    std::string param, fragment;
  };
  const std::vector<Case> cases = {
      {json::array(), 400, "", "expected a JSON object"},
      {json{{"messages", ok["messages"]}}, 400, "model", "must provide a model"},
      {with("model", "other"), 404, "model", "`other` does not exist"},
      {with("messages", "hi"), 400, "messages", "expected an array"},
      {with("messages", {{{"content", "x"}}}), 400, "messages[0].role", "missing"},
      {with("messages", {{{"role", "tool"}, {"content", "x"}}}), 400, "messages[0].role", "\"tool\""},
      {with("messages", {{{"role", "user"}}}), 400, "messages[0].content", "missing"},
      {with("messages", {{{"role", "user"}, {"content", {{{"type", "image_url"}}}}}}), 400,
       "messages[0].content[0]", "expected {\"type\": \"text\""},
      {with("n", 17), 400, "n", "expected 1 to 16"},
      {with("n", 1.5), 400, "n", "expected an integer"},
      {with("max_tokens", 0), 400, "max_tokens", "expected ≥ 1"},
      {with("max_completion_tokens", -3), 400, "max_completion_tokens", "expected ≥ 1"},
      {with("temperature", -0.1), 400, "temperature", "expected 0 to 2"},
      {with("temperature", "hot"), 400, "temperature", "expected a number"},
      {with("top_p", 0), 400, "top_p", "expected in (0, 1]"},
      {with("stop", 3), 400, "stop", "expected a string or an array"},
      {with("stop", {"a", 1}), 400, "stop[1]", "expected a string"},
      {with("stop", {""}), 400, "stop", "empty"},
      {with("seed", "x"), 400, "seed", "expected an integer"},
      {with("stream", "yes"), 400, "stream", "expected a boolean"},
      {with("tools", json::array()), 400, "tools", "not supported"},
      {with("top_logprobs", 2), 400, "top_logprobs", "not supported"},
      {with("logit_bias", {{"50256", -100}}), 400, "logit_bias", "not supported"},
      {with("frequency_penalty", 0.5), 400, "frequency_penalty", "not supported"},
      {with("response_format", {{"type", "json_object"}}), 400, "response_format", "not supported"},
      {with("best_of", 3), 400, "best_of", "best_of = n"},
      {with("top_k", -2), 400, "top_k", "expected ≥ 0"},
      {with("repetition_penalty", 0), 400, "repetition_penalty", "expected > 0"},
      {with("chat_template_kwargs", {{"tools", true}}), 400, "chat_template_kwargs.tools", "only enable_thinking"},
  };
  for (const auto& c : cases) {
    const Refusal r = chat_refusal(c.body);
    EXPECT_EQ(r.status, c.status) << c.body;
    EXPECT_EQ(r.param, c.param) << c.body;
    EXPECT_NE(r.message.find(c.fragment), std::string::npos) << c.body << " → " << r.message;
  }

  const json text_ok = {{"model", "m"}, {"prompt", "Once"}};
  EXPECT_EQ(parse_completion_body(text_ok, "m").request.prompt, "Once");
  EXPECT_EQ(parse_completion_body({{"model", "m"}, {"prompt", {"Once"}}}, "m").request.prompt, "Once");
  for (const auto& [field, value, fragment] :
       std::vector<std::tuple<std::string, json, std::string>>{{"prompt", json{"a", "b"}, "an array of one string"},
                                                               {"echo", true, "never echoed"},
                                                               {"suffix", "x", "no insertion"}}) {
    json b = text_ok;
    b[field] = value;
    const Refusal r = refusal(parse_completion_body, b);
    EXPECT_EQ(r.param, field);
    EXPECT_NE(r.message.find(fragment), std::string::npos) << r.message;
  }
}

TEST(ServerProtocol, AnswersAndChunksHaveTheDocumentedFields) {
  const AnswerMeta meta{"chatcmpl-1", 1700000000, "m"};
  Response r;
  r.choices = {{"Ahoy", "stop"}, {"Arr", "length"}};
  r.usage = {9, 3};
  const json chat = chat_answer_json(meta, r);
  EXPECT_EQ(chat["object"], "chat.completion");
  EXPECT_EQ(chat["created"], 1700000000);
  EXPECT_EQ(chat["choices"][1],
            json::parse(R"({"index": 1, "message": {"role": "assistant", "content": "Arr"},
                            "logprobs": null, "finish_reason": "length"})"));
  EXPECT_EQ(chat["usage"], json::parse(R"({"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12})"));
  const json text = completion_answer_json(meta, r);
  EXPECT_EQ(text["object"], "text_completion");
  EXPECT_EQ(text["choices"][0],
            json::parse(R"({"text": "Ahoy", "index": 0, "logprobs": null, "finish_reason": "stop"})"));

  EXPECT_EQ(chat_role_chunk(meta, 0)["choices"][0]["delta"], json::parse(R"({"role": "assistant", "content": ""})"));
  const json delta = chat_delta_chunk(meta, 1, "Ah");
  EXPECT_EQ(delta["object"], "chat.completion.chunk");
  EXPECT_EQ(delta["choices"][0],
            json::parse(R"({"index": 1, "delta": {"content": "Ah"}, "logprobs": null, "finish_reason": null})"));
  EXPECT_EQ(chat_finish_chunk(meta, 0, "stop")["choices"][0]["delta"], json::object());
  EXPECT_EQ(chat_finish_chunk(meta, 0, "stop")["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(completion_delta_chunk(meta, 0, "x")["choices"][0]["text"], "x");
  const json usage = usage_chunk(meta, true, r.usage);
  EXPECT_EQ(usage["choices"], json::array());
  EXPECT_EQ(usage["usage"]["total_tokens"], 12);
  EXPECT_EQ(sse_event(json{{"a", 1}}), "data: {\"a\":1}\n\n");
  EXPECT_EQ(sse_done(), "data: [DONE]\n\n");

  EXPECT_EQ(error_json(400, "bad", "n"),
            json::parse(R"({"error": {"message": "bad", "type": "invalid_request_error", "param": "n", "code": null}})"));
  EXPECT_EQ(error_json(500, "boom")["error"]["type"], "server_error");
  const std::string id = new_completion_id("chatcmpl-");
  EXPECT_EQ(id.size(), 9u + 24u);
  EXPECT_NE(id, new_completion_id("chatcmpl-"));
}

// The default batch of CompletionBackend: one Result per request in order, a
// character::Error recorded as that request's Failure.
TEST(ServerProtocol, CompleteEachRecordsFailures) {
  std::vector<std::size_t> seen;
  BatchOptions options;
  options.on_result = [&](const Result& r) { seen.push_back(r.index); };
  Progress last;
  options.on_progress = [&](const Progress& p) { last = p; };
  const auto results = complete_each(
      3,
      [](std::size_t i) {
        if (i == 1) throw ConfigError("'max_tokens' is too large");
        Response r;
        r.choices = {{"ok " + std::to_string(i), "stop"}};
        return r;
      },
      options);
  ASSERT_EQ(results.size(), 3u);
  EXPECT_TRUE(results[0].ok());
  ASSERT_FALSE(results[1].ok());
  EXPECT_EQ(results[1].failure->reason, "'max_tokens' is too large");
  EXPECT_EQ(results[2].response->choices[0].text, "ok 2");
  EXPECT_EQ(seen, (std::vector<std::size_t>{0, 1, 2}));
  EXPECT_EQ(last.done, 3u);
  EXPECT_EQ(last.failed, 1u);
}

}  // namespace
}  // namespace character::remote
