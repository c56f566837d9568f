// `character analyze`'s views and the engine capture behind them: the domain test
// and token-in-context tables on hand-built traces; on tiny MoE models with real
// tokenizers (qwen3_moe, mixtral, olmoe), the captured RoutingTraces (batched prefill and generation) agree
// with transformers' router (ids exact, weights within 1e-5) and the token
// positions with the fast tokenizer's offsets (tools/oracle/fixtures_eval.py).
#include "eval/explore.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "eval/routing_capture.h"
#include "model/arch/causal_lm.h"
#include "model/arch/generate.h"
#include "router_train/coverage.h"
#include "tests/test_support.h"

namespace character::eval {
namespace {

using character::testing::fixture;
using nlohmann::json;

// K = 1, one layer: ids[t] is the expert of position t.
RoutingTrace one_layer(std::vector<int32_t> ids, int64_t experts = 6, int64_t layer = 2) {
  RoutingTrace t;
  t.layers = {layer};
  t.num_experts = experts;
  t.top_k = 1;
  t.positions = t.prompt_positions = static_cast<int64_t>(ids.size());
  t.weights.assign(ids.size(), 1.0f);
  t.ids = std::move(ids);
  return t;
}

TEST(Explore, DomainTestSharedExclusiveOverlap) {
  // math uses {0, 1, 2}, code {1, 2, 3}, language {2, 4}: shared {2}; only math {0},
  // only code {3}, only language {4}; used by any: {0..4} → overlap 1/5.
  const DomainTest t = domain_test({"math", "code", "math", "language"},
                                   {one_layer({0, 1}), one_layer({1, 2, 3}), one_layer({2, 2}), one_layer({4, 2})});
  EXPECT_EQ(t.domains, (std::vector<std::string>{"math", "code", "language"}));
  EXPECT_EQ(t.positions, (std::vector<int64_t>{4, 3, 2}));
  ASSERT_EQ(t.layers.size(), 1u);
  const DomainLayer& l = t.layers[0];
  EXPECT_EQ(l.layer, 2);
  EXPECT_EQ(l.shared, (std::vector<int64_t>{2}));
  EXPECT_EQ(l.exclusive[0], (std::vector<int64_t>{0}));
  EXPECT_EQ(l.exclusive[1], (std::vector<int64_t>{3}));
  EXPECT_EQ(l.exclusive[2], (std::vector<int64_t>{4}));
  EXPECT_DOUBLE_EQ(l.overlap, 0.2);
  EXPECT_EQ(l.counts[0], (std::vector<int64_t>{1, 1, 2, 0, 0, 0}));
  EXPECT_EQ(t.to_json()["layers"][0]["exclusive"]["code"], json({3}));
  EXPECT_NE(format_domain_test(t, 2).find("only in code: E3"), std::string::npos);
  EXPECT_THROW(format_domain_test(t, 5), ConfigError);  // not an MoE layer
}

TEST(Explore, TokenRoutingCountsDistinctSets) {
  // Position of the token per context: 0, 1, 2, 1 → experts 3, 3, 5, 4 → 3 distinct sets.
  const TokenRouting r = token_routing("127", {{"127", 0, "127"}, {"111 127", 1, ""}, {"= 127", 2, ""}, {"x 127", 1, ""}},
                                       {one_layer({3}), one_layer({0, 3}), one_layer({1, 1, 5}), one_layer({5, 4})});
  EXPECT_EQ(r.experts[0], (std::vector<std::vector<int32_t>>{{3}, {3}, {5}, {4}}));
  EXPECT_EQ(r.distinct_sets[0], 3);
  EXPECT_EQ(r.distinct_experts[0], 3);
  EXPECT_THROW(token_routing("127", {{"127", 4, ""}}, {one_layer({3})}), ConfigError);
}

json reference(const std::string& name) {
  std::ifstream in(fixture("eval/" + name) / "reference.json");
  return json::parse(in);
}

// trace == the reference rows [T][L][K] (ids exact, weights within 1e-5); returns max |Δw|.
double expect_trace(const RoutingTrace& trace, const json& ids, const json& weights, const std::string& what) {
  double worst = 0.0;
  EXPECT_EQ(trace.positions, static_cast<int64_t>(ids.size())) << what;
  if (trace.positions != static_cast<int64_t>(ids.size())) return 1.0;
  for (int64_t t = 0; t < trace.positions; ++t)
    for (int64_t l = 0; l < trace.num_layers(); ++l)
      for (int64_t k = 0; k < trace.top_k; ++k) {
        EXPECT_EQ(trace.id(t, l, k), ids[t][l][k].get<int32_t>()) << what << " position " << t << " layer " << l;
        worst = std::max(worst, std::abs(static_cast<double>(trace.weight(t, l, k)) - weights[t][l][k].get<double>()));
      }
  EXPECT_LT(worst, 1e-5) << what;
  return worst;
}

class ExploreOracle : public ::testing::TestWithParam<std::string> {};

TEST_P(ExploreOracle, CapturedRoutingMatchesTransformers) {
  const json ref = reference(GetParam());
  const auto dir = fixture("eval/" + GetParam()) / "model";
  const auto model = model::load_model(dir);
  model->eval();
  const auto tokenizer = model::load_tokenizer(dir);
  std::vector<std::vector<model::TokenId>> sequences;
  for (const auto& p : ref["prompts"]) {
    sequences.push_back(tokenizer->encode(p["text"].get<std::string>(), /*add_special_tokens=*/true));
    ASSERT_EQ(sequences.back(), p["ids"].get<std::vector<model::TokenId>>()) << p["text"];
  }
  // Batches of 5 prompts of different lengths: left padding must not change routing.
  const auto traces = route_sequences(*model, sequences, {.batch_rows = 5});
  ASSERT_EQ(traces.size(), sequences.size());
  double worst = 0.0;
  for (size_t i = 0; i < traces.size(); ++i) {
    EXPECT_EQ(traces[i].layers, ref["moe_layers"].get<std::vector<int64_t>>());
    EXPECT_EQ(traces[i].num_experts, ref["num_experts"].get<int64_t>());
    EXPECT_EQ(traces[i].prompt_positions, traces[i].positions);
    worst = std::max(worst, expect_trace(traces[i], ref["prompts"][i]["topk_ids"], ref["prompts"][i]["topk_weights"],
                                         ref["prompts"][i]["text"].get<std::string>()));
  }
  std::cout << GetParam() << ": " << traces.size() << " prompts, max |weight error| " << worst << "\n";
}

TEST_P(ExploreOracle, GenerationCaptureMatchesTransformers) {
  const json gen = reference(GetParam())["generation"];
  const auto dir = fixture("eval/" + GetParam()) / "model";
  const auto model = model::load_model(dir);
  model->eval();
  model::GenerationOptions options;
  options.max_new_tokens = static_cast<int64_t>(gen["generated"].size());
  options.capture_routing = true;  // greedy by default, no stop ids: exactly max_new_tokens
  const auto prompt = gen["ids"].get<std::vector<model::TokenId>>();
  const auto results = model::generate(*model, nullptr, {prompt}, options);
  ASSERT_EQ(results[0].ids, gen["generated"].get<std::vector<model::TokenId>>());
  ASSERT_TRUE(results[0].routing.has_value());
  const RoutingTrace trace = trace_from_generation(*results[0].routing, model->config().num_experts);
  EXPECT_EQ(trace.prompt_positions, static_cast<int64_t>(prompt.size()));
  const double worst = expect_trace(trace, gen["topk_ids"], gen["topk_weights"], "generation");
  std::cout << GetParam() << ": generation trace of " << trace.positions << " rows, max |weight error| " << worst << "\n";
}

TEST_P(ExploreOracle, TokenPositionsMatchOffsets) {
  const json ref = reference(GetParam())["token"];
  const auto dir = fixture("eval/" + GetParam()) / "model";
  const auto tokenizer = model::load_tokenizer(dir);
  const std::string token = ref["token"];
  const auto contexts = token_contexts(token);
  ASSERT_EQ(contexts.size(), ref["contexts"].size());
  for (size_t i = 0; i < contexts.size(); ++i) {
    EXPECT_EQ(contexts[i], ref["contexts"][i]["text"].get<std::string>());
    const auto ids = tokenizer->encode(contexts[i], /*add_special_tokens=*/true);
    EXPECT_EQ(find_token_position(*tokenizer, ids, contexts[i], token), ref["contexts"][i]["position"].get<int64_t>())
        << contexts[i];
  }
  EXPECT_THROW(find_token_position(*tokenizer, {1}, "abc", token), ConfigError);

  // The whole view on the real model: four contexts, every layer filled.
  const auto model = model::load_model(dir);
  const SequenceRouter route = [&](const std::vector<std::vector<model::TokenId>>& s) { return route_sequences(*model, s); };
  const TokenRouting r = run_token_routing(*tokenizer, route, token);
  ASSERT_EQ(r.contexts.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(r.contexts[i].position, ref["contexts"][i]["position"].get<int64_t>());
  EXPECT_EQ(r.layers, reference(GetParam())["moe_layers"].get<std::vector<int64_t>>());
  const DomainTest d = run_domain_test(*tokenizer, route);
  EXPECT_EQ(d.domains, (std::vector<std::string>{"math", "code", "language", "reasoning"}));
}

INSTANTIATE_TEST_SUITE_P(Models, ExploreOracle, ::testing::Values("qwen3_moe", "mixtral", "olmoe"));

TEST(RoutingCapture, ReadCoverageMergesFiles) {
  character::testing::TempDir tmp;
  router_train::CoverageCounter counter({0, 2}, 4, 2);
  model::LayerRouting l0, l2;
  l0.layer = 0;
  l0.topk_ids = torch::tensor({0, 1, 0, 2}, torch::kLong).view({2, 2});  // [N = 2, K]
  l2.layer = 2;
  l2.topk_ids = torch::tensor({3, 1, 3, 2}, torch::kLong).view({2, 2});
  counter.add({l0, l2}, at::Tensor(), torch::tensor({1, 0}, torch::kLong).view({1, 2}));  // position 0 bears loss
  counter.write_json(tmp / "a.json", 1);
  counter.write_json(tmp / "b.json", 1);
  const CoverageCounts c = read_coverage({tmp / "a.json", tmp / "b.json"});
  EXPECT_EQ(c.layers, (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(c.sources.size(), 2u);
  EXPECT_EQ(c.loss_tokens, (std::vector<int64_t>{2, 2, 0, 0, 0, 2, 0, 2}));  // doubled by the merge
  EXPECT_EQ(c.all_tokens, (std::vector<int64_t>{4, 2, 2, 0, 0, 2, 2, 4}));
  EXPECT_EQ(c.real_positions, 4);
  router_train::CoverageCounter other({0, 1}, 4, 2);
  other.write_json(tmp / "c.json", 1);
  try {
    read_coverage({tmp / "a.json", tmp / "c.json"});
    ADD_FAILURE() << "merged coverage of other layers";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("c.json: cannot be merged with"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace character::eval
