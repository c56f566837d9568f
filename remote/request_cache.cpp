#include "remote/request_cache.h"


#include "base/atomic_file.h"
#include "base/error.h"
#include "base/json_read.h"
#include "base/log.h"

namespace character::remote {
namespace {

// Bumped when the entry layout or the key recipe changes, so old entries miss.
constexpr std::string_view kCacheVersion = "character-remote-cache-v1";

}  // namespace

RequestCache::RequestCache(std::filesystem::path dir) : dir_(std::move(dir)) {}

std::string RequestCache::key(std::string_view base_url, std::string_view endpoint,
                              std::string_view model, std::string_view salt,
                              const nlohmann::json& body) {
  // Length-prefixed fields, so no two different tuples concatenate to one string.
  std::string material(kCacheVersion);
  for (std::string_view field : {base_url, endpoint, model, salt}) {
    material += '\n' + std::to_string(field.size()) + ':';
    material += field;
  }
  material += '\n';
  material += body.dump();  // nlohmann objects keep keys sorted: a canonical form
  return sha256_hex(material);
}

std::filesystem::path RequestCache::path_for(const std::string& key) const {
  return dir_ / key.substr(0, 2) / (key + ".json");
}

std::optional<nlohmann::json> RequestCache::lookup(const std::string& key) {
  const auto path = path_for(key);
  if (!std::filesystem::exists(path)) {
    ++misses_;
    return std::nullopt;
  }
  nlohmann::json entry = try_parse_json(read_file(path)).value_or(nlohmann::json());
  if (!entry.is_object() || entry.value("version", "") != kCacheVersion ||
      !entry.contains("answer")) {
    throw FormatError(path.string() + ": not a " + std::string(kCacheVersion) +
                      " entry (expected a JSON object with \"version\" and \"answer\"); delete it to refetch");
  }
  ++hits_;
  return entry["answer"];
}

void RequestCache::store(const std::string& key, const nlohmann::json& body, const nlohmann::json& answer) {
  const nlohmann::json entry = {{"version", kCacheVersion}, {"request", body}, {"answer", answer}};
  const std::string text = log::redact(entry.dump(1));
  write_file_atomic(path_for(key), text + "\n");
}

}  // namespace character::remote
