#include "remote/client.h"

#include <curl/curl.h>

#include <cstdlib>
#include <mutex>

#include "base/error.h"
#include "base/log.h"
#include "remote/credentials.h"

namespace character::remote {
namespace {

void init_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) throw Error("libcurl: curl_global_init failed");
  });
}

template <typename T>
T field(const nlohmann::json& json, const std::string& where, const char* name, T fallback) {
  const auto it = json.find(name);
  if (it == json.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    throw ConfigError(where + ": field \"" + name + "\" is " + std::string(it->type_name()) +
                      " " + it->dump() + ", expected " +
                      (std::is_same_v<T, std::string> ? "a string" : "a number"));
  }
}

}  // namespace

ClientConfig client_config_from_json(const nlohmann::json& json, const std::string& where) {
  if (!json.is_object()) {
    throw ConfigError(where + ": expected an object, found " + std::string(json.type_name()));
  }
  ClientConfig c;
  c.base_url = field<std::string>(json, where, "base_url", "");
  c.model = field<std::string>(json, where, "model", "");
  c.api_key_env = field<std::string>(json, where, "api_key_env", "");
  if (json.contains("api_key")) {
    throw ConfigError(where + ": field \"api_key\" is not accepted (a key must not sit in a config "
                      "file); expected \"api_key_env\" naming an environment variable");
  }
  c.timeout = std::chrono::milliseconds(
      static_cast<std::int64_t>(1000 * field<double>(json, where, "timeout_s", 120.0)));
  c.max_in_flight = field<int>(json, where, "max_in_flight", c.max_in_flight);
  c.retry.max_retries = field<int>(json, where, "max_retries", c.retry.max_retries);
  c.retry.base_delay = std::chrono::milliseconds(
      field<std::int64_t>(json, where, "backoff_base_ms", c.retry.base_delay.count()));
  c.retry.max_delay = std::chrono::milliseconds(
      field<std::int64_t>(json, where, "backoff_max_ms", c.retry.max_delay.count()));
  c.jitter_seed = field<std::uint64_t>(json, where, "jitter_seed", 0);
  if (json.contains("price_input_per_million") || json.contains("price_output_per_million")) {
    c.prices = Prices{field<double>(json, where, "price_input_per_million", 0.0),
                      field<double>(json, where, "price_output_per_million", 0.0)};
  }
  c.cache_dir = field<std::string>(json, where, "cache_dir", "");
  if (const auto headers = json.find("headers"); headers != json.end()) {
    if (!headers->is_object()) {
      throw ConfigError(where + ": field \"headers\" is " + std::string(headers->type_name()) +
                        ", expected an object of header name to string value");
    }
    for (const auto& [name, value] : headers->items()) {
      if (!value.is_string()) {
        throw ConfigError(where + ": header \"" + name + "\" is " + std::string(value.type_name()) +
                          ", expected a string");
      }
      c.headers.emplace_back(name, value.get<std::string>());
    }
  }
  return c;
}

Client::Client(ClientConfig config) : config_(std::move(config)), usage_(config_.prices) {
  init_curl_once();
  const auto bad = [](const std::string& what) { throw ConfigError("teacher client: " + what); };
  // Checked first and never printed whole: a key here would reach every log line and file.
  if (!config_.api_key_env.empty() && !is_key_variable_name(config_.api_key_env)) {
    log::register_secret(config_.api_key_env);
    bad("api_key_env is not an environment variable name (not shown: it may be the key itself); expected "
        "upper-case letters, digits and '_', such as TEACHER_API_KEY");
  }
  if (const auto where = credentials_in_url(config_.base_url)) {
    bad("base_url " + url_for_messages(config_.base_url) + " holds credentials (" + *where +
        "), which would be logged and recorded; pass the key through api_key_env instead");
  }
  if (config_.base_url.rfind("http://", 0) != 0 && config_.base_url.rfind("https://", 0) != 0) {
    bad("base_url \"" + url_for_messages(config_.base_url) + "\", expected an http:// or https:// URL");
  }
  while (!config_.base_url.empty() && config_.base_url.back() == '/') config_.base_url.pop_back();
  if (config_.model.empty()) bad("model is empty, expected the model name the server knows");
  if (config_.max_in_flight < 1) {
    bad("max_in_flight=" + std::to_string(config_.max_in_flight) + ", expected >= 1");
  }
  if (config_.retry.max_retries < 0) {
    bad("max_retries=" + std::to_string(config_.retry.max_retries) + ", expected >= 0");
  }
  if (config_.timeout.count() <= 0) bad("timeout must be positive");
  if (!config_.api_key_env.empty()) {
    const char* key = std::getenv(config_.api_key_env.c_str());
    if (key == nullptr || *key == '\0') {
      // Only the variable's name is printed, never a value.
      bad("api_key_env names $" + config_.api_key_env +
          ", which is not set or empty; expected the API key in that environment variable");
    }
    api_key_ = key;
    log::register_secret(api_key_);
  }
  if (!config_.cache_dir.empty()) cache_ = std::make_unique<RequestCache>(config_.cache_dir);
}

Client::~Client() = default;

Client::Prepared Client::prepare(Endpoint endpoint, nlohmann::json body, const std::string& salt,
                                 int n) const {
  Prepared p;
  p.n = n;
  if (cache_) {
    p.cache_key = RequestCache::key(config_.base_url, endpoint_path(endpoint), config_.model, salt, body);
  }
  p.body = std::move(body);
  return p;
}

Response Client::single(Endpoint endpoint, Prepared request, const std::string& stage) {
  BatchOptions options;
  options.stage = stage;
  auto results = run(endpoint, {std::move(request)}, options);
  auto& result = results.front();
  if (result.ok()) return std::move(*result.response);
  const Failure& f = *result.failure;
  throw RemoteError(log::redact("teacher POST " + config_.base_url + std::string(endpoint_path(endpoint)) +
                                " (model " + config_.model + ") failed after " +
                                std::to_string(f.attempts) + " attempt(s): " + f.reason));
}

Response Client::complete(const ChatRequest& request, const std::string& stage) {
  return single(Endpoint::kChat,
                prepare(Endpoint::kChat, chat_body(config_.model, request), request.cache_salt,
                        request.sampling.n),
                stage);
}

Response Client::complete(const CompletionRequest& request, const std::string& stage) {
  return single(Endpoint::kCompletions,
                prepare(Endpoint::kCompletions, completion_body(config_.model, request),
                        request.cache_salt, request.sampling.n),
                stage);
}

std::vector<Result> Client::complete_all(const std::vector<ChatRequest>& requests,
                                         const BatchOptions& options) {
  std::vector<Prepared> prepared;
  prepared.reserve(requests.size());
  for (const auto& r : requests) {
    prepared.push_back(prepare(Endpoint::kChat, chat_body(config_.model, r), r.cache_salt, r.sampling.n));
  }
  return run(Endpoint::kChat, prepared, options);
}

std::vector<Result> Client::complete_all(const std::vector<CompletionRequest>& requests,
                                         const BatchOptions& options) {
  std::vector<Prepared> prepared;
  prepared.reserve(requests.size());
  for (const auto& r : requests) {
    prepared.push_back(
        prepare(Endpoint::kCompletions, completion_body(config_.model, r), r.cache_salt, r.sampling.n));
  }
  return run(Endpoint::kCompletions, prepared, options);
}

}  // namespace character::remote
