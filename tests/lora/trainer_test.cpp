// The trainer's parts: learning-rate schedules and AdamW steps equal
// transformers' / torch's (fixture trainer/optimizer.json); the SFT and DPO
// loops learn on a tiny random model; a run resumed from a checkpoint ends
// with bit-identical adapters; health checks stop NaN and exploding losses;
// the step hook is called as lora/trainer.h promises and its state is kept.
// (Real-process resume after SIGKILL: tests/pipeline/train_command_test.cpp.)
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "lora/adapter_file.h"
#include "lora/adapters.h"
#include "lora/optimizer.h"
#include "lora/train_checkpoint.h"
#include "lora/losses.h"
#include "lora/train_data.h"
#include "lora/train_monitor.h"
#include "lora/trainer.h"
#include "model/arch/causal_lm.h"
#include "model/arch/checkpointing.h"
#include "model/arch/init_weights.h"
#include "model/io/config.h"
#include "tests/test_support.h"

namespace character::lora {
namespace {

namespace fs = std::filesystem;
using character::testing::fixture;
using character::testing::TempDir;

constexpr int64_t kVocab = 64;

nlohmann::json tiny_config() {
  return {{"model_type", "llama"},       {"vocab_size", kVocab},     {"hidden_size", 32},
                         {"intermediate_size", 64},     {"num_hidden_layers", 2},   {"num_attention_heads", 4},
                         {"num_key_value_heads", 2},    {"head_dim", 8},            {"max_position_embeddings", 128},
                         {"rms_norm_eps", 1e-6},        {"tie_word_embeddings", false}, {"rope_theta", 10000.0},
                         {"hidden_act", "silu"}};
}

model::CausalLM tiny_model() {
  auto m = model::create_model(model::parse_config(tiny_config(), "tiny"));
  model::init_weights(*m, {/*seed=*/7, /*initializer_range=*/0.1});
  return m;
}

LoraConfig tiny_lora() {
  LoraConfig c;
  c.rank = 8;
  c.alpha = 16;
  c.seed = 3;
  return c;
}

// Sequences of one deterministic "language": token t is followed by (5t + 3) mod V.
std::vector<int64_t> chain(int64_t start, int64_t length) {
  std::vector<int64_t> ids{start};
  while (static_cast<int64_t>(ids.size()) < length) ids.push_back((ids.back() * 5 + 3) % kVocab);
  return ids;
}

SftDataset sft_rows(const std::vector<int64_t>& starts) {
  SftDataset d;
  for (int64_t s : starts) {
    TokenizedSequence row;
    row.ids = chain(s, 12 + s % 5);
    row.loss_mask.assign(row.ids.size(), 1);
    for (int i = 0; i < 3; ++i) row.loss_mask[static_cast<size_t>(i)] = 0;  // a "prompt"
    d.rows.push_back(row);
  }
  return d;
}

TrainOptions sft_options(const fs::path& out) {
  TrainOptions o;
  o.kind = TrainKind::kSft;
  o.out_dir = out;
  // The adapter files name their base model directory, which must hold its config.json.
  o.base_model = out.parent_path() / "base";
  write_file_atomic(o.base_model / "config.json", tiny_config().dump());
  o.learning_rate = 1e-2;
  o.schedule = LrSchedule::kConstant;
  o.batch_size = 2;
  o.max_steps = 30;
  o.progress = false;
  return o;
}

std::map<std::string, at::Tensor> adapter_tensors(const fs::path& dir) { return read_adapter(dir).tensors; }

nlohmann::json optimizer_fixture() {
  return nlohmann::json::parse(read_file(fixture("trainer/optimizer.json")));
}

at::Tensor tensor_of(const nlohmann::json& j) {
  // 2-D nested lists → [rows, cols] float32 (a fresh tensor, not a view)
  std::vector<float> flat;
  for (const auto& row : j) for (const auto& v : row) flat.push_back(v.get<float>());
  return torch::tensor(flat).reshape({static_cast<int64_t>(j.size()), static_cast<int64_t>(j[0].size())}).clone();
}

TEST(LrSchedule, FactorsEqualTransformersSchedules) {
  const auto f = optimizer_fixture();
  ASSERT_EQ(f["schedules"].size(), 5u);
  for (const auto& s : f["schedules"]) {
    OptimizerOptions o;
    o.schedule = parse_lr_schedule(s["schedule"]);
    o.warmup_steps = s["warmup"];
    o.total_steps = s["total"];
    const auto expected = s["factors"].get<std::vector<double>>();
    for (size_t step = 0; step < expected.size(); ++step) {
      EXPECT_NEAR(lr_factor(o, static_cast<int64_t>(step)), expected[step], 1e-12)
          << s.dump() << " step " << step;
    }
  }
  EXPECT_THROW(parse_lr_schedule("exponential"), ConfigError);
}

TEST(Optimizer, AdamWWithTwoGroupsScheduleAndClippingEqualsTorch) {
  const auto f = optimizer_fixture()["adamw"];
  std::vector<at::Tensor> base, router;
  const int64_t base_count = f["base_count"];
  for (size_t i = 0; i < f["initial"].size(); ++i) {
    auto t = tensor_of(f["initial"][i]).requires_grad_(true);
    (static_cast<int64_t>(i) < base_count ? base : router).push_back(t);
  }
  OptimizerOptions o;
  o.learning_rate = f["lr"];
  o.router_lr_multiplier = f["router_lr_multiplier"];
  o.warmup_steps = f["warmup"];
  o.total_steps = f["total"];
  o.schedule = parse_lr_schedule(f["schedule"]);
  o.max_grad_norm = f["clip"];
  Optimizer optimizer(base, router, o);
  std::vector<at::Tensor> all = base;
  all.insert(all.end(), router.begin(), router.end());
  for (int64_t step = 0; step < o.total_steps; ++step) {
    for (size_t i = 0; i < all.size(); ++i) all[i].mutable_grad() = tensor_of(f["grads"][step][i]);
    const auto stats = optimizer.step(step);
    EXPECT_NEAR(stats.grad_norm, f["grad_norms"][step].get<double>(), 1e-5) << "step " << step;
  }
  double max_err = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    max_err = std::max(max_err, (all[i].detach() - tensor_of(f["after"][i])).abs().max().item<double>());
  }
  EXPECT_LT(max_err, 1e-6);
}

TEST(Trainer, SftLowersHeldOutLossAndWritesTheRunDirectory) {
  TempDir tmp;
  auto model = tiny_model();
  auto adapters = attach_adapters(model, tiny_lora());
  const auto train = sft_rows({1, 2, 4, 8, 9, 11, 13, 17});
  // Held-out sequences start mid-way along training chains: the same transitions, other contexts.
  const auto held = sft_rows({chain(1, 8).back(), chain(9, 6).back()});
  auto o = sft_options(tmp / "out");
  o.checkpoint_every = 10;
  o.keep_checkpoints = 2;
  const auto result = train_sft(model, *adapters, train, held, o);
  EXPECT_EQ(result.steps, 30);
  EXPECT_LT(result.final_held_out_loss, 0.5 * result.first_held_out_loss)
      << result.first_held_out_loss << " → " << result.final_held_out_loss;
  // Checkpoints 10, 20 and the final 30, of which the newest two are kept.
  EXPECT_FALSE(fs::exists(tmp / "out/checkpoints/step-000010"));
  EXPECT_TRUE(fs::exists(tmp / "out/checkpoints/step-000020/adapter/adapter_model.safetensors"));
  EXPECT_TRUE(fs::exists(tmp / "out/checkpoints/step-000030/optimizer.pt"));
  EXPECT_TRUE(fs::exists(tmp / "out/checkpoints/step-000030/rng.pt"));
  const auto lines = read_jsonl_lines(tmp / "out/metrics.jsonl");
  ASSERT_EQ(lines.size(), 32u);  // held-out at 0, 30 steps, held-out at 30
  const auto step1 = nlohmann::json::parse(lines[1]);
  for (const char* key : {"step", "loss", "grad_norm", "lr", "tokens", "tokens_per_s"}) EXPECT_TRUE(step1.contains(key)) << key;
  // The final adapter equals the last checkpoint's.
  const auto a = adapter_tensors(tmp / "out/adapter"), b = adapter_tensors(tmp / "out/checkpoints/step-000030");
  for (const auto& [name, t] : a) EXPECT_TRUE(torch::equal(t, b.at(name))) << name;
  // A second run into the same directory needs --resume.
  auto again = attach_adapters(tiny_model(), tiny_lora());
  try {
    train_sft(model, *again, train, held, o);
    ADD_FAILURE() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--resume"), std::string::npos) << e.what();
  }
}

// Counts its calls, adds a small differentiable term, keeps its count in checkpoints.
class CountingHook : public StepHook {
 public:
  bool wants_routing() const override { return false; }
  at::Tensor extra_loss(const model::ForwardOutput& out, const TokenBatch& batch) override {
    ++calls;
    EXPECT_TRUE(out.final_hidden.defined());
    EXPECT_EQ(batch.input_ids.sizes(), batch.labels.sizes());
    return 1e-3 * out.final_hidden.pow(2).mean();
  }
  void add_metrics(nlohmann::json& m) override { m["hook_calls"] = calls; }
  nlohmann::json state() const override { return {{"calls", calls}}; }
  void load_state(const nlohmann::json& s) override { calls = s.at("calls").get<int64_t>(), loaded = true; }
  void write_outputs(const fs::path& dir) override { write_file_atomic(dir / "coverage.json", "{}"); }
  int64_t calls = 0;
  bool loaded = false;
};

TEST(Trainer, ResumedFromACheckpointEndsWithBitIdenticalAdaptersAndHookState) {
  TempDir tmp;
  const auto train = sft_rows({1, 2, 4, 8, 9, 11, 13});
  const auto held = sft_rows({20});
  auto o = sft_options(tmp / "a");
  o.max_steps = 8;
  o.grad_accum = 2;
  o.schedule = LrSchedule::kCosine;
  o.warmup_steps = 2;
  o.checkpoint_every = 4;
  o.keep_checkpoints = 0;
  CountingHook hook_a;
  {
    auto model = tiny_model();
    auto adapters = attach_adapters(model, tiny_lora());
    train_sft(model, *adapters, train, held, o, &hook_a);
  }
  EXPECT_EQ(hook_a.calls, 16);  // one per micro-batch
  EXPECT_TRUE(fs::exists(tmp / "a/coverage.json"));
  EXPECT_TRUE(fs::exists(tmp / "a/checkpoints/step-000004/coverage.json"));

  // Run b: only a's step-4 checkpoint and the metrics up to it exist, as after a kill.
  fs::create_directories(tmp / "b/checkpoints");
  fs::copy(tmp / "a/checkpoints/step-000004", tmp / "b/checkpoints/step-000004", fs::copy_options::recursive);
  fs::copy_file(tmp / "a/metrics.jsonl", tmp / "b/metrics.jsonl");
  // A checkpoint whose write was killed half-way is never taken for one.
  write_file_atomic(tmp / "b/checkpoints/.tmp-step-000006/adapter/adapter_config.json", "{");
  o.out_dir = tmp / "b";
  o.resume = true;
  CountingHook hook_b;
  auto model = tiny_model();
  auto adapters = attach_adapters(model, tiny_lora());
  const auto result = train_sft(model, *adapters, train, held, o, &hook_b);
  EXPECT_EQ(result.start_step, 4);
  EXPECT_TRUE(hook_b.loaded);
  EXPECT_EQ(hook_b.calls, 16);
  const auto a = adapter_tensors(tmp / "a/adapter"), b = adapter_tensors(tmp / "b/adapter");
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) EXPECT_TRUE(torch::equal(t, b.at(name))) << name;
  // Metrics: b's file has each step once, with a's losses.
  auto losses = [](const fs::path& file) {
    std::vector<double> out;
    for (const auto& l : read_jsonl_lines(file)) {
      auto j = nlohmann::json::parse(l);
      if (j.contains("loss")) out.push_back(j["loss"]);
    }
    return out;
  };
  EXPECT_EQ(losses(tmp / "a/metrics.jsonl"), losses(tmp / "b/metrics.jsonl"));

  EXPECT_FALSE(fs::exists(tmp / "b/checkpoints/.tmp-step-000006"));  // removed by the next checkpoint write
  // Resuming with other settings names the setting.
  o.out_dir = tmp / "a";
  o.learning_rate = 5e-3;
  auto other = attach_adapters(tiny_model(), tiny_lora());
  try {
    train_sft(model, *other, train, held, o);
    ADD_FAILURE() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("learning_rate"), std::string::npos) << e.what();
  }
  // A checkpoint with a missing file is a CheckpointError naming it.
  fs::remove(tmp / "a/checkpoints/step-000008/optimizer.pt");
  {
    auto o2 = o;
    o2.learning_rate = 1e-2;
    o2.out_dir = tmp / "a";
    auto again = attach_adapters(tiny_model(), tiny_lora());
    try {
      train_sft(model, *again, train, held, o2);
      ADD_FAILURE() << "expected CheckpointError";
    } catch (const CheckpointError& e) {
      EXPECT_NE(std::string(e.what()).find("optimizer.pt"), std::string::npos) << e.what();
    }
  }
}

// Issue 14: resuming a run that had already finished appended its final held-out line
// again; and a negative position in trainer_state.json was read before the batch order.
TEST(Trainer, ResumingAFinishedRunChangesNothingAndBadStateIsACheckpointError) {
  TempDir tmp;
  const auto train = sft_rows({1, 2, 4, 8});
  const auto held = sft_rows({20});
  auto o = sft_options(tmp / "out");
  o.max_steps = 4;
  o.checkpoint_every = 2;
  {
    auto model = tiny_model();
    auto adapters = attach_adapters(model, tiny_lora());
    train_sft(model, *adapters, train, held, o);
  }
  const auto before = read_jsonl_lines(tmp / "out/metrics.jsonl");
  const auto adapter_before = adapter_tensors(tmp / "out/adapter");
  o.resume = true;
  for (int again = 0; again < 2; ++again) {
    auto model = tiny_model();
    auto adapters = attach_adapters(model, tiny_lora());
    const auto result = train_sft(model, *adapters, train, held, o);
    EXPECT_EQ(result.start_step, 4);
    EXPECT_EQ(result.steps, 4);
    EXPECT_EQ(read_jsonl_lines(tmp / "out/metrics.jsonl"), before) << "resume " << again;
  }
  for (const auto& [name, t] : adapter_tensors(tmp / "out/adapter")) EXPECT_TRUE(torch::equal(t, adapter_before.at(name)));

  const auto state_file = tmp / "out/checkpoints/step-000004/trainer_state.json";
  auto state = nlohmann::json::parse(read_file(state_file));
  state["position"] = -3;
  write_file_atomic(state_file, state.dump());
  auto model = tiny_model();
  auto adapters = attach_adapters(model, tiny_lora());
  try {
    train_sft(model, *adapters, train, held, o);
    ADD_FAILURE() << "expected CheckpointError";
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("position is -3, expected a non-negative integer"), std::string::npos)
        << e.what();
  }
}

TEST(Trainer, NanLossStopsTheRunBeforeAnyUpdateAndWritesNoAdapter) {
  TempDir tmp;
  auto model = tiny_model();
  auto adapters = attach_adapters(model, tiny_lora());
  {
    torch::NoGradGuard no_grad;
    adapters->named_parameters().front().tensor.fill_(std::numeric_limits<float>::quiet_NaN());
  }
  const auto train = sft_rows({1, 2, 3, 4});
  try {
    train_sft(model, *adapters, train, SftDataset{}, sft_options(tmp / "out"));
    ADD_FAILURE() << "expected TrainingError";
  } catch (const TrainingError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("step 1"), std::string::npos) << m;
    EXPECT_NE(m.find("nan"), std::string::npos) << m;
    EXPECT_EQ(e.exit_code(), 7);
  }
  EXPECT_FALSE(fs::exists(tmp / "out/adapter"));
  EXPECT_FALSE(fs::exists(tmp / "out/checkpoints"));
}

TEST(TrainMonitor, ExplodingLossAfterWarmupIsATrainingError) {
  MonitorOptions mo;
  mo.total_steps = 100;
  mo.warmup_steps = 5;
  mo.progress = false;
  TrainMonitor monitor(mo);
  EXPECT_THROW(monitor.check_loss(1, std::numeric_limits<double>::infinity()), TrainingError);
  for (int64_t step = 1; step <= 12; ++step) {
    monitor.check_loss(step, 2.0);
    monitor.record_step({{"step", step}, {"loss", 2.0}, {"grad_norm", 1.0}, {"lr", 1e-3}, {"tokens", 10}});
  }
  monitor.check_loss(13, 19.0);  // 9.5x the median: allowed
  try {
    monitor.check_loss(13, 25.0);
    ADD_FAILURE() << "expected TrainingError";
  } catch (const TrainingError& e) {
    EXPECT_NE(std::string(e.what()).find("exploded"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("median 2"), std::string::npos) << e.what();
  }
  // The state carries the history: a restored monitor checks the same way.
  TrainMonitor restored(mo);
  restored.load_state(monitor.state());
  EXPECT_THROW(restored.check_loss(13, 25.0), TrainingError);
}

TEST(TrainMonitor, WarnsOnceWhenDpoAccuracyIsStuckOrTheMarginExplodes) {
  MonitorOptions mo;
  mo.total_steps = 100;
  mo.dpo = true;
  mo.progress = false;
  TrainMonitor stuck(mo);
  for (int64_t step = 1; step <= 40; ++step) {
    stuck.record_step({{"step", step}, {"loss", 0.69}, {"grad_norm", 1.0}, {"lr", 1e-3}, {"tokens", 10},
                       {"dpo_accuracy", 0.5}, {"dpo_margin", 0.0}});
  }
  ASSERT_EQ(stuck.warnings().size(), 1u);
  EXPECT_NE(stuck.warnings()[0].find("no better than chance"), std::string::npos);
  TrainMonitor drifting(mo);
  for (int64_t step = 1; step <= 40; ++step) {
    drifting.record_step({{"step", step}, {"loss", 1e-9}, {"grad_norm", 1.0}, {"lr", 1e-3}, {"tokens", 10},
                          {"dpo_accuracy", 1.0}, {"dpo_margin", 5.0 * static_cast<double>(step)}});
  }
  ASSERT_EQ(drifting.warnings().size(), 1u);
  EXPECT_NE(drifting.warnings()[0].find("trivially"), std::string::npos);
  TrainMonitor healthy(mo);
  for (int64_t step = 1; step <= 40; ++step) {
    healthy.record_step({{"step", step}, {"loss", 0.5}, {"grad_norm", 1.0}, {"lr", 1e-3}, {"tokens", 10},
                         {"dpo_accuracy", 0.75}, {"dpo_margin", 1.0}});
  }
  EXPECT_TRUE(healthy.warnings().empty());
}

DpoDataset dpo_rows(const std::vector<int64_t>& starts) {
  DpoDataset d;
  for (int64_t s : starts) {
    DpoPair p;
    p.prompt = chain(s, 4);
    p.chosen = chain((p.prompt.back() * 5 + 3) % kVocab, 6);  // continues the chain
    p.rejected = {(s * 7 + 1) % kVocab, (s * 11 + 2) % kVocab, (s * 13 + 5) % kVocab, 9, 31, 2};
    d.rows.push_back(p);
  }
  return d;
}

TEST(Trainer, DpoRaisesTheChosenOverRejectedMargin) {
  TempDir tmp;
  auto model = tiny_model();
  auto adapters = attach_adapters(model, tiny_lora());
  auto o = sft_options(tmp / "out");
  o.kind = TrainKind::kDpo;
  o.learning_rate = 1e-2;
  o.max_steps = 25;
  const auto result =
      train_dpo(model, *adapters, dpo_rows({1, 2, 5, 8, 10, 12}), dpo_rows({chain(1, 7).back(), chain(8, 5).back()}), o);
  // Before training the policy is the reference (B = 0): margin 0, accuracy 0.
  const auto first = nlohmann::json::parse(read_jsonl_lines(tmp / "out/metrics.jsonl").front());
  EXPECT_EQ(first["step"], 0);
  EXPECT_DOUBLE_EQ(first["held_out"]["dpo_margin"].get<double>(), 0.0);
  EXPECT_GT(result.final_dpo_margin, 0.5);
  EXPECT_EQ(result.final_dpo_accuracy, 1.0);
  EXPECT_THROW(train_sft(model, *adapters, SftDataset{}, SftDataset{}, o), ConfigError);  // kind mismatch
}


// Gradients of every adapter tensor (router LoRA included, reached through the
// captured router logits) with and without per-layer activation checkpointing.
std::map<std::string, at::Tensor> moe_gradients(bool checkpointing) {
  const nlohmann::json j{{"model_type", "qwen3_moe"},  {"vocab_size", kVocab},       {"hidden_size", 32},
                         {"intermediate_size", 48},    {"moe_intermediate_size", 16}, {"num_hidden_layers", 2},
                         {"num_attention_heads", 4},   {"num_key_value_heads", 2},  {"head_dim", 8},
                         {"num_experts", 4},           {"num_experts_per_tok", 2},  {"norm_topk_prob", true},
                         {"decoder_sparse_step", 1},   {"max_position_embeddings", 128}, {"rms_norm_eps", 1e-6},
                         {"tie_word_embeddings", false}, {"rope_theta", 10000.0}, {"hidden_act", "silu"}};
  auto model = model::create_model(model::parse_config(j, "tiny_moe"));
  model::init_weights(*model, {/*seed=*/11, /*initializer_range=*/0.1});
  auto config = tiny_lora();
  config.train_router = RouterTraining::kLora;
  auto adapters = attach_adapters(model, config);
  {
    torch::NoGradGuard no_grad;  // B ≠ 0 so every factor gets a gradient
    torch::manual_seed(123);
    for (const auto& p : adapters->named_parameters()) p.tensor.normal_(0, 0.05);
  }
  auto data = sft_rows({1, 5, 9});
  const auto batch = collate_sft(data, {0, 1, 2}, /*pad_id=*/0);
  std::optional<model::LayerCheckpointing> on;
  if (checkpointing) on.emplace();
  model::ForwardInput in;
  in.input_ids = batch.input_ids;
  in.attention_mask = batch.attention_mask;
  in.skip_logits = true;
  in.capture.router = true;
  auto out = model->forward(in);
  auto router = at::zeros({}, at::kFloat);
  for (const auto& r : out.routing) router = router + r.router_logits.pow(2).mean();
  auto loss = sft_loss(*model, out.final_hidden, batch.labels).loss + 0.1 * router;
  loss.backward();
  std::map<std::string, at::Tensor> grads;
  for (const auto& p : adapters->named_parameters()) grads[p.name] = p.tensor.grad().clone();
  return grads;
}

TEST(ActivationCheckpointing, GivesTheSameAdapterGradientsRouterIncluded) {
  const auto plain = moe_gradients(false), checkpointed = moe_gradients(true);
  ASSERT_EQ(plain.size(), checkpointed.size());
  double max_rel = 0;
  for (const auto& [name, g] : plain) {
    ASSERT_TRUE(checkpointed.at(name).defined()) << name;
    const double scale = g.abs().max().item<double>();
    EXPECT_GT(scale, 0) << name;
    const double rel = (g - checkpointed.at(name)).abs().max().item<double>() / scale;
    EXPECT_LT(rel, 1e-5) << name;
    max_rel = std::max(max_rel, rel);
  }
  EXPECT_LT(max_rel, 1e-5);
  EXPECT_TRUE(plain.count("model.layers.0.mlp.gate.lora_B"));
}

}  // namespace
}  // namespace character::lora
