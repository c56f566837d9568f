// Coverage-guided prompt augmentation: the greedy cover on hand-made footprints
// (the cover is found, the budget respected, the pick seeded, shape errors
// reported), the phrasing variants, and route footprints on the tiny MoE models
// of the eval fixtures (tools/oracle/fixtures_eval.py, real tokenizers): counts sum
// to tokens · top_k and equal the routing the engine captures for each prompt
// alone, whatever the batch (padding does not count).
#include "router_train/coverage_augment.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

#include "base/atomic_file.h"
#include "base/error.h"
#include "model/io/config.h"
#include "model/arch/causal_lm.h"
#include "tests/test_support.h"

namespace character::router_train {
namespace {

// One layer (index 3) of `experts` experts with the given counts.
RouteFootprint fp(std::vector<int64_t> counts) {
  RouteFootprint f;
  f.layers = {3};
  f.num_experts = static_cast<int64_t>(counts.size());
  f.counts = std::move(counts);
  return f;
}

TEST(SelectCoveringPrompts, FindsTheCoverARandomPickMisses) {
  // Target reaches experts 0..5. Candidates 0..5 each reach one of them; 6..15 only
  // expert 6 (outside the target). A budget of 6 covers all six only by picking 0..5.
  std::vector<RouteFootprint> candidates;
  for (int e = 0; e < 6; ++e) {
    std::vector<int64_t> c(8, 0);
    c[static_cast<std::size_t>(e)] = 2;
    candidates.push_back(fp(c));
  }
  for (int i = 0; i < 10; ++i) candidates.push_back(fp({0, 0, 0, 0, 0, 0, 5, 0}));
  const RouteFootprint target = fp({3, 1, 1, 1, 1, 1, 0, 0});
  const AugmentSelection s = select_covering_prompts(candidates, target, {.budget = 6, .min_count = 1, .seed = 7});
  EXPECT_EQ(s.target_pairs, 6);
  EXPECT_EQ(s.covered_after, 6);
  EXPECT_EQ(s.picked.front(), 0u);  // the heaviest target pair first
  EXPECT_EQ(std::set<std::size_t>(s.picked.begin(), s.picked.end()), (std::set<std::size_t>{0, 1, 2, 3, 4, 5}));
  EXPECT_LT(s.covered_before, 6);  // the seeded random pick of 6 of 16 misses some
}

TEST(SelectCoveringPrompts, BudgetMinCountAndRandomFill) {
  // Candidate 0 covers everything at once; min_count 2 needs a second helping of
  // expert 1, which only candidate 2 has. Budget 4: 0, 2, then two random fills.
  const std::vector<RouteFootprint> candidates = {fp({2, 1, 1}), fp({1, 0, 0}), fp({0, 1, 0}), fp({0, 0, 1}),
                                                  fp({0, 0, 0})};
  const RouteFootprint target = fp({1, 1, 0});
  const AugmentSelection s = select_covering_prompts(candidates, target, {.budget = 4, .min_count = 2, .seed = 1});
  ASSERT_EQ(s.picked.size(), 4u);
  EXPECT_EQ(s.picked[0], 0u);
  EXPECT_EQ(s.picked[1], 2u);
  EXPECT_EQ(std::set<std::size_t>(s.picked.begin(), s.picked.end()).size(), 4u);  // no candidate twice
  EXPECT_EQ(s.target_pairs, 2);
  EXPECT_EQ(s.covered_after, 2);
  // A budget smaller than the cover stops at the budget.
  const AugmentSelection one = select_covering_prompts(candidates, target, {.budget = 1, .min_count = 2, .seed = 1});
  EXPECT_EQ(one.picked, (std::vector<std::size_t>{0}));
  EXPECT_EQ(one.covered_after, 1);
  EXPECT_TRUE(select_covering_prompts(candidates, target, {.budget = 0}).picked.empty());
}

TEST(SelectCoveringPrompts, SeededAndDeterministic) {
  // Many equal candidates: ties and the fill follow the seed, and only the seed.
  std::vector<RouteFootprint> candidates;
  for (int i = 0; i < 40; ++i) candidates.push_back(fp({1, i % 3 == 0 ? 1 : 0, 0, 0}));
  const RouteFootprint target = fp({1, 1, 1, 0});
  const auto a = select_covering_prompts(candidates, target, {.budget = 10, .seed = 5});
  const auto b = select_covering_prompts(candidates, target, {.budget = 10, .seed = 5});
  const auto c = select_covering_prompts(candidates, target, {.budget = 10, .seed = 6});
  EXPECT_EQ(a.picked, b.picked);
  EXPECT_EQ(a.covered_before, b.covered_before);
  EXPECT_NE(a.picked, c.picked);
  EXPECT_EQ(a.covered_after, 2);  // expert 2 is reached by no candidate
  EXPECT_EQ(a.picked.front() % 3, 0u);  // the first pick reaches both coverable pairs
}

TEST(SelectCoveringPrompts, ShapeErrors) {
  const RouteFootprint target = fp({1, 1});
  EXPECT_THROW(select_covering_prompts({fp({1, 1, 0})}, target, {.budget = 1}), ConfigError);  // other E
  RouteFootprint other_layer = fp({1, 1});
  other_layer.layers = {4};
  EXPECT_THROW(select_covering_prompts({other_layer}, target, {.budget = 1}), ConfigError);
  RouteFootprint short_counts = fp({1, 1});
  short_counts.counts.pop_back();
  EXPECT_THROW(select_covering_prompts({short_counts}, target, {.budget = 1}), ConfigError);
  EXPECT_THROW(select_covering_prompts({fp({1, 0})}, target, {.budget = 2}), ConfigError);  // budget > candidates
  EXPECT_THROW(select_covering_prompts({fp({1, 0})}, target, {.budget = 1, .min_count = 0}), ConfigError);
  EXPECT_THROW(sum_footprints({}), ConfigError);
  EXPECT_THROW(sum_footprints({fp({1, 1}), fp({1})}), ConfigError);
  EXPECT_EQ(sum_footprints({fp({1, 2}), fp({3, 0})}).counts, (std::vector<int64_t>{4, 2}));
}

TEST(PhrasingVariants, DeterministicDistinctNeverTheOriginal) {
  for (const std::string prompt : {"Tell me more.", "Tell me more please.", "What's your name?", "hi"}) {
    const auto a = phrasing_variants(prompt, 3, 20);
    EXPECT_EQ(a, phrasing_variants(prompt, 3, 20)) << prompt;
    EXPECT_NE(a, phrasing_variants(prompt, 4, 20)) << prompt;
    EXPECT_EQ(a.size(), 20u) << prompt;
    EXPECT_EQ(std::set<std::string>(a.begin(), a.end()).size(), a.size()) << prompt;
    for (const auto& v : a) {
      EXPECT_NE(v, prompt);
      EXPECT_FALSE(v.empty());
    }
  }
  // The seed's flip is among them, and the count is a ceiling.
  const auto all = phrasing_variants("Tell me more.", 0, 1000);
  EXPECT_NE(std::find(all.begin(), all.end(), "Tell me more please."), all.end());
  EXPECT_NE(std::find(all.begin(), all.end(), "tell me more."), all.end());
  EXPECT_LT(all.size(), 1000u);
  EXPECT_EQ(phrasing_variants("Tell me more.", 0, 3).size(), 3u);
  EXPECT_TRUE(phrasing_variants("Tell me more.", 0, 0).empty());
  EXPECT_TRUE(phrasing_variants("  ", 0, 5).empty());
}

// Route footprints on a tiny MoE with a real tokenizer and chat template.
class Footprints : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(Footprints, MatchTheEnginesRoutingOfEachPromptAlone) {
  const auto& [name, family] = GetParam();
  const auto dir = character::testing::fixture("eval/" + name) / "model";
  const model::CausalLM lm = model::load_model(dir);
  lm->eval();
  const auto tokenizer = model::load_tokenizer(dir);
  const auto renderer = model::make_chat_renderer(family);
  model::ChatOptions chat;
  if (family == "qwen3") chat.enable_thinking = false;
  // Lengths differ, so a batch pads most rows.
  const std::vector<std::string> prompts = {"Tell me more.", "Tell me more please.",
                                            "Explain in a few sentences why the sky looks blue on a clear day.",
                                            "Hi", "What do you do?"};
  const auto batched = route_footprints(lm, *tokenizer, *renderer, prompts, 3, chat);
  ASSERT_EQ(batched.size(), prompts.size());
  EXPECT_EQ(route_footprints(lm, *tokenizer, *renderer, prompts, 5, chat).size(), prompts.size());
  const auto all_at_once = route_footprints(lm, *tokenizer, *renderer, prompts, 5, chat);
  const int64_t E = lm->config().num_experts, K = lm->config().num_experts_per_tok;
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    const RouteFootprint& f = batched[i];
    EXPECT_EQ(f.num_experts, E);
    EXPECT_EQ(f.counts, all_at_once[i].counts) << prompts[i];  // another batching, the same counts
    // The prompt alone, unpadded, through the engine with router capture.
    const auto tokens = tokenizer->encode(renderer->render({{"user", prompts[i]}}, chat).text, false);
    const std::vector<int64_t> row(tokens.begin(), tokens.end());
    model::ForwardInput in;
    in.input_ids = torch::tensor(row, torch::kLong).view({1, -1});  // [1, T]
    in.capture.router = true;
    in.skip_logits = true;
    const auto out = lm->forward(in);
    ASSERT_EQ(f.layers.size(), out.routing.size());
    std::vector<int64_t> expected(f.layers.size() * static_cast<std::size_t>(E), 0);
    for (std::size_t l = 0; l < out.routing.size(); ++l) {
      EXPECT_EQ(f.layers[l], out.routing[l].layer);
      const auto ids = out.routing[l].topk_ids.contiguous();  // [T, K]
      for (int64_t j = 0; j < ids.numel(); ++j) ++expected[l * static_cast<std::size_t>(E) + ids.data_ptr<int64_t>()[j]];
      const auto layer_sum = std::accumulate(f.counts.begin() + static_cast<std::ptrdiff_t>(l * E),
                                             f.counts.begin() + static_cast<std::ptrdiff_t>((l + 1) * E), int64_t{0});
      EXPECT_EQ(layer_sum, static_cast<int64_t>(row.size()) * K) << prompts[i] << " layer " << f.layers[l];
    }
    EXPECT_EQ(f.counts, expected) << prompts[i];
  }
  // Different prompts, different footprints.
  EXPECT_NE(batched[0].counts, batched[1].counts);
}

INSTANTIATE_TEST_SUITE_P(Models, Footprints,
                         ::testing::Values(std::make_pair(std::string("qwen3_moe"), std::string("qwen3")),
                                           std::make_pair(std::string("olmoe"), std::string("role_colon"))),
                         [](const auto& info) { return info.param.first; });

TEST(FootprintErrors, DenseModelAndBadBatch) {
  const auto dir = character::testing::fixture("eval/qwen3_moe") / "model";
  const auto tokenizer = model::load_tokenizer(dir);
  const auto renderer = model::make_chat_renderer("qwen3");
  const model::CausalLM lm = model::load_model(dir);
  EXPECT_THROW(route_footprints(lm, *tokenizer, *renderer, {"hi"}, 0), ConfigError);
  // The same model as a dense qwen3 (weights never used: the check comes first).
  auto json = nlohmann::json::parse(read_file(dir / "config.json"));
  json["model_type"] = "qwen3";
  json["architectures"] = {"Qwen3ForCausalLM"};
  for (const char* key : {"num_experts", "num_local_experts", "num_experts_per_tok", "moe_intermediate_size", "mlp_only_layers",
                          "decoder_sparse_step", "norm_topk_prob", "router_aux_loss_coef", "output_router_logits"})
    json.erase(key);
  const model::CausalLM dense = model::create_model(model::parse_config(json, "dense test config"));
  try {
    route_footprints(dense, *tokenizer, *renderer, {"hi"});
    ADD_FAILURE() << "footprints of a dense model";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("no MoE layers"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace character::router_train
