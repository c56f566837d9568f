// The load-balancing loss against transformers 5.5.4 (load_balancing_loss_func
// as Qwen3MoeForCausalLM, MixtralForCausalLM and OlmoeForCausalLM call it) and
// the router z-loss against the oracle's direct formula: values, gradients
// w.r.t. the router logits, and gradients w.r.t. the router weights when the
// engine's captured logits train the router (lora::attach_adapters, full / lora).
#include "router_train/aux_losses.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <iostream>
#include <optional>

#include "base/error.h"
#include "lora/adapters.h"
#include "model/arch/checkpointing.h"
#include "tests/router_train/router_fixtures.h"

namespace character::testing {
namespace {

using router_train::load_balancing_loss;
using router_train::load_balancing_options;
using router_train::router_z_loss;

constexpr double kValueTolerance = 1e-5;     // relative, the brief's bound
constexpr double kGradientTolerance = 1e-4;  // relative (Frobenius), fp32 through the whole model

// The oracle's raw router logits as routing entries (leaves with requires_grad).
std::vector<model::LayerRouting> oracle_routing(const RouterCase& c) {
  std::vector<model::LayerRouting> routing;
  for (int64_t l : c.moe_layers()) {
    model::LayerRouting r;
    r.layer = l;
    r.router_logits = c.at("router_logits_" + std::to_string(l)).clone().requires_grad_(true);
    r.topk_ids = c.at("topk_ids_" + std::to_string(l));
    routing.push_back(r);
  }
  return routing;
}

lora::LoraConfig router_only(lora::RouterTraining training) {
  lora::LoraConfig config;
  config.rank = 4;
  config.train_attn = false;
  config.train_mlp = false;
  config.train_router = training;
  return config;
}

TEST(LoadBalancingLoss, FormulaMatchesTransformersOnTheSameLogits) {
  for (const auto& name : router_case_names()) {
    SCOPED_TRACE(name);
    auto c = router_case(name);
    const auto options = load_balancing_options(c.model->config());
    EXPECT_EQ(options.recorded, router_train::RecordedRouterOutput::kProbabilities);
    auto routing = oracle_routing(c);
    auto loss = load_balancing_loss(routing, c.at("attention_mask"), options);
    const double value_err = rel_error(loss, c.at("aux_loss"));
    EXPECT_LE(value_err, kValueTolerance);
    loss.backward();
    double grad_err = 0;
    for (const auto& r : routing) {
      grad_err = std::max(grad_err, rel_error(r.router_logits.grad(),
                                              c.at("grad_aux.router_logits_" + std::to_string(r.layer))));
    }
    EXPECT_LE(grad_err, kValueTolerance);
    // transformers' attention_mask=None branch: plain means over every row.
    auto no_mask = load_balancing_loss(routing, at::Tensor(), options);
    const double no_mask_err = rel_error(no_mask, c.at("aux_loss_no_mask"));
    EXPECT_LE(no_mask_err, kValueTolerance);
    std::cout << "  " << name << ": aux " << loss.item<double>() << " rel err " << value_err << ", no mask rel err "
              << no_mask_err << ", d/dlogits rel err " << grad_err << "\n";
  }
}

// Full router training: the engine's captured logits carry the autograd graph
// back to the trained router copies, through every layer (a router's weight
// also moves the hidden states that later routers see).
void check_engine_aux_loss(bool activation_checkpointing) {
  for (const auto& name : router_case_names()) {
    SCOPED_TRACE(name);
    auto c = router_case(name);
    auto adapters = lora::attach_adapters(c.model, router_only(lora::RouterTraining::kFull));
    std::optional<model::LayerCheckpointing> checkpointing;
    if (activation_checkpointing) checkpointing.emplace();
    auto out = run_batch(c);
    ASSERT_EQ(out.routing.size(), c.moe_layers().size());
    double logits_err = 0;
    for (const auto& r : out.routing) {
      EXPECT_TRUE(r.router_logits.requires_grad()) << "layer " << r.layer << ": captured logits lost their graph";
      const auto& expected = c.at("router_logits_" + std::to_string(r.layer));
      logits_err = std::max(logits_err, max_abs_diff(r.router_logits, expected));
    }
    EXPECT_LT(logits_err, 1e-4);
    auto loss = load_balancing_loss(out.routing, c.at("attention_mask"), load_balancing_options(c.model->config()));
    const double value_err = rel_error(loss, c.at("aux_loss"));
    EXPECT_LE(value_err, kValueTolerance);
    loss.backward();
    double grad_err = 0;
    for (int64_t l : c.moe_layers()) {
      const auto& w = adapters->get("model.layers." + std::to_string(l) + ".mlp.gate.weight");
      ASSERT_TRUE(w.grad().defined()) << l;
      grad_err = std::max(grad_err, rel_error(w.grad(), c.at("grad_aux." + std::to_string(l))));
    }
    EXPECT_LE(grad_err, kGradientTolerance);
    std::cout << "  " << name << ": router logits max abs err " << logits_err << ", engine aux rel err " << value_err
              << ", d/dW_router rel err " << grad_err << "\n";
  }
}

TEST(LoadBalancingLoss, EngineValueAndRouterWeightGradientMatchTransformers) {
  check_engine_aux_loss(/*activation_checkpointing=*/false);
}

// With per-layer activation checkpointing the captured logits come out of the
// recomputing autograd function; the gradient must still reach the router.
TEST(LoadBalancingLoss, GradientSurvivesActivationCheckpointing) {
  check_engine_aux_loss(/*activation_checkpointing=*/true);
}

// Router LoRA at B = 0 computes the base router, so by the chain rule its
// gradients are dL/dB = s·G·Aᵀ and dL/dA = 0, G = transformers' dL/dW.
TEST(LoadBalancingLoss, RouterLoraGradientIsTheChainRuleOfTransformers) {
  auto c = router_case("qwen3_moe");
  const auto config = router_only(lora::RouterTraining::kLora);
  auto adapters = lora::attach_adapters(c.model, config);
  auto out = run_batch(c);
  load_balancing_loss(out.routing, c.at("attention_mask"), load_balancing_options(c.model->config())).backward();
  for (int64_t l : c.moe_layers()) {
    const std::string prefix = "model.layers." + std::to_string(l) + ".mlp.gate.";
    const auto& a = adapters->get(prefix + "lora_A");  // [r, D]
    const auto& b = adapters->get(prefix + "lora_B");  // [E, r]
    auto expected_b = at::matmul(c.at("grad_aux." + std::to_string(l)), a.detach().t()) * config.scale();  // [E, r]
    ASSERT_TRUE(b.grad().defined()) << l;
    EXPECT_LE(rel_error(b.grad(), expected_b), kGradientTolerance) << l;
    EXPECT_EQ(a.grad().abs().max().item<double>(), 0.0) << l;
  }
}

TEST(RouterZLoss, MatchesTheFormulaValueAndRouterWeightGradient) {
  for (const auto& name : router_case_names()) {
    SCOPED_TRACE(name);
    auto c = router_case(name);
    const double formula_err = rel_error(router_z_loss(oracle_routing(c), c.at("attention_mask")), c.at("z_loss"));
    EXPECT_LE(formula_err, kValueTolerance);
    auto adapters = lora::attach_adapters(c.model, router_only(lora::RouterTraining::kFull));
    auto out = run_batch(c);
    auto z = router_z_loss(out.routing, c.at("attention_mask"));
    const double value_err = rel_error(z, c.at("z_loss"));
    EXPECT_LE(value_err, kValueTolerance);
    z.backward();
    double grad_err = 0;
    for (int64_t l : c.moe_layers()) {
      const auto& w = adapters->get("model.layers." + std::to_string(l) + ".mlp.gate.weight");
      grad_err = std::max(grad_err, rel_error(w.grad(), c.at("grad_z." + std::to_string(l))));
    }
    EXPECT_LE(grad_err, kGradientTolerance);
    std::cout << "  " << name << ": z " << z.item<double>() << " rel err " << value_err << " (oracle logits "
              << formula_err << "), d/dW_router rel err " << grad_err << "\n";
  }
}

TEST(RouterZLoss, IgnoresPaddedPositions) {
  auto c = router_case("mixtral");
  auto routing = oracle_routing(c);
  // Garbage on every padded row must not change the loss.
  const auto padded = c.at("attention_mask").reshape({-1}).eq(0);
  for (auto& r : routing) r.router_logits = r.router_logits.detach().masked_fill(padded.unsqueeze(1), 1e3);
  EXPECT_LE(rel_error(router_z_loss(routing, c.at("attention_mask")), c.at("z_loss")), kValueTolerance);
  EXPECT_LE(rel_error(load_balancing_loss(routing, c.at("attention_mask"), load_balancing_options(c.model->config())),
                      c.at("aux_loss")),
            kValueTolerance);
}

TEST(LoadBalancingLoss, NoRoutingGivesZeroAsTransformers) {
  router_train::LoadBalancingOptions options{8, 2, router_train::RecordedRouterOutput::kProbabilities};
  EXPECT_EQ(load_balancing_loss({}, at::Tensor(), options).item<double>(), 0.0);
  EXPECT_EQ(router_z_loss({}, at::Tensor()).item<double>(), 0.0);
}

TEST(LoadBalancingLoss, DenseOrUnknownArchitectureIsAConfigError) {
  model::ModelConfig dense;
  dense.model_type = "llama";
  try {
    load_balancing_options(dense);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("model_type llama has no MoE router"), std::string::npos) << e.what();
  }
  model::ModelConfig other;
  other.model_type = "gpt_oss";
  other.num_experts = 32;
  other.num_experts_per_tok = 4;
  try {
    load_balancing_options(other);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("model_type gpt_oss is not known"), std::string::npos) << e.what();
  }
}

TEST(LoadBalancingLoss, CoefficientComesFromConfigJson) {
  for (const auto& name : router_case_names()) {
    auto c = router_case(name);
    EXPECT_DOUBLE_EQ(c.model->config().router_aux_loss_coef, c.meta.at("router_aux_loss_coef").get<double>()) << name;
  }
}

}  // namespace
}  // namespace character::testing
