// The shared expert bank: grouped execution equals the per-token definition
// Σ_k w_k · down_e(silu(gate_e x) ⊙ up_e x), with both kernels (per-expert loop
// and torch's grouped GEMM, which CUDA uses), gradients flow, and the Hub name
// rule covers every expert tensor once.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

#include "model/arch/experts.h"

namespace character::model {
namespace {

constexpr int64_t kE = 5, kD = 16, kF = 8, kN = 11, kK = 2;

ExpertBank random_bank(ExpertKernel kernel) {
  ExpertBank bank(kE, kD, kF, at::TensorOptions().dtype(at::kFloat));
  torch::NoGradGuard no_grad;
  torch::manual_seed(3);
  bank->gate_up_proj.copy_(torch::randn({kE, 2 * kF, kD}) * 0.3);
  bank->down_proj.copy_(torch::randn({kE, kD, kF}) * 0.3);
  bank->kernel = kernel;
  return bank;
}

// The definition, one token and one slot at a time.
torch::Tensor per_token(ExpertBank& bank, const torch::Tensor& x, const torch::Tensor& ids, const torch::Tensor& w) {
  auto out = torch::zeros_like(x);
  for (int64_t i = 0; i < x.size(0); ++i) {
    for (int64_t j = 0; j < ids.size(1); ++j) {
      const int64_t e = ids[i][j].item<int64_t>();
      auto gate_up = torch::mv(bank->gate_up_proj[e], x[i]);
      auto h = torch::silu(gate_up.narrow(0, 0, kF)) * gate_up.narrow(0, kF, kF);
      out[i] += w[i][j] * torch::mv(bank->down_proj[e], h);
    }
  }
  return out;
}

TEST(ExpertBank, GroupedExecutionEqualsPerTokenDefinition) {
  torch::manual_seed(5);
  auto x = torch::randn({kN, kD});
  // Expert 4 is never chosen: empty groups must be skipped correctly.
  auto ids = torch::randint(0, kE - 1, {kN, kK}, torch::kLong);
  ids.select(1, 1) = (ids.select(1, 0) + 1) % (kE - 1);
  auto w = torch::rand({kN, kK});
  for (auto kernel : {ExpertKernel::kLoop, ExpertKernel::kGroupedMm}) {
    auto bank = random_bank(kernel);
    torch::NoGradGuard no_grad;
    const auto expected = per_token(bank, x, ids, w);
    const auto got = bank(x, ids, w);
    EXPECT_LT((got - expected).abs().max().item<double>(), 1e-5) << static_cast<int>(kernel);
  }
}

TEST(ExpertBank, GradientsReachExpertWeights) {
  auto bank = random_bank(ExpertKernel::kLoop);
  torch::manual_seed(6);
  auto x = torch::randn({kN, kD}, torch::requires_grad());
  auto ids = torch::randint(0, kE, {kN, kK}, torch::kLong);
  auto w = torch::rand({kN, kK}, torch::requires_grad());
  bank(x, ids, w).pow(2).sum().backward();
  ASSERT_TRUE(bank->gate_up_proj.grad().defined());
  EXPECT_GT(bank->gate_up_proj.grad().abs().sum().item<double>(), 0);
  EXPECT_GT(x.grad().abs().sum().item<double>(), 0);
  EXPECT_GT(w.grad().abs().sum().item<double>(), 0);
}

TEST(ExpertNames, MixtralRuleCoversEveryHubTensorOnce) {
  const ExpertNameRule mixtral{"block_sparse_moe", "w1", "w3", "w2"};
  const auto slices = expert_slices(mixtral, 3, /*num_experts=*/4, /*intermediate_size=*/kF, /*hidden_size=*/kD);
  ASSERT_EQ(slices.size(), 12u);
  std::set<std::string> keys;
  for (const auto& s : slices) keys.insert(s.hub_key);
  EXPECT_EQ(keys.size(), 12u);
  EXPECT_TRUE(keys.count("model.layers.3.block_sparse_moe.experts.2.w3.weight"));
  EXPECT_EQ(hub_router_name(mixtral, 3), "model.layers.3.block_sparse_moe.gate.weight");
  // w3 (up) is the second half of gate_up_proj; w2 (down) all of down_proj.
  for (const auto& s : slices) {
    if (s.hub_key.ends_with("w3.weight")) {
      EXPECT_EQ(s.fused, "model.layers.3.mlp.experts.gate_up_proj");
      EXPECT_EQ(s.row_begin, kF);
    }
    if (s.hub_key.ends_with("w2.weight")) EXPECT_EQ(s.fused, "model.layers.3.mlp.experts.down_proj");
  }
  // Unstacking returns views of the fused tensors with the per-expert shapes.
  auto gate_up = torch::arange(4 * 2 * kF * kD, torch::kFloat).view({4, 2 * kF, kD});
  auto down = torch::arange(4 * kD * kF, torch::kFloat).view({4, kD, kF});
  for (const auto& [key, t] : unstack_experts(mixtral, 3, gate_up, down)) {
    if (key == "model.layers.3.block_sparse_moe.experts.1.w3.weight") EXPECT_TRUE(torch::equal(t, gate_up[1].narrow(0, kF, kF)));
    if (key == "model.layers.3.block_sparse_moe.experts.1.w2.weight") EXPECT_TRUE(torch::equal(t, down[1]));
  }
}

}  // namespace
}  // namespace character::model
