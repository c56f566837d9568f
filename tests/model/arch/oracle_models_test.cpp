// Every architecture against transformers 5.5.4 on the oracle's tiny models
// (tools/oracle/fixtures_models.py): logits, hidden states, router logits and
// top-k choices, greedy generation, and KV-cache decoding equal to a full forward.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <iostream>

#include "tests/model/arch/arch_fixtures.h"
#include "model/arch/kv_cache.h"

namespace character::model {
namespace {

using testing::OracleModel;

constexpr double kTolerance = 1e-4;  // fp32, absolute

class OracleModels : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    fixture_ = testing::oracle_model(GetParam());
    lm_ = load_model(fixture_.model_dir);
  }

  // The fixture's input `prefix` ("batch": left-padded, "single": no padding).
  ForwardInput input(const std::string& prefix) const {
    ForwardInput in;
    in.input_ids = fixture_.at(prefix + "_input_ids");
    if (prefix == "batch") in.attention_mask = fixture_.at("batch_attention_mask");
    return in;
  }
  // [B, T] bool: real (non-padding) positions.
  torch::Tensor real(const std::string& prefix) const {
    const auto& ids = fixture_.at(prefix + "_input_ids");
    return prefix == "batch" ? fixture_.at("batch_attention_mask").to(torch::kBool) : torch::ones_like(ids).to(torch::kBool);
  }
  void report(const std::string& what, double err) const {
    std::cout << "  [" << GetParam() << "] " << what << " max|Δ| = " << err << "\n";
  }

  OracleModel fixture_;
  CausalLM lm_;
};

TEST_P(OracleModels, LogitsAndHiddenStatesMatchTransformers) {
  torch::InferenceMode guard;
  for (const std::string prefix : {"batch", "single"}) {
    auto in = input(prefix);
    in.capture.hidden_states = true;
    const auto out = lm_->forward(in);
    const auto keep = real(prefix);
    const double err = testing::max_abs_diff(out.logits.index({keep}), fixture_.at(prefix + "_logits").index({keep}));
    report(prefix + " logits", err);
    EXPECT_LT(err, kTolerance) << prefix;
    const int64_t layers = fixture_.meta["num_hidden_layers"];
    ASSERT_EQ(out.hidden_states.size(), static_cast<size_t>(layers + 1));
    double hidden_err = 0;
    for (int64_t i = 0; i <= layers; ++i) {
      hidden_err = std::max(hidden_err, testing::max_abs_diff(out.hidden_states[i].index({keep}),
                                                              fixture_.at(prefix + "_hidden_" + std::to_string(i)).index({keep})));
    }
    report(prefix + " hidden states", hidden_err);
    EXPECT_LT(hidden_err, kTolerance) << prefix;
  }
}

TEST_P(OracleModels, RouterLogitsAndTopKMatchTransformers) {
  torch::InferenceMode guard;
  const std::vector<int64_t> moe_layers = fixture_.meta["moe_layers"];
  for (const std::string prefix : {"batch", "single"}) {
    auto in = input(prefix);
    in.capture.router = true;
    const auto out = lm_->forward(in);
    ASSERT_EQ(out.routing.size(), moe_layers.size()) << prefix;
    const auto keep = real(prefix).reshape({-1});  // [N]
    double logit_err = 0, weight_err = 0, prob_err = 0;
    for (size_t j = 0; j < moe_layers.size(); ++j) {
      const auto& r = out.routing[j];
      const std::string l = std::to_string(moe_layers[j]);
      EXPECT_EQ(r.layer, moe_layers[j]);
      ASSERT_EQ(r.router_logits.scalar_type(), torch::kFloat);
      logit_err = std::max(logit_err, testing::max_abs_diff(r.router_logits.index({keep}),
                                                            fixture_.at(prefix + "_router_logits_" + l).index({keep})));
      prob_err = std::max(prob_err, testing::max_abs_diff(r.router_logits.softmax(-1).index({keep}),
                                                          fixture_.at(prefix + "_router_probs_" + l).index({keep})));
      weight_err = std::max(weight_err, testing::max_abs_diff(r.topk_weights.index({keep}),
                                                              fixture_.at(prefix + "_topk_weights_" + l).index({keep})));
      EXPECT_TRUE(torch::equal(r.topk_ids.index({keep}), fixture_.at(prefix + "_topk_ids_" + l).index({keep})))
          << prefix << " layer " << l;
    }
    if (moe_layers.empty()) continue;
    report(prefix + " router logits / probs / top-k weights", std::max({logit_err, prob_err, weight_err}));
    EXPECT_LT(logit_err, kTolerance);
    EXPECT_LT(prob_err, kTolerance);
    EXPECT_LT(weight_err, kTolerance);
  }
}

// Greedy decoding with the KV cache: prefill, then one token per step, the mask
// growing by one real column per step (what generate() does for left padding).
torch::Tensor greedy(CausalLMImpl& lm, const torch::Tensor& ids, torch::Tensor mask, int64_t new_tokens) {
  KVCache cache(lm.config().num_hidden_layers);
  ForwardInput in;
  in.input_ids = ids;
  in.attention_mask = mask;
  in.cache = &cache;
  in.last_logits_only = true;
  std::vector<torch::Tensor> tokens;
  for (int64_t step = 0; step < new_tokens; ++step) {
    const auto out = lm.forward(in);
    auto next = out.logits.select(1, out.logits.size(1) - 1).argmax(-1);  // [B]
    tokens.push_back(next);
    mask = torch::cat({mask, torch::ones({mask.size(0), 1}, mask.options())}, 1);
    in.input_ids = next.unsqueeze(1);
    in.attention_mask = mask;
  }
  return torch::stack(tokens, 1);  // [B, new_tokens]
}

TEST_P(OracleModels, GreedyGenerationMatchesTransformers) {
  torch::InferenceMode guard;
  for (const std::string prefix : {"batch", "single"}) {
    const auto& ids = fixture_.at(prefix + "_input_ids");
    auto mask = prefix == "batch" ? fixture_.at("batch_attention_mask") : torch::ones_like(ids);
    const auto& expected = fixture_.at(prefix + "_generated");
    const auto got = greedy(*lm_, ids, mask, expected.size(1));
    EXPECT_TRUE(torch::equal(got, expected)) << prefix << "\n got " << got << "\n expected " << expected;
  }
}

TEST_P(OracleModels, CachedDecodingEqualsFullForward) {
  torch::InferenceMode guard;
  const auto& ids = fixture_.at("batch_input_ids");
  const auto& mask = fixture_.at("batch_attention_mask");
  const int64_t t = ids.size(1), prefill = t - 4;
  ForwardInput full;
  full.input_ids = ids;
  full.attention_mask = mask;
  full.capture.router = true;
  const auto reference = lm_->forward(full);

  // Prefill, two single-token steps, then a 2-token chunk (causal mask with an offset).
  KVCache cache(lm_->config().num_hidden_layers);
  double err = 0;
  const std::vector<std::pair<int64_t, int64_t>> chunks{{0, prefill}, {prefill, 1}, {prefill + 1, 1}, {prefill + 2, 2}};
  for (const auto& [start, len] : chunks) {
    ForwardInput step;
    step.input_ids = ids.narrow(1, start, len);
    step.attention_mask = mask.narrow(1, 0, start + len);
    step.cache = &cache;
    step.capture.router = true;
    const auto out = lm_->forward(step);
    ASSERT_EQ(cache.length(), start + len);
    const auto keep = mask.narrow(1, start, len).to(torch::kBool);
    err = std::max(err, testing::max_abs_diff(out.logits.index({keep}),
                                              reference.logits.narrow(1, start, len).index({keep})));
    for (size_t j = 0; j < out.routing.size(); ++j) {
      const auto ref_ids = reference.routing[j].topk_ids.view({ids.size(0), t, -1}).narrow(1, start, len);
      const auto got_ids = out.routing[j].topk_ids.view({ids.size(0), len, -1});
      EXPECT_TRUE(torch::equal(got_ids.index({keep}), ref_ids.index({keep}))) << "chunk at " << start;
    }
  }
  report("cached vs full logits", err);
  EXPECT_LT(err, kTolerance);
}

INSTANTIATE_TEST_SUITE_P(Transformers, OracleModels, ::testing::ValuesIn(testing::oracle_model_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace character::model
