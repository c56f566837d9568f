// The routing analyses on hand-built traces whose answers are worked out by hand
// in the comments: utilization, cold experts, coverage, under-trained share,
// attribution, paraphrase Jaccard, drift, circuits and generation dynamics.
#include "eval/routing_metrics.h"

#include <gtest/gtest.h>

#include <cmath>

#include "base/error.h"

namespace character::eval {
namespace {

// rows[t][l] = the top-k ids of position t at layer l; weights default to 1/K.
RoutingTrace make_trace(std::vector<int64_t> layers, int64_t experts, int64_t k, int64_t prompt,
                        const std::vector<std::vector<std::vector<int32_t>>>& rows,
                        const std::vector<std::vector<std::vector<float>>>& weights = {}) {
  RoutingTrace t;
  t.layers = std::move(layers);
  t.num_experts = experts;
  t.top_k = k;
  t.positions = static_cast<int64_t>(rows.size());
  t.prompt_positions = prompt;
  for (size_t p = 0; p < rows.size(); ++p)
    for (size_t l = 0; l < rows[p].size(); ++l)
      for (size_t j = 0; j < rows[p][l].size(); ++j) {
        t.ids.push_back(rows[p][l][j]);
        t.weights.push_back(weights.empty() ? 1.0f / static_cast<float>(k) : weights[p][l][j]);
      }
  return t;
}

template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no ConfigError)";
}

TEST(RoutingTrace, ValidateNamesTheProblem) {
  RoutingTrace t = make_trace({0}, 4, 2, 1, {{{0, 1}}, {{2, 3}}});
  EXPECT_NO_THROW(validate_trace(t, "probe trace 3"));
  RoutingTrace short_ids = t;
  short_ids.ids.pop_back();
  EXPECT_NE(error_of([&] { validate_trace(short_ids, "probe trace 3"); }).find("probe trace 3: ids holds 3 values, expected T·L·K = 2·1·2 = 4"),
            std::string::npos);
  RoutingTrace bad_id = t;
  bad_id.ids[3] = 4;
  EXPECT_NE(error_of([&] { validate_trace(bad_id, "x"); }).find("expert id 4 at position 1, layer 0, slot 1, expected 0 ≤ id < num_experts=4"),
            std::string::npos);
  RoutingTrace bad_prompt = t;
  bad_prompt.prompt_positions = 3;
  EXPECT_NE(error_of([&] { validate_trace(bad_prompt, "x"); }).find("prompt_positions=3, positions=2"), std::string::npos);
  RoutingTrace other = make_trace({1}, 4, 2, 1, {{{0, 1}}});
  EXPECT_NE(error_of([&] { check_same_shape(t, other, "trace 2"); }).find("trace 2: MoE layers [1], expected [0]"),
            std::string::npos);
  EXPECT_NE(error_of([&] { utilization({t, other}); }).find("routing trace 1: MoE layers [1]"), std::string::npos);
  EXPECT_NE(error_of([&] { utilization({}); }).find("no routing traces"), std::string::npos);
}

TEST(RoutingMetrics, UtilizationRatesRelativeAndCold) {
  // Layer 3: {0,1} {0,2} {0,1} {3,0} → e0 4/4, e1 2/4, e2 1/4, e3 1/4. Uniform K/E = 2/4.
  // Layer 5: {1,2} ×4 → e0 0, e1 1, e2 1, e3 0.
  RoutingTrace a = make_trace({3, 5}, 4, 2, 2, {{{0, 1}, {1, 2}}, {{0, 2}, {2, 1}}});
  RoutingTrace b = make_trace({3, 5}, 4, 2, 1, {{{0, 1}, {1, 2}}, {{3, 0}, {1, 2}}});
  const Utilization u = utilization({a, b}, {.cold_threshold = 0.3});
  EXPECT_EQ(u.positions, 4);
  EXPECT_DOUBLE_EQ(u.uniform_rate, 0.5);
  EXPECT_EQ(u.rates[0], (std::vector<double>{1.0, 0.5, 0.25, 0.25}));
  EXPECT_EQ(u.relative[0], (std::vector<double>{2.0, 1.0, 0.5, 0.5}));
  EXPECT_EQ(u.rates[1], (std::vector<double>{0.0, 1.0, 1.0, 0.0}));
  ASSERT_EQ(u.cold.size(), 4u);  // (3, e2), (3, e3), (5, e0), (5, e3)
  EXPECT_EQ(u.cold[0].layer, 3);
  EXPECT_EQ(u.cold[0].expert, 2);
  EXPECT_EQ(u.cold[2].layer, 5);
  EXPECT_EQ(u.cold[2].expert, 0);
  EXPECT_EQ(u.cold[2].rate, 0.0);

  // Prompt positions only: a's 2 and b's 1 → layer 3: {0,1} {0,2} {0,1} → e0 1, e1 2/3, e2 1/3, e3 0.
  const Utilization p = utilization({a, b}, {.positions = PositionSet::kPrompt});
  EXPECT_EQ(p.positions, 3);
  EXPECT_DOUBLE_EQ(p.rates[0][1], 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(p.rates[0][3], 0.0);
  // Generated only: b's position 1 alone.
  const Utilization g = utilization({a, b}, {.positions = PositionSet::kGenerated});
  EXPECT_EQ(g.positions, 1);
  EXPECT_EQ(g.rates[0], (std::vector<double>{1.0, 0.0, 0.0, 1.0}));

  const nlohmann::json j = u.to_json();
  EXPECT_EQ(j["cold"][0], (nlohmann::json{{"layer", 3}, {"expert", 2}, {"rate", 0.25}}));
  EXPECT_EQ(j["rates"][1][1], 1.0);
  EXPECT_TRUE(j["training"].is_null());
}

CoverageCounts coverage_for_test() {
  // Layers [3, 5], E = 4: loss tokens layer 3: {10, 0, 2, 1}; layer 5: {0, 5, 5, 5}.
  CoverageCounts c;
  c.sources = {"run/coverage.json"};
  c.layers = {3, 5};
  c.num_experts = 4;
  c.top_k = 2;
  c.loss_tokens = {10, 0, 2, 1, 0, 5, 5, 5};
  c.all_tokens = {20, 4, 4, 2, 0, 10, 10, 10};
  c.real_positions = 15;
  return c;
}

TEST(RoutingMetrics, ProbeCoverageAgainstTrainingCounts) {
  // N = 2: trained experts are layer 3 {0, 2}, layer 5 {1, 2, 3}.
  RoutingTrace a = make_trace({3, 5}, 4, 2, 1, {{{0, 1}, {1, 2}}, {{0, 2}, {0, 1}}});  // layer 3: 3/4, layer 5: 3/4
  RoutingTrace b = make_trace({3, 5}, 4, 2, 1, {{{3, 1}, {1, 2}}});                    // layer 3: 0/2, layer 5: 2/2
  const ProbeCoverage c = probe_coverage({a, b}, {"identity", "short"}, coverage_for_test(), 2);
  EXPECT_EQ(c.assignments, 12);
  EXPECT_DOUBLE_EQ(c.probe_coverage, 8.0 / 12.0);
  EXPECT_EQ(c.per_layer, (std::vector<double>{3.0 / 6.0, 5.0 / 6.0}));
  EXPECT_DOUBLE_EQ(c.per_category.at("identity"), 6.0 / 8.0);
  EXPECT_DOUBLE_EQ(c.per_category.at("short"), 2.0 / 4.0);
  // Under-trained and reached: layer 3 e1 (0 tokens, in 2 of 3 positions), e3 (1 token, 1 of 3);
  // layer 5 e0 (0 tokens, 1 of 3). Layer 3 has no other.
  ASSERT_EQ(c.under_trained.size(), 3u);
  EXPECT_EQ(c.under_trained[0].layer, 3);
  EXPECT_EQ(c.under_trained[0].expert, 1);
  EXPECT_DOUBLE_EQ(c.under_trained[0].probe_rate, 2.0 / 3.0);
  EXPECT_EQ(c.under_trained[1].expert, 3);
  EXPECT_EQ(c.under_trained[1].loss_tokens, 1);
  EXPECT_EQ(c.under_trained[2].layer, 5);
  EXPECT_EQ(c.under_trained[2].expert, 0);
  EXPECT_EQ(c.loss_tokens[1], (std::vector<int64_t>{0, 5, 5, 5}));
  EXPECT_EQ(c.to_json()["per_category"]["short"], 0.5);

  CoverageCounts other = coverage_for_test();
  other.layers = {3, 4};
  EXPECT_NE(error_of([&] { probe_coverage({a}, {}, other, 2); }).find("training coverage (run/coverage.json): MoE layers [3, 4], expected [3, 5] as the probe's routing"),
            std::string::npos);
  EXPECT_EQ(coverage_for_test().training_rates()[0], (std::vector<double>{20.0 / 15, 4.0 / 15, 4.0 / 15, 2.0 / 15}));
}

TEST(RoutingMetrics, UnderTrainedShareReadsGeneratedPositionsOnly) {
  // N = 2. a: prompt position (layer 3 {1, 3}: both under) ignored; generated position: layer 3 {0, 1} → 1 under of 2,
  // layer 5 {0, 1} → 1 under of 2 → 2/4. b: no generated position → nullopt.
  RoutingTrace a = make_trace({3, 5}, 4, 2, 1, {{{1, 3}, {0, 2}}, {{0, 1}, {0, 1}}});
  RoutingTrace b = make_trace({3, 5}, 4, 2, 1, {{{0, 2}, {1, 2}}});
  const auto shares = under_trained_shares({a, b}, coverage_for_test(), 2);
  ASSERT_TRUE(shares[0].has_value());
  EXPECT_DOUBLE_EQ(*shares[0], 0.5);
  EXPECT_FALSE(shares[1].has_value());
}

TEST(RoutingMetrics, AttributionIsPointBiserialPerCategory) {
  // x = [.1, .2, .8, .9], y = [1, 1, 0, 0]: cov = −0.7 (sums), var x = 0.5, var y = 1 → r = −0.7/√0.5.
  const std::vector<std::optional<double>> shares = {0.1, 0.2, 0.8, 0.9, std::nullopt, 0.5};
  const std::vector<bool> in = {true, true, false, false, false, true};
  const std::vector<std::string> cats = {"identity", "identity", "identity", "short", "short", "short"};
  const Attribution a = attribution(shares, in, cats);
  // Overall: x = [.1 .2 .8 .9 .5], y = [1 1 0 0 1]; by hand: mean x .5, mean y .6,
  // Σ(x−x̄)(y−ȳ) = (−.4)(.4)+(−.3)(.4)+(.3)(−.6)+(.4)(−.6)+0 = −.7, Σ(x−x̄)² = .5, Σ(y−ȳ)² = 1.2.
  EXPECT_EQ(a.overall.n, 5);
  EXPECT_EQ(a.overall.n_in, 3);
  EXPECT_NEAR(*a.overall.correlation, -0.7 / std::sqrt(0.5 * 1.2), 1e-12);
  EXPECT_NEAR(*a.overall.mean_in, (0.1 + 0.2 + 0.5) / 3, 1e-12);
  EXPECT_NEAR(*a.overall.mean_out, 0.85, 1e-12);
  ASSERT_EQ(a.per_category.size(), 2u);
  EXPECT_EQ(a.per_category[0].category, "identity");  // x = [.1 .2 .8], y = [1 1 0]
  // Σ(x−x̄)(y−ȳ) = Σxy − n·x̄·ȳ, Σ(x−x̄)² = Σx² − n·x̄², Σ(y−ȳ)² = Σy² − n·ȳ² with x̄ = 1.1/3, ȳ = 2/3.
  EXPECT_NEAR(*a.per_category[0].correlation, (0.3 - 3.0 * (1.1 / 3.0) * (2.0 / 3.0)) /
                                                  std::sqrt((0.69 - 3.0 * (1.1 / 3.0) * (1.1 / 3.0)) * (2.0 - 3.0 * 4.0 / 9.0)),
              1e-12);
  EXPECT_EQ(a.per_category[1].category, "short");  // x = [.9 .5], y = [0 1] → r = −1
  EXPECT_EQ(a.per_category[1].n, 2);
  EXPECT_NEAR(*a.per_category[1].correlation, -1.0, 1e-12);

  // All in character: the correlation is undefined and written as null.
  const Attribution flat = attribution({0.1, 0.2}, {true, true}, {});
  EXPECT_FALSE(flat.overall.correlation.has_value());
  EXPECT_TRUE(flat.to_json()["correlation"].is_null());
  EXPECT_TRUE(flat.to_json()["mean_under_trained_out"].is_null());
  EXPECT_NE(error_of([&] { attribution({0.1}, {true, false}, {}); }).find("expected one of each per response"),
            std::string::npos);
}

TEST(RoutingMetrics, ParaphraseJaccardOverPromptPositions) {
  // Prompt sets layer 0: a {0,1,2}, b {1,2,3} → 2/4; layer 1: a {0,1}, b {0,1} → 1.
  // The generated position of b (expert 5) is not read.
  RoutingTrace a = make_trace({0, 1}, 6, 2, 2, {{{0, 1}, {0, 1}}, {{2, 1}, {1, 0}}});
  RoutingTrace b = make_trace({0, 1}, 6, 2, 2, {{{1, 2}, {0, 1}}, {{3, 2}, {0, 1}}, {{5, 4}, {5, 4}}});
  EXPECT_EQ(prompt_expert_jaccard(a, b), (std::vector<double>{0.5, 1.0}));
  RoutingTrace c = make_trace({0, 1}, 6, 2, 1, {{{4, 5}, {2, 3}}});  // vs a: 0/5 and 0/4
  const ParaphraseDivergence d = paraphrase_divergence({a, b, c}, {{0, 1}, {0, 2}});
  EXPECT_EQ(d.pairs, 2);
  EXPECT_EQ(d.per_layer, (std::vector<double>{0.25, 0.5}));
  EXPECT_EQ(d.to_json()["per_layer"], (nlohmann::json{0.25, 0.5}));
  EXPECT_TRUE(paraphrase_divergence({a}, {}).per_layer.empty());
  EXPECT_NE(error_of([&] { paraphrase_divergence({a, b}, {{0, 2}}); }).find("expected indices below 2"), std::string::npos);
}

TEST(RoutingMetrics, DriftIsOneMinusPerPositionJaccard) {
  // Position 0: {0,1} vs {1,2} → J 1/3, top-1 0→1 changed; position 1: {0,1} vs {1,0} → J 1, top-1 changed;
  // position 2: {2,3} vs {2,3} → J 1, same. Mean J = 7/9 → drift 2/9; changed 2/3.
  RoutingTrace base = make_trace({2}, 4, 2, 1, {{{0, 1}}, {{0, 1}}, {{2, 3}}});
  RoutingTrace tuned = make_trace({2}, 4, 2, 1, {{{1, 2}}, {{1, 0}}, {{2, 3}}});
  const Drift d = routing_drift({base}, {tuned});
  EXPECT_EQ(d.positions, 3);
  EXPECT_NEAR(d.per_layer[0], 2.0 / 9.0, 1e-12);
  EXPECT_NEAR(d.changed_top1[0], 2.0 / 3.0, 1e-12);
  // Churn: position 0 loses expert 0 and gains expert 2; the other positions keep their sets.
  EXPECT_EQ(d.expert_churn, (std::vector<std::vector<double>>{{1.0 / 3.0, 0.0, 1.0 / 3.0, 0.0}}));
  EXPECT_EQ(d.to_json()["expert_churn"][0].size(), 4u);
  EXPECT_EQ(routing_drift({base}, {base}).per_layer[0], 0.0);
  RoutingTrace longer = make_trace({2}, 4, 2, 1, {{{1, 2}}, {{1, 0}}, {{2, 3}}, {{2, 3}}});
  EXPECT_NE(error_of([&] { routing_drift({base}, {longer}); }).find("tuned trace 0 has 4 positions, expected 3"),
            std::string::npos);
}

TEST(RoutingMetrics, CircuitsCorrelateAdjacentLayersOverAllTraces) {
  // K = 1, weight 1. Layer 0 ids [0 0 0 1 1 1], layer 1 ids [0 0 1 1 1 1] over 6 positions split
  // across two traces. x0 = [1 1 1 0 0 0], y0 = [1 1 0 0 0 0]: Σ(x−x̄)(y−ȳ) = 1, Σ(x−x̄)² = 1.5,
  // Σ(y−ȳ)² = 4/3 → r = 1/√2; (1,1) likewise; cross pairs −1/√2.
  std::vector<std::vector<float>> one = {{1.0f}, {1.0f}};
  RoutingTrace a = make_trace({1, 3}, 2, 1, 3, {{{0}, {0}}, {{0}, {0}}, {{0}, {1}}}, {one, one, one});
  RoutingTrace b = make_trace({1, 3}, 2, 1, 3, {{{1}, {1}}, {{1}, {1}}, {{1}, {1}}}, {one, one, one});
  const Circuits c = circuits({a, b});
  EXPECT_EQ(c.positions, 6);
  ASSERT_EQ(c.pairs.size(), 1u);
  EXPECT_EQ(c.pairs[0].from_layer, 1);
  EXPECT_EQ(c.pairs[0].to_layer, 3);
  ASSERT_EQ(c.pairs[0].matched.size(), 2u);
  EXPECT_EQ(c.pairs[0].matched[0].from_expert, c.pairs[0].matched[0].to_expert);
  EXPECT_NEAR(c.pairs[0].matched[0].correlation, 1.0 / std::sqrt(2.0), 1e-12);
  EXPECT_NEAR(*c.pairs[0].alignment, 1.0 / std::sqrt(2.0), 1e-12);
  // Above the threshold nothing matches: alignment null.
  const Circuits strict = circuits({a, b}, {.threshold = 0.8});
  EXPECT_TRUE(strict.pairs[0].matched.empty());
  EXPECT_TRUE(strict.to_json()["pairs"][0]["alignment"].is_null());
  // The last trace alone (every expert constant) gives nothing: pooling matters.
  EXPECT_TRUE(circuits({b}).pairs[0].matched.empty());

  // A cycle e → (e+1) mod 4 over three layers, K = 1: every matched r is 1, one to one.
  std::vector<std::vector<std::vector<int32_t>>> rows;
  std::vector<std::vector<std::vector<float>>> w;
  for (int t = 0; t < 8; ++t) {
    rows.push_back({{t % 4}, {(t + 1) % 4}, {(t + 2) % 4}});
    w.push_back({{1.0f}, {1.0f}, {1.0f}});
  }
  const Circuits cycle = circuits({make_trace({0, 1, 2}, 4, 1, 8, rows, w)});
  ASSERT_EQ(cycle.pairs.size(), 2u);
  ASSERT_EQ(cycle.pairs[1].matched.size(), 4u);
  for (const auto& m : cycle.pairs[1].matched) {
    EXPECT_EQ(m.to_expert, (m.from_expert + 1) % 4);
    EXPECT_NEAR(m.correlation, 1.0, 1e-12);
  }
  EXPECT_EQ(cycle.to_json()["pairs"][0]["matched"].size(), 4u);
}

TEST(RoutingMetrics, GenerationDynamicsOnConsecutiveGeneratedTokens) {
  // P = 1; generated positions 1, 2, 3: {0,1}→{1,2}: overlap 1/2, top-1 0→1 changed;
  // {1,2}→{2,1}: overlap 1, top-1 1→2 changed. The prompt→generated step (position 0→1) is not read.
  RoutingTrace t = make_trace({0}, 4, 2, 1, {{{3, 2}}, {{0, 1}}, {{1, 2}}, {{2, 1}}});
  RoutingTrace none = make_trace({0}, 4, 2, 1, {{{3, 2}}});
  const GenerationDynamics g = generation_dynamics({t, none});
  EXPECT_EQ(g.transitions, 2);
  EXPECT_DOUBLE_EQ(g.per_layer[0].topk_overlap, 0.75);
  EXPECT_DOUBLE_EQ(g.per_layer[0].top1_change_rate, 1.0);
  EXPECT_TRUE(generation_dynamics({none}).to_json()["per_layer"][0]["topk_overlap"].is_null());
}

}  // namespace
}  // namespace character::eval
