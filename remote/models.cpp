// Client::list_models: GET /models, the OpenAI-compatible way to ask a server
// which models it serves. The pipeline's check stage uses it to find out, before
// any work, whether the teacher is reachable and accepts the key.
#include "remote/client.h"

#include <curl/curl.h>

#include <memory>

#include "base/error.h"
#include "base/json_read.h"
#include "base/log.h"

namespace character::remote {

namespace {

// The body, up to a limit: returning less than given stops the transfer.
struct Body {
  std::string text;
  std::size_t max_bytes = 0;
  bool too_large = false;
};

std::size_t on_bytes(char* data, std::size_t size, std::size_t count, void* user) {
  auto* body = static_cast<Body*>(user);
  if (body->text.size() + size * count > body->max_bytes) {
    body->too_large = true;
    return 0;
  }
  body->text.append(data, size * count);
  return size * count;
}

}  // namespace

std::vector<std::string> Client::list_models() {
  const std::string url = config_.base_url + "/models";
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> easy(curl_easy_init(), curl_easy_cleanup);
  if (!easy) throw Error("libcurl: curl_easy_init failed");
  curl_slist* headers = curl_slist_append(nullptr, "Accept: application/json");
  if (!api_key_.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + api_key_).c_str());
  for (const auto& [name, value] : config_.headers) headers = curl_slist_append(headers, (name + ": " + value).c_str());
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_list(headers, curl_slist_free_all);
  Body received;
  received.max_bytes = config_.max_response_bytes;
  char error[CURL_ERROR_SIZE] = {};
  CURL* e = easy.get();
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_bytes);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &received);
  curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(config_.max_response_bytes));
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(config_.timeout.count()));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(config_.connect_timeout.count()));
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  const CURLcode code = curl_easy_perform(e);
  if (received.too_large || code == CURLE_FILESIZE_EXCEEDED) {
    throw RemoteError(log::redact("GET " + url + ": the response is larger than " +
                                  std::to_string(received.max_bytes) + " bytes (max_response_bytes)"));
  }
  const std::string& body = received.text;
  if (code != CURLE_OK) {
    throw RemoteError(log::redact("GET " + url + " failed: connection error: " + curl_easy_strerror(code) +
                                  (error[0] ? std::string(" (") + error + ")" : std::string())));
  }
  long status = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    throw RemoteError(log::redact("GET " + url + " answered HTTP " + std::to_string(status) +
                                  (status == 401 || status == 403 ? " (the key was refused)" : "") + ": ") +
                      log::redacted_excerpt(body, 200));
  }
  const auto json = try_parse_json(body).value_or(nlohmann::json());
  if (!json.is_object() || !json.contains("data") || !json["data"].is_array()) {
    throw FormatError(log::redact("GET " + url + ": body ") + log::redacted_excerpt(body, 200) +
                      ", expected {\"data\": [{\"id\": ...}, ...]}");
  }
  std::vector<std::string> ids;
  for (const auto& model : json["data"]) {
    if (!model.is_object() || !model.contains("id") || !model["id"].is_string()) {
      throw FormatError(log::redact("GET " + url + ": data entry ") + log::redacted_excerpt(describe_json(model), 100) +
                        ", expected {\"id\": string}");
    }
    ids.push_back(model["id"].get<std::string>());
  }
  return ids;
}

}  // namespace character::remote
