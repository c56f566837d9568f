// The server side of the OpenAI wire format: request bodies of /v1/chat/completions
// and /v1/completions checked and turned into ChatRequest / CompletionRequest, and
// the answer, stream-chunk and error JSON built as the OpenAI API reference shows
// them. remote/server.h puts these behind HTTP; nothing here does I/O.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "remote/types.h"

namespace character::remote {

// A request the server refuses: HTTP `status` with an OpenAI-shaped error body
// naming `param` (the offending field; "" when none).
class InvalidRequest : public ConfigError {
 public:
  InvalidRequest(const std::string& message, std::string param, int status = 400,
                 std::string code = "")
      : ConfigError(message), param_(std::move(param)), status_(status), code_(std::move(code)) {}
  const std::string& param() const { return param_; }
  int status() const { return status_; }
  const std::string& code() const { return code_; }

 private:
  std::string param_;
  int status_;
  std::string code_;
};

// Limits the server puts on a request.
struct RequestLimits {
  int max_n = 16;           // choices per request
  std::size_t max_stop = 4; // stop sequences, as OpenAI
};

struct ParsedChat {
  ChatRequest request;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

struct ParsedCompletion {
  CompletionRequest request;
  bool stream = false;
  bool include_usage = false;
};

// InvalidRequest naming the field for a body that is not an object, a missing or
// mistyped field, a value out of range, or a feature this server does not offer
// (logprobs, tools, echo, best_of > 1 ...). `model_id` is the only model served:
// another "model" is a 404 model_not_found, as OpenAI answers.
// Beyond OpenAI's fields, as vLLM: top_k, min_p, repetition_penalty and
// chat_template_kwargs.enable_thinking travel in Sampling::extra.
ParsedChat parse_chat_body(const nlohmann::json& body, const std::string& model_id,
                           const RequestLimits& limits = {});
ParsedCompletion parse_completion_body(const nlohmann::json& body, const std::string& model_id,
                                       const RequestLimits& limits = {});

// {"error": {"message", "type", "param", "code"}}; type is "invalid_request_error"
// for 4xx and "server_error" for 5xx; param and code are null when empty.
nlohmann::json error_json(int status, const std::string& message, const std::string& param = "",
                          const std::string& code = "");

// A fresh id: prefix + 24 hex digits ("chatcmpl-", "cmpl-").
std::string new_completion_id(const std::string& prefix);

// What an answer's envelope carries besides its choices.
struct AnswerMeta {
  std::string id;
  std::int64_t created = 0;  // Unix seconds
  std::string model;
};

nlohmann::json usage_json(const TokenUsage& usage);
// "chat.completion" / "text_completion" objects.
nlohmann::json chat_answer_json(const AnswerMeta& meta, const Response& response);
nlohmann::json completion_answer_json(const AnswerMeta& meta, const Response& response);

// Stream chunks ("chat.completion.chunk" / "text_completion"). The first chunk of
// a chat choice carries {"role": "assistant", "content": ""}; text pieces carry
// {"content": piece}; the last carries {} and the finish_reason.
nlohmann::json chat_role_chunk(const AnswerMeta& meta, int index);
nlohmann::json chat_delta_chunk(const AnswerMeta& meta, int index, const std::string& piece);
nlohmann::json chat_finish_chunk(const AnswerMeta& meta, int index, const std::string& finish_reason);
nlohmann::json completion_delta_chunk(const AnswerMeta& meta, int index, const std::string& piece);
nlohmann::json completion_finish_chunk(const AnswerMeta& meta, int index, const std::string& finish_reason);
// The last chunk with stream_options.include_usage: "choices": [] and the usage.
nlohmann::json usage_chunk(const AnswerMeta& meta, bool chat, const TokenUsage& usage);

// One server-sent event: "data: <json>\n\n"; sse_done() is "data: [DONE]\n\n".
std::string sse_event(const nlohmann::json& chunk);
std::string sse_done();

}  // namespace character::remote
