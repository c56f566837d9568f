// `character serve`'s parts end to end: the engine backend behind the
// OpenAI-compatible server on an ephemeral loopback port, queried with the
// project's teacher client (remote/client.h) and with raw HTTP (cpp-httplib) for
// streaming and errors. Answers must equal what transformers generates for the
// same requests (fixture serve/cases.json from tools/oracle/fixtures_serve.py: a
// tiny Qwen3 with the real Qwen3 tokenizer and chat template).
#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "pipeline/engine_backend.h"
#include "remote/client.h"
#include "remote/server.h"
#include "tests/test_support.h"

namespace character::pipeline {
namespace {

using nlohmann::json;
using character::testing::fixture;

json load_cases() {
  std::ifstream in(fixture("serve/cases.json"));
  return in ? json::parse(in) : json::object();
}

const json& cases() {
  static const json all = load_cases();
  return all;
}

const json& find_case(const std::string& name) {
  static const json none;
  const json& all = cases();
  if (all.contains("cases")) {
    for (const auto& c : all["cases"]) {
      if (c["name"] == name) return c;
    }
  }
  ADD_FAILURE() << "no case " << name << " in serve/cases.json";
  return none;
}

// A case's request as the teacher client sends it.
remote::Sampling sampling_of(const json& c) {
  remote::Sampling s;
  s.max_tokens = c["max_tokens"].get<int>();
  s.temperature = c.value("temperature", 0.0);
  if (c.contains("seed")) s.seed = c["seed"].get<int64_t>();
  if (c.contains("top_k")) s.extra["top_k"] = c["top_k"];
  if (c.contains("enable_thinking")) s.extra["chat_template_kwargs"] = {{"enable_thinking", c["enable_thinking"]}};
  for (const auto& stop : c["stop"]) s.stop.push_back(stop);
  return s;
}

remote::ChatRequest chat_request(const json& c) {
  remote::ChatRequest r;
  for (const auto& m : c["messages"]) r.messages.push_back({m["role"], m["content"]});
  r.sampling = sampling_of(c);
  return r;
}

remote::CompletionRequest text_request(const json& c) {
  remote::CompletionRequest r;
  r.prompt = c["prompt"];
  r.sampling = sampling_of(c);
  return r;
}

// The request body of a case, as a raw HTTP client sends it.
json body_of(const json& c, const std::string& model) {
  json body = {{"model", model}, {"max_tokens", c["max_tokens"]}, {"temperature", c.value("temperature", 0.0)}};
  if (c["kind"] == "chat") {
    body["messages"] = c["messages"];
  } else {
    body["prompt"] = c["prompt"];
  }
  if (c.contains("seed")) body["seed"] = c["seed"];
  if (c.contains("top_k")) body["top_k"] = c["top_k"];
  if (c.contains("enable_thinking")) body["chat_template_kwargs"] = {{"enable_thinking", c["enable_thinking"]}};
  if (!c["stop"].empty()) body["stop"] = c["stop"];
  return body;
}

// The data of each server-sent event of a body, "[DONE]" included.
std::vector<std::string> sse_data(const std::string& body) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < body.size()) {
    const std::size_t end = body.find("\n\n", pos);
    EXPECT_NE(end, std::string::npos) << "event without its blank line: " << body.substr(pos);
    if (end == std::string::npos) break;
    const std::string event = body.substr(pos, end - pos);
    EXPECT_EQ(event.rfind("data: ", 0), 0u) << event;
    out.push_back(event.substr(6));
    pos = end + 2;
  }
  return out;
}

json body_without_stream(json body) {
  body.erase("stream");
  return body;
}

class Serve : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    EngineBackendOptions options;
    options.model_id = "tiny-pirate";
    options.max_batch_rows = 4;
    backend_ = new EngineBackend(fixture(cases().value("model_dir", "serve/qwen3_tiny")), options);
    remote::ServerOptions server_options;
    server_options.port = 0;
    server_ = new remote::Server(*backend_, server_options);
    server_->start();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete backend_;
    server_ = nullptr;
    backend_ = nullptr;
  }
  void SetUp() override {
    if (!server_) GTEST_SKIP() << "the suite's setup failed";
  }

  static remote::Client client() {
    remote::ClientConfig config;
    config.base_url = server_->base_url();
    config.model = "tiny-pirate";
    config.retry.max_retries = 0;
    return remote::Client(config);
  }
  static httplib::Client http() {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_read_timeout(60, 0);
    return c;
  }
  static json post(const std::string& path, const json& body, int expected_status) {
    auto c = http();
    auto res = c.Post(path.c_str(), body.dump(), "application/json");
    EXPECT_TRUE(res) << path;
    if (!res) return json();
    EXPECT_EQ(res->status, expected_status) << res->body;
    return json::parse(res->body);
  }

  static EngineBackend* backend_;
  static remote::Server* server_;
};

EngineBackend* Serve::backend_ = nullptr;
remote::Server* Serve::server_ = nullptr;

TEST_F(Serve, ChatAnswersEqualTransformers) {
  auto c = client();
  for (const char* name : {"chat_greedy", "chat_no_thinking", "chat_sampled", "chat_stop_string"}) {
    const json& expected = find_case(name);
    const remote::Response r = c.complete(chat_request(expected));
    ASSERT_EQ(r.choices.size(), 1u) << name;
    EXPECT_EQ(r.choices[0].text, expected["text"].get<std::string>()) << name;
    EXPECT_EQ(r.choices[0].finish_reason, expected["finish_reason"]) << name;
    EXPECT_EQ(r.usage.prompt_tokens, expected["prompt_tokens"]) << name;
    if (expected.contains("ids")) {
      EXPECT_EQ(r.usage.completion_tokens, expected["ids"].size()) << name;
    }
  }
}

TEST_F(Serve, TextCompletionEqualsTransformers) {
  const json& expected = find_case("text_greedy");
  auto c = client();
  const remote::Response r = c.complete(text_request(expected));
  ASSERT_EQ(r.choices.size(), 1u);
  EXPECT_EQ(r.choices[0].text, expected["text"].get<std::string>());
  EXPECT_EQ(r.choices[0].finish_reason, "length");
  EXPECT_EQ(r.usage.prompt_tokens, expected["prompt_tokens"]);
  EXPECT_EQ(r.usage.completion_tokens, expected["ids"].size());
}

// The answer object as OpenAI documents it (chat/create, completions/create).
TEST_F(Serve, AnswerObjectsHaveOpenAIShape) {
  const json& chat_case = find_case("chat_greedy");
  json body = body_of(chat_case, "tiny-pirate");
  body["n"] = 2;
  const json answer = post("/v1/chat/completions", body, 200);
  EXPECT_EQ(answer["object"], "chat.completion");
  EXPECT_EQ(answer["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  EXPECT_TRUE(answer["created"].is_number_integer());
  EXPECT_EQ(answer["model"], "tiny-pirate");
  ASSERT_EQ(answer["choices"].size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const json& choice = answer["choices"][i];
    EXPECT_EQ(choice["index"], i);
    EXPECT_EQ(choice["message"]["role"], "assistant");
    EXPECT_EQ(choice["message"]["content"], chat_case["text"]);  // greedy: both choices alike
    EXPECT_EQ(choice["finish_reason"], "length");
    EXPECT_TRUE(choice["logprobs"].is_null());
  }
  const json& usage = answer["usage"];
  EXPECT_EQ(usage["prompt_tokens"], chat_case["prompt_tokens"]);
  EXPECT_EQ(usage["completion_tokens"], 2 * chat_case["ids"].size());
  EXPECT_EQ(usage["total_tokens"], usage["prompt_tokens"].get<int>() + usage["completion_tokens"].get<int>());

  const json& text_case = find_case("text_greedy");
  const json text = post("/v1/completions", body_of(text_case, "tiny-pirate"), 200);
  EXPECT_EQ(text["object"], "text_completion");
  EXPECT_EQ(text["id"].get<std::string>().rfind("cmpl-", 0), 0u);
  ASSERT_EQ(text["choices"].size(), 1u);
  EXPECT_EQ(text["choices"][0]["text"], text_case["text"]);
  EXPECT_EQ(text["choices"][0]["index"], 0);
  EXPECT_EQ(text["choices"][0]["finish_reason"], "length");

  auto c = http();
  auto models = c.Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 200);
  const json list = json::parse(models->body);
  EXPECT_EQ(list["object"], "list");
  ASSERT_EQ(list["data"].size(), 1u);
  EXPECT_EQ(list["data"][0]["id"], "tiny-pirate");
  EXPECT_EQ(list["data"][0]["object"], "model");
}

// Streamed chunks concatenate to the non-streamed text, choice by choice; the
// stream ends with finish chunks, the usage chunk when asked, and [DONE].
TEST_F(Serve, ChatStreamConcatenatesToTheAnswer) {
  for (const char* name : {"chat_greedy", "chat_sampled", "chat_stop_string"}) {
    const json& expected = find_case(name);
    json body = body_of(expected, "tiny-pirate");
    body["stream"] = true;
    body["stream_options"] = {{"include_usage", true}};
    auto c = http();
    auto res = c.Post("/v1/chat/completions", body.dump(), "application/json");
    ASSERT_TRUE(res) << name;
    ASSERT_EQ(res->status, 200) << res->body;
    EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
    const auto events = sse_data(res->body);
    ASSERT_GE(events.size(), 4u) << res->body;
    EXPECT_EQ(events.back(), "[DONE]");
    std::string text, id, finish;
    int content_chunks = 0;
    json usage;
    for (std::size_t e = 0; e + 1 < events.size(); ++e) {
      const json chunk = json::parse(events[e]);
      EXPECT_EQ(chunk["object"], "chat.completion.chunk");
      EXPECT_EQ(chunk["model"], "tiny-pirate");
      if (id.empty()) id = chunk["id"];
      EXPECT_EQ(chunk["id"], id) << "one id for the whole stream";
      if (chunk.contains("usage")) {
        EXPECT_TRUE(chunk["choices"].empty());
        usage = chunk["usage"];
        continue;
      }
      ASSERT_EQ(chunk["choices"].size(), 1u);
      const json& choice = chunk["choices"][0];
      EXPECT_EQ(choice["index"], 0);
      if (e == 0) {
        EXPECT_EQ(choice["delta"]["role"], "assistant");
      }
      if (choice["delta"].contains("content")) {
        text += choice["delta"]["content"].get<std::string>();
        content_chunks += e > 0;
      }
      if (!choice["finish_reason"].is_null()) finish = choice["finish_reason"];
    }
    EXPECT_EQ(text, expected["text"].get<std::string>()) << name;
    EXPECT_GT(content_chunks, 1) << name << ": the text came in pieces";
    EXPECT_EQ(finish, expected["finish_reason"]) << name;
    EXPECT_EQ(usage["prompt_tokens"], expected["prompt_tokens"]) << name;
  }
}

TEST_F(Serve, StreamWithSeveralChoicesAndTextCompletion) {
  const json& chat_case = find_case("chat_sampled");
  json body = body_of(chat_case, "tiny-pirate");
  body["n"] = 3;
  const json answer = post("/v1/chat/completions", body, 200);
  body["stream"] = true;
  auto c = http();
  auto res = c.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(res);
  std::map<int, std::string> streamed;
  for (const auto& data : sse_data(res->body)) {
    if (data == "[DONE]") continue;
    const json choice = json::parse(data)["choices"][0];
    streamed[choice["index"]] += choice["delta"].value("content", "");
  }
  ASSERT_EQ(streamed.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(streamed[i], answer["choices"][i]["message"]["content"]) << i;
  // The seed makes the choices reproducible; the choices are independent samples.
  EXPECT_EQ(post("/v1/chat/completions", body_without_stream(body), 200)["choices"], answer["choices"]);
  EXPECT_NE(streamed[1], streamed[0]);
  json other_seed = body_without_stream(body);
  other_seed["seed"] = chat_case["seed"].get<int>() + 1;
  EXPECT_NE(post("/v1/chat/completions", other_seed, 200)["choices"], answer["choices"]);

  const json& text_case = find_case("text_greedy");
  json text_body = body_of(text_case, "tiny-pirate");
  text_body["stream"] = true;
  res = c.Post("/v1/completions", text_body.dump(), "application/json");
  ASSERT_TRUE(res);
  std::string text, finish;
  const auto events = sse_data(res->body);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back(), "[DONE]");
  for (const auto& data : events) {
    if (data == "[DONE]") continue;
    const json chunk = json::parse(data);
    EXPECT_EQ(chunk["object"], "text_completion");
    text += chunk["choices"][0]["text"].get<std::string>();
    if (!chunk["choices"][0]["finish_reason"].is_null()) finish = chunk["choices"][0]["finish_reason"];
  }
  EXPECT_EQ(text, text_case["text"]);
  EXPECT_EQ(finish, "length");
}

// {"error": {"message", "type", "param", "code"}} with the status OpenAI gives.
void expect_error(const json& answer, const std::string& param, const std::string& fragment,
                  const std::string& type = "invalid_request_error") {
  ASSERT_TRUE(answer.contains("error")) << answer;
  const json& e = answer["error"];
  EXPECT_EQ(e["type"], type) << answer;
  if (param.empty()) {
    EXPECT_TRUE(e["param"].is_null()) << answer;
  } else {
    EXPECT_EQ(e["param"], param) << answer;
  }
  EXPECT_NE(e["message"].get<std::string>().find(fragment), std::string::npos) << answer;
  EXPECT_TRUE(e.contains("code")) << answer;
}

TEST_F(Serve, BadRequestsGetOpenAIErrors) {
  const json good = body_of(find_case("chat_greedy"), "tiny-pirate");
  auto with = [&](const std::string& field, const json& value) {
    json b = good;
    b[field] = value;
    return b;
  };
  expect_error(post("/v1/chat/completions", with("temperature", 3), 400), "temperature", "expected 0 to 2");
  expect_error(post("/v1/chat/completions", with("n", 0), 400), "n", "'n' is 0");
  expect_error(post("/v1/chat/completions", with("max_tokens", "ten"), 400), "max_tokens", "expected an integer");
  expect_error(post("/v1/chat/completions", with("messages", json::array()), 400), "messages", "empty");
  expect_error(post("/v1/chat/completions", with("messages", json::array({{{"role", "robot"}, {"content", "x"}}})), 400),
               "messages[0].role", "\"robot\"");
  expect_error(post("/v1/chat/completions", with("stop", json::array({"a", "b", "c", "d", "e"})), 400), "stop",
               "at most 4");
  expect_error(post("/v1/chat/completions", with("logprobs", true), 400), "logprobs", "not supported");
  expect_error(post("/v1/chat/completions", with("stream_options", {{"include_usage", true}}), 400),
               "stream_options", "only allowed when 'stream' is true");
  json no_messages = good;
  no_messages.erase("messages");
  expect_error(post("/v1/chat/completions", no_messages, 400), "messages", "missing");
  const json wrong_model = post("/v1/chat/completions", with("model", "gpt-4o"), 404);
  expect_error(wrong_model, "model", "gpt-4o");
  EXPECT_EQ(wrong_model["error"]["code"], "model_not_found");
  expect_error(post("/v1/completions", {{"model", "tiny-pirate"}, {"prompt", 5}}, 400), "prompt", "expected a string");

  // Refused by the engine (the context is 512 tokens), before a stream starts too.
  expect_error(post("/v1/chat/completions", with("max_tokens", 100000), 400), "", "'max_tokens' is 100000");
  json streamed = with("max_tokens", 100000);
  streamed["stream"] = true;
  expect_error(post("/v1/chat/completions", streamed, 400), "", "model's context of 512");

  auto c = http();
  auto res = c.Post("/v1/chat/completions", "{not json", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  expect_error(json::parse(res->body), "", "not valid JSON");
  res = c.Post("/v1/embeddings", "{}", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  expect_error(json::parse(res->body), "", "POST /v1/embeddings");

  // The teacher client reports the server's refusal without retrying it.
  auto client_ = client();
  remote::ChatRequest request = chat_request(find_case("chat_greedy"));
  request.sampling.temperature = 5.0;
  try {
    client_.complete(request);
    ADD_FAILURE() << "expected RemoteError";
  } catch (const RemoteError& e) {
    EXPECT_NE(std::string(e.what()).find("HTTP 400"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("temperature"), std::string::npos) << e.what();
  }
}

// A client that hangs up mid-stream ends its generation; the server goes on serving.
TEST_F(Serve, ClientHangingUpMidStreamLeavesTheServerServing) {
  const json& expected = find_case("chat_greedy");
  json body = body_of(expected, "tiny-pirate");
  body["stream"] = true;
  body["max_tokens"] = 400;
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  int pieces = 0;
  req.content_receiver = [&](const char*, std::size_t, uint64_t, uint64_t) { return ++pieces < 2; };
  auto c = http();
  auto res = c.send(req);
  EXPECT_FALSE(res) << "the receiver cancelled the transfer";
  EXPECT_EQ(pieces, 2);
  const json answer = post("/v1/chat/completions", body_without_stream(body_of(expected, "tiny-pirate")), 200);
  EXPECT_EQ(answer["choices"][0]["message"]["content"], expected["text"]);
}

// One hostile body used to overflow the server's stack for every client (issue 14): a
// 60,000-deep array (120 KB) is refused with 400 while it is parsed, and the server answers
// the next request.
TEST_F(Serve, DeeplyNestedBodyIsRefusedAndTheServerKeepsServing) {
  const std::string deep = std::string(60000, '[') + std::string(60000, ']');
  auto c = http();
  for (const char* path : {"/v1/chat/completions", "/v1/completions"}) {
    auto res = c.Post(path, deep, "application/json");
    ASSERT_TRUE(res) << path << ": the server went away";
    EXPECT_EQ(res->status, 400) << path;
    expect_error(json::parse(res->body), "", "nested deeper than 64 levels");
  }
  const json& expected = find_case("chat_greedy");
  const json answer = post("/v1/chat/completions", body_without_stream(body_of(expected, "tiny-pirate")), 200);
  EXPECT_EQ(answer["choices"][0]["message"]["content"], expected["text"]);
}

TEST_F(Serve, PortInUseIsAnIoError) {
  remote::ServerOptions options;
  options.port = server_->port();
  remote::Server second(*backend_, options);
  try {
    second.bind();
    ADD_FAILURE() << "a second server bound the port in use";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(server_->port())), std::string::npos)
        << e.what();
  }
}

// complete_chat_batch (how the generators get throughput) gives each request the
// answer it gets alone, keeps input order, and records a refused request as a
// failure while the rest go on.
TEST_F(Serve, EngineBatchEqualsSingleRequests) {
  std::vector<remote::ChatRequest> requests;
  std::vector<std::string> expected;
  for (const char* name : {"chat_greedy", "chat_sampled", "chat_no_thinking", "chat_stop_string", "chat_greedy"}) {
    requests.push_back(chat_request(find_case(name)));
    expected.push_back(find_case(name)["text"]);
  }
  requests.push_back(chat_request(find_case("chat_greedy")));
  requests.back().sampling.max_tokens = 100000;  // beyond the context
  std::vector<std::size_t> order;
  remote::BatchOptions options;
  options.on_result = [&](const remote::Result& r) { order.push_back(r.index); };
  const auto results = backend_->complete_chat_batch(requests, options);
  ASSERT_EQ(results.size(), requests.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].failure->reason;
    EXPECT_EQ(results[i].index, i);
    EXPECT_EQ(results[i].response->choices.at(0).text, expected[i]) << i;
  }
  ASSERT_FALSE(results.back().ok());
  EXPECT_NE(results.back().failure->reason.find("max_tokens"), std::string::npos) << results.back().failure->reason;
  EXPECT_EQ(order.size(), requests.size()) << "on_result once per request";

  const json& text_case = find_case("text_greedy");
  const auto text = backend_->complete_text_batch({text_request(text_case), text_request(text_case)});
  ASSERT_EQ(text.size(), 2u);
  for (const auto& r : text) {
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.response->choices.at(0).text, text_case["text"]);
  }
}

}  // namespace
}  // namespace character::pipeline
