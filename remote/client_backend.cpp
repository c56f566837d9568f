// ClientBackend: forwards to remote::Client.
#include "remote/client_backend.h"

namespace character::remote {
namespace {

Response deliver(Response response, const CallOptions& options) {
  if (options.on_delta) {
    for (std::size_t i = 0; i < response.choices.size(); ++i) {
      options.on_delta(static_cast<int>(i), response.choices[i].text);
    }
  }
  return response;
}

}  // namespace

Response ClientBackend::complete_chat(const ChatRequest& request, const CallOptions& options) {
  return deliver(client_.complete(request, options.stage), options);
}

Response ClientBackend::complete_text(const CompletionRequest& request, const CallOptions& options) {
  return deliver(client_.complete(request, options.stage), options);
}

std::vector<Result> ClientBackend::complete_chat_batch(const std::vector<ChatRequest>& requests,
                                                       const BatchOptions& options) {
  return client_.complete_all(requests, options);
}

std::vector<Result> ClientBackend::complete_text_batch(const std::vector<CompletionRequest>& requests,
                                                       const BatchOptions& options) {
  return client_.complete_all(requests, options);
}

}  // namespace character::remote
