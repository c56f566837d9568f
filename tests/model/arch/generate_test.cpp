// Generation on the oracle's tiny random models (fixtures_models.py): greedy
// tokens equal transformers' greedy generate (batched with left padding and
// single), batched equals unbatched (also when rows finish at different steps
// and are dropped from the batch), KV-cache decoding equals recomputing the whole
// sequence without a cache, captured routing has the documented layout, and
// sampling is reproducible per seed.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "model/arch/causal_lm.h"
#include "model/arch/generate.h"
#include "model/arch/tensor_io.h"
#include "model/io/safetensors.h"
#include "tests/model/arch/arch_fixtures.h"
#include "tests/test_support.h"

namespace character::model {
namespace {

using character::testing::fixture;
using Ids = std::vector<TokenId>;

// The models fixtures_models.py writes, listed here rather than read from its
// index: gtest_discover_tests lists the tests at build time, before `make
// fixtures` has run, and a list read from disk would then silently be empty.
std::vector<std::string> fixture_models() { return testing::oracle_model_names(); }

struct Reference {
  std::shared_ptr<SafetensorsFile> file;
  at::Tensor get(const std::string& name) const { return to_tensor(file->view(name)); }
};

Reference reference(const std::string& name) {
  return {SafetensorsFile::open(fixture("models/" + name + "/reference.safetensors"))};
}

// Rows of a left-padded [B, T] batch without their padding.
std::vector<Ids> unpad(const at::Tensor& ids, const at::Tensor& mask) {
  std::vector<Ids> rows;
  for (int64_t b = 0; b < ids.size(0); ++b) {
    Ids row;
    for (int64_t t = 0; t < ids.size(1); ++t) {
      if (mask[b][t].item<int64_t>() != 0) row.push_back(static_cast<TokenId>(ids[b][t].item<int64_t>()));
    }
    rows.push_back(row);
  }
  return rows;
}

Ids to_ids(const at::Tensor& row) {
  Ids ids;
  for (int64_t t = 0; t < row.size(0); ++t) ids.push_back(static_cast<TokenId>(row[t].item<int64_t>()));
  return ids;
}

GenerationOptions greedy(int64_t tokens) {
  GenerationOptions options;
  options.max_new_tokens = tokens;
  return options;
}

// Greedy decoding by running the whole left-padded sequence again at every step,
// without a cache: the slow definition that the cached loop must reproduce.
std::vector<Ids> greedy_without_cache(CausalLMImpl& model, const std::vector<Ids>& prompts, int64_t tokens) {
  torch::NoGradGuard no_grad;
  std::vector<Ids> seqs = prompts, generated(prompts.size());
  for (int64_t step = 0; step < tokens; ++step) {
    int64_t longest = 0;
    for (const auto& s : seqs) longest = std::max<int64_t>(longest, static_cast<int64_t>(s.size()));
    at::Tensor ids = torch::zeros({static_cast<int64_t>(seqs.size()), longest}, torch::kLong);
    at::Tensor mask = torch::zeros_like(ids);
    for (std::size_t b = 0; b < seqs.size(); ++b) {
      const auto n = static_cast<int64_t>(seqs[b].size());
      ids[b].narrow(0, longest - n, n).copy_(torch::tensor(std::vector<int64_t>(seqs[b].begin(), seqs[b].end())));
      mask[b].narrow(0, longest - n, n).fill_(1);
    }
    ForwardInput input;
    input.input_ids = ids;
    input.attention_mask = mask;
    at::Tensor next = model.forward(input).logits.select(1, -1).argmax(-1);  // [B]
    for (std::size_t b = 0; b < seqs.size(); ++b) {
      seqs[b].push_back(static_cast<TokenId>(next[b].item<int64_t>()));
      generated[b].push_back(seqs[b].back());
    }
  }
  return generated;
}

class GenerateOnFixtureModels : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    model_ = load_model(fixture("models/" + GetParam() + "/model"));
    model_->eval();
    ref_ = reference(GetParam());
  }
  CausalLM model_;
  Reference ref_;
};

TEST_P(GenerateOnFixtureModels, GreedyEqualsTransformersGenerate) {
  const at::Tensor expected_batch = ref_.get("batch_generated");    // [2, 32]
  const at::Tensor expected_single = ref_.get("single_generated");  // [1, 32]
  const int64_t tokens = expected_batch.size(1);
  const auto batch = generate(*model_, nullptr, unpad(ref_.get("batch_input_ids"), ref_.get("batch_attention_mask")),
                              greedy(tokens));
  ASSERT_EQ(batch.size(), 2u);
  for (int64_t b = 0; b < 2; ++b) {
    EXPECT_EQ(batch[b].ids, to_ids(expected_batch[b])) << GetParam() << " batch row " << b;
    EXPECT_EQ(batch[b].finish_reason, "length");
  }
  const auto single = generate(*model_, nullptr, {to_ids(ref_.get("single_input_ids")[0])}, greedy(tokens));
  EXPECT_EQ(single[0].ids, to_ids(expected_single[0])) << GetParam() << " single";
}

TEST_P(GenerateOnFixtureModels, BatchedEqualsUnbatchedAndCacheEqualsRecompute) {
  const auto prompts = unpad(ref_.get("batch_input_ids"), ref_.get("batch_attention_mask"));
  const int64_t tokens = 12;
  const auto batch = generate(*model_, nullptr, prompts, greedy(tokens));
  const auto recomputed = greedy_without_cache(*model_, prompts, tokens);
  for (std::size_t b = 0; b < prompts.size(); ++b) {
    const auto alone = generate(*model_, nullptr, {prompts[b]}, greedy(tokens));
    EXPECT_EQ(batch[b].ids, alone[0].ids) << GetParam() << " row " << b;
    EXPECT_EQ(batch[b].ids, recomputed[b]) << GetParam() << " row " << b;
  }
}

TEST_P(GenerateOnFixtureModels, RowsThatStopEarlyLeaveTheOthersUnchanged) {
  const auto prompts = unpad(ref_.get("batch_input_ids"), ref_.get("batch_attention_mask"));
  const Ids row0 = generate(*model_, nullptr, {prompts[0]}, greedy(16))[0].ids;
  // Stop on row 0's 4th token: row 0 ends early (is dropped), row 1 goes on.
  GenerationOptions options = greedy(16);
  options.stop_token_ids = {row0[3]};
  const auto batch = generate(*model_, nullptr, prompts, options);
  for (std::size_t b = 0; b < prompts.size(); ++b) {
    const auto alone = generate(*model_, nullptr, {prompts[b]}, options)[0];
    EXPECT_EQ(batch[b].ids, alone.ids) << GetParam() << " row " << b;
    EXPECT_EQ(batch[b].finish_reason, alone.finish_reason) << GetParam() << " row " << b;
  }
  EXPECT_EQ(batch[0].finish_reason, "stop");
  EXPECT_LE(batch[0].ids.size(), 4u);
  EXPECT_EQ(batch[0].ids.back(), row0[3]);
}

TEST_P(GenerateOnFixtureModels, CapturedRoutingHasTheDocumentedLayout) {
  const Ids prompt = to_ids(ref_.get("single_input_ids")[0]);
  GenerationOptions options = greedy(6);
  options.capture_routing = true;
  const auto result = generate(*model_, nullptr, {prompt}, options)[0];
  if (!model_->config().is_moe()) {
    EXPECT_FALSE(result.routing.has_value()) << "a dense model has no routing to capture";
    return;
  }
  ASSERT_TRUE(result.routing.has_value());
  const auto& routing = *result.routing;
  const auto tp = static_cast<int64_t>(prompt.size());
  const int64_t k = model_->config().num_experts_per_tok;
  const auto layers = static_cast<int64_t>(routing.layers.size());
  EXPECT_EQ(routing.topk_ids.sizes(), (std::vector<int64_t>{6, layers, k}));
  EXPECT_EQ(routing.prompt_topk_ids.sizes(), (std::vector<int64_t>{tp, layers, k}));
  // Prompt rows: transformers' top-k of the same single forward.
  for (int64_t i = 0; i < layers; ++i) {
    const std::string l = std::to_string(routing.layers[i]);
    EXPECT_TRUE(torch::equal(routing.prompt_topk_ids.select(1, i), ref_.get("single_topk_ids_" + l))) << l;
    EXPECT_TRUE(torch::allclose(routing.prompt_topk_weights.select(1, i), ref_.get("single_topk_weights_" + l),
                                /*rtol=*/1e-4, /*atol=*/1e-5)) << l;
  }
  // Generated row g: the position that chose token g, in a cache-free forward over
  // prompt + generated tokens (row 0 = the last prompt position).
  Ids all = prompt;
  all.insert(all.end(), result.ids.begin(), result.ids.end() - 1);
  ForwardInput input;
  input.input_ids = torch::tensor(std::vector<int64_t>(all.begin(), all.end())).unsqueeze(0);
  input.capture.router = true;
  torch::NoGradGuard no_grad;
  const auto full = model_->forward(input);
  for (int64_t i = 0; i < layers; ++i) {
    at::Tensor expected = full.routing[i].topk_ids.narrow(0, tp - 1, 6).to(torch::kLong);  // [G, K]
    EXPECT_TRUE(torch::equal(routing.topk_ids.select(1, i), expected)) << "layer " << routing.layers[i];
  }
}

TEST_P(GenerateOnFixtureModels, SamplingIsReproduciblePerSeed) {
  const auto prompts = unpad(ref_.get("batch_input_ids"), ref_.get("batch_attention_mask"));
  GenerationOptions options = greedy(16);
  options.sampling.do_sample = true;
  options.sampling.temperature = 1.5;
  options.sampling.top_k = 0;
  options.seed = 11;
  const auto a = generate(*model_, nullptr, prompts, options);
  const auto b = generate(*model_, nullptr, prompts, options);
  options.seed = 12;
  const auto c = generate(*model_, nullptr, prompts, options);
  EXPECT_EQ(a[0].ids, b[0].ids);
  EXPECT_EQ(a[1].ids, b[1].ids);
  EXPECT_TRUE(a[0].ids != c[0].ids || a[1].ids != c[1].ids);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GenerateOnFixtureModels, ::testing::ValuesIn(fixture_models()),
                         [](const auto& info) { return info.param; });

TEST(GenerateFixtures, OracleWritesExactlyTheListedModels) {
  std::ifstream in(fixture("models/index.json"));
  ASSERT_TRUE(in) << "fixtures_models.py writes models/index.json";
  EXPECT_EQ(nlohmann::json::parse(in)["models"].get<std::vector<std::string>>(), fixture_models());
}

}  // namespace
}  // namespace character::model
