// `character inspect` on tiny model directories the tests write themselves: the
// parameter counts equal the ones computed by hand below, the safetensors headers
// are cross-checked, tokenizer facts match HF `tokenizers`, and MoE models carry
// the router warning.
#include "pipeline/inspect_command.h"

#include <CLI/CLI.hpp>
#include <gtest/gtest.h>

#include "base/atomic_file.h"
#include "base/error.h"
#include "model/io/safetensors.h"
#include "pipeline/commands.h"
#include "tests/test_support.h"

namespace character::pipeline {
namespace {

using model::DType;
using nlohmann::json;
using testing::fixture;
using testing::TempDir;

struct Shape {
  std::string name;
  std::vector<int64_t> shape;
  DType dtype = DType::BF16;
};

// Writes zero-filled tensors of the given shapes as model.safetensors.
void write_weights(const std::filesystem::path& dir, const std::vector<Shape>& shapes) {
  std::vector<std::vector<std::byte>> storage;
  std::vector<model::TensorToWrite> tensors;
  storage.reserve(shapes.size());
  for (const auto& s : shapes) {
    int64_t numel = 1;
    for (int64_t d : s.shape) numel *= d;
    storage.emplace_back(numel * model::dtype_size(s.dtype));
    tensors.push_back({s.name, s.dtype, s.shape, storage.back().data(), storage.back().size()});
  }
  model::write_safetensors(dir / "model.safetensors", tensors, {{"format", "pt"}});
}

// Qwen3-MoE, V=32 H=8, 3 layers, 2 heads of Dh=4, 1 kv head, E=4 experts of I=6,
// top-2; layer 1 is dense (mlp_only_layers) with I=10. By hand:
//   embed 32·8 = 256, lm_head 256, final norm 8                           →  520
//   per layer: norms 2·8 = 16; q 8·8 = 64, k 8·4 = 32, v 32, o 64,
//              q_norm 4, k_norm 4                                         →  216 × 3 = 648
//   MoE layers 0, 2: router 4·8 = 32, experts 4 · (3·8·6 = 144) = 576     →  608 × 2 = 1216
//   dense layer 1: 3·8·10                                                 →  240
//   total 520 + 648 + 1216 + 240 = 2624
//   active = 2624 − 2 layers · (4 − 2) experts · 144 = 2048
constexpr int64_t kTinyMoeTotal = 2624, kTinyMoeActive = 2048;

std::vector<Shape> tiny_moe_shapes() {
  std::vector<Shape> s = {{"model.embed_tokens.weight", {32, 8}},
                          {"lm_head.weight", {32, 8}},
                          {"model.norm.weight", {8}, DType::F32}};
  for (int layer = 0; layer < 3; ++layer) {
    const std::string p = "model.layers." + std::to_string(layer) + ".";
    s.push_back({p + "input_layernorm.weight", {8}, DType::F32});
    s.push_back({p + "post_attention_layernorm.weight", {8}, DType::F32});
    s.push_back({p + "self_attn.q_proj.weight", {8, 8}});
    s.push_back({p + "self_attn.k_proj.weight", {4, 8}});
    s.push_back({p + "self_attn.v_proj.weight", {4, 8}});
    s.push_back({p + "self_attn.o_proj.weight", {8, 8}});
    s.push_back({p + "self_attn.q_norm.weight", {4}, DType::F32});
    s.push_back({p + "self_attn.k_norm.weight", {4}, DType::F32});
    if (layer == 1) {
      s.push_back({p + "mlp.gate_proj.weight", {10, 8}});
      s.push_back({p + "mlp.up_proj.weight", {10, 8}});
      s.push_back({p + "mlp.down_proj.weight", {8, 10}});
      continue;
    }
    s.push_back({p + "mlp.gate.weight", {4, 8}});
    for (int e = 0; e < 4; ++e) {
      const std::string x = p + "mlp.experts." + std::to_string(e) + ".";
      s.push_back({x + "gate_proj.weight", {6, 8}});
      s.push_back({x + "up_proj.weight", {6, 8}});
      s.push_back({x + "down_proj.weight", {8, 6}});
    }
  }
  return s;
}

json tiny_moe_config() {
  return {{"architectures", {"Qwen3MoeForCausalLM"}},
          {"model_type", "qwen3_moe"},
          {"vocab_size", 32},
          {"hidden_size", 8},
          {"intermediate_size", 10},
          {"moe_intermediate_size", 6},
          {"num_hidden_layers", 3},
          {"num_attention_heads", 2},
          {"num_key_value_heads", 1},
          {"head_dim", 4},
          {"num_experts", 4},
          {"num_experts_per_tok", 2},
          {"decoder_sparse_step", 1},
          {"mlp_only_layers", {1}},
          {"norm_topk_prob", true},
          {"tie_word_embeddings", false},
          {"torch_dtype", "bfloat16"}};
}

// A tiny Qwen3-MoE directory with the project's real Qwen3 tokenizer files.
void write_tiny_moe(const std::filesystem::path& dir, const std::vector<Shape>& shapes) {
  write_file_atomic(dir / "config.json", tiny_moe_config().dump(2));
  write_weights(dir, shapes);
  for (const char* name : {"tokenizer.json", "tokenizer_config.json"})
    std::filesystem::copy_file(fixture(std::string("tokenizers/qwen3/") + name), dir / name);
}

bool has_warning(const json& report, const std::string& text) {
  for (const auto& w : report["warnings"])
    if (w.get<std::string>().find(text) != std::string::npos) return true;
  return false;
}

TEST(Inspect, TinyQwen3MoeCountsMatchHandComputation) {
  TempDir tmp;
  write_tiny_moe(tmp.path(), tiny_moe_shapes());
  const json r = inspect_model(tmp.path());

  EXPECT_EQ(r["model_type"], "qwen3_moe");
  EXPECT_EQ(r["parameters"]["total"], kTinyMoeTotal);
  EXPECT_EQ(r["parameters"]["active"], kTinyMoeActive);
  EXPECT_EQ(r["parameters"]["in_weights"], kTinyMoeTotal);
  EXPECT_EQ(r["parameters"]["matches_weights"], true);
  EXPECT_EQ(r["num_hidden_layers"], 3);
  EXPECT_EQ(r["hidden_size"], 8);
  EXPECT_EQ(r["num_attention_heads"], 2);
  EXPECT_EQ(r["num_key_value_heads"], 1);
  EXPECT_EQ(r["head_dim"], 4);
  EXPECT_EQ(r["moe"]["num_experts"], 4);
  EXPECT_EQ(r["moe"]["num_experts_per_tok"], 2);
  EXPECT_EQ(r["moe"]["params_per_expert"], 144);
  EXPECT_EQ(r["moe"]["moe_layers"], json({0, 2}));
  // 3 layers × (q, k, v, o) + embed + lm_head + 2 routers + 24 expert matrices + 3 dense = 43 BF16;
  // 3 × 4 norms + final norm = 13 F32.
  EXPECT_EQ(r["weights"]["dtypes"], json({{"BF16", 43}, {"F32", 13}}));
  EXPECT_EQ(r["weights"]["files"], 1);

  const json tokenizer_facts = json::parse(read_file(fixture("inspect/tokenizers.json")));
  EXPECT_EQ(r["tokenizer"]["kind"], "byte_level_bpe") << r["tokenizer"].dump();
  EXPECT_EQ(r["tokenizer"]["vocab_size"], tokenizer_facts["qwen3"]["vocab_size"]);  // 151669
  EXPECT_EQ(r["chat"]["family"], "qwen3") << r["chat"].dump();
  EXPECT_TRUE(has_warning(r, "--train-router")) << r["warnings"].dump();
  EXPECT_TRUE(has_warning(r, "seed 000"));
  EXPECT_TRUE(has_warning(r, "config.json vocab_size is 32"));  // the real tokenizer outgrows the toy embedding

  const std::string text = format_inspect(r);
  for (const char* line : {"architecture  qwen3_moe (Qwen3MoeForCausalLM)\n",
                           "parameters    2.6K total, 2.0K active per token (2624 / 2048; weights agree)\n",
                           "layers        3 (MoE layers [0,2])\n", "attention     2 heads, 1 kv heads, head_dim 4\n",
                           "experts       4, top-2 (expert intermediate 6, 144 params each)\n",
                           "weights       BF16 (43 tensors), F32 (13 tensors) in 1 file(s)\n",
                           "chat family   qwen3\n"})
    EXPECT_NE(text.find(line), std::string::npos) << "missing: " << line << "\nin:\n" << text;
}

TEST(Inspect, WeightsThatDisagreeWithConfigAreReported) {
  TempDir tmp;
  auto shapes = tiny_moe_shapes();
  std::erase_if(shapes, [](const Shape& s) { return s.name == "model.layers.2.mlp.experts.3.down_proj.weight"; });
  write_tiny_moe(tmp.path(), shapes);
  const json r = inspect_model(tmp.path());
  EXPECT_EQ(r["parameters"]["in_weights"], kTinyMoeTotal - 48);
  EXPECT_EQ(r["parameters"]["matches_weights"], false);
  EXPECT_TRUE(has_warning(r, "hold 2576 parameters but config.json implies 2624")) << r["warnings"].dump();
}

// Llama, V=16 H=8, 2 layers, 2 heads of Dh=4 (kv 2), I=12, tied embeddings. By hand:
//   embed 16·8 = 128 (lm_head tied, not counted), final norm 8                →  136
//   per layer: norms 16, q/k/v/o 4 · 8·8 = 256, mlp 3·8·12 = 288                →  560 × 2 = 1120
//   total = active = 1256
TEST(Inspect, DenseTiedLlamaWithStoredLmHead) {
  TempDir tmp;
  write_file_atomic(tmp / "config.json", json({{"model_type", "llama"},
                                               {"vocab_size", 16},
                                               {"hidden_size", 8},
                                               {"intermediate_size", 12},
                                               {"num_hidden_layers", 2},
                                               {"num_attention_heads", 2},
                                               {"num_key_value_heads", 2},
                                               {"tie_word_embeddings", true}})
                                             .dump());
  std::vector<Shape> shapes = {{"model.embed_tokens.weight", {16, 8}, DType::F32},
                               {"lm_head.weight", {16, 8}, DType::F32},  // stored although tied
                               {"model.norm.weight", {8}, DType::F32}};
  for (int layer = 0; layer < 2; ++layer) {
    const std::string p = "model.layers." + std::to_string(layer) + ".";
    for (const char* n : {"input_layernorm", "post_attention_layernorm"}) shapes.push_back({p + n + ".weight", {8}, DType::F32});
    for (const char* n : {"q_proj", "k_proj", "v_proj", "o_proj"})
      shapes.push_back({p + "self_attn." + n + ".weight", {8, 8}, DType::F32});
    shapes.push_back({p + "mlp.gate_proj.weight", {12, 8}, DType::F32});
    shapes.push_back({p + "mlp.up_proj.weight", {12, 8}, DType::F32});
    shapes.push_back({p + "mlp.down_proj.weight", {8, 12}, DType::F32});
  }
  write_weights(tmp.path(), shapes);
  const json r = inspect_model(tmp.path());
  EXPECT_EQ(r["parameters"]["total"], 1256);
  EXPECT_EQ(r["parameters"]["active"], 1256);
  EXPECT_EQ(r["parameters"]["in_weights"], 1256 + 128);
  EXPECT_EQ(r["parameters"]["matches_weights"], true);
  EXPECT_TRUE(r["moe"].is_null());
  EXPECT_FALSE(has_warning(r, "--train-router"));
  EXPECT_TRUE(r["tokenizer"].contains("error"));  // no tokenizer files in this directory
  EXPECT_TRUE(has_warning(r, "tokenizer: "));
}

// Tiny random models of every architecture saved by transformers' save_pretrained:
// the counts equal model.num_parameters() and the reference's active count.
TEST(Inspect, CountsMatchTransformersModelsOfEveryArchitecture) {
  for (const char* type : {"llama", "qwen3", "qwen3_moe", "mixtral", "olmoe"}) {
    SCOPED_TRACE(type);
    const auto dir = fixture(std::string("inspect/models/") + type);
    const json expected = json::parse(read_file(dir / "expected.json"));
    const json r = inspect_model(dir);
    EXPECT_EQ(r["model_type"], type);
    EXPECT_EQ(r["parameters"]["total"], expected["num_parameters"]);
    EXPECT_EQ(r["parameters"]["active"], expected["active"]);
    EXPECT_EQ(r["parameters"]["in_weights"], expected["num_parameters"]);
    EXPECT_EQ(r["parameters"]["matches_weights"], true);
    EXPECT_EQ(r["weights"]["dtypes"].size(), 1u);
    EXPECT_TRUE(r["weights"]["dtypes"].contains("BF16"));
    const auto& moe_layers = expected["moe_layers"];
    if (moe_layers.empty()) {
      EXPECT_TRUE(r["moe"].is_null());
    } else {
      EXPECT_EQ(r["moe"]["moe_layers"], moe_layers);
      EXPECT_TRUE(has_warning(r, "--train-router"));
    }
  }
}

TEST(Inspect, DirectoryWithoutConfigFailsNamingIt) {
  TempDir tmp;
  try {
    inspect_model(tmp.path());
    ADD_FAILURE() << "no error";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("config.json"), std::string::npos) << e.what();
  }
}

TEST(Inspect, CommandPrintsJsonThroughTheCli) {
  TempDir tmp;
  write_tiny_moe(tmp.path(), tiny_moe_shapes());
  CLI::App app{"character"};
  register_commands(app);
  const std::string dir = tmp.path().string();
  std::vector<const char*> argv = {"character", "inspect", dir.c_str(), "--json"};
  app.parse(static_cast<int>(argv.size()), argv.data());
  ::testing::internal::CaptureStdout();
  const int code = run_selected_command(app);
  const json printed = json::parse(::testing::internal::GetCapturedStdout());
  EXPECT_EQ(code, 0);
  EXPECT_EQ(printed["parameters"]["total"], kTinyMoeTotal);
  EXPECT_EQ(printed, inspect_model(tmp.path()));
}

}  // namespace
}  // namespace character::pipeline
