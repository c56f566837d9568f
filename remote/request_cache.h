// On-disk cache of teacher answers keyed by the SHA-256 of what was asked
// (endpoint, base URL, model, request body, salt; never the API key), one file per
// entry written atomically, so a rerun of a stage sends no request twice.
// Only successful answers are stored.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "base/sha256.h"

namespace character::remote {

class RequestCache {
 public:
  explicit RequestCache(std::filesystem::path dir);

  // The key of one request. `body` is the exact JSON that is POSTed.
  static std::string key(std::string_view base_url, std::string_view endpoint,
                         std::string_view model, std::string_view salt,
                         const nlohmann::json& body);

  // The stored raw answer, or nullopt (a miss). Counts hits and misses.
  // FormatError naming the file when an entry exists but is not ours.
  std::optional<nlohmann::json> lookup(const std::string& key);
  // Stores `answer` (the server's JSON) with the request body beside it, for
  // people reading the cache; every registered secret is redacted first.
  void store(const std::string& key, const nlohmann::json& body, const nlohmann::json& answer);

  std::filesystem::path path_for(const std::string& key) const;
  std::int64_t hits() const { return hits_; }
  std::int64_t misses() const { return misses_; }

 private:
  std::filesystem::path dir_;
  std::atomic<std::int64_t> hits_{0};
  std::atomic<std::int64_t> misses_{0};
};

}  // namespace character::remote
