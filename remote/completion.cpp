// The default batch methods of CompletionBackend: requests served one by one, a
// character::Error becoming that request's Failure while the others go on.
#include "remote/completion.h"

#include "base/error.h"

namespace character::remote {

std::vector<Result> complete_each(std::size_t count, const std::function<Response(std::size_t)>& one,
                                  const BatchOptions& options) {
  std::vector<Result> results(count);
  Progress progress;
  progress.total = count;
  for (std::size_t i = 0; i < count; ++i) {
    Result& result = results[i];
    result.index = i;
    try {
      result.response = one(i);
      if (result.response->from_cache) ++progress.cache_hits;
    } catch (const Error& e) {
      result.failure = Failure{e.what(), 0, 1};
      ++progress.failed;
    }
    ++progress.done;
    if (options.on_result) options.on_result(result);
    if (options.on_progress) options.on_progress(progress);
  }
  return results;
}

std::vector<Result> CompletionBackend::complete_chat_batch(const std::vector<ChatRequest>& requests,
                                                           const BatchOptions& options) {
  CallOptions call;
  call.stage = options.stage;
  return complete_each(
      requests.size(), [&](std::size_t i) { return complete_chat(requests[i], call); }, options);
}

std::vector<Result> CompletionBackend::complete_text_batch(const std::vector<CompletionRequest>& requests,
                                                           const BatchOptions& options) {
  CallOptions call;
  call.stage = options.stage;
  return complete_each(
      requests.size(), [&](std::size_t i) { return complete_text(requests[i], call); }, options);
}

}  // namespace character::remote
