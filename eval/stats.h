// Small statistics the eval reports need: the Wilson score interval of a rate,
// Pearson correlation (the routing attribution's point-biserial correlation) and a
// mean. All of them say "undefined" with nullopt instead of returning NaN, so a
// report never carries a NaN from an empty or constant sample.
#pragma once

#include <cstdint>
#include <optional>
#include <span>

namespace character::eval {

// The two-sided 95% normal quantile z = Φ⁻¹(0.975) (scipy.stats.norm.ppf(0.975)).
inline constexpr double kZ95 = 1.959963984540054;

struct Interval {
  double low = 0.0;
  double high = 0.0;
};

// Wilson score interval for `successes` out of `trials` (Wilson 1927; the formula
// of statsmodels.stats.proportion.proportion_confint(method="wilson")):
//   centre = (p + z²/2n) / (1 + z²/n),  half = z·sqrt(p(1−p)/n + z²/4n²) / (1 + z²/n).
// nullopt when trials == 0 (no rate). ConfigError when successes < 0 or > trials.
std::optional<Interval> wilson_interval(std::int64_t successes, std::int64_t trials, double z = kZ95);

// Pearson's r of two equally long samples; with one 0/1 variable this is the
// point-biserial correlation. nullopt when undefined: fewer than 2 pairs, a sample
// with zero variance, or a non-finite value in either. ConfigError when the sizes
// differ (a caller bug, not a property of the data).
std::optional<double> pearson_correlation(std::span<const double> x, std::span<const double> y);

// Arithmetic mean; nullopt for an empty sample or one with a non-finite value.
std::optional<double> mean(std::span<const double> values);

}  // namespace character::eval
