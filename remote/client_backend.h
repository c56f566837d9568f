// The teacher client behind the completion interface: the generators call a remote
// OpenAI-compatible server and the local engine (pipeline/engine_backend.h) the
// same way. Batches keep up to max_in_flight requests in flight (Client::complete_all).
#pragma once

#include <string>

#include "remote/client.h"
#include "remote/completion.h"

namespace character::remote {

class ClientBackend : public CompletionBackend {
 public:
  // `client` must outlive the backend.
  explicit ClientBackend(Client& client) : client_(client) {}

  std::string model_id() const override { return client_.config().model; }

  // RemoteError when the request fails after its retries. The client does not
  // stream: options.on_delta gets each choice's whole text once the answer is in.
  Response complete_chat(const ChatRequest& request, const CallOptions& options = {}) override;
  Response complete_text(const CompletionRequest& request, const CallOptions& options = {}) override;

  std::vector<Result> complete_chat_batch(const std::vector<ChatRequest>& requests,
                                          const BatchOptions& options = {}) override;
  std::vector<Result> complete_text_batch(const std::vector<CompletionRequest>& requests,
                                          const BatchOptions& options = {}) override;

  Client& client() { return client_; }

 private:
  Client& client_;
};

}  // namespace character::remote
