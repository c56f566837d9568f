// When to try a teacher request again and how long to wait first: exponential
// backoff with jitter, overridden upward by the server's Retry-After. Pure
// functions, so the policy is tested without a network.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string_view>

namespace character::remote {

struct RetryPolicy {
  int max_retries = 5;  // retries after the first attempt
  std::chrono::milliseconds base_delay{500};
  std::chrono::milliseconds max_delay{30'000};
  // A Retry-After longer than this is clamped, so a misbehaving server cannot park
  // a run for hours; the request still waits this long.
  std::chrono::milliseconds max_retry_after{120'000};
};

// How one HTTP attempt ended, as far as the retry decision cares.
enum class AttemptOutcome {
  kSuccess,        // 2xx with a well-formed answer
  kRetryable,      // 408/409/429/5xx, timeout, dropped connection, malformed answer
  kNotRetryable,   // other 4xx: the request itself is wrong or not allowed
};

// Classification of an HTTP status that came with a complete body.
AttemptOutcome classify_status(long http_status);

// Delay before retry number `retry` (1 = the first retry): "full jitter" backoff
// (AWS Architecture Blog, "Exponential Backoff and Jitter", 2015): a uniform draw
// in [cap/2, cap] with cap = min(max_delay, base_delay * 2^(retry-1)). The lower
// half is kept so tests can bound the wait from below.
std::chrono::milliseconds backoff_delay(const RetryPolicy& policy, int retry, std::mt19937_64& rng);

// Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date; the delay from
// `now`, or nullopt when the value is neither. A date in the past gives 0.
std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now);

// The wait before the next attempt: the backoff, or the server's Retry-After
// (clamped to max_retry_after) when that is longer.
std::chrono::milliseconds next_delay(const RetryPolicy& policy, int retry,
                                     std::optional<std::chrono::milliseconds> retry_after,
                                     std::mt19937_64& rng);

}  // namespace character::remote
