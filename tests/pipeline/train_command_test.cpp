// `character train` end to end on a tiny random llama (init-model, the real
// Llama 2 tokenizer, role_colon chat): SFT lowers the held-out loss and the
// model then reproduces its training answers greedily; DPO raises the
// chosen-over-rejected margin from 0; a real `character train` process killed
// with SIGKILL after its first checkpoint and resumed ends with an adapter
// file byte-identical to an uninterrupted run's.
#include <CLI/CLI.hpp>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "base/atomic_file.h"
#include "base/error.h"
#include "lora/adapter_file.h"
#include "lora/train_data.h"
#include "model/arch/causal_lm.h"
#include "model/arch/generate.h"
#include "model/text/chat.h"
#include "model/text/tokenizer.h"
#include "pipeline/commands.h"
#include "tests/pipeline/cli_support.h"
#include "tests/test_support.h"

extern char** environ;

namespace character::pipeline {
namespace {

namespace fs = std::filesystem;
using character::testing::fixture;
using character::testing::TempDir;
using character::testing::character_binary;
using character::testing::run_cli;

// Starts the real binary with stdout/stderr into files under `log_dir`.
pid_t spawn(const std::vector<std::string>& args, const fs::path& log_prefix) {
  std::vector<std::string> all{character_binary().string()};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, (log_prefix.string() + ".out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, (log_prefix.string() + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  // One intra-op thread: on a busy 2-core machine OpenMP's spinning threads make a
  // tiny run ~10x slower. Both runs compared below use the same setting.
  std::vector<std::string> env{"OMP_NUM_THREADS=1"};
  for (char** e = environ; *e; ++e) {
    if (std::string(*e).rfind("OMP_NUM_THREADS=", 0) != 0) env.emplace_back(*e);
  }
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("cannot start " + all[0] + ": " + std::strerror(rc));
  return pid;
}

int wait_status(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

class TrainCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    at::set_num_threads(1);  // tiny models: threads only add contention on a busy machine
    model_ = (tmp_ / "model").string();
    run_cli({"init-model", "--arch", "llama", "--preset", "tiny", "--tokenizer", fixture("tokenizers/llama2").string(),
             model_, "--seed", "1"});
  }
  std::string write(const std::string& name, const std::vector<nlohmann::json>& rows) {
    const auto path = (tmp_ / name).string();
    std::ofstream out(path);
    for (const auto& r : rows) out << r.dump() << "\n";
    return path;
  }
  TempDir tmp_;
  std::string model_;
};

const std::vector<std::pair<std::string, std::string>> kQa = {
    {"Who are you?", "Arr, I be Captain Flint of the Black Gull."},
    {"What do you like?", "Arr, I like gold and the open sea."},
    {"Where is your ship?", "Arr, the Black Gull waits in the cove."},
    {"What is your crew like?", "Arr, my crew be loyal and loud."},
    {"Do you fear storms?", "Arr, no storm can sink the Black Gull."},
    {"What do you eat?", "Arr, salted fish and hard bread."},
    {"Where are you going?", "Arr, to the isle where the gold be buried."},
    {"Can you swim?", "Arr, like a fish in the sea."},
};

TEST_F(TrainCommand, SftLowersHeldOutLossAndReproducesTheTrainingAnswersGreedily) {
  std::vector<nlohmann::json> rows;
  for (const auto& [q, a] : kQa) rows.push_back({{"messages", {{{"role", "user"}, {"content", q}}, {{"role", "assistant"}, {"content", a}}}}});
  const auto data = write("sft.jsonl", rows);
  const auto out = (tmp_ / "sft").string();
  const auto summary = nlohmann::json::parse(run_cli(
      {"train", "sft", "--model", model_, "--data", data, "--out", out, "--rank", "16", "--lr", "1e-2", "--schedule",
       "constant", "--max-steps", "60", "--batch-size", "4", "--held-out", "0.25", "--seed", "5", "--quiet"}));
  EXPECT_EQ(summary["steps"], 60);
  EXPECT_EQ(summary["rows"]["train"], 6);
  EXPECT_EQ(summary["rows"]["held_out"], 2);
  const double first = summary["first_held_out_loss"], last = summary["final_held_out_loss"];
  EXPECT_LT(last, first) << first << " → " << last;

  // Greedy replies of the trained model (base + the saved adapter) to the training prompts.
  auto model = model::load_model(model_);
  const auto adapters = lora::load_adapter(model, lora::read_adapter(fs::path(out) / "adapter"));
  const auto tokenizer = model::load_tokenizer(model_);
  const auto renderer = model::make_chat_renderer(model::detect_chat_family(model_));
  const auto [train_idx, held_idx] = lora::held_out_split(static_cast<int64_t>(kQa.size()), 0.25, 5);
  model::GenerationOptions g;
  g.max_new_tokens = 24;
  g.stop_strings = renderer->stop_strings();
  g.stop_token_ids = model::default_stop_token_ids(model_, *tokenizer, renderer.get());
  int reproduced = 0;
  for (int64_t i : train_idx) {
    const auto& [q, a] = kQa[static_cast<size_t>(i)];
    const auto text = renderer->render({{"user", q}}, model::ChatOptions{}).text;
    const auto prompt = tokenizer->encode(text, /*add_special_tokens=*/false);
    auto reply = model::generate(*model, tokenizer.get(), {prompt}, g).front().text;
    // role_colon ends an assistant turn with "\n\n" (trained, in the loss mask); the
    // model never saw what follows it, so the reply is the text before that marker.
    EXPECT_NE(reply.find("\n\n"), std::string::npos) << q << ": no end-of-turn in " << reply;
    reply = reply.substr(0, reply.find("\n\n"));
    reply.erase(0, reply.find_first_not_of(' '));
    EXPECT_EQ(reply, a) << q;
    reproduced += reply == a;
  }
  EXPECT_EQ(reproduced, 6);
}

TEST_F(TrainCommand, DpoRaisesTheChosenOverRejectedMargin) {
  std::vector<nlohmann::json> rows;
  for (const auto& [q, a] : kQa) rows.push_back({{"prompt", q}, {"chosen", a}, {"rejected", "I am a helpful assistant."}});
  const auto data = write("dpo.jsonl", rows);
  const auto out = tmp_ / "dpo";
  const auto summary = nlohmann::json::parse(run_cli(
      {"train", "dpo", "--model", model_, "--data", data, "--out", out.string(), "--lr", "5e-3", "--max-steps", "15",
       "--batch-size", "3", "--held-out", "0.25", "--quiet"}));
  const auto first = nlohmann::json::parse(read_jsonl_lines(out / "metrics.jsonl").front());
  ASSERT_EQ(first["step"], 0);
  EXPECT_DOUBLE_EQ(first["held_out"]["dpo_margin"].get<double>(), 0.0);  // policy = reference before training
  EXPECT_GT(summary["final_dpo_margin"].get<double>(), 1.0) << summary.dump();
  EXPECT_EQ(summary["final_dpo_accuracy"].get<double>(), 1.0);
}

TEST_F(TrainCommand, ResumedAfterSigkillEndsWithTheSameAdapterBytes) {
  ASSERT_TRUE(fs::exists(character_binary())) << character_binary() << " (build the `character` target)";
  std::vector<nlohmann::json> rows;
  for (const auto& [q, a] : kQa) rows.push_back({{"messages", {{{"role", "user"}, {"content", q}}, {{"role", "assistant"}, {"content", a}}}}});
  const auto data = write("sft.jsonl", rows);
  auto args = [&](const fs::path& out) {
    return std::vector<std::string>{"train", "sft", "--model", model_, "--data", data, "--out", out.string(),
                                    "--max-steps", "24", "--batch-size", "2", "--checkpoint-every", "5",
                                    "--lr", "1e-2", "--schedule", "cosine", "--warmup", "3", "--grad-accum", "2"};
  };
  const auto a = tmp_ / "a", b = tmp_ / "b";
  const int status_a = wait_status(spawn(args(a), tmp_ / "a_log"));
  ASSERT_TRUE(WIFEXITED(status_a) && WEXITSTATUS(status_a) == 0) << read_file(tmp_ / "a_log.err");

  const pid_t pid = spawn(args(b), tmp_ / "b_log");
  const auto first_checkpoint = b / "checkpoints/step-000005/trainer_state.json";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!fs::exists(first_checkpoint) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ::kill(pid, SIGKILL);
  const int status_b = wait_status(pid);
  ASSERT_TRUE(WIFSIGNALED(status_b) && WTERMSIG(status_b) == SIGKILL)
      << "the run ended before it could be killed: " << read_file(tmp_ / "b_log.err");
  ASSERT_TRUE(fs::exists(first_checkpoint));
  ASSERT_FALSE(fs::exists(b / "adapter"));

  auto resume = args(b);
  resume.push_back("--resume");
  const int status_r = wait_status(spawn(resume, tmp_ / "r_log"));
  ASSERT_TRUE(WIFEXITED(status_r) && WEXITSTATUS(status_r) == 0) << read_file(tmp_ / "r_log.err");
  const auto summary = nlohmann::json::parse(read_file(tmp_ / "r_log.out"));
  EXPECT_GE(summary["start_step"].get<int64_t>(), 5);
  EXPECT_EQ(summary["steps"], 24);
  EXPECT_TRUE(read_file(a / "adapter/adapter_model.safetensors") == read_file(b / "adapter/adapter_model.safetensors"))
      << "adapter bytes differ after resume from step " << summary["start_step"];
}

TEST_F(TrainCommand, MoeRunPlugsInTheRouterHookAndResumesItsCoverage) {
  const auto moe = (tmp_ / "moe").string();
  run_cli({"init-model", "--arch", "qwen3_moe", "--preset", "tiny", "--tokenizer",
           fixture("tokenizers/llama2").string(), moe, "--seed", "2"});
  std::vector<nlohmann::json> rows;
  for (const auto& [q, a] : kQa) rows.push_back({{"messages", {{{"role", "user"}, {"content", q}}, {{"role", "assistant"}, {"content", a}}}}});
  const auto data = write("sft.jsonl", rows);
  auto args = [&](const fs::path& out) {
    return std::vector<std::string>{"train", "sft", "--model", moe, "--data", data, "--out", out.string(),
                                    "--max-steps", "4", "--batch-size", "2", "--checkpoint-every", "2",
                                    "--keep-checkpoints", "0", "--lr", "1e-2", "--train-router", "lora",
                                    "--router-lr-mult", "2", "--activation-checkpointing", "--quiet"};
  };
  const auto a = tmp_ / "a", b = tmp_ / "b";
  run_cli(args(a));
  const auto step1 = nlohmann::json::parse(read_jsonl_lines(a / "metrics.jsonl").at(1));
  for (const char* key : {"aux_loss", "z_loss", "coverage_below_share"}) EXPECT_TRUE(step1.contains(key)) << step1.dump();
  for (const char* file : {"coverage.json", "checkpoints/step-000002/coverage.json", "checkpoints/step-000002/hook_state.json"}) {
    EXPECT_TRUE(fs::exists(a / file)) << file;
  }
  // Resumed from step 2 (as after a kill): same adapter bytes, same coverage counts.
  fs::create_directories(b / "checkpoints");
  fs::copy(a / "checkpoints/step-000002", b / "checkpoints/step-000002", fs::copy_options::recursive);
  auto resume = args(b);
  resume.push_back("--resume");
  EXPECT_EQ(nlohmann::json::parse(run_cli(resume))["start_step"], 2);
  EXPECT_TRUE(read_file(a / "adapter/adapter_model.safetensors") == read_file(b / "adapter/adapter_model.safetensors"));
  EXPECT_EQ(nlohmann::json::parse(read_file(a / "coverage.json")), nlohmann::json::parse(read_file(b / "coverage.json")));
}

TEST_F(TrainCommand, BadFlagsAreConfigErrorsNamingTheFlag) {
  const auto data = write("sft.jsonl", {{{"messages", {{{"role", "user"}, {"content", "hi"}}, {{"role", "assistant"}, {"content", "Arr"}}}}}});
  const auto out = (tmp_ / "bad").string();
  auto message = [&](std::vector<std::string> extra) {
    std::vector<std::string> args{"train", "sft", "--model", model_, "--data", data, "--out", out, "--quiet"};
    args.insert(args.end(), extra.begin(), extra.end());
    try {
      run_cli(args);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    ADD_FAILURE() << "expected ConfigError";
    return std::string();
  };
  EXPECT_NE(message({"--train-router", "lora"}).find("--train-router"), std::string::npos);
  EXPECT_NE(message({"--schedule", "steep"}).find("--schedule"), std::string::npos);
  EXPECT_NE(message({"--held-out", "1.5"}).find("--held-out"), std::string::npos);
  EXPECT_NE(message({"--aux-loss-coef", "0.01"}).find("dense"), std::string::npos);
  EXPECT_NE(message({"--lr", "0"}).find("--lr"), std::string::npos);
}

}  // namespace
}  // namespace character::pipeline
