// The shared runner of mlx-lm's test_models.py, over every architecture: shapes,
// cache vs no cache, a decode step, a batch of 2, left padding, captures. Models
// are built from small configs with random weights; the oracle suite
// (oracle_models_test.cpp) is what ties the numbers to transformers.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "model/arch/architectures.h"
#include "model/arch/kv_cache.h"

namespace character::model {
namespace {

constexpr int64_t kVocab = 96, kHidden = 32, kLayers = 3;

ModelConfig tiny_config(const std::string& model_type) {
  nlohmann::json j{{"model_type", model_type},      {"vocab_size", kVocab},         {"hidden_size", kHidden},
                   {"intermediate_size", 48},       {"num_hidden_layers", kLayers}, {"num_attention_heads", 4},
                   {"num_key_value_heads", 2},      {"rms_norm_eps", 1e-6},         {"tie_word_embeddings", false}};
  if (model_type == "qwen3" || model_type == "qwen3_moe") j["head_dim"] = 16;
  if (model_type == "qwen3_moe") {
    j["num_experts"] = 6;
    j["num_experts_per_tok"] = 2;
    j["moe_intermediate_size"] = 16;
    j["decoder_sparse_step"] = 1;
    j["mlp_only_layers"] = {1};
  }
  if (model_type == "mixtral") {
    j["num_local_experts"] = 4;
    j["num_experts_per_tok"] = 2;
  }
  if (model_type == "olmoe") {
    j["num_experts"] = 6;
    j["num_experts_per_tok"] = 3;
  }
  return parse_config(j, model_type + " test config");
}

CausalLM random_model(const ModelConfig& config, uint64_t seed) {
  auto lm = create_model(config);
  torch::NoGradGuard no_grad;
  torch::manual_seed(seed);
  for (auto& p : lm->parameters()) p.copy_(torch::randn(p.sizes()) * (p.dim() == 1 ? 0.1 : 0.3) + (p.dim() == 1 ? 1.0 : 0.0));
  return lm;
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

class SharedRunner : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    config_ = tiny_config(GetParam());
    lm_ = random_model(config_, 7);
    torch::manual_seed(11);
    ids_ = torch::randint(0, kVocab, {2, 6}, torch::kLong);
  }
  ForwardOutput run(const torch::Tensor& ids, KVCache* cache = nullptr, torch::Tensor mask = {},
                    bool last_only = false) {
    ForwardInput in;
    in.input_ids = ids;
    in.attention_mask = std::move(mask);
    in.cache = cache;
    in.last_logits_only = last_only;
    return lm_->forward(in);
  }
  ModelConfig config_;
  CausalLM lm_;
  torch::Tensor ids_;
};

TEST_P(SharedRunner, ParameterNamesFollowTransformers) {
  auto params = lm_->named_parameters();
  EXPECT_TRUE(params.contains("model.embed_tokens.weight"));
  EXPECT_TRUE(params.contains("model.layers.0.self_attn.q_proj.weight"));
  EXPECT_TRUE(params.contains("model.layers.2.post_attention_layernorm.weight"));
  EXPECT_TRUE(params.contains("model.norm.weight"));
  EXPECT_TRUE(params.contains("lm_head.weight"));
  const bool qk_norm = GetParam() != "llama" && GetParam() != "mixtral";
  EXPECT_EQ(params.contains("model.layers.0.self_attn.q_norm.weight"), qk_norm);
  if (config_.is_moe()) {
    const int64_t e = config_.num_experts, f = config_.expert_intermediate_size();
    EXPECT_EQ(params["model.layers.0.mlp.gate.weight"].sizes(), (std::vector<int64_t>{e, kHidden}));
    EXPECT_EQ(params["model.layers.0.mlp.experts.gate_up_proj"].sizes(), (std::vector<int64_t>{e, 2 * f, kHidden}));
    EXPECT_EQ(params["model.layers.0.mlp.experts.down_proj"].sizes(), (std::vector<int64_t>{e, kHidden, f}));
  } else {
    EXPECT_TRUE(params.contains("model.layers.0.mlp.gate_proj.weight"));
  }
  if (GetParam() == "qwen3_moe") EXPECT_TRUE(params.contains("model.layers.1.mlp.down_proj.weight"));  // mlp_only_layers
}

TEST_P(SharedRunner, ShapesAndCaptures) {
  torch::InferenceMode guard;
  ForwardInput in;
  in.input_ids = ids_;
  in.capture = {.router = true, .hidden_states = true};
  const auto out = lm_->forward(in);
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{2, 6, kVocab}));
  EXPECT_EQ(out.logits.scalar_type(), torch::kFloat);
  ASSERT_EQ(out.hidden_states.size(), static_cast<size_t>(kLayers + 1));
  for (const auto& h : out.hidden_states) EXPECT_EQ(h.sizes(), (std::vector<int64_t>{2, 6, kHidden}));
  int64_t moe_layers = 0;
  for (int64_t l = 0; l < kLayers; ++l) moe_layers += config_.is_moe_layer(l);
  ASSERT_EQ(static_cast<int64_t>(out.routing.size()), moe_layers);
  for (const auto& r : out.routing) {
    EXPECT_TRUE(config_.is_moe_layer(r.layer));
    EXPECT_EQ(r.router_logits.sizes(), (std::vector<int64_t>{12, config_.num_experts}));
    EXPECT_EQ(r.topk_ids.sizes(), (std::vector<int64_t>{12, config_.num_experts_per_tok}));
    EXPECT_EQ(r.topk_weights.sizes(), r.topk_ids.sizes());
    if (config_.norm_topk_prob) EXPECT_LT(max_diff(r.topk_weights.sum(-1), torch::ones({12})), 1e-5);
  }
  // Capture off: nothing recorded.
  const auto plain = run(ids_);
  EXPECT_TRUE(plain.routing.empty());
  EXPECT_TRUE(plain.hidden_states.empty());
  EXPECT_LT(max_diff(plain.logits, out.logits), 1e-6);
}

TEST_P(SharedRunner, CacheMatchesNoCacheAndDecodeStep) {
  torch::InferenceMode guard;
  const auto full = run(ids_).logits;  // [2, 6, V]
  KVCache cache(kLayers);
  const auto prefill = run(ids_.narrow(1, 0, 5), &cache).logits;
  EXPECT_EQ(cache.length(), 5);
  const auto step = run(ids_.narrow(1, 5, 1), &cache, {}, /*last_only=*/true).logits;
  EXPECT_EQ(cache.length(), 6);
  EXPECT_EQ(step.sizes(), (std::vector<int64_t>{2, 1, kVocab}));
  EXPECT_LT(max_diff(prefill, full.narrow(1, 0, 5)), 1e-4);
  EXPECT_LT(max_diff(step, full.narrow(1, 5, 1)), 1e-4);
  // A multi-token chunk after a cached prefix, no padding: causal mask with an offset.
  KVCache chunked(kLayers);
  run(ids_.narrow(1, 0, 3), &chunked);
  EXPECT_LT(max_diff(run(ids_.narrow(1, 3, 3), &chunked).logits, full.narrow(1, 3, 3)), 1e-4);
  // last_logits_only is the last row of the full logits.
  EXPECT_LT(max_diff(run(ids_, nullptr, {}, true).logits, full.narrow(1, 5, 1)), 1e-5);
  // Dropping a row from the cache continues the other row unchanged.
  const auto next = torch::randint(0, kVocab, {2, 1}, torch::kLong);
  const auto full7 = run(torch::cat({ids_, next}, 1)).logits;  // [2, 7, V]
  cache.select_rows(torch::tensor({1}, torch::kLong));
  EXPECT_EQ(cache.length(), 6);
  const auto row1 = run(next.narrow(0, 1, 1), &cache).logits;  // [1, 1, V]
  EXPECT_LT(max_diff(row1, full7.narrow(0, 1, 1).narrow(1, 6, 1)), 1e-4);
  // Growth past the preallocated capacity keeps the past intact.
  KVCache long_cache(kLayers);
  const auto long_ids = torch::randint(0, kVocab, {1, 70}, torch::kLong);
  const auto long_full = run(long_ids).logits;
  run(long_ids.narrow(1, 0, 63), &long_cache);
  for (int64_t t = 63; t < 70; ++t) {
    const auto got = run(long_ids.narrow(1, t, 1), &long_cache).logits;
    EXPECT_LT(max_diff(got, long_full.narrow(1, t, 1)), 1e-4) << "position " << t;
  }
}

TEST_P(SharedRunner, BatchOfTwoEqualsSingleRowsAndPaddingIsInvisible) {
  torch::InferenceMode guard;
  const auto batch = run(ids_).logits;
  for (int64_t b = 0; b < 2; ++b) {
    EXPECT_LT(max_diff(run(ids_.narrow(0, b, 1)).logits, batch.narrow(0, b, 1)), 1e-4) << "row " << b;
  }
  // Row 1 left-padded by 3: its real positions give the unpadded logits.
  auto padded = torch::cat({torch::zeros({1, 3}, torch::kLong), ids_.narrow(0, 1, 1)}, 1);  // [1, 9]
  auto ids = torch::cat({ids_.narrow(0, 0, 1), ids_.narrow(0, 0, 1).narrow(1, 0, 3)}, 1);     // [1, 9]
  auto two = torch::cat({ids, padded}, 0);                                                      // [2, 9]
  auto mask = torch::ones({2, 9}, torch::kLong);
  mask.narrow(0, 1, 1).narrow(1, 0, 3).zero_();
  const auto out = run(two, nullptr, mask).logits;
  EXPECT_FALSE(out.isnan().any().item<bool>());
  EXPECT_LT(max_diff(out.narrow(0, 1, 1).narrow(1, 3, 6), batch.narrow(0, 1, 1)), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(AllArchitectures, SharedRunner,
                         ::testing::Values("llama", "qwen3", "qwen3_moe", "mixtral", "olmoe"),
                         [](const auto& info) { return info.param; });

TEST(CreateModel, UnknownModelTypeNamesIt) {
  ModelConfig config = tiny_config("llama");
  config.model_type = "gpt2";
  try {
    create_model(config);
    FAIL() << "expected CheckpointError";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("model_type \"gpt2\" is not supported"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("qwen3_moe"), std::string::npos) << e.what();
  }
}

TEST(CreateModel, TiedEmbeddingsHaveNoLmHead) {
  auto config = tiny_config("qwen3");
  config.tie_word_embeddings = true;
  auto lm = create_model(config);
  EXPECT_FALSE(lm->named_parameters().contains("lm_head.weight"));
}

}  // namespace
}  // namespace character::model
