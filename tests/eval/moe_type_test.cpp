// MoE type analysis: effective rank and verdicts on constructed expert banks with
// known answers (shared base + low-rank perturbations → pseudo; independent
// experts → native), and on tiny saved models against torch.linalg.svdvals
// (tools/oracle/fixtures_eval.py).
#include "eval/moe_type.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "lora/adapters.h"
#include "model/arch/causal_lm.h"
#include "tests/test_support.h"

namespace character::eval {
namespace {

using character::testing::fixture;

TEST(MoeType, EffectiveRankHoldsTheEnergyShare) {
  // σ² = [4, 1, 1], Σ = 6: 95% → 5.7 needs all 3; 80% → 4.8 needs 2; 60% → 3.6 needs 1.
  const auto s = torch::tensor({2.0, 1.0, 1.0}, torch::kDouble);
  EXPECT_EQ(effective_rank(s, 0.95), 3);
  EXPECT_EQ(effective_rank(s, 0.80), 2);
  EXPECT_EQ(effective_rank(s, 0.60), 1);
  EXPECT_EQ(effective_rank(torch::zeros({4}, torch::kDouble), 0.95), 0);
}

TEST(MoeType, VerdictThresholds) {
  EXPECT_EQ(moe_verdict(0.04, 0.30), "pseudo");
  EXPECT_EQ(moe_verdict(0.60, 0.05), "native");
  EXPECT_EQ(moe_verdict(0.30, 0.20), "unclear");
  EXPECT_EQ(moe_verdict(0.05, 0.30), "unclear");  // the bounds are strict
  EXPECT_EQ(moe_verdict(0.60, 0.30), "unclear");  // diverse ranks but similar experts
}

TEST(MoeType, SharedBasePlusLowRankIsPseudo) {
  torch::manual_seed(0);
  const int64_t E = 4, F = 128, D = 128;
  // Independent rank-1 perturbations: delta_e is a combination of the E perturbations,
  // so its rank is at most E = 4 of 128 (≤ 3.1%), and the shared base keeps cosines near 1.
  const auto base_gu = torch::randn({1, 2 * F, D}, torch::kDouble);
  const auto base_dn = torch::randn({1, D, F}, torch::kDouble);
  const auto gate_up = base_gu + 0.05 * torch::matmul(torch::randn({E, 2 * F, 1}, torch::kDouble), torch::randn({E, 1, D}, torch::kDouble));
  const auto down = base_dn + 0.05 * torch::matmul(torch::randn({E, D, 1}, torch::kDouble), torch::randn({E, 1, F}, torch::kDouble));
  const MoeLayerType t = analyze_expert_bank(7, gate_up, down);
  EXPECT_EQ(t.layer, 7);
  ASSERT_EQ(t.projections.size(), 3u);
  EXPECT_LE(t.projections[0].mean_rank, 4.0);
  EXPECT_GE(t.projections[0].mean_rank, 1.0);
  EXPECT_LT(t.rank_ratio, 0.05);
  EXPECT_GT(t.mean_cosine, 0.9);
  EXPECT_EQ(t.verdict, "pseudo");

  // One shared direction with per-expert scales: delta_e = (c_e − c̄)·u·vᵀ has rank exactly 1.
  const auto c = torch::randn({E, 1, 1}, torch::kDouble);
  const auto uv = torch::matmul(torch::randn({2 * F, 1}, torch::kDouble), torch::randn({1, D}, torch::kDouble));
  const MoeLayerType one = analyze_expert_bank(0, base_gu + 0.05 * c * uv, down);
  EXPECT_DOUBLE_EQ(one.projections[0].mean_rank, 1.0);
  EXPECT_DOUBLE_EQ(one.projections[1].mean_rank, 1.0);
  EXPECT_DOUBLE_EQ(one.rank_ratio, 1.0 / 128.0);
}

TEST(MoeType, IndependentExpertsAreNative) {
  torch::manual_seed(1);
  const auto gate_up = torch::randn({8, 2 * 64, 64}, torch::kDouble);
  const auto down = torch::randn({8, 64, 64}, torch::kDouble);
  const MoeLayerType t = analyze_expert_bank(0, gate_up, down);
  EXPECT_GT(t.rank_ratio, 0.5);
  EXPECT_LT(std::abs(t.mean_cosine), 0.05);
  EXPECT_EQ(t.verdict, "native");
  EXPECT_THROW(analyze_expert_bank(0, gate_up.narrow(0, 0, 1), down.narrow(0, 0, 1)), ConfigError);
}

nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

void expect_matches_reference(const std::string& kind, const std::string& verdict) {
  const auto dir = fixture("eval/moe_type_" + kind);
  const auto ref = read_json(dir / "reference.json");
  const auto model = model::load_model(dir / "model");
  const MoeType t = analyze_moe_type(*model, {.max_layers = 0});
  ASSERT_EQ(t.per_layer.size(), ref["per_layer"].size());
  for (size_t l = 0; l < t.per_layer.size(); ++l) {
    const auto& r = ref["per_layer"][l];
    EXPECT_EQ(t.per_layer[l].layer, r["layer"].get<int64_t>());
    EXPECT_NEAR(t.per_layer[l].mean_cosine, r["mean_cosine"].get<double>(), 1e-9) << kind << " layer " << l;
    for (size_t p = 0; p < 3; ++p) {
      EXPECT_EQ(t.per_layer[l].projections[p].name, r["projections"][p]["name"].get<std::string>());
      EXPECT_DOUBLE_EQ(t.per_layer[l].projections[p].mean_rank, r["projections"][p]["mean_rank"].get<double>())
          << kind << " layer " << l << " " << t.per_layer[l].projections[p].name;
      EXPECT_DOUBLE_EQ(t.per_layer[l].projections[p].rank_ratio, r["projections"][p]["rank_ratio"].get<double>());
    }
    EXPECT_EQ(t.per_layer[l].verdict, verdict);
    EXPECT_FALSE(t.per_layer[l].adapter_rank.has_value());
  }
  EXPECT_EQ(t.verdict, verdict);
  EXPECT_EQ(t.to_json()["per_layer"][0]["verdict"], verdict);
}

TEST(MoeType, TinyModelsMatchTorchSvd) {
  expect_matches_reference("pseudo", "pseudo");
  expect_matches_reference("native", "native");
}

TEST(MoeType, AdapterExpertDeltaRank) {
  const auto model = model::load_model(fixture("eval/moe_type_native") / "model");
  lora::LoraConfig config;
  config.rank = 2;
  config.train_attn = false;
  auto adapters = lora::attach_adapters(model, config);
  // B starts at zero: the adapter has not moved any expert.
  EXPECT_DOUBLE_EQ(*analyze_moe_type(*model, {.layers = {0}}).per_layer[0].adapter_rank, 0.0);
  {
    torch::NoGradGuard no_grad;
    for (const auto& p : adapters->named_parameters())
      if (p.name.find("experts") != std::string::npos) p.tensor.copy_(torch::randn_like(p.tensor));
  }
  const double rank = *analyze_moe_type(*model, {.layers = {0}}).per_layer[0].adapter_rank;
  EXPECT_GT(rank, 0.0);
  EXPECT_LE(rank, 2.0);  // B_e·A with A shared [r, D]: rank ≤ r
}

TEST(MoeType, DenseOrUnknownLayerIsAConfigError) {
  const auto model = model::load_model(fixture("eval/qwen3_moe") / "model");  // layer 1 is dense (mlp_only_layers)
  try {
    analyze_moe_type(*model, {.layers = {1}});
    ADD_FAILURE() << "no error for a dense layer";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("layer 1 is not an MoE layer of this qwen3_moe model"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace character::eval
