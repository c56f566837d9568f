// The teacher client: OpenAI-compatible /chat/completions and /completions over
// libcurl, with a bounded number of requests in flight, retries with backoff on
// transient failures (honouring Retry-After), an on-disk answer cache and usage
// accounting per stage. The API key comes from an environment variable that the
// config names; it is registered with the log's redactor and never written anywhere.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "remote/protocol.h"
#include "remote/request_cache.h"
#include "remote/retry.h"
#include "remote/types.h"
#include "remote/usage.h"

namespace character::remote {

struct ClientConfig {
  std::string base_url;     // e.g. "https://api.openai.com/v1" (the endpoint path is appended)
  std::string model;        // sent as "model" in every body
  std::string api_key_env;  // NAME of the environment variable holding the key; "" = no auth
  std::chrono::milliseconds timeout{120'000};  // whole request, first byte to last
  std::chrono::milliseconds connect_timeout{10'000};
  int max_in_flight = 8;  // concurrent HTTP requests of one batch
  RetryPolicy retry;
  std::uint64_t jitter_seed = 0;  // 0: seeded from std::random_device
  std::optional<Prices> prices;   // cost is reported only when set
  std::filesystem::path cache_dir;  // empty: no cache
  std::vector<std::pair<std::string, std::string>> headers;  // extra HTTP headers
  // A response body larger than this (after decompression) fails its request without a
  // retry: an answer of n choices is a few megabytes at most.
  std::size_t max_response_bytes = 64u << 20;
};

// Reads a ClientConfig from JSON (the "teacher"/"judge" block of a run config):
// {"base_url", "model", "api_key_env", "timeout_s", "max_in_flight", "max_retries",
//  "backoff_base_ms", "backoff_max_ms", "jitter_seed", "price_input_per_million",
//  "price_output_per_million", "cache_dir", "headers": {name: value}}.
// ConfigError naming `where` and the field for a missing or mistyped value.
ClientConfig client_config_from_json(const nlohmann::json& json, const std::string& where);

class Client {
 public:
  // ConfigError when the config is unusable or the named key variable is unset.
  explicit Client(ClientConfig config);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // One request; RemoteError (redacted, with status and attempts) when it fails.
  Response complete(const ChatRequest& request, const std::string& stage = "default");
  Response complete(const CompletionRequest& request, const std::string& stage = "default");

  // Many requests, up to max_in_flight at once. Returns one Result per request in
  // input order (failures included: nothing is dropped); on_result sees them in
  // completion order. Several threads may call this; each call has its own limit.
  std::vector<Result> complete_all(const std::vector<ChatRequest>& requests,
                                   const BatchOptions& options = {});
  std::vector<Result> complete_all(const std::vector<CompletionRequest>& requests,
                                   const BatchOptions& options = {});

  // GET {base_url}/models with the key: the model ids the server lists. One
  // attempt within connect_timeout + timeout (a reachability check, not work
  // worth retrying); RemoteError (redacted) naming the URL and the HTTP status or
  // connection error; FormatError when the body is not {"data": [{"id"}, ...]}.
  std::vector<std::string> list_models();

  const UsageMeter& usage() const { return usage_; }
  // nullptr when no cache_dir is configured.
  const RequestCache* cache() const { return cache_.get(); }
  const ClientConfig& config() const { return config_; }

 private:
  struct Prepared {
    nlohmann::json body;
    std::string cache_key;
    int n = 1;
  };
  Prepared prepare(Endpoint endpoint, nlohmann::json body, const std::string& salt, int n) const;
  std::vector<Result> run(Endpoint endpoint, const std::vector<Prepared>& requests,
                          const BatchOptions& options);
  Response single(Endpoint endpoint, Prepared request, const std::string& stage);

  ClientConfig config_;
  std::string api_key_;  // never logged: registered with log::register_secret
  std::unique_ptr<RequestCache> cache_;
  UsageMeter usage_;
  std::atomic<std::uint64_t> batches_{0};  // mixes into the jitter seed of each batch
};

}  // namespace character::remote
