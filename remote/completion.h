// The small completion interface between whoever wants text and whoever makes it.
// `character serve` drives one (the engine, pipeline/engine_backend.h) behind its
// OpenAI-compatible HTTP server, and the data generators call the local engine and
// the remote teacher (ClientBackend, remote/client_backend.h) through the same
// methods. No torch here: requests and answers are the teacher client's types.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "remote/types.h"

namespace character::remote {

// (choice index, new text): pieces of one choice concatenate to its Choice::text.
// Called on the calling thread, choices possibly interleaved.
using StreamCallback = std::function<void(int choice, std::string_view delta)>;

struct CallOptions {
  std::string stage = "default";  // usage is accounted under this name (remote backends)
  // Empty: no streaming. A backend that cannot stream (the remote client) calls it
  // once per choice with the whole text when the answer is complete.
  StreamCallback on_delta;
};

// A model that answers OpenAI-style chat and text-completion requests.
//
// Errors: a request the backend cannot serve as asked (a bad sampling value, a
// prompt longer than the model's context, a role the chat template lacks) is a
// ConfigError whose message names the field; the server turns it into HTTP 400. A
// failure of the backend itself is another character::Error (RemoteError from a
// teacher that gave up, CheckpointError ...): HTTP 500.
//
// Sampling: n choices per request; max_tokens unset = the backend's default;
// temperature 0 = greedy; seed set = the same request gives the same text.
class CompletionBackend {
 public:
  virtual ~CompletionBackend() = default;

  // The name answers carry in "model" and /v1/models lists.
  virtual std::string model_id() const = 0;

  // Throws the ConfigError that complete_chat / complete_text would throw for this
  // request (bad value, prompt too long), without generating. The server calls it
  // before it answers 200 and starts streaming. Default: accepts everything.
  virtual void check(const ChatRequest& request) const { (void)request; }
  virtual void check(const CompletionRequest& request) const { (void)request; }

  // One request; its Response has request.sampling.n choices and the token usage.
  virtual Response complete_chat(const ChatRequest& request, const CallOptions& options = {}) = 0;
  virtual Response complete_text(const CompletionRequest& request, const CallOptions& options = {}) = 0;

  // Many requests, for throughput: the engine generates them in batches, the remote
  // client keeps several in flight. One Result per request, in input order; a
  // request that fails becomes a Failure (never dropped, never thrown), while the
  // others go on. options.on_result sees each as it finishes. The defaults here
  // serve the requests one by one through complete_chat / complete_text.
  virtual std::vector<Result> complete_chat_batch(const std::vector<ChatRequest>& requests,
                                                  const BatchOptions& options = {});
  virtual std::vector<Result> complete_text_batch(const std::vector<CompletionRequest>& requests,
                                                  const BatchOptions& options = {});
};

// For implementations: runs `one(i)` for each request index in order, turning a
// character::Error into a Failure and reporting each Result and the progress
// through `options`. Used by the default batch methods.
std::vector<Result> complete_each(std::size_t count, const std::function<Response(std::size_t)>& one,
                                  const BatchOptions& options);

}  // namespace character::remote
