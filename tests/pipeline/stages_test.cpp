// The stages of `character pipeline` (pipeline/stages.h) on tiny models: a
// qwen3_moe student from init-model and a tiny qwen3 teacher served by the
// project's HTTP server on loopback (what `character serve` runs).
// - every stage in order writes its files into RUN/, SFT continues from the DPO
//   adapter at sft_lr_factor × lr, gates that fail export nothing (exit code 10)
//   and force_export exports with RUN/export/UNGATED;
// - a stop request in data generation and in training throws Interrupted and a
//   second call resumes to the same files and tensors as an uninterrupted run;
// - the learning-rate default equals tinker-cookbook's get_lr (fixture);
// - the check stage's errors and the frozen-router warning.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/error.h"
#include "lora/adapter_file.h"
#include "lora/adapters.h"
#include "lora/train_data.h"
#include "lora/trainer.h"
#include "model/arch/causal_lm.h"
#include "model/text/chat.h"
#include "model/text/tokenizer.h"
#include "pipeline/engine_backend.h"
#include "pipeline/learning_rate.h"
#include "pipeline/stage_support.h"
#include "pipeline/stages.h"
#include "pipeline/train_run.h"
#include "remote/server.h"
#include "tests/pipeline/cli_support.h"
#include "tests/test_support.h"

namespace character::pipeline {
namespace {

namespace fs = std::filesystem;
using character::testing::fixture;
using character::testing::run_cli;
using character::testing::TempDir;
using nlohmann::json;

// --- learning-rate default ------------------------------------------------------

TEST(PipelineLearningRate, EqualsTinkerCookbookGetLr) {
  const auto ref = json::parse(read_file(fixture("pipeline/learning_rates.json")));
  ASSERT_GE(ref["hub"].size(), 10u);
  ASSERT_GE(ref["local"].size(), 5u);
  for (const auto& c : ref["hub"]) {
    const double lr = tinker_lora_learning_rate(c["model_name"].get<std::string>(), c["hidden_size"].get<int64_t>());
    EXPECT_NEAR(lr, c["lr"].get<double>(), 1e-12) << c["model_name"];
  }
  for (const auto& c : ref["local"]) {
    const fs::path dir = fixture("pipeline") / c["dir"].get<std::string>();
    EXPECT_NEAR(default_learning_rate(dir), c["lr"].get<double>(), 1e-12) << dir;
  }
}

TEST(PipelineLearningRate, FamiliesWithoutARecipeAreRefused) {
  try {
    tinker_lora_learning_rate("mistralai/Mixtral-8x7B-v0.1", 4096);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("Mixtral-8x7B"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("training.learning_rate"), std::string::npos) << e.what();
  }
}

// --- the shared world: student, teacher on loopback -----------------------------

// Forwards to a backend and sets `stop` when the Nth chat request with a system
// prompt (a DPO chosen answer) arrives; that request is still answered: a
// Ctrl-C in the middle of a stage.
class StopAfter : public remote::CompletionBackend {
 public:
  explicit StopAfter(remote::CompletionBackend& inner) : inner_(inner) {}
  std::string model_id() const override { return inner_.model_id(); }
  remote::Response complete_chat(const remote::ChatRequest& request, const remote::CallOptions& options) override {
    if (!request.messages.empty() && request.messages.front().role == "system" && ++calls_ == stop_at_ && stop_) {
      stop_->store(true);
    }
    return inner_.complete_chat(request, options);
  }
  remote::Response complete_text(const remote::CompletionRequest& request, const remote::CallOptions& options) override {
    return inner_.complete_text(request, options);
  }
  void arm(std::atomic<bool>* stop, int at) {
    calls_ = 0;
    stop_at_ = at;
    stop_ = stop;
  }
  void disarm() { stop_ = nullptr; }

 private:
  remote::CompletionBackend& inner_;
  std::atomic<int> calls_{0};
  int stop_at_ = 0;
  std::atomic<bool>* stop_ = nullptr;
};

// Built once per test process; destroyed in reverse order at exit (server first).
struct World {
  TempDir dir;
  fs::path student = dir / "student";
  fs::path teacher_dir = dir / "teacher";
  std::unique_ptr<EngineBackend> teacher;
  std::unique_ptr<StopAfter> stopper;
  std::unique_ptr<remote::Server> server;

  World() {
    at::set_num_threads(1);  // tiny models: threads only cost on a shared machine
    run_cli({"init-model", "--arch", "qwen3_moe", "--preset", "tiny", "--experts", "4", "--top-k", "2", "--tokenizer",
             fixture("tokenizers/qwen3").string(), student.string(), "--seed", "3"});
    run_cli({"init-model", "--arch", "qwen3", "--preset", "tiny", "--tokenizer", fixture("tokenizers/qwen3").string(),
             teacher_dir.string(), "--seed", "1"});
    EngineBackendOptions engine;
    engine.model_id = "tiny-teacher";
    teacher = std::make_unique<EngineBackend>(teacher_dir, engine);
    stopper = std::make_unique<StopAfter>(*teacher);
    remote::ServerOptions options;
    options.port = 0;
    server = std::make_unique<remote::Server>(*stopper, options);
    server->start();
  }
};

World& world() {
  static World w;
  return w;
}

// A smoke run small enough for seconds: 4 pairs, 2 reflections, 1 two-turn
// interaction, 8-token answers, rank-2 adapters with router LoRA, 3 steps per
// train stage, a probe of one category with one variant.
RunConfig tiny_config() {
  RunConfig c;
  c.persona = "pirate";
  c.scale = "smoke";
  c.counts.dpo_pairs = 4;
  c.counts.reflections = 2;
  c.counts.interactions = 1;
  c.counts.interaction_turns = 2;
  c.student = world().student;
  c.seed = 5;
  c.teacher.url = world().server->base_url();
  c.teacher.model = "tiny-teacher";
  c.teacher.in_flight = 2;
  c.max_tokens = 8;
  c.introspection_max_tokens = 8;
  c.question_max_tokens = 48;
  c.min_chars = 1;
  c.keep_unfinished = true;
  c.training.lora.rank = 2;
  c.training.lora.alpha = 4;
  c.training.lora.train_router = lora::RouterTraining::kLora;
  c.training.batch_size = 2;
  c.training.max_steps = 3;
  c.training.held_out = 0.25;
  c.training.max_length = 96;
  c.training.max_prompt_length = 48;
  c.probe.samples = 1;
  c.probe.max_new_tokens = 8;
  c.probe.variants = {"please"};
  c.probe.categories = {"identity"};
  c.exports = {"tinker", "peft"};
  return c;
}

StageResult run_stage(const std::string& name, const RunConfig& config, const fs::path& run_dir,
                      const std::atomic<bool>* stop = nullptr) {
  StageContext ctx{config, run_dir, stop, /*quiet=*/true};
  return stage_function(name)(ctx);
}

std::map<std::string, at::Tensor> adapter_tensors(const fs::path& dir) { return lora::read_adapter(dir).tensors; }

double max_abs_diff(const std::map<std::string, at::Tensor>& a, const std::map<std::string, at::Tensor>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (const auto& [name, t] : a) {
    auto it = b.find(name);
    if (it == b.end()) {
      ADD_FAILURE() << "missing tensor " << name;
      continue;
    }
    worst = std::max(worst, (t - it->second).abs().max().item<double>());
  }
  return worst;
}

// One SFT row: {"messages": [user, assistant]} and a newline.
std::string sft_row(const std::string& user, const std::string& assistant) {
  json messages = json::array();
  messages.push_back({{"role", "user"}, {"content", user}});
  messages.push_back({{"role", "assistant"}, {"content", assistant}});
  return json{{"messages", messages}}.dump() + "\n";
}

const std::vector<std::string> kDataFiles = {"prompts.jsonl", "dpo.jsonl", "reflections.jsonl", "interactions.jsonl",
                                              "sft.jsonl"};

// --- every stage ------------------------------------------------------------------

TEST(PipelineStages, NamesInPipelineOrderAndUnknownNamesListThem) {
  EXPECT_EQ(stage_names(), (std::vector<std::string>{"check", "generate-dpo", "train-dpo", "introspect", "train-sft",
                                                     "eval", "gate", "export"}));
  try {
    stage_function("train");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("train-dpo"), std::string::npos) << e.what();
  }
}

TEST(PipelineStages, EveryStageOnTinyModelsThenGatesDecideTheExport) {
  TempDir tmp;
  const fs::path run = tmp / "pirate-run";
  RunConfig config = tiny_config();

  const StageResult check = run_stage("check", config, run);
  EXPECT_NEAR(check.counts["learning_rate"].get<double>(), default_learning_rate(world().student), 0);
  for (const auto& w : check.warnings) EXPECT_EQ(w.find("seed report 000"), std::string::npos) << w;  // routers train

  const StageResult dpo_data = run_stage("generate-dpo", config, run);
  EXPECT_EQ(dpo_data.counts["prompts"], 4);
  EXPECT_GT(dpo_data.counts["pairs"].get<int>(), 0);
  EXPECT_TRUE(fs::exists(run / "data/dpo.jsonl"));
  EXPECT_GT(dpo_data.usage["teacher"]["total"]["requests"].get<int>(), 4);

  const StageResult dpo = run_stage("train-dpo", config, run);
  EXPECT_EQ(dpo.counts["steps"], 3);
  const double lr = default_learning_rate(world().student);
  EXPECT_DOUBLE_EQ(dpo.counts["learning_rate"].get<double>(), lr);
  EXPECT_TRUE(fs::exists(run / "checkpoints/dpo/adapter/adapter_model.safetensors"));
  EXPECT_TRUE(fs::exists(run / "checkpoints/dpo/coverage.json"));

  const StageResult intro = run_stage("introspect", config, run);
  EXPECT_TRUE(fs::exists(run / "data/sft.jsonl"));
  EXPECT_EQ(intro.counts["reflections"].get<int>() + intro.counts["reflections_dropped"].get<int>() +
                intro.counts["reflections_failed"].get<int>(),
            2);
  // The introspection model is the student with the DPO adapter, not the teacher.
  for (const auto& line : read_jsonl_lines(run / "data/reflections.jsonl")) {
    EXPECT_EQ(json::parse(line)["model"], "student");
  }

  const StageResult sft = run_stage("train-sft", config, run);
  EXPECT_DOUBLE_EQ(sft.counts["learning_rate"].get<double>(), lr * config.training.sft_lr_factor);
  EXPECT_NE(sft.summary.find("continued from the DPO adapter"), std::string::npos) << sft.summary;
  const auto sft_metrics = read_jsonl_lines(run / "checkpoints/sft/metrics.jsonl");
  ASSERT_FALSE(sft_metrics.empty());
  EXPECT_TRUE(fs::exists(run / "checkpoints/sft/coverage.json"));

  const StageResult eval = run_stage("eval", config, run);
  EXPECT_TRUE(fs::exists(run / "eval/report.json"));
  EXPECT_TRUE(fs::exists(run / "eval/report.html"));
  EXPECT_GT(eval.counts["responses"].get<int>(), 0);

  // A random model is not in character: the default gates fail, nothing is exported.
  const StageResult gate = run_stage("gate", config, run);
  EXPECT_EQ(gate.exit_code, 10) << gate.summary;
  EXPECT_GT(gate.counts["failed"].get<int>(), 0);
  EXPECT_TRUE(fs::exists(run / "eval/gates.json"));
  EXPECT_TRUE(fs::exists(run / "eval/gates.junit.xml"));
  const StageResult refused = run_stage("export", config, run);
  EXPECT_EQ(refused.exit_code, 10);
  EXPECT_TRUE(refused.exports.empty());
  EXPECT_FALSE(fs::exists(run / "export/pirate.tinker.tar"));
  EXPECT_FALSE(fs::exists(run / "export/peft"));

  // --force-export: exported and marked ungated; tinker is skipped (router LoRA) with a message.
  config.force_export = true;
  const StageResult forced = run_stage("export", config, run);
  EXPECT_EQ(forced.exit_code, 0);
  ASSERT_EQ(forced.exports.size(), 1u);
  EXPECT_EQ(forced.exports[0]["format"], "peft");
  EXPECT_EQ(forced.exports[0]["gated"], false);
  EXPECT_TRUE(fs::exists(run / "export/peft/adapter_config.json"));
  EXPECT_TRUE(fs::exists(run / "export/UNGATED"));
  EXPECT_FALSE(fs::exists(run / "export/pirate.tinker.tar"));
  bool tinker_message = false;
  for (const auto& w : forced.warnings) tinker_message |= w.find("tinker skipped") != std::string::npos &&
                                                          w.find("allow_drop_router") != std::string::npos;
  EXPECT_TRUE(tinker_message);

  // Gates that pass (thresholds at their loosest): exported as gated, the marker gone;
  // allow_drop_router writes the tinker archive without the router deltas.
  config.force_export = false;
  config.allow_drop_router = true;
  config.gates.min_in_character_rate = 0;
  config.gates.min_category_rate = 0;
  config.gates.max_paraphrase_flip_rate = 1;
  config.gates.min_probe_coverage = 0;
  config.gates.require_no_nan = false;
  const StageResult passed = run_stage("gate", config, run);
  EXPECT_EQ(passed.exit_code, 0) << passed.summary;
  const StageResult exported = run_stage("export", config, run);
  EXPECT_EQ(exported.exports.size(), 2u);
  for (const auto& e : exported.exports) EXPECT_EQ(e["gated"], true);
  EXPECT_TRUE(fs::exists(run / "export/pirate.tinker.tar"));
  EXPECT_FALSE(fs::exists(run / "export/UNGATED"));
}

// --- SFT from a saved adapter, paper mode -------------------------------------------

TEST(PipelineStages, TrainingFromASavedAdapterStartsFromItsTensors) {
  TempDir tmp;
  const fs::path data = tmp / "sft.jsonl";
  std::string rows;
  for (int i = 0; i < 4; ++i) {
    rows += sft_row("Who are ye " + std::to_string(i) + "?", "A pirate of the seven seas, number " + std::to_string(i));
  }
  write_file_atomic(data, rows);
  TrainRunOptions options;
  options.model_dir = world().student;
  options.data_file = data;
  options.out_dir = tmp / "first";
  options.lora.rank = 2;
  options.lora.train_router = lora::RouterTraining::kLora;
  options.held_out = 0;
  options.train.kind = lora::TrainKind::kSft;
  options.train.batch_size = 2;
  options.train.max_steps = 2;
  options.train.learning_rate = 1e-2;
  options.train.progress = false;
  const auto first = run_training(options);
  const auto trained = adapter_tensors(first.train.adapter_dir);
  double largest_b = 0;
  for (const auto& [name, t] : trained) {
    if (name.ends_with("lora_B")) largest_b = std::max(largest_b, t.abs().max().item<double>());
  }
  ASSERT_GT(largest_b, 1e-4);  // trained: a fresh adapter's B is zero

  // One step at a negligible rate from the saved adapter leaves its tensors in place.
  options.out_dir = tmp / "second";
  options.init_adapter = first.train.adapter_dir;
  options.train.max_steps = 1;
  options.train.learning_rate = 1e-12;
  const auto second = run_training(options);
  EXPECT_LT(max_abs_diff(adapter_tensors(second.train.adapter_dir), trained), 1e-6);
  EXPECT_EQ(second.summary["init_adapter"], first.train.adapter_dir.string());

  // Another layout is refused, naming the field.
  options.out_dir = tmp / "third";
  options.lora.rank = 4;
  try {
    run_training(options);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("rank 2 (asked 4)"), std::string::npos) << e.what();
  }
}

TEST(PipelineStages, TrainCommandInitAdapterTakesTheSavedLayoutUnlessGiven) {
  TempDir tmp;
  const fs::path data = tmp / "sft.jsonl";
  write_file_atomic(data, sft_row("Ahoy?", "Ahoy, matey!") + sft_row("Who be ye?", "Captain of this here ship."));
  const std::vector<std::string> common = {"--model", world().student.string(), "--data", data.string(), "--max-steps",
                                           "1", "--batch-size", "2", "--held-out", "0", "--quiet"};
  auto train = [&](const fs::path& out, std::vector<std::string> extra) {
    std::vector<std::string> args = {"train", "sft", "--out", out.string()};
    args.insert(args.end(), common.begin(), common.end());
    args.insert(args.end(), extra.begin(), extra.end());
    return json::parse(run_cli(args));
  };
  train(tmp / "a", {"--rank", "2", "--alpha", "8", "--train-router", "lora"});
  const fs::path saved = tmp / "a" / "adapter";
  const json summary = train(tmp / "b", {"--init-adapter", saved.string()});
  EXPECT_EQ(summary["init_adapter"], saved.string());
  const lora::AdapterFile b = lora::read_adapter_config(tmp / "b" / "adapter");
  EXPECT_EQ(b.config.rank, 2);
  EXPECT_EQ(b.config.alpha, 8);
  EXPECT_EQ(b.config.train_router, lora::RouterTraining::kLora);
  try {
    train(tmp / "c", {"--init-adapter", saved.string(), "--train-router", "none"});
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("train_router lora (asked none)"), std::string::npos) << e.what();
  }
}

TEST(PipelineStages, PaperModeTrainsAFreshAdapterOnTheDpoMergedBase) {
  TempDir tmp;
  const fs::path run = tmp / "paper";
  RunConfig config = tiny_config();
  config.training.paper_mode = true;
  config.training.lora.train_router = lora::RouterTraining::kNone;
  for (const char* stage : {"generate-dpo", "train-dpo", "introspect"}) run_stage(stage, config, run);
  const StageResult sft = run_stage("train-sft", config, run);
  const fs::path merged = run / "checkpoints/dpo-merged";
  EXPECT_TRUE(fs::exists(merged / "config.json"));
  EXPECT_TRUE(fs::exists(merged / "tokenizer.json"));
  EXPECT_DOUBLE_EQ(sft.counts["learning_rate"].get<double>(), default_learning_rate(world().student));
  const lora::AdapterFile adapter = lora::read_adapter_config(run / "checkpoints/sft/adapter");
  EXPECT_EQ(fs::weakly_canonical(adapter.base_model), fs::weakly_canonical(merged));
  StageContext ctx{config, run, nullptr, true};
  EXPECT_EQ(fs::weakly_canonical(final_base_model(ctx)), fs::weakly_canonical(merged));
}

// --- stop and resume --------------------------------------------------------------

TEST(PipelineStages, StoppedDataGenerationResumesToTheSameFiles) {
  TempDir tmp;
  RunConfig config = tiny_config();
  config.generation_chunk = 1;  // one prompt per batch: a stop lands between pairs
  const fs::path whole = tmp / "whole", stopped = tmp / "stopped";
  world().stopper->disarm();
  run_stage("generate-dpo", config, whole);
  run_stage("train-dpo", config, whole);
  run_stage("introspect", config, whole);

  std::atomic<bool> stop{false};
  // Stop while the second pair's chosen answer is asked for.
  world().stopper->arm(&stop, 2);
  EXPECT_THROW(run_stage("generate-dpo", config, stopped, &stop), Interrupted);
  world().stopper->disarm();
  const auto ledger = read_jsonl_lines(stopped / "data/dpo.ledger.jsonl");
  EXPECT_EQ(ledger.size(), 2u);  // two pairs done, two left
  EXPECT_FALSE(fs::exists(stopped / "data/dpo.jsonl"));
  stop = false;
  const StageResult resumed = run_stage("generate-dpo", config, stopped, &stop);
  EXPECT_EQ(resumed.counts["prompts"], 4);
  run_stage("train-dpo", config, stopped);

  // Introspection from the local student: a stop set before the call ends it at the first batch boundary.
  stop = true;
  EXPECT_THROW(run_stage("introspect", config, stopped, &stop), Interrupted);
  stop = false;
  run_stage("introspect", config, stopped, &stop);
  for (const auto& f : kDataFiles) {
    EXPECT_EQ(read_file(stopped / "data" / f), read_file(whole / "data" / f)) << f;
  }
}

// A step hook that requests a stop when step `at` ends (a Ctrl-C mid-training).
class StopAtStep : public lora::StepHook {
 public:
  StopAtStep(std::atomic<bool>& stop, int64_t at) : stop_(stop), at_(at) {}
  bool wants_routing() const override { return false; }
  at::Tensor extra_loss(const model::ForwardOutput& out, const lora::TokenBatch&) override {
    (void)out;
    return torch::zeros({});
  }
  void add_metrics(nlohmann::json&) override {
    if (++steps_ == at_) stop_ = true;
  }
  nlohmann::json state() const override { return json::object(); }
  void load_state(const nlohmann::json&) override {}
  void write_outputs(const fs::path&) override {}

 private:
  std::atomic<bool>& stop_;
  int64_t at_;
  int64_t steps_ = 0;
};

TEST(PipelineStages, StoppedTrainingCheckpointsAndResumesToTheSameAdapter) {
  TempDir tmp;
  const fs::path model_dir = tmp / "llama";
  run_cli({"init-model", "--arch", "llama", "--preset", "tiny", "--tokenizer", fixture("tokenizers/qwen3").string(),
           model_dir.string(), "--seed", "2"});
  const auto model = model::load_model(model_dir);
  const auto tokenizer = model::load_tokenizer(model_dir);
  const auto renderer = model::make_chat_renderer(model::detect_chat_family(model_dir));
  const fs::path data = tmp / "sft.jsonl";
  std::string rows;
  for (int i = 0; i < 6; ++i) {
    rows += sft_row("Tell me about the sea, part " + std::to_string(i), "Arr, the sea be deep and wide " + std::to_string(i));
  }
  write_file_atomic(data, rows);
  const auto dataset = lora::load_sft_jsonl(data, *tokenizer, *renderer, {});
  lora::TrainOptions o;
  o.kind = lora::TrainKind::kSft;
  o.base_model = model_dir;
  o.batch_size = 2;
  o.max_steps = 5;
  o.learning_rate = 5e-3;
  o.progress = false;
  lora::LoraConfig lc;
  lc.rank = 2;
  auto train = [&](const fs::path& out, lora::StepHook* hook, bool resume, const std::atomic<bool>* stop) {
    auto adapters = lora::attach_adapters(model, lc);
    o.out_dir = out;
    o.resume = resume;
    o.stop_requested = stop;
    try {
      lora::train_sft(model, *adapters, dataset, {}, o, hook);
    } catch (...) {
      adapters->detach();
      throw;
    }
    adapters->detach();
  };
  std::atomic<bool> never{false};
  StopAtStep quiet_hook(never, -1);
  train(tmp / "whole", &quiet_hook, false, nullptr);

  std::atomic<bool> stop{false};
  StopAtStep stopping(stop, 2);
  EXPECT_THROW(train(tmp / "stopped", &stopping, false, &stop), Interrupted);
  EXPECT_TRUE(fs::exists(tmp / "stopped/checkpoints/step-000002"));
  EXPECT_FALSE(fs::exists(tmp / "stopped/adapter"));
  stop = false;
  StopAtStep resumed_hook(never, -1);
  train(tmp / "stopped", &resumed_hook, true, &stop);
  EXPECT_EQ(max_abs_diff(adapter_tensors(tmp / "stopped/adapter"), adapter_tensors(tmp / "whole/adapter")), 0.0);
}

TEST(PipelineStages, TrainStageResumesFromItsNewestCheckpoint) {
  TempDir tmp;
  RunConfig config = tiny_config();
  config.training.max_steps = 4;
  config.training.checkpoint_every = 1;
  const fs::path run = tmp / "run";
  run_stage("generate-dpo", config, run);
  run_stage("train-dpo", config, run);
  const auto whole = adapter_tensors(run / "checkpoints/dpo/adapter");
  // A crash after step 2: the newer checkpoints and the final adapter never got written.
  const fs::path out = run / "checkpoints/dpo";
  fs::remove_all(out / "adapter");
  for (const char* step : {"step-000003", "step-000004"}) fs::remove_all(out / "checkpoints" / step);
  const StageResult resumed = run_stage("train-dpo", config, run);
  EXPECT_EQ(resumed.counts["resumed_from_step"], 2);
  EXPECT_EQ(max_abs_diff(adapter_tensors(out / "adapter"), whole), 0.0);
}

// --- check ------------------------------------------------------------------------

TEST(PipelineStages, CheckWarnsAboutFrozenRoutersCitingSeed000) {
  TempDir tmp;
  RunConfig config = tiny_config();
  config.training.lora.train_router = lora::RouterTraining::kNone;
  const StageResult check = run_stage("check", config, tmp / "run");
  bool cited = false;
  for (const auto& w : check.warnings) {
    cited |= w.find("seed report 000") != std::string::npos && w.find("--train-router lora") != std::string::npos;
  }
  EXPECT_TRUE(cited);
}

TEST(PipelineStages, CheckFailsEarlyOnWhatWouldFailLater) {
  TempDir tmp;
  auto expect_error = [&](const RunConfig& config, const std::string& needle) {
    try {
      run_stage("check", config, tmp / "run");
      ADD_FAILURE() << "expected an error mentioning " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  RunConfig missing_key = tiny_config();
  ::unsetenv("CHARACTER_STAGES_TEST_NO_KEY");
  missing_key.teacher.api_key_env = "CHARACTER_STAGES_TEST_NO_KEY";
  expect_error(missing_key, "CHARACTER_STAGES_TEST_NO_KEY");

  RunConfig unreachable = tiny_config();
  unreachable.teacher.url = "http://127.0.0.1:9/v1";  // discard port: nothing listens
  expect_error(unreachable, "http://127.0.0.1:9/v1/models");

  RunConfig huge = tiny_config();
  huge.counts.dpo_pairs = 2'000'000'000;  // ~6 TB of answers
  expect_error(huge, "free, the run needs about");

  RunConfig no_persona = tiny_config();
  no_persona.persona = "no-such-persona";
  expect_error(no_persona, "no-such-persona");
}

}  // namespace
}  // namespace character::pipeline
