// Retry policy without a network: Retry-After in both RFC 9110 forms, backoff
// bounds, and which HTTP statuses are worth another attempt.
#include "remote/retry.h"

#include <gtest/gtest.h>

#include <ctime>
#include <set>

namespace character::remote {
namespace {

using std::chrono::milliseconds;
using std::chrono::system_clock;

// RFC 9110's example date, Sun, 06 Nov 1994 08:49:37 GMT, as a Unix time.
const auto kRfcDate = system_clock::from_time_t(784111777);

TEST(RetryAfter, ParsesDelaySeconds) {
  EXPECT_EQ(parse_retry_after("1", kRfcDate), milliseconds(1000));
  EXPECT_EQ(parse_retry_after(" 120 ", kRfcDate), milliseconds(120'000));
  EXPECT_EQ(parse_retry_after("0", kRfcDate), milliseconds(0));
}

TEST(RetryAfter, ParsesAllThreeHttpDateForms) {
  const auto now = kRfcDate - std::chrono::seconds(5);
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), milliseconds(5000));   // IMF-fixdate
  EXPECT_EQ(parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now), milliseconds(5000));  // RFC 850
  EXPECT_EQ(parse_retry_after("Sun Nov  6 08:49:37 1994", now), milliseconds(5000));        // asctime
}

TEST(RetryAfter, DateInThePastMeansNow) {
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", kRfcDate + std::chrono::hours(1)),
            milliseconds(0));
}

TEST(RetryAfter, RejectsGarbage) {
  EXPECT_FALSE(parse_retry_after("", kRfcDate));
  EXPECT_FALSE(parse_retry_after("soon", kRfcDate));
  EXPECT_FALSE(parse_retry_after("-5", kRfcDate));
  EXPECT_FALSE(parse_retry_after("1.5", kRfcDate));
}

TEST(Backoff, GrowsExponentiallyWithinJitterBoundsAndCaps) {
  RetryPolicy policy;
  policy.base_delay = milliseconds(100);
  policy.max_delay = milliseconds(1000);
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    for (int retry = 1; retry <= 8; ++retry) {
      const double cap = std::min(1000.0, 100.0 * (1 << (retry - 1)));
      const auto d = backoff_delay(policy, retry, rng).count();
      EXPECT_GE(d, static_cast<long>(cap / 2) - 1) << "retry " << retry;
      EXPECT_LE(d, static_cast<long>(cap)) << "retry " << retry;
    }
  }
}

TEST(Backoff, JitterSpreadsDelays) {
  RetryPolicy policy;
  policy.base_delay = milliseconds(1000);
  std::mt19937_64 rng(3);
  std::set<long> seen;
  for (int i = 0; i < 50; ++i) seen.insert(backoff_delay(policy, 1, rng).count());
  EXPECT_GT(seen.size(), 25u);
}

TEST(Backoff, RetryAfterWinsWhenLongerAndIsClamped) {
  RetryPolicy policy;
  policy.base_delay = milliseconds(10);
  policy.max_delay = milliseconds(20);
  policy.max_retry_after = milliseconds(3000);
  std::mt19937_64 rng(1);
  EXPECT_EQ(next_delay(policy, 1, milliseconds(1000), rng), milliseconds(1000));
  EXPECT_EQ(next_delay(policy, 1, milliseconds(60'000), rng), milliseconds(3000));
  EXPECT_LE(next_delay(policy, 1, std::nullopt, rng), milliseconds(10));
  EXPECT_LE(next_delay(policy, 1, milliseconds(0), rng), milliseconds(10));
}

TEST(Classify, TransientStatusesAreRetriedOthersAreNot) {
  for (long s : {200L, 201L}) EXPECT_EQ(classify_status(s), AttemptOutcome::kSuccess) << s;
  for (long s : {408L, 409L, 429L, 500L, 502L, 503L, 504L, 529L}) {
    EXPECT_EQ(classify_status(s), AttemptOutcome::kRetryable) << s;
  }
  for (long s : {400L, 401L, 403L, 404L, 422L}) {
    EXPECT_EQ(classify_status(s), AttemptOutcome::kNotRetryable) << s;
  }
}

}  // namespace
}  // namespace character::remote
