// What the teacher client sends and gets back: chat and text-completion requests
// with their sampling parameters, the parsed answers with token usage, and the
// failure record a request becomes when its retries run out (never dropped).
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace character::remote {

struct Message {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

// Sampling parameters, named as in the OpenAI API; unset ones are not sent, so
// the server's defaults apply.
struct Sampling {
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int> max_tokens;
  std::vector<std::string> stop;  // at most 4 for OpenAI; not checked here
  int n = 1;                      // choices per request
  std::optional<std::int64_t> seed;
  nlohmann::json extra = nlohmann::json::object();  // merged into the body last
};

// POST {base_url}/chat/completions
struct ChatRequest {
  std::vector<Message> messages;
  Sampling sampling;
  // Hashed into the cache key but never sent: tells apart otherwise identical
  // requests that should give independent samples (e.g. "sample-3").
  std::string cache_salt;
};

// POST {base_url}/completions
struct CompletionRequest {
  std::string prompt;
  Sampling sampling;
  std::string cache_salt;
};

struct Choice {
  std::string text;           // message.content for chat, text for completions
  std::string finish_reason;  // "stop", "length", ... ("" when the server gave none)
};

struct TokenUsage {
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
};

struct Response {
  std::vector<Choice> choices;  // ordered by the answer's "index" field
  TokenUsage usage;
  bool from_cache = false;
  int attempts = 0;  // HTTP requests made for this answer (0 when from the cache)
  std::chrono::milliseconds latency{0};  // first send to last byte, retries included
};

// A request that failed after its retries (or at once, for a non-retryable status).
struct Failure {
  std::string reason;    // "HTTP 500: <body excerpt>", "timeout after 300 ms", ...; redacted
  long http_status = 0;  // last HTTP status, 0 when no HTTP answer came
  int attempts = 0;
};

// One outcome of a batch: exactly one of response / failure is set.
struct Result {
  std::size_t index = 0;  // position of the request in the batch
  std::optional<Response> response;
  std::optional<Failure> failure;
  bool ok() const { return response.has_value(); }
};

// How far a batch has come (Client::complete_all, CompletionBackend batches).
struct Progress {
  std::size_t total = 0;
  std::size_t done = 0;  // succeeded + failed
  std::size_t failed = 0;
  std::size_t cache_hits = 0;
};

struct BatchOptions {
  std::string stage = "default";  // usage is accounted under this name
  // Called on the calling thread as each request finishes, in completion order.
  std::function<void(const Result&)> on_result;
  std::function<void(const Progress&)> on_progress;
};

}  // namespace character::remote
