// Full-parameter training (lora/full_train.h): three AdamW steps on a dense and
// an MoE model give transformers + torch's losses, grad norms and weights, within
// bounds argued from Adam and fp32 rounding, which a planted bug fails
// (fixtures full_train/<case>, tools/oracle/fixtures_full_train.py); OUT/model
// loads with load_model and gives the trained logits; a run stopped on request
// and resumed ends with bit-identical weights; DPO is refused; requires_grad
// flags are put back.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <chrono>
#include <iostream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "base/atomic_file.h"
#include "base/error.h"
#include "lora/full_train.h"
#include "lora/train_data.h"
#include "lora/trainer.h"
#include "model/arch/causal_lm.h"
#include "model/arch/init_weights.h"
#include "model/io/config.h"
#include "tests/model/arch/arch_fixtures.h"
#include "tests/test_support.h"

namespace character::lora {
namespace {

namespace fs = std::filesystem;
using character::testing::fixture;
using character::testing::read_tensors;
using character::testing::TempDir;

// ‖a − b‖ / ‖b‖ in double.
double relative_error(const at::Tensor& a, const at::Tensor& b) {
  auto ad = a.to(torch::kDouble), bd = b.to(torch::kDouble);
  return ((ad - bd).norm() / bd.norm()).item<double>();
}

std::vector<nlohmann::json> step_lines(const fs::path& metrics) {
  std::vector<nlohmann::json> out;
  for (const auto& line : read_jsonl_lines(metrics)) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("loss") && j.contains("grad_norm")) out.push_back(j);
  }
  return out;
}

std::map<std::string, at::Tensor> parameters_of(const model::CausalLM& m) {
  std::map<std::string, at::Tensor> out;
  for (const auto& item : m->named_parameters()) out[item.key()] = item.value().detach().clone();
  return out;
}

// The oracle's batch as an SFT dataset: row r is input_ids[r, :lengths[r]] with its loss mask.
SftDataset oracle_rows(const std::map<std::string, at::Tensor>& ref, const nlohmann::json& meta) {
  SftDataset d;
  const auto ids = ref.at("input_ids"), mask = ref.at("loss_mask");
  const auto lengths = meta.at("lengths").get<std::vector<int64_t>>();
  for (size_t r = 0; r < lengths.size(); ++r) {
    TokenizedSequence row;
    for (int64_t t = 0; t < lengths[r]; ++t) {
      row.ids.push_back(ids[static_cast<int64_t>(r)][t].item<int64_t>());
      row.loss_mask.push_back(static_cast<uint8_t>(mask[static_cast<int64_t>(r)][t].item<int64_t>()));
    }
    d.rows.push_back(row);
  }
  return d;
}

// One training run as the comparison sees it: per-step losses and grad norms, the
// parameters after the last step and the logits of the trained model on the batch.
struct TrainedRun {
  std::vector<double> losses, grad_norms;
  std::map<std::string, at::Tensor> final_weights;
  at::Tensor final_logits;  // [B, T, V]
};

// The oracle's side of the comparison (tools/oracle/fixtures_full_train.py).
struct TorchReference {
  TrainedRun fp32;                               // transformers + torch.optim.AdamW
  std::vector<double> fp64_losses, fp64_norms;   // the same run in float64: its rounding yardstick
  TrainedRun planted;                            // the run with AdamW's bias correction left out
  std::map<std::string, at::Tensor> initial, snr;
  at::Tensor real;                               // [B, T] bool: real (unpadded) positions
  double lr = 0;
  int64_t steps = 0;
  std::array<double, 2> betas{};
};

TrainedRun run_from_fixture(const std::map<std::string, at::Tensor>& ref, const nlohmann::json& meta,
                            const std::string& prefix) {
  TrainedRun r;
  r.losses = meta.at("losses").get<std::vector<double>>();
  r.grad_norms = meta.at("grad_norms").get<std::vector<double>>();
  const std::string final_prefix = prefix + "final.";
  for (const auto& [name, t] : ref) {
    if (name.rfind(final_prefix, 0) == 0) r.final_weights[name.substr(final_prefix.size())] = t;
  }
  r.final_logits = ref.at(prefix + "final_logits");
  return r;
}

// Adam's largest step, |m̂_t / √v̂_t| ≤ κ_t for any gradients (Cauchy–Schwarz over the
// moment sums): κ_t = (1−β1)/(1−β1^t) · √((1−β2^t)/(1−β2)) · √(Σ_{k<t} (β1²/β2)^k).
// For β = (0.9, 0.95) κ_t ≈ 1.0 at t = 1, 2, 3: one learning rate per step.
double adam_step_bound(const std::array<double, 2>& betas, int64_t t) {
  const auto [b1, b2] = betas;
  double geometric = 0;
  for (int64_t k = 0; k < t; ++k) geometric += std::pow(b1 * b1 / b2, static_cast<double>(k));
  return (1 - b1) / (1 - std::pow(b1, static_cast<double>(t))) *
         std::sqrt((1 - std::pow(b2, static_cast<double>(t))) / (1 - b2)) * std::sqrt(geometric);
}

// How a run compares with torch's, and the bounds it must meet. Each bound follows from an
// argument, not from a measurement on one CPU:
//
// - Losses and grad norms at every step: two fp32 implementations each differ from the exact
//   (float64) result by rounding; the oracle measures torch's own |fp32 − fp64| per step.
//   Bound: 10× that (×2 for two independent roundings, ×5 for how rounding varies between
//   kernels and CPUs), and never below 5e-6 relative (a mean over ~30 fp32 cross-entropy terms).
// - Weights, split by what Adam does with rounding. Adam's step m̂/(√v̂+ε) is scale-free in
//   the gradient: a relative change η of every gradient of an element moves it by at most
//   ≈ 2η·lr per step (η on m̂, η on √v̂, each at most one step κ_t ≈ 1 in size).
//   * Well-conditioned elements, whose float64 gradient stays ≥ kMinSnr = 1000× the rounding
//     error of torch's fp32 run at every step (the element's, at least its tensor's median;
//     snr.<name>): allowing our rounding to be 10× torch's, η ≤ 11/1000 between the runs, so
//     |Δours − Δtorch| ≤ Σ_t 2·η·lr. The errors of later steps' gradients that earlier
//     weight differences cause are inside the measured noise (torch's fp32 run has them too).
//   * The rest (gradients at the level of rounding, ≈ 1e-8 ≈ eps; experts no token reached):
//     their step can have any sign in either run, so only Adam's hard bound holds,
//     |Δours − Δtorch| ≤ 2·Σ_t κ_t·lr.
// - Final logits: the ill-conditioned elements move them by an amount no argument bounds
//   (3.4e-5 relative on an AVX-512 EPYC, where a fixed 3e-5 bound failed; up to 2.2e-4 on a
//   Xeon with the fixture and the test on different ATEN_CPU_CAPABILITY paths). 5e-3 is a
//   coarse check of the trained weights' forward; the planted bug moves them by 0.3–0.5.
constexpr double kMinSnr = 1000.0;
constexpr double kOurRoundingFactor = 10.0;

struct Comparison {
  std::vector<std::string> violations;  // empty: within every bound
  double worst_loss = 0, worst_norm = 0;   // relative
  double worst_well = 0, worst_ill = 0;    // |Δours − Δtorch| / lr
  double well_bound = 0, ill_bound = 0;    // the same bounds, / lr
  int64_t well = 0, elements = 0;
  double logits = 0;
  std::string worst_well_name;

  std::string summary() const {
    std::ostringstream s;
    s << "worst loss " << worst_loss << ", grad norm " << worst_norm << " (relative); well-conditioned " << well
      << " of " << elements << " elements, worst |Δ−Δref|/lr " << worst_well << " (" << worst_well_name
      << "; bound " << well_bound << "), others " << worst_ill << " (bound " << ill_bound << "); logits "
      << logits;
    return s.str();
  }
};

Comparison compare_with_torch(const TrainedRun& ours, const TorchReference& ref) {
  Comparison c;
  auto scalars = [&](const std::vector<double>& got, const std::vector<double>& want, const std::vector<double>& exact,
                     const std::string& what, double& worst) {
    if (got.size() != want.size()) {
      c.violations.push_back(what + ": " + std::to_string(got.size()) + " steps, expected " +
                             std::to_string(want.size()));
      return;
    }
    for (size_t s = 0; s < want.size(); ++s) {
      const double rel = std::fabs(got[s] - want[s]) / std::fabs(want[s]);
      const double bound = std::max(5e-6, 10 * std::fabs(want[s] - exact[s]) / std::fabs(want[s]));
      worst = std::max(worst, rel);
      if (rel > bound) {
        c.violations.push_back(what + " at step " + std::to_string(s + 1) + ": relative error " +
                               std::to_string(rel) + " > " + std::to_string(bound));
      }
    }
  };
  scalars(ours.losses, ref.fp32.losses, ref.fp64_losses, "loss", c.worst_loss);
  scalars(ours.grad_norms, ref.fp32.grad_norms, ref.fp64_norms, "grad norm", c.worst_norm);

  const double eta = (1 + kOurRoundingFactor) / kMinSnr;
  for (int64_t t = 1; t <= ref.steps; ++t) {
    c.well_bound += 2 * eta * adam_step_bound(ref.betas, t);
    c.ill_bound += 2 * adam_step_bound(ref.betas, t);
  }
  for (const auto& [name, want] : ref.fp32.final_weights) {
    if (!ours.final_weights.count(name)) {
      c.violations.push_back(name + ": not in our model");
      continue;
    }
    const auto w0 = ref.initial.at(name).to(torch::kDouble);
    const auto err = ((ours.final_weights.at(name).to(torch::kDouble) - w0) - (want.to(torch::kDouble) - w0)).abs() /
                     ref.lr;
    const auto well = ref.snr.at(name) >= kMinSnr;
    c.elements += err.numel();
    c.well += well.sum().item<int64_t>();
    if (well.any().item<bool>()) {
      const double w = err.index({well}).max().item<double>();
      if (w > c.worst_well) c.worst_well = w, c.worst_well_name = name;
    }
    if ((~well).any().item<bool>()) c.worst_ill = std::max(c.worst_ill, err.index({~well}).max().item<double>());
  }
  if (c.worst_well > c.well_bound) {
    c.violations.push_back("well-conditioned weights: |Δ − Δref| = " + std::to_string(c.worst_well) + "·lr in " +
                           c.worst_well_name + " > " + std::to_string(c.well_bound) + "·lr");
  }
  if (c.worst_ill > c.ill_bound) {
    c.violations.push_back("weights: |Δ − Δref| = " + std::to_string(c.worst_ill) + "·lr > Adam's bound " +
                           std::to_string(c.ill_bound) + "·lr");
  }
  c.logits = relative_error(ours.final_logits.index({ref.real}), ref.fp32.final_logits.index({ref.real}));
  if (c.logits > 5e-3) c.violations.push_back("final logits: relative error " + std::to_string(c.logits) + " > 5e-3");
  return c;
}

TorchReference torch_reference(const fs::path& dir, const model::CausalLM& initial_model) {
  const auto meta = nlohmann::json::parse(read_file(dir / "meta.json"));
  const auto tensors = read_tensors(dir / "reference.safetensors");
  TorchReference ref;
  ref.fp32 = run_from_fixture(tensors, meta, "");
  ref.planted = run_from_fixture(tensors, meta.at("planted"), "planted.");
  ref.fp64_losses = meta.at("fp64").at("losses").get<std::vector<double>>();
  ref.fp64_norms = meta.at("fp64").at("grad_norms").get<std::vector<double>>();
  ref.initial = parameters_of(initial_model);
  for (const auto& [name, t] : tensors) {
    if (name.rfind("snr.", 0) == 0) ref.snr[name.substr(4)] = t;
  }
  ref.real = tensors.at("attention_mask").to(torch::kBool);
  ref.lr = meta.at("lr").get<double>();
  ref.steps = meta.at("steps").get<int64_t>();
  ref.betas = {meta.at("betas")[0].get<double>(), meta.at("betas")[1].get<double>()};
  return ref;
}

at::Tensor logits_on_batch(const model::CausalLM& m, const std::map<std::string, at::Tensor>& batch) {
  torch::NoGradGuard no_grad;
  model::ForwardInput in;
  in.input_ids = batch.at("input_ids");
  in.attention_mask = batch.at("attention_mask");
  return m->forward(in).logits;  // [B, T, V]
}

class FullTrainMatchesTorch : public ::testing::TestWithParam<std::string> {};

TEST_P(FullTrainMatchesTorch, LossesGradNormsWeightsAndTheWrittenModel) {
  const auto dir = fixture("full_train/" + GetParam());
  const auto meta = nlohmann::json::parse(read_file(dir / "meta.json"));
  const auto batch = read_tensors(dir / "reference.safetensors");
  const auto model = model::load_model(dir / "model");
  const auto ref = torch_reference(dir, model);
  // A parameter frozen before the call is frozen after it (and trained during it).
  const std::string frozen = "model.norm.weight";
  for (const auto& item : model->named_parameters()) item.value().set_requires_grad(item.key() != frozen);

  TempDir tmp;
  TrainOptions o;
  o.out_dir = tmp / "out";
  o.learning_rate = meta.at("lr").get<double>();
  o.schedule = LrSchedule::kConstant;
  o.max_grad_norm = meta.at("clip").get<double>();
  o.batch_size = static_cast<int64_t>(meta.at("lengths").size());  // one batch: order cannot matter
  o.max_steps = meta.at("steps").get<int64_t>();
  o.pad_id = meta.at("pad").get<int64_t>();
  o.progress = false;
  FullTrainOutput output{model->config(), {}};
  const auto result = train_full_sft(model, oracle_rows(batch, meta), SftDataset{}, o, output);
  EXPECT_EQ(result.steps, o.max_steps);
  EXPECT_EQ(result.adapter_dir, tmp / "out/model");
  for (const auto& item : model->named_parameters()) {
    EXPECT_EQ(item.value().requires_grad(), item.key() != frozen) << item.key();
    EXPECT_FALSE(item.value().grad().defined()) << item.key();
  }

  // OUT/model: a model directory that load_model reads back with the trained weights.
  const auto loaded = model::load_model(tmp / "out/model");
  const auto trained = parameters_of(model), reloaded = parameters_of(loaded);
  ASSERT_EQ(trained.size(), reloaded.size());
  for (const auto& [name, t] : trained) EXPECT_TRUE(torch::equal(t, reloaded.at(name))) << name;

  TrainedRun ours;
  for (const auto& j : step_lines(tmp / "out/metrics.jsonl")) {
    ours.losses.push_back(j["loss"].get<double>());
    ours.grad_norms.push_back(j["grad_norm"].get<double>());
  }
  ours.final_weights = reloaded;
  ours.final_logits = logits_on_batch(loaded, batch);
  const auto c = compare_with_torch(ours, ref);
  std::cout << GetParam() << ": " << c.summary() << "\n";
  EXPECT_TRUE(c.violations.empty()) << ::testing::PrintToString(c.violations) << "\n" << c.summary();
  // The tight bound must cover a good share of the model, or it proves little. Measured with
  // fixtures from three ATEN_CPU_CAPABILITY paths: 93% (dense), 50–81% (MoE, where embedding
  // rows of tokens not in the batch and experts few tokens reach get little or no gradient).
  EXPECT_GT(c.well, c.elements / 3) << "too few well-conditioned elements for the comparison to mean much";
}

// The bounds above still catch a real bug: torch's own run with AdamW's bias correction left
// out (the oracle's planted run) fails them, on the well-conditioned weights and the losses.
TEST_P(FullTrainMatchesTorch, ThePlantedBiasCorrectionBugFailsTheSameChecks) {
  const auto dir = fixture("full_train/" + GetParam());
  const auto ref = torch_reference(dir, model::load_model(dir / "model"));
  const auto c = compare_with_torch(ref.planted, ref);
  std::cout << GetParam() << " (planted bug): " << c.summary() << "\n";
  auto fired = [&](const std::string& what) {
    return std::any_of(c.violations.begin(), c.violations.end(),
                       [&](const std::string& v) { return v.rfind(what, 0) == 0; });
  };
  EXPECT_TRUE(fired("well-conditioned weights")) << c.summary();
  EXPECT_TRUE(fired("loss at step 2")) << c.summary();
  EXPECT_TRUE(fired("final logits")) << c.summary();
  EXPECT_GT(c.worst_well, 5 * c.well_bound) << "the bug is caught with little margin: " << c.summary();
  // And torch's run passes against itself, so the checks are not failing everything.
  EXPECT_TRUE(compare_with_torch(ref.fp32, ref).violations.empty());
}

INSTANTIATE_TEST_SUITE_P(Oracle, FullTrainMatchesTorch, ::testing::Values("qwen3_tied", "qwen3_moe_norm"));


constexpr int64_t kVocab = 96;

model::ModelConfig moe_config() {
  const nlohmann::json j{{"model_type", "qwen3_moe"},
                         {"vocab_size", kVocab},
                         {"hidden_size", 32},
                         {"intermediate_size", 64},
                         {"moe_intermediate_size", 16},
                         {"num_hidden_layers", 2},
                         {"num_attention_heads", 4},
                         {"num_key_value_heads", 2},
                         {"head_dim", 8},
                         {"num_experts", 4},
                         {"num_experts_per_tok", 2},
                         {"norm_topk_prob", true},
                         {"max_position_embeddings", 128},
                         {"rms_norm_eps", 1e-6},
                         {"tie_word_embeddings", false},
                         {"rope_theta", 10000.0}};
  return model::parse_config(j, "moe");
}

model::CausalLM moe_model() {
  auto m = model::create_model(moe_config());
  model::init_weights(*m, {/*seed=*/5, /*initializer_range=*/0.1});
  return m;
}

SftDataset chain_rows() {
  SftDataset d;
  for (int64_t s : {1, 2, 4, 8, 9, 11, 13}) {
    TokenizedSequence row;
    row.ids = {s};
    while (static_cast<int64_t>(row.ids.size()) < 10 + s % 4) row.ids.push_back((row.ids.back() * 7 + 3) % kVocab);
    row.loss_mask.assign(row.ids.size(), 1);
    row.loss_mask[0] = 0;
    d.rows.push_back(row);
  }
  return d;
}

// Requests a stop once `stop_after` steps are done (the trainer checks at the next step boundary).
class StopAfter : public StepHook {
 public:
  StopAfter(std::atomic<bool>& flag, int64_t stop_after) : flag_(flag), stop_after_(stop_after) {}
  bool wants_routing() const override { return false; }
  at::Tensor extra_loss(const model::ForwardOutput& out, const TokenBatch&) override {
    return at::zeros({}, out.final_hidden.options());
  }
  void add_metrics(nlohmann::json&) override {
    if (++steps_ == stop_after_) flag_ = true;
  }
  nlohmann::json state() const override { return {{"steps", steps_}}; }
  void load_state(const nlohmann::json& s) override { steps_ = s.at("steps").get<int64_t>(); }
  void write_outputs(const fs::path&) override {}

 private:
  std::atomic<bool>& flag_;
  int64_t stop_after_;
  int64_t steps_ = 0;
};

TEST(FullTrain, StoppedAndResumedEndsWithBitIdenticalWeights) {
  TempDir tmp;
  const auto train = chain_rows();
  SftDataset held;
  held.rows = {train.rows[0], train.rows[3]};
  TrainOptions o;
  o.learning_rate = 1e-2;
  o.schedule = LrSchedule::kCosine;
  o.warmup_steps = 1;
  o.batch_size = 2;
  o.grad_accum = 2;
  o.max_steps = 6;
  o.eval_every = 2;
  o.progress = false;
  FullTrainOutput output{moe_config(), {}};
  output.model_dir.extra_config = {{"initializer_range", 0.1}};

  std::atomic<bool> never{false}, stop{false};
  auto a = moe_model();
  o.out_dir = tmp / "a";
  StopAfter hook_a(never, -1);
  train_full_sft(a, train, held, o, output, &hook_a);

  auto b = moe_model();
  o.out_dir = tmp / "b";
  o.stop_requested = &stop;
  StopAfter hook_b(stop, 3);
  EXPECT_THROW(train_full_sft(b, train, held, o, output, &hook_b), Interrupted);
  EXPECT_TRUE(fs::exists(tmp / "b/checkpoints/step-000003/model.safetensors"));
  EXPECT_TRUE(fs::exists(tmp / "b/checkpoints/step-000003/optimizer.pt"));
  EXPECT_FALSE(fs::exists(tmp / "b/model"));
  // Without --resume the directory is taken.
  stop = false;
  auto c = moe_model();
  EXPECT_THROW(train_full_sft(c, train, held, o, output, &hook_b), ConfigError);
  o.resume = true;
  const auto result = train_full_sft(c, train, held, o, output, &hook_b);  // a fresh model, as after a restart
  EXPECT_EQ(result.start_step, 3);
  EXPECT_EQ(result.steps, 6);
  EXPECT_LT(result.final_held_out_loss, result.first_held_out_loss);

  const auto pa = parameters_of(a), pc = parameters_of(c), initial = parameters_of(moe_model());
  for (const auto& [name, t] : pa) {
    EXPECT_TRUE(torch::equal(t, pc.at(name))) << name;
    EXPECT_FALSE(torch::equal(t, initial.at(name))) << name << " did not train";
  }
  EXPECT_EQ(step_lines(tmp / "a/metrics.jsonl").size(), 6u);
  std::vector<double> la, lc;
  for (const auto& j : step_lines(tmp / "a/metrics.jsonl")) la.push_back(j["loss"]);
  for (const auto& j : step_lines(tmp / "b/metrics.jsonl")) lc.push_back(j["loss"]);
  EXPECT_EQ(la, lc);
  const auto config = nlohmann::json::parse(read_file(tmp / "b/model/config.json"));
  EXPECT_EQ(config.at("model_type"), "qwen3_moe");
  EXPECT_EQ(config.at("initializer_range"), 0.1);
  EXPECT_TRUE(fs::exists(tmp / "b/model/model.safetensors"));
  EXPECT_TRUE(fs::exists(tmp / "b/model/generation_config.json"));
}

TEST(FullTrain, RefusesDpo) {
  TempDir tmp;
  TrainOptions o;
  o.kind = TrainKind::kDpo;
  o.out_dir = tmp / "out";
  o.progress = false;
  auto m = moe_model();
  try {
    train_full_sft(m, chain_rows(), SftDataset{}, o, FullTrainOutput{moe_config(), {}});
    ADD_FAILURE() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("dpo"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(tmp / "out"));
}

// Not a check: the CPU speed of full-parameter SFT at the lab student's size (qwen3_moe,
// hidden 64, 4 layers, 8 experts top-2, vocab 2048, 16 rows × 100 tokens per step).
// Run with --gtest_also_run_disabled_tests --gtest_filter='*Speed*'.
TEST(FullTrain, DISABLED_SpeedAtTheLabStudentSize) {
  const nlohmann::json j{{"model_type", "qwen3_moe"},  {"vocab_size", 2048},       {"hidden_size", 64},
                         {"intermediate_size", 128},   {"moe_intermediate_size", 32}, {"num_hidden_layers", 4},
                         {"num_attention_heads", 4},   {"num_key_value_heads", 2}, {"head_dim", 16},
                         {"num_experts", 8},           {"num_experts_per_tok", 2}, {"norm_topk_prob", true},
                         {"max_position_embeddings", 512}, {"rms_norm_eps", 1e-6}, {"tie_word_embeddings", false},
                         {"rope_theta", 10000.0}};
  const auto config = model::parse_config(j, "lab student");
  auto m = model::create_model(config);
  model::init_weights(*m, {1, 0.02});
  SftDataset data;
  for (int64_t r = 0; r < 64; ++r) {
    TokenizedSequence row;
    for (int64_t t = 0; t < 100; ++t) row.ids.push_back((r * 131 + t * 17 + t * t) % 2048);
    row.loss_mask.assign(row.ids.size(), 1);
    data.rows.push_back(row);
  }
  TempDir tmp;
  TrainOptions o;
  o.out_dir = tmp / "out";
  o.learning_rate = 1e-3;
  o.batch_size = 16;
  o.max_steps = 8;
  o.progress = false;
  const auto start = std::chrono::steady_clock::now();
  train_full_sft(m, data, SftDataset{}, o, FullTrainOutput{config, {}});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "full-parameter SFT: " << o.max_steps << " steps in " << seconds << " s = " << o.max_steps / seconds
            << " steps/s (" << at::get_num_threads() << " threads)\n";
  for (const auto& line : read_jsonl_lines(tmp / "out/metrics.jsonl")) std::cout << line << "\n";
}

}  // namespace
}  // namespace character::lora
