// The `tokenize`, `generate` and `init-model` commands, run through the real CLI
// parser: tokenize prints transformers' ids (fixture generate/tokenize.json);
// init-model writes a loadable directory atomically and refuses bad requests with
// messages that name the problem; generate --json is reproducible per seed.
// (That init-model output equals transformers' logits is the CTest
// init_model_matches_transformers, tools/oracle/check_init_model.py.)
#include <CLI/CLI.hpp>
#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/error.h"
#include "pipeline/commands.h"
#include "tests/pipeline/cli_support.h"
#include "tests/test_support.h"

namespace character::pipeline {
namespace {

using character::testing::fixture;
using character::testing::TempDir;
using character::testing::run_cli;

template <typename E>
std::string error_of(const std::vector<std::string>& args) {
  try {
    run_cli(args);
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an error";
  return "";
}

nlohmann::json tokenize_cases() {
  std::ifstream in(fixture("generate/tokenize.json"));
  return in ? nlohmann::json::parse(in)["cases"] : nlohmann::json::array();
}

TEST(TokenizeCommand, PrintsTransformersIds) {
  const auto cases = tokenize_cases();
  ASSERT_EQ(cases.size(), 2u);
  TempDir tmp;
  for (const auto& c : cases) {
    const std::string dir = fixture(c["dir"]).string();
    const std::string text = c["text"];
    EXPECT_EQ(nlohmann::json::parse(run_cli({"tokenize", dir, "--text", text})), c["text_ids"]) << c["family"];
    EXPECT_EQ(nlohmann::json::parse(run_cli({"tokenize", dir, "--text", text, "--no-special"})),
              c["text_ids_no_special"]) << c["family"];
    if (!c.contains("messages")) continue;
    const auto file = (tmp / "chat.json").string();
    std::ofstream(file) << nlohmann::json{{"messages", c["messages"]}}.dump();
    EXPECT_EQ(nlohmann::json::parse(run_cli({"tokenize", dir, "--file", file, "--chat"})), c["chat_ids"]);
    EXPECT_EQ(nlohmann::json::parse(run_cli({"tokenize", dir, "--text", c["messages"].dump(), "--chat", "--no-thinking"})),
              c["chat_ids_no_thinking"]);
  }
}

TEST(TokenizeCommand, BadConversationNamesTheMessageAndField) {
  const std::string dir = fixture("tokenizers/qwen3").string();
  const auto message = error_of<FormatError>({"tokenize", dir, "--chat", "--text", R"([{"role": "user"}])"});
  EXPECT_NE(message.find("message 0"), std::string::npos) << message;
  EXPECT_NE(message.find("content"), std::string::npos) << message;
}

class InitModelCommand : public ::testing::Test {
 protected:
  std::string tokenizer_ = fixture("tokenizers/llama2").string();
  TempDir tmp_;
};

TEST_F(InitModelCommand, WritesADirectoryAtomicallyAndRefusesToOverwrite) {
  const auto out = (tmp_ / "olmoe").string();
  run_cli({"init-model", "--arch", "olmoe", "--preset", "tiny", "--tokenizer", tokenizer_, out, "--experts", "4"});
  for (const char* file : {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                           "tokenizer_config.json"}) {
    EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(out) / file)) << file;
  }
  for (const auto& entry : std::filesystem::directory_iterator(tmp_.path())) {
    EXPECT_EQ(entry.path().filename(), "olmoe") << "left behind: " << entry.path();  // no temp directory
  }
  const auto config = nlohmann::json::parse(std::ifstream(std::filesystem::path(out) / "config.json"));
  EXPECT_EQ(config["num_experts"], 4);
  EXPECT_EQ(config["vocab_size"], 32000);  // from the tokenizer
  EXPECT_EQ(config["architectures"], nlohmann::json::array({"OlmoeForCausalLM"}));

  const auto message = error_of<ConfigError>({"init-model", "--arch", "olmoe", "--tokenizer", tokenizer_, out});
  EXPECT_NE(message.find("not empty"), std::string::npos) << message;
  EXPECT_NE(message.find("--force"), std::string::npos) << message;
  run_cli({"init-model", "--arch", "olmoe", "--tokenizer", tokenizer_, out, "--force"});
  EXPECT_EQ(nlohmann::json::parse(std::ifstream(std::filesystem::path(out) / "config.json"))["num_experts"], 8);
}

// Issue 14: `init-model OUT/ --force` and `OUT=.` deleted the target and wrote nothing.
// --force replaces only a model directory, whatever the spelling of OUT, and never removes
// what init-model did not write.
TEST_F(InitModelCommand, ForceReplacesOnlyAModelDirectoryWhateverTheSpelling) {
  namespace fs = std::filesystem;
  const fs::path out = tmp_ / "m";
  run_cli({"init-model", "--arch", "llama", "--tokenizer", tokenizer_, out.string()});
  run_cli({"init-model", "--arch", "llama", "--tokenizer", tokenizer_, out.string() + "/", "--force", "--seed", "7"});
  EXPECT_TRUE(fs::exists(out / "model.safetensors"));
  for (const auto& entry : fs::directory_iterator(tmp_.path())) {
    EXPECT_EQ(entry.path().filename(), "m") << "left behind: " << entry.path();  // no temp or old copy
  }

  const fs::path mixed = tmp_ / "mixed";
  fs::create_directories(mixed);
  std::ofstream(mixed / "notes.txt") << "mine";
  auto message = error_of<ConfigError>({"init-model", "--arch", "llama", "--tokenizer", tokenizer_,
                                        mixed.string() + "/", "--force"});
  EXPECT_NE(message.find("notes.txt"), std::string::npos) << message;
  EXPECT_TRUE(fs::exists(mixed / "notes.txt"));

  struct Cwd {
    fs::path old = fs::current_path();
    explicit Cwd(const fs::path& to) { fs::current_path(to); }
    ~Cwd() { fs::current_path(old); }
  };
  {
    const Cwd in_out(out);
    message = error_of<ConfigError>({"init-model", "--arch", "llama", "--tokenizer", tokenizer_, ".", "--force"});
    EXPECT_NE(message.find("working directory"), std::string::npos) << message;
    message = error_of<ConfigError>({"init-model", "--arch", "llama", "--tokenizer", tokenizer_, "..", "--force"});
    EXPECT_NE(message.find("working directory"), std::string::npos) << message;
  }
  EXPECT_TRUE(fs::exists(out / "config.json"));
  EXPECT_TRUE(fs::exists(mixed / "notes.txt"));
}

TEST_F(InitModelCommand, BadRequestsAreConfigErrorsNamingTheFlag) {
  auto message = error_of<ConfigError>({"init-model", "--arch", "gpt2", "--tokenizer", tokenizer_, (tmp_ / "a").string()});
  EXPECT_NE(message.find("gpt2"), std::string::npos) << message;
  EXPECT_NE(message.find("qwen3_moe"), std::string::npos) << message;
  message = error_of<ConfigError>(
      {"init-model", "--arch", "llama", "--experts", "4", "--tokenizer", tokenizer_, (tmp_ / "b").string()});
  EXPECT_NE(message.find("--experts"), std::string::npos) << message;
  message = error_of<ConfigError>(
      {"init-model", "--arch", "llama", "--preset", "huge", "--tokenizer", tokenizer_, (tmp_ / "c").string()});
  EXPECT_NE(message.find("huge"), std::string::npos) << message;
  EXPECT_FALSE(std::filesystem::exists(tmp_ / "a"));
}

TEST_F(InitModelCommand, GenerateJsonIsReproduciblePerSeed) {
  const auto dir = (tmp_ / "mixtral").string();
  run_cli({"init-model", "--arch", "mixtral", "--tokenizer", tokenizer_, dir});
  auto sample = [&](const std::string& seed) {
    return nlohmann::json::parse(run_cli({"generate", dir, "--raw", "--prompt", "Once upon a time", "--json",
                                          "--max-new-tokens", "6", "--temperature", "1.0", "--top-k", "0",
                                          "--seed", seed}));
  };
  const auto a = sample("5"), b = sample("5"), c = sample("6");
  EXPECT_EQ(a, b);
  EXPECT_NE(a["ids"], c["ids"]);
  EXPECT_EQ(a["ids"].size(), 6u);
  EXPECT_EQ(a["finish_reason"], "length");
}

}  // namespace
}  // namespace character::pipeline
