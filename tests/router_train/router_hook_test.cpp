// RouterStepHook as the trainer drives it (lora/trainer.h StepHook): the loss it
// adds equals coef·aux + z_coef·z with transformers' aux loss and the oracle's
// z-loss, its gradient reaches the trained router, it counts coverage, reports
// metrics, and its state and coverage.json survive a checkpoint.
#include "router_train/router_hook.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "base/atomic_file.h"
#include "base/error.h"
#include "lora/adapters.h"
#include "lora/train_data.h"
#include "tests/router_train/router_fixtures.h"

namespace character::testing {
namespace {

using router_train::RouterHookOptions;
using router_train::RouterStepHook;

lora::TokenBatch oracle_batch(const RouterCase& c) {
  return {c.at("input_ids"), c.at("attention_mask"), c.at("labels")};
}

TEST(RouterStepHook, AddsWeightedAuxAndZLossWithTheirGradients) {
  for (const auto& name : router_case_names()) {
    SCOPED_TRACE(name);
    auto c = router_case(name);
    lora::LoraConfig config;
    config.train_attn = config.train_mlp = false;
    config.train_router = lora::RouterTraining::kFull;
    auto adapters = lora::attach_adapters(c.model, config);
    RouterStepHook hook(c.model->config(), RouterHookOptions{std::nullopt, 0.01, 1});
    const double aux_coef = c.meta.at("router_aux_loss_coef").get<double>();
    EXPECT_DOUBLE_EQ(hook.aux_loss_coef(), aux_coef);
    ASSERT_TRUE(hook.wants_routing());

    auto out = run_batch(c);
    auto loss = hook.extra_loss(out, oracle_batch(c));
    auto expected = c.at("aux_loss") * aux_coef + c.at("z_loss") * 0.01;
    EXPECT_LE(rel_error(loss, expected), 1e-5);
    loss.backward();
    for (int64_t l : c.moe_layers()) {
      const auto& w = adapters->get("model.layers." + std::to_string(l) + ".mlp.gate.weight");
      auto g = c.at("grad_aux." + std::to_string(l)) * aux_coef + c.at("grad_z." + std::to_string(l)) * 0.01;
      EXPECT_LE(rel_error(w.grad(), g), 1e-4) << l;
    }

    nlohmann::json metrics;
    hook.add_metrics(metrics);
    EXPECT_NEAR(metrics.at("aux_loss").get<double>(), c.at("aux_loss").item<double>(), 1e-5);
    const double z = c.at("z_loss").item<double>();
    EXPECT_NEAR(metrics.at("z_loss").get<double>(), z, 1e-5 * z);
    const auto below = c.at("coverage_loss_tokens").lt(1).sum().item<int64_t>();
    EXPECT_EQ(metrics.at("coverage_experts_below").get<int64_t>(), below);
    EXPECT_DOUBLE_EQ(metrics.at("coverage_below_share").get<double>(),
                     static_cast<double>(below) / c.at("coverage_loss_tokens").numel());
  }
}

TEST(RouterStepHook, MetricsAverageTheStepsMicroBatches) {
  auto c = router_case("olmoe");
  RouterStepHook hook(c.model->config());
  EXPECT_DOUBLE_EQ(hook.z_loss_coef(), router_train::kDefaultZLossCoef);
  {
    torch::NoGradGuard no_grad;
    for (int i = 0; i < 2; ++i) hook.extra_loss(run_batch(c), oracle_batch(c));
  }
  nlohmann::json metrics;
  hook.add_metrics(metrics);
  EXPECT_NEAR(metrics.at("aux_loss").get<double>(), c.at("aux_loss").item<double>(), 1e-5);
  EXPECT_EQ(hook.coverage().loss_tokens(0, 0), 2 * c.at("coverage_loss_tokens")[0][0].item<int64_t>());
  nlohmann::json next;
  hook.add_metrics(next);  // no micro-batch since: no loss entries, coverage stays
  EXPECT_FALSE(next.contains("aux_loss"));
  EXPECT_TRUE(next.contains("coverage_below_share"));
}

TEST(RouterStepHook, ZeroCoefficientsOnlyCountCoverage) {
  auto c = router_case("mixtral");
  RouterStepHook hook(c.model->config(), RouterHookOptions{0.0, 0.0, 16});
  torch::NoGradGuard no_grad;
  auto loss = hook.extra_loss(run_batch(c), oracle_batch(c));
  EXPECT_EQ(loss.item<double>(), 0.0);
  EXPECT_EQ(hook.coverage().real_positions(), c.at("attention_mask").sum().item<int64_t>());
  nlohmann::json metrics;
  hook.add_metrics(metrics);
  EXPECT_FALSE(metrics.contains("aux_loss"));
  EXPECT_FALSE(metrics.contains("z_loss"));
}

TEST(RouterStepHook, StateAndCoverageJsonSurviveACheckpoint) {
  auto c = router_case("qwen3_moe");
  RouterStepHook hook(c.model->config());
  {
    torch::NoGradGuard no_grad;
    hook.extra_loss(run_batch(c), oracle_batch(c));
  }
  const std::string saved = hook.state().dump();
  RouterStepHook resumed(c.model->config());
  resumed.load_state(nlohmann::json::parse(saved));
  EXPECT_EQ(resumed.state().dump(), saved);

  TempDir dir;
  resumed.write_outputs(dir.path());
  auto j = nlohmann::json::parse(read_file(dir / "coverage.json"));
  EXPECT_EQ(j.at("threshold").get<int64_t>(), 16);
  const auto loss = c.at("coverage_loss_tokens");
  EXPECT_EQ(j.at("experts_below_threshold").get<int64_t>(), loss.lt(16).sum().item<int64_t>());
  EXPECT_THROW(resumed.load_state(nlohmann::json::object()), CheckpointError);
}

TEST(RouterStepHook, DenseModelOrNegativeCoefficientIsAConfigError) {
  model::ModelConfig dense;
  dense.model_type = "llama";
  EXPECT_THROW(RouterStepHook hook(dense), ConfigError);
  auto c = router_case("mixtral");
  EXPECT_THROW(RouterStepHook(c.model->config(), RouterHookOptions{-1.0, 0.001, 16}), ConfigError);
}

}  // namespace
}  // namespace character::testing
