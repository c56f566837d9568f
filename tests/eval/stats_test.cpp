// Wilson intervals and Pearson correlations against values computed with
// statsmodels 0.14.4 (proportion_confint(k, n, alpha=0.05, method="wilson")) and
// scipy (scipy.stats.pearsonr), hard-coded below; the undefined cases give nullopt.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "base/error.h"
#include "eval/stats.h"

namespace character::eval {
namespace {

struct WilsonCase {
  std::int64_t k, n;
  double low, high;  // statsmodels proportion_confint(k, n, alpha=0.05, method="wilson")
};

TEST(Wilson, MatchesStatsmodels) {
  const std::vector<WilsonCase> cases = {
      {0, 10, 0.0, 0.27753279986288926},
      {10, 10, 0.7224672001371106, 1.0},
      {5, 10, 0.23659309051256394, 0.7634069094874361},
      {81, 263, 0.2552885198782742, 0.36620957698280004},
      {1, 1, 0.2065493143772374, 1.0},
      {0, 1, 0.0, 0.7934506856227627},
      {3, 7, 0.15821985525146964, 0.7495416354723428},
      {600, 820, 0.7003524579954223, 0.760901337782177},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::to_string(c.k) + "/" + std::to_string(c.n));
    const auto interval = wilson_interval(c.k, c.n);
    ASSERT_TRUE(interval.has_value());
    EXPECT_NEAR(interval->low, c.low, 1e-12);
    EXPECT_NEAR(interval->high, c.high, 1e-12);
  }
}

TEST(Wilson, ZeroTrialsHasNoIntervalAndBadCountsThrow) {
  EXPECT_FALSE(wilson_interval(0, 0).has_value());
  EXPECT_THROW(wilson_interval(3, 2), ConfigError);
  EXPECT_THROW(wilson_interval(-1, 2), ConfigError);
  try {
    wilson_interval(3, 2);
  } catch (const ConfigError& e) {

    EXPECT_NE(std::string(e.what()).find("successes=3, trials=2"), std::string::npos) << e.what();
  }
}

TEST(Wilson, WiderZGivesAWiderInterval) {
  // z = 2.5758293035489004 is the 99% quantile: statsmodels alpha=0.01 gives (0.1842, 0.8158) for 5/10.
  const auto i99 = wilson_interval(5, 10, 2.5758293035489004);
  ASSERT_TRUE(i99.has_value());
  EXPECT_NEAR(i99->low, 0.1842255182472355, 1e-12);
  EXPECT_NEAR(i99->high, 0.8157744817527646, 1e-12);
}

TEST(Pearson, MatchesScipy) {
  // scipy.stats.pearsonr([1,2,3,4,5], [2,4,5,4,5]).statistic
  const std::vector<double> x = {1, 2, 3, 4, 5}, y = {2, 4, 5, 4, 5};
  ASSERT_TRUE(pearson_correlation(x, y).has_value());
  EXPECT_NEAR(*pearson_correlation(x, y), 0.7745966692414835, 1e-12);
  // Point-biserial: under-trained share against in character (1/0); scipy gives −0.8372.
  const std::vector<double> share = {0.1, 0.4, 0.2, 0.9, 0.5, 0.0}, in = {1, 0, 1, 0, 0, 1};
  EXPECT_NEAR(*pearson_correlation(share, in), -0.8372183582789215, 1e-12);
  // Symmetric, and ±1 for exact linear relations.
  EXPECT_NEAR(*pearson_correlation(in, share), -0.8372183582789215, 1e-12);
  const std::vector<double> line = {3, 5, 7, 9};
  const std::vector<double> base = {1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(*pearson_correlation(base, line), 1.0);
}

TEST(Pearson, UndefinedIsNulloptNotNaN) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_FALSE(pearson_correlation(std::vector<double>{}, std::vector<double>{}).has_value());
  EXPECT_FALSE(pearson_correlation(std::vector<double>{1.0}, std::vector<double>{2.0}).has_value());
  // Every response in character: the 0/1 variable is constant.
  EXPECT_FALSE(pearson_correlation(std::vector<double>{0.1, 0.2, 0.3}, std::vector<double>{1, 1, 1}).has_value());
  // A constant that does not round-trip through the mean exactly.
  EXPECT_FALSE(pearson_correlation(std::vector<double>{0.1, 0.1, 0.1}, std::vector<double>{1, 0, 1}).has_value());
  EXPECT_FALSE(pearson_correlation(std::vector<double>{0.1, nan, 0.3}, std::vector<double>{1, 0, 1}).has_value());
  EXPECT_FALSE(pearson_correlation(std::vector<double>{0.1, 0.2, 0.3}, std::vector<double>{1, inf, 1}).has_value());
  EXPECT_THROW(pearson_correlation(std::vector<double>{1, 2}, std::vector<double>{1, 2, 3}), ConfigError);
}

TEST(Mean, OfValuesAndUndefinedCases) {
  EXPECT_DOUBLE_EQ(*mean(std::vector<double>{1, 2, 3, 4}), 2.5);
  EXPECT_FALSE(mean(std::vector<double>{}).has_value());
  EXPECT_FALSE(mean(std::vector<double>{1, std::numeric_limits<double>::quiet_NaN()}).has_value());
}

}  // namespace
}  // namespace character::eval
