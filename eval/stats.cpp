// Wilson interval, Pearson correlation and mean (eval/stats.h). Hand-written:
// three formulas do not justify a statistics library dependency.
#include "eval/stats.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "base/error.h"

namespace character::eval {

std::optional<Interval> wilson_interval(std::int64_t successes, std::int64_t trials, double z) {
  if (successes < 0 || trials < 0 || successes > trials) {
    throw ConfigError("wilson_interval: successes=" + std::to_string(successes) + ", trials=" +
                      std::to_string(trials) + ", expected 0 <= successes <= trials");
  }
  if (trials == 0) return std::nullopt;
  const double n = static_cast<double>(trials);
  const double p = static_cast<double>(successes) / n;
  const double z2 = z * z;
  const double denominator = 1.0 + z2 / n;
  const double centre = (p + z2 / (2.0 * n)) / denominator;
  const double half = z * std::sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denominator;
  // Clamp the rounding at the ends (0 of n must give exactly 0, n of n exactly 1).
  return Interval{std::max(0.0, centre - half), std::min(1.0, centre + half)};
}

std::optional<double> mean(std::span<const double> values) {
  if (values.empty()) return std::nullopt;
  double sum = 0.0;
  for (double v : values) {
    if (!std::isfinite(v)) return std::nullopt;
    sum += v;
  }
  return sum / static_cast<double>(values.size());
}

std::optional<double> pearson_correlation(std::span<const double> x, std::span<const double> y) {
  if (x.size() != y.size()) {
    throw ConfigError("pearson_correlation: samples of " + std::to_string(x.size()) + " and " +
                      std::to_string(y.size()) + " values, expected equal sizes");
  }
  if (x.size() < 2) return std::nullopt;
  const auto mx = mean(x), my = mean(y);
  if (!mx || !my) return std::nullopt;
  // A constant sample has no variance; test it exactly, since the rounded mean of
  // equal values can differ from them by an ulp and leave a tiny non-zero sum.
  const auto constant = [](std::span<const double> v) {
    return std::all_of(v.begin(), v.end(), [&](double a) { return a == v.front(); });
  };
  if (constant(x) || constant(y)) return std::nullopt;
  // Two passes (centre, then sum products): stable for values far from zero.
  double sxy = 0.0, sxx = 0.0, syy = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double dx = x[i] - *mx, dy = y[i] - *my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx <= 0.0 || syy <= 0.0) return std::nullopt;
  const double r = sxy / std::sqrt(sxx * syy);
  if (!std::isfinite(r)) return std::nullopt;
  return std::clamp(r, -1.0, 1.0);
}

}  // namespace character::eval
