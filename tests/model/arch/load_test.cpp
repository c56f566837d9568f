// Loading model directories: both expert layouts, sharded checkpoints, the
// Hub↔fused expert name rule in both directions, and the errors a broken
// checkpoint gives (missing tensor, wrong shape, unexpected tensor, unknown
// model_type), each naming the tensor and what was expected.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "model/arch/architectures.h"
#include "tests/model/arch/arch_fixtures.h"

namespace character::model {
namespace {

namespace fs = std::filesystem;
using TensorMap = std::map<std::string, torch::Tensor>;

// A copy of an oracle model directory whose model.safetensors is rewritten by `edit`.
fs::path edited_copy(const testing::TempDir& tmp, const std::string& name, const std::function<void(TensorMap&)>& edit) {
  const auto src = testing::fixture("models/" + name + "/model");
  const auto dst = tmp / name;
  fs::copy(src, dst, fs::copy_options::recursive);
  auto tensors = testing::read_tensors(dst / "model.safetensors");
  edit(tensors);
  TensorsToWrite out;
  for (const auto& [key, value] : tensors) out.add(key, value);
  write_safetensors(dst / "model.safetensors", out.records());
  return dst;
}

std::string load_error(const fs::path& dir) {
  try {
    load_model(dir);
  } catch (const CheckpointError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected CheckpointError loading " << dir;
  return "";
}

TEST(LoadModel, MissingTensorNamesItAndItsShape) {
  testing::TempDir tmp;
  const auto dir = edited_copy(tmp, "llama_gqa", [](TensorMap& t) { t.erase("model.layers.1.mlp.down_proj.weight"); });
  const auto msg = load_error(dir);
  EXPECT_NE(msg.find("missing tensor model.layers.1.mlp.down_proj.weight (expected shape [64, 128] for llama)"),
            std::string::npos) << msg;
}

TEST(LoadModel, WrongShapeNamesFoundAndExpected) {
  testing::TempDir tmp;
  const auto dir = edited_copy(tmp, "qwen3_tied", [](TensorMap& t) { t["model.norm.weight"] = torch::ones({63}); });
  const auto msg = load_error(dir);
  EXPECT_NE(msg.find("tensor model.norm.weight has shape [63], expected [64] for qwen3"), std::string::npos) << msg;
}

// Issue 14: a config.json claiming a huge vocabulary or expert count aborted in the
// allocator. It is compared with the weights before anything is allocated.
TEST(LoadModel, AConfigClaimingMoreThanItsWeightsIsRefusedBeforeAllocating) {
  testing::TempDir tmp;
  const auto dir = edited_copy(tmp, "qwen3_moe_norm", [](TensorMap&) {});
  auto config = nlohmann::json::parse(std::ifstream(dir / "config.json"));
  const auto original = config;
  config["vocab_size"] = 4000000;
  std::ofstream(dir / "config.json") << config.dump();
  EXPECT_NE(load_error(dir).find("but the weights hold"), std::string::npos);
  config = original;
  config["num_experts"] = 4096;
  std::ofstream(dir / "config.json") << config.dump();
  EXPECT_NE(load_error(dir).find("but the weights hold"), std::string::npos);
  config = original;
  config["hidden_size"] = 65536;
  config["head_dim"] = 16;
  std::ofstream(dir / "config.json") << config.dump();
  EXPECT_NE(load_error(dir).find("config.json describes"), std::string::npos);
}

TEST(LoadModel, UnexpectedTensorsAreListed) {
  testing::TempDir tmp;
  const auto dir = edited_copy(tmp, "olmoe", [](TensorMap& t) {
    t["model.layers.0.mlp.shared_expert.weight"] = torch::ones({4});
    t["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch::ones({8});  // ignored, as transformers does
  });
  const auto msg = load_error(dir);
  EXPECT_NE(msg.find("1 unexpected tensor(s) not used by olmoe: model.layers.0.mlp.shared_expert.weight"),
            std::string::npos) << msg;
}

TEST(LoadModel, MissingHubExpertNamesIt) {
  testing::TempDir tmp;
  const auto dir =
      edited_copy(tmp, "mixtral", [](TensorMap& t) { t.erase("model.layers.1.block_sparse_moe.experts.3.w2.weight"); });
  const auto msg = load_error(dir);
  EXPECT_NE(msg.find("missing tensor model.layers.1.block_sparse_moe.experts.3.w2.weight (expected shape [64, 48]"),
            std::string::npos) << msg;
}

TEST(LoadModel, WrongShapeFusedExpertBank) {
  testing::TempDir tmp;
  const auto dir = edited_copy(tmp, "qwen3_moe_norm", [](TensorMap& t) {
    t["model.layers.2.mlp.experts.down_proj"] = torch::zeros({8, 64, 31});
  });
  const auto msg = load_error(dir);
  EXPECT_NE(msg.find("tensor model.layers.2.mlp.experts.down_proj has shape [8, 64, 31], expected [8, 64, 32]"),
            std::string::npos) << msg;
}

TEST(LoadModel, UnknownModelTypeIsAnErrorNamingIt) {
  testing::TempDir tmp;
  const auto dir = tmp / "gpt2";
  fs::copy(testing::fixture("models/llama_gqa/model"), dir, fs::copy_options::recursive);
  auto config = nlohmann::json::parse(read_file(dir / "config.json"));
  config["model_type"] = "gpt2";
  std::ofstream(dir / "config.json") << config.dump();
  try {
    load_model(dir);
    FAIL() << "expected an error";
  } catch (const Error& e) {  // config.json parsing rejects it first (ConfigError)
    EXPECT_NE(std::string(e.what()).find("model_type \"gpt2\" is not supported"), std::string::npos) << e.what();
  }
}

TEST(LoadModel, HubExpertsStackAndUnstackExactly) {
  // Hub-layout checkpoints: unstacking the loaded fused banks with the
  // architecture's name rule gives back every per-expert tensor of the file.
  for (const std::string name : {"mixtral", "qwen3_moe_sparse", "olmoe"}) {
    auto lm = load_model(testing::fixture("models/" + name + "/model"));
    auto& decoder = dynamic_cast<DecoderLMImpl&>(*lm);
    const auto set = SafetensorsSet::open_dir(testing::fixture("models/" + name + "/model"));
    auto params = lm->named_parameters();
    size_t checked = 0;
    for (int64_t l = 0; l < lm->config().num_hidden_layers; ++l) {
      if (!lm->config().is_moe_layer(l)) continue;
      // Export direction: fused → Hub names, every tensor equal to the checkpoint's.
      for (const auto& [key, tensor] : unstack_experts(decoder.spec().experts, l, params[fused_gate_up_name(l)],
                                                       params[fused_down_name(l)])) {
        ASSERT_TRUE(set.contains(key)) << key;
        EXPECT_TRUE(torch::equal(tensor, to_tensor(set.view(key)))) << key;
        ++checked;
      }
      EXPECT_TRUE(torch::equal(params[router_name(l)], to_tensor(set.view(hub_router_name(decoder.spec().experts, l)))));
    }
    EXPECT_GT(checked, 0u) << name;
  }
}

TEST(LoadModel, ShardedCheckpointLoads) {
  const auto dir = testing::fixture("models/llama3_tied_rope_sharded/model");
  ASSERT_TRUE(fs::exists(dir / "model.safetensors.index.json"));
  auto lm = load_model(dir);
  EXPECT_TRUE(lm->config().tie_word_embeddings);
  EXPECT_FALSE(lm->named_parameters().contains("lm_head.weight"));
}

TEST(LoadModel, Bfloat16MatchesTransformersInBfloat16) {
  // The CUDA default dtype, run on CPU: same code path, compared with transformers
  // loading the same directory with dtype=torch.bfloat16.
  torch::InferenceMode guard;
  for (const std::string name : {"llama3_tied_rope_sharded", "qwen3_moe_norm", "olmoe"}) {
    auto fixture = testing::oracle_model(name);
    auto lm = load_model(fixture.model_dir, LoadOptions{.device = "cpu", .dtype = "bfloat16"});
    for (const auto& p : lm->parameters()) ASSERT_EQ(p.scalar_type(), torch::kBFloat16);
    for (const std::string prefix : {"batch", "single"}) {
      ForwardInput in;
      in.input_ids = fixture.at(prefix + "_input_ids");
      if (prefix == "batch") in.attention_mask = fixture.at("batch_attention_mask");
      const auto out = lm->forward(in);
      ASSERT_EQ(out.logits.scalar_type(), torch::kFloat);
      const auto keep = prefix == "batch" ? fixture.at("batch_attention_mask").to(torch::kBool)
                                          : torch::ones_like(in.input_ids).to(torch::kBool);
      const auto& ref = fixture.at(prefix + "_logits_bf16");
      const double err = testing::max_abs_diff(out.logits.index({keep}), ref.index({keep}));
      const double scale = ref.abs().max().item<double>();
      std::cout << "  [" << name << "] " << prefix << " bf16 logits max|Δ| = " << err << " (max |logit| " << scale
                << ")\n";
      EXPECT_LT(err, 1e-2 * scale) << name << " " << prefix;
    }
  }
}

TEST(LoadModel, Bfloat16CheckpointLoadsIntoFloat32) {
  // Hub checkpoints are mostly bf16; the CPU default is fp32: values convert exactly.
  testing::TempDir tmp;
  const auto dir = edited_copy(tmp, "mixtral", [](TensorMap& t) {
    for (auto& [key, value] : t) value = value.to(torch::kBFloat16);
  });
  auto lm = load_model(dir);
  const auto set = SafetensorsSet::open_dir(dir);
  auto params = lm->named_parameters();
  EXPECT_EQ(params["model.norm.weight"].scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(params["model.norm.weight"], to_tensor(set.view("model.norm.weight")).to(torch::kFloat)));
  EXPECT_TRUE(torch::equal(params["model.layers.1.mlp.experts.down_proj"][3],
                           to_tensor(set.view("model.layers.1.block_sparse_moe.experts.3.w2.weight")).to(torch::kFloat)));
}

TEST(LoadModel, BadLoadOptionsAreConfigErrors) {
  const auto dir = testing::fixture("models/llama_gqa/model");
  EXPECT_THROW(load_model(dir, LoadOptions{.device = "cpu", .dtype = "int8"}), ConfigError);
  EXPECT_THROW(load_model(dir, LoadOptions{.device = "tpu", .dtype = ""}), ConfigError);
}

}  // namespace
}  // namespace character::model
