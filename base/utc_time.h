// The current UTC time as text, for logs, manifests, reports and run-directory
// names: one formatter instead of a strftime in each.
#pragma once

#include <ctime>
#include <string>

namespace character {

inline constexpr const char* kUtcIso = "%Y-%m-%dT%H:%M:%SZ";      // "2026-11-23T16:40:05Z"
inline constexpr const char* kUtcCompact = "%Y%m%dT%H%M%SZ";      // "20261123T164005Z" (directory names)

inline std::string utc_now_text(const char* format = kUtcIso) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

}  // namespace character
