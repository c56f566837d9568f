// `character analyze` through the real command line (in process): the views it
// is asked for, their shape against the model (layers, E, the four domains and
// contexts of seed 002), --out's files, and a dense model refused by name. The
// analyses themselves are proven in tests/eval/explore_test.cpp and
// tests/eval/routing_metrics_test.cpp.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/error.h"
#include "tests/pipeline/cli_support.h"
#include "tests/test_support.h"

namespace character::pipeline {
namespace {

using character::testing::fixture;
using character::testing::run_cli;
using character::testing::TempDir;
using nlohmann::json;

TEST(AnalyzeCommand, JsonHasEveryViewShapedLikeTheModel) {
  at::set_num_threads(1);
  const json out = json::parse(run_cli({"analyze", fixture("eval_run/qwen3_moe").string(), "--probe", "--json"}));
  const json& model = out["model"];
  const auto layers = model["moe_layers"].size();
  const int64_t experts = model["num_experts"];
  ASSERT_GT(layers, 0u);

  ASSERT_EQ(out["domain"]["domains"], json({"math", "code", "language", "reasoning"}));
  ASSERT_EQ(out["domain"]["layers"].size(), layers);
  for (const auto& layer : out["domain"]["layers"]) {
    for (const char* domain : {"math", "code", "language", "reasoning"}) {
      EXPECT_EQ(layer["counts"][domain].size(), static_cast<size_t>(experts)) << domain;
    }
  }
  EXPECT_EQ(out["token"]["token"], "127");
  EXPECT_EQ(out["token"]["contexts"].size(), 4u);  // solo, after a number, after an operator, in a sentence
  ASSERT_EQ(out["prompts"]["utilization"]["rates"].size(), layers);
  for (const auto& row : out["prompts"]["utilization"]["rates"]) {
    double sum = 0;
    for (double r : row) sum += r;
    EXPECT_NEAR(sum, model["top_k"].get<double>(), 1e-9);  // every position picks K experts
  }
  EXPECT_EQ(out["moe_type"]["per_layer"].empty(), false);
}

TEST(AnalyzeCommand, OneViewAsTextAndTheFilesOfOut) {
  at::set_num_threads(1);
  TempDir tmp;
  const std::string text = run_cli({"analyze", fixture("eval_run/qwen3_moe").string(), "--probe", "--views", "token",
                                    "--token", "127", "--out", (tmp / "analysis").string()});
  EXPECT_NE(text.find("TOKEN ROUTING \"127\" in 4 contexts"), std::string::npos) << text;
  EXPECT_EQ(text.find("DOMAIN"), std::string::npos) << "asked for the token view only:\n" << text;
  const json saved = json::parse(read_file(tmp / "analysis" / "analyze.json"));
  EXPECT_EQ(saved["views"], "token");
  EXPECT_EQ(saved["token"]["contexts"].size(), 4u);
  EXPECT_NE(read_file(tmp / "analysis" / "analyze.txt").find("TOKEN ROUTING"), std::string::npos);
}

TEST(AnalyzeCommand, DenseModelIsRefusedByName) {
  const std::string dense = fixture("serve/qwen3_tiny").string();
  try {
    run_cli({"analyze", dense, "--probe"});
    FAIL() << "a dense model was analyzed";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("dense qwen3 model"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace character::pipeline
