#include "remote/retry.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <string>

namespace character::remote {

AttemptOutcome classify_status(long http_status) {
  if (http_status >= 200 && http_status < 300) return AttemptOutcome::kSuccess;
  // 408 Request Timeout and 409 Conflict are transient on OpenAI-style servers too.
  if (http_status == 408 || http_status == 409 || http_status == 429) return AttemptOutcome::kRetryable;
  if (http_status >= 500) return AttemptOutcome::kRetryable;
  return AttemptOutcome::kNotRetryable;
}

std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, int retry, std::mt19937_64& rng) {
  const double base = static_cast<double>(policy.base_delay.count());
  const double cap = std::min(static_cast<double>(policy.max_delay.count()),
                              base * std::pow(2.0, std::max(0, retry - 1)));
  std::uniform_real_distribution<double> draw(cap / 2.0, cap);
  return std::chrono::milliseconds(static_cast<std::int64_t>(cap > 0 ? draw(rng) : 0.0));
}

std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now) {
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front()))) value.remove_prefix(1);
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    std::int64_t seconds = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec != std::errc() || end != value.data() + value.size()) return std::nullopt;
    return std::chrono::milliseconds(std::min<std::int64_t>(seconds, 86'400) * 1000);
  }
  // HTTP-date: libcurl's date parser accepts the three RFC 9110 formats.
  const std::string text(value);
  const time_t when = curl_getdate(text.c_str(), nullptr);
  if (when == -1) return std::nullopt;
  const auto delta = std::chrono::system_clock::from_time_t(when) - now;
  return std::max(std::chrono::milliseconds(0),
                  std::chrono::duration_cast<std::chrono::milliseconds>(delta));
}

std::chrono::milliseconds next_delay(const RetryPolicy& policy, int retry,
                                     std::optional<std::chrono::milliseconds> retry_after,
                                     std::mt19937_64& rng) {
  const auto backoff = backoff_delay(policy, retry, rng);
  if (!retry_after) return backoff;
  return std::max(backoff, std::min(*retry_after, policy.max_retry_after));
}

}  // namespace character::remote
