// Training losses (lora/losses.h) against tools/oracle/fixtures_losses.py: chunked
// token log-probs, the SFT loss and the LoRA gradients equal PEFT + transformers with
// plain full-logit autograd; DPO log-probs (policy and adapters-off reference), loss,
// metrics and gradients equal TRL 1.16's DPOTrainer on the same batch. Dense and MoE
// models, unembedding LoRA on (with and without other adapters).
#include "lora/losses.h"

#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <iostream>
#include <limits>

#include "base/error.h"
#include "lora/train_data.h"
#include "model/arch/adapter_hooks.h"
#include "tests/lora/lora_fixtures.h"

namespace character::testing {
namespace {

const char* const kSftCases[] = {"sft_llama_unembed", "sft_qwen3_moe", "sft_qwen3_tied_unembed_only"};
const char* const kDpoCases[] = {"dpo_llama", "dpo_qwen3_moe"};
constexpr double kTolerance = 1e-4;  // relative error, fp32 (issue 3's oracle bound)

// A case of fixtures_losses.py with its adapters attached (same layout as fixtures_lora.py).
struct LossCase {
  LoraCase c;
  std::shared_ptr<lora::Adapters> adapters;

  lora::TokenBatch batch() const { return {c.at("input_ids"), c.at("attention_mask"), c.at("labels")}; }
  at::Tensor final_hidden() {
    model::ForwardInput in;
    in.input_ids = c.at("input_ids");
    in.attention_mask = c.at("attention_mask");
    in.skip_logits = true;
    return c.model->forward(in).final_hidden;
  }
  void zero_grads() {
    for (const auto& p : adapters->named_parameters()) p.tensor.mutable_grad() = at::Tensor();
  }
};

LossCase loss_case(const std::string& name) {
  LossCase lc;
  auto& c = lc.c;
  c.name = name;
  const auto dir = fixture("losses/" + name);
  c.meta = nlohmann::json::parse(read_file(dir / "meta.json"));
  c.adapters = read_tensors(dir / "adapters.safetensors");
  c.ref = read_tensors(dir / "reference.safetensors");
  c.model = model::load_model(dir / "model");
  lc.adapters = attach_oracle_adapters(c);
  return lc;
}

double scalar_error(const at::Tensor& a, const at::Tensor& b) {
  const double x = a.item<double>(), y = b.item<double>();
  return std::abs(x - y) / std::max(std::abs(y), 1e-12);
}

// Every adapter gradient against `expected(name)`; returns the worst relative error.
template <typename Expected>
double check_grads(const LossCase& lc, Expected expected, double tolerance = kTolerance) {
  double worst = 0;
  for (const auto& p : lc.adapters->named_parameters()) {
    if (!p.tensor.grad().defined()) {
      ADD_FAILURE() << p.name << ": no gradient";
      continue;
    }
    const double err = relative_error(p.tensor.grad(), expected(p.name));
    EXPECT_LE(err, tolerance) << p.name;
    worst = std::max(worst, err);
  }
  return worst;
}

std::map<std::string, at::Tensor> take_grads(LossCase& lc) {
  std::map<std::string, at::Tensor> grads;
  for (const auto& p : lc.adapters->named_parameters()) {
    if (p.tensor.grad().defined()) grads[p.name] = p.tensor.grad().clone();
  }
  lc.zero_grads();
  return grads;
}

TEST(SftLoss, TokenLogprobsLossAndGradientsMatchPeftFullLogits) {
  for (const char* name : kSftCases) {
    SCOPED_TRACE(name);
    auto lc = loss_case(name);
    // chunk 4: several chunks over the 16 labelled positions.
    auto logprobs = lora::token_logprobs(*lc.c.model, lc.final_hidden(), lc.c.at("labels"), /*chunk_tokens=*/4);
    const double logprob_err = relative_error(logprobs, lc.c.at("token_logprobs"));
    EXPECT_LE(logprob_err, kTolerance);
    EXPECT_EQ(logprobs.scalar_type(), at::kFloat);

    auto loss = lora::sft_loss(*lc.c.model, lc.final_hidden(), lc.c.at("labels"), /*chunk_tokens=*/4);
    const auto& labels = lc.c.at("labels");
    EXPECT_EQ(loss.tokens, labels.narrow(1, 1, labels.size(1) - 1).ne(-100).sum().item<int64_t>());
    const double loss_err = scalar_error(loss.loss, lc.c.at("loss"));
    EXPECT_LE(loss_err, kTolerance);
    loss.loss.backward();
    const double grad_err = check_grads(lc, [&](const std::string& n) { return lc.c.at("grad." + n); });
    EXPECT_EQ(lc.adapters->named_parameters().size(), lc.c.adapters.size());
    for (const auto& p : lc.c.model->parameters()) EXPECT_FALSE(p.grad().defined());  // the base stays frozen
    std::cout << "  " << name << ": " << loss.tokens << " loss tokens, " << lc.adapters->named_parameters().size()
              << " adapter tensors; relative errors: token log-probs " << logprob_err << ", loss " << loss_err
              << ", worst gradient " << grad_err << "\n";
  }
}

// The chunked function against itself at other chunk sizes and against plain autograd
// through the engine's full [B, T, V] logits (the unchunked computation).
TEST(TokenLogprobs, ChunkedGradientsEqualUnchunkedAndFullLogits) {
  for (const char* name : kSftCases) {
    SCOPED_TRACE(name);
    auto lc = loss_case(name);
    const auto& labels = lc.c.at("labels");

    model::ForwardInput in;
    in.input_ids = lc.c.at("input_ids");
    in.attention_mask = lc.c.at("attention_mask");
    auto logits = lc.c.model->forward(in).logits;  // [B, T, V] fp32
    const int64_t t = labels.size(1);
    auto next = labels.narrow(1, 1, t - 1);
    auto full = torch::nn::functional::cross_entropy(
        logits.narrow(1, 0, t - 1).reshape({-1, logits.size(2)}), next.reshape({-1}),
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
    full.backward();
    auto full_grads = take_grads(lc);

    double worst = 0;
    for (int64_t chunk : {int64_t{1}, int64_t{5}, int64_t{1} << 20}) {
      auto loss = lora::sft_loss(*lc.c.model, lc.final_hidden(), labels, chunk);
      EXPECT_LE(scalar_error(loss.loss, full), 1e-6) << "chunk " << chunk;
      loss.loss.backward();
      worst = std::max(worst, check_grads(lc, [&](const std::string& n) { return full_grads.at(n); }, 1e-5));
      lc.zero_grads();
    }
    std::cout << "  " << name << ": chunks of 1, 5, all vs full logits: worst gradient relative error " << worst
              << "\n";
  }
}

// With only the unembedding LoRA the hidden states need no gradient; the gradient
// still reaches lm_head.lora_A/B (the anchor in token_logprobs), and d/d hidden is
// right when the hidden states are a leaf.
TEST(TokenLogprobs, HiddenStateGradientMatchesFullLogits) {
  auto lc = loss_case("sft_qwen3_tied_unembed_only");
  const auto& labels = lc.c.at("labels");
  auto hidden = lc.final_hidden();
  EXPECT_FALSE(hidden.requires_grad());
  auto leaf = hidden.detach().requires_grad_(true);
  auto plain = leaf.detach().requires_grad_(true);

  lora::sft_loss(*lc.c.model, leaf, labels, /*chunk_tokens=*/3).loss.backward();
  lc.zero_grads();
  const int64_t t = labels.size(1);
  auto logits = lc.c.model->unembed(plain).to(at::kFloat);  // [B, T, V]
  torch::nn::functional::cross_entropy(logits.narrow(1, 0, t - 1).reshape({-1, logits.size(2)}),
                                       labels.narrow(1, 1, t - 1).reshape({-1}),
                                       torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100))
      .backward();
  EXPECT_LE(relative_error(leaf.grad(), plain.grad()), 1e-5);
  // Rows without a label get no gradient.
  EXPECT_EQ(leaf.grad().select(1, t - 1).abs().max().item<double>(), 0.0);
}

// The backward recomputes logits with the adapter switch its forward ran under, even
// when backward() is called after the AdaptersDisabled scope has ended.
TEST(TokenLogprobs, BackwardRecomputesWithTheForwardsAdapterSwitch) {
  auto lc = loss_case("sft_llama_unembed");
  const auto& labels = lc.c.at("labels");
  at::Tensor leaf, loss;
  {
    model::AdaptersDisabled off;
    leaf = lc.final_hidden().detach().requires_grad_(true);
    loss = lora::sft_loss(*lc.c.model, leaf, labels, /*chunk_tokens=*/4).loss;
  }
  loss.backward();
  EXPECT_FALSE(lc.adapters->get("lm_head.lora_B").grad().defined());  // adapters were off: no LoRA in the graph

  auto plain = leaf.detach().requires_grad_(true);
  at::Tensor logits;
  {
    model::AdaptersDisabled off;
    logits = lc.c.model->unembed(plain).to(at::kFloat);
  }
  const int64_t t = labels.size(1);
  torch::nn::functional::cross_entropy(logits.narrow(1, 0, t - 1).reshape({-1, logits.size(2)}),
                                       labels.narrow(1, 1, t - 1).reshape({-1}),
                                       torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100))
      .backward();
  EXPECT_LE(relative_error(leaf.grad(), plain.grad()), 1e-5);
}

// CPU bf16 autocast for a scope, as torch.autocast (nesting, cache cleared on exit).
class CpuAutocast {
 public:
  CpuAutocast() {
    at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCPU, true);
    at::autocast::increment_nesting();
  }
  ~CpuAutocast() {
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(at::kCPU, false);
  }
};

// The backward recomputes under the autocast its forward ran under (bf16 logits), even
// when backward() runs outside it: its gradients are those of plain autograd through the
// same bf16 logits (an fp32 recompute would differ by bf16 rounding, ~1e-2).
TEST(TokenLogprobs, BackwardRecomputesUnderTheForwardsAutocast) {
  auto lc = loss_case("sft_llama_unembed");
  const auto& labels = lc.c.at("labels");
  const int64_t t = labels.size(1);
  auto leaf = lc.final_hidden().detach().requires_grad_(true);
  auto plain = leaf.detach().requires_grad_(true);
  at::Tensor loss, logits;
  {
    CpuAutocast bf16;
    loss = lora::sft_loss(*lc.c.model, leaf, labels, /*chunk_tokens=*/4).loss;
    logits = lc.c.model->unembed(plain);  // [B, T, V]
  }
  ASSERT_EQ(logits.scalar_type(), at::kBFloat16);
  loss.backward();
  auto chunked_grads = take_grads(lc);
  torch::nn::functional::cross_entropy(logits.to(at::kFloat).narrow(1, 0, t - 1).reshape({-1, logits.size(2)}),
                                       labels.narrow(1, 1, t - 1).reshape({-1}),
                                       torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100))
      .backward();
  // Each row's gradient is computed alone: the same bf16 ops, so (near) bit-equal.
  EXPECT_LE(relative_error(leaf.grad(), plain.grad()), 1e-4);
  // The LoRA gradients sum over positions: per chunk in bf16, then across chunks in fp32,
  // against one bf16 sum over all positions; they agree to bf16 precision (2^-8).
  for (const char* name : {"lm_head.lora_A", "lm_head.lora_B"}) {
    EXPECT_LE(relative_error(chunked_grads.at(name), lc.adapters->get(name).grad()), 1e-2) << name;
  }
}

// Delegates to a loaded model and records the largest number of rows unembed() saw.
class RecordingLM : public model::CausalLMImpl {
 public:
  explicit RecordingLM(model::CausalLM inner) : CausalLMImpl(inner->config()), inner_(std::move(inner)) {}
  model::ForwardOutput forward(const model::ForwardInput& input) override { return inner_->forward(input); }
  at::Tensor unembed(const at::Tensor& h) override {
    max_rows = std::max(max_rows, h.numel() / h.size(-1));
    ++calls;
    return inner_->unembed(h);
  }
  int64_t max_rows = 0;
  int64_t calls = 0;

 private:
  model::CausalLM inner_;
};

// Neither the forward nor the backward projects more than one chunk of positions
// ([chunk, V] logits at most), and only labelled positions are projected.
TEST(TokenLogprobs, NeverProjectsMoreThanOneChunk) {
  auto lc = loss_case("sft_llama_unembed");
  auto recording = std::make_shared<RecordingLM>(lc.c.model);
  auto loss = lora::sft_loss(*recording, lc.final_hidden(), lc.c.at("labels"), /*chunk_tokens=*/3);
  EXPECT_EQ(recording->max_rows, 3);
  const int64_t forward_calls = recording->calls;
  EXPECT_EQ(forward_calls, (loss.tokens + 2) / 3);  // ceil(16 / 3) = 6 chunks
  loss.loss.backward();
  EXPECT_EQ(recording->max_rows, 3);
  EXPECT_EQ(recording->calls, 2 * forward_calls);  // one recompute per chunk
}

TEST(TokenLogprobs, EdgeCasesAndBadLabels) {
  auto lc = loss_case("sft_llama_unembed");
  auto hidden = lc.final_hidden();
  auto none = at::full_like(lc.c.at("labels"), -100);
  auto zeros = lora::token_logprobs(*lc.c.model, hidden, none, 4);
  EXPECT_EQ(zeros.abs().max().item<double>(), 0.0);
  auto empty = lora::sft_loss(*lc.c.model, hidden, none, 4);
  EXPECT_EQ(empty.tokens, 0);
  EXPECT_EQ(empty.loss.item<double>(), 0.0);  // not NaN

  auto bad = lc.c.at("labels").clone();
  bad.index_put_({0, 6}, 100000);
  try {
    lora::token_logprobs(*lc.c.model, hidden, bad, 4);
    ADD_FAILURE() << "no error for a label outside the vocabulary";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("labels: token id 100000"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[0, 512)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(lora::token_logprobs(*lc.c.model, hidden, lc.c.at("labels"), 0), ConfigError);
}

TEST(DpoLoss, LogprobsLossMetricsAndGradientsMatchTrl) {
  for (const char* name : kDpoCases) {
    SCOPED_TRACE(name);
    auto lc = loss_case(name);
    lora::DpoForwardOptions forward;
    forward.chunk_tokens = 5;
    forward.capture.router = lc.c.meta.at("moe").get<bool>();
    auto logps = lora::dpo_logps(*lc.c.model, lc.batch(), forward);
    EXPECT_FALSE(logps.reference.requires_grad());
    EXPECT_TRUE(logps.policy.requires_grad());
    EXPECT_EQ(logps.policy_output.routing.empty(), !forward.capture.router);
    const double policy_err = relative_error(logps.policy, lc.c.at("policy_logps"));
    const double reference_err = relative_error(logps.reference, lc.c.at("reference_logps"));
    EXPECT_LE(policy_err, kTolerance);
    EXPECT_LE(reference_err, kTolerance);
    EXPECT_GT((logps.policy - logps.reference).abs().max().item<double>(), 0.1);  // the adapters matter

    lora::DpoOptions options;
    options.beta = lc.c.meta.at("beta").get<double>();
    options.nll_coef = lc.c.meta.at("nll_coef").get<double>();
    auto loss = lora::dpo_loss(logps.policy, logps.reference, logps.chosen_nll, options);
    const double loss_err = scalar_error(loss.loss, lc.c.at("loss"));
    EXPECT_LE(loss_err, kTolerance);
    EXPECT_LE(scalar_error(loss.dpo_loss, lc.c.at("dpo_loss")), kTolerance);
    EXPECT_LE(scalar_error(loss.nll_loss, lc.c.at("nll_loss")), kTolerance);
    EXPECT_DOUBLE_EQ(loss.accuracy, lc.c.at("rewards_accuracies").item<double>());
    EXPECT_NEAR(loss.margin, lc.c.at("rewards_margins").item<double>(), 1e-5);
    EXPECT_NEAR(loss.chosen_reward, lc.c.at("rewards_chosen").item<double>(), 1e-5);
    EXPECT_NEAR(loss.rejected_reward, lc.c.at("rewards_rejected").item<double>(), 1e-5);
    const auto mask = lc.c.at("completion_mask");
    const int64_t pairs = mask.size(0) / 2, t = mask.size(1);
    EXPECT_EQ(logps.chosen_tokens, mask.narrow(0, 0, pairs).narrow(1, 1, t - 1).sum().item<int64_t>());
    EXPECT_EQ(logps.rejected_tokens, mask.narrow(0, pairs, pairs).narrow(1, 1, t - 1).sum().item<int64_t>());

    loss.loss.backward();
    const double grad_err = check_grads(lc, [&](const std::string& n) { return lc.c.at("grad." + n); });
    for (const auto& p : lc.c.model->parameters()) EXPECT_FALSE(p.grad().defined());
    std::cout << "  " << name << ": " << pairs << " pairs, " << lc.adapters->named_parameters().size()
              << " adapter tensors; relative errors: policy log-probs " << policy_err << ", reference "
              << reference_err << ", loss " << loss_err << ", worst gradient " << grad_err << "\n";
  }
}

// The trainer's path: lora::collate_dpo of the oracle's pairs gives TRL's
// DataCollatorForPreference batch, and dpo_logps of it TRL's log-probs.
TEST(DpoLoss, CollatedPairsGiveTrlsBatchAndLogprobs) {
  auto lc = loss_case("dpo_qwen3_moe");
  lora::DpoDataset data;
  for (const auto& pair : lc.c.meta.at("pairs")) {
    data.rows.push_back({pair.at("prompt_ids").get<std::vector<int64_t>>(),
                         pair.at("chosen_ids").get<std::vector<int64_t>>(),
                         pair.at("rejected_ids").get<std::vector<int64_t>>()});
  }
  auto batch = lora::collate_dpo(data, {0, 1, 2}, lc.c.meta.at("pad_id").get<int64_t>());
  EXPECT_TRUE(torch::equal(batch.input_ids, lc.c.at("input_ids")));
  EXPECT_TRUE(torch::equal(batch.attention_mask, lc.c.at("attention_mask")));
  EXPECT_TRUE(torch::equal(batch.labels, lc.c.at("labels")));
  auto logps = lora::dpo_logps(*lc.c.model, batch);
  EXPECT_LE(relative_error(logps.policy, lc.c.at("policy_logps")), kTolerance);
  EXPECT_LE(relative_error(logps.reference, lc.c.at("reference_logps")), kTolerance);
}

// The clamp bounds z = β·Δ: no change for |z| below it, a finite loss with zero
// gradient for a degenerate pair (an infinite log-prob) instead of inf/NaN.
TEST(DpoLoss, LogitClampOnlyBoundsDegeneratePairs) {
  auto policy = torch::tensor({-10.0, -20.0, -30.0, -12.0}, torch::requires_grad());  // Δ = 6 and -3
  auto reference = torch::tensor({-11.0, -19.0, -25.0, -14.0});
  auto nll = torch::tensor(2.0);
  lora::DpoOptions unclamped;
  unclamped.logit_clamp = 1e30;
  auto a = lora::dpo_loss(policy, reference, nll);
  auto b = lora::dpo_loss(policy, reference, nll, unclamped);
  EXPECT_EQ(a.loss.item<double>(), b.loss.item<double>());
  // -log σ(0.6) and -log σ(-0.3), mean, + 0.1 · 2
  const double expected = (std::log1p(std::exp(-0.6)) + std::log1p(std::exp(0.3))) / 2 + 0.2;
  EXPECT_NEAR(a.loss.item<double>(), expected, 1e-6);
  EXPECT_DOUBLE_EQ(a.accuracy, 0.5);

  const double inf = std::numeric_limits<double>::infinity();
  auto degenerate = torch::tensor({-inf, -20.0, -30.0, -12.0}, torch::requires_grad());
  auto c = lora::dpo_loss(degenerate, reference, nll);
  EXPECT_TRUE(std::isfinite(c.loss.item<double>()));
  EXPECT_NEAR(c.dpo_loss.item<double>(), (50.0 + std::log1p(std::exp(-50.0)) + std::log1p(std::exp(0.3))) / 2, 1e-5);
  c.loss.backward();
  EXPECT_TRUE(torch::isfinite(degenerate.grad()).all().item<bool>());
  EXPECT_EQ(degenerate.grad()[0].item<double>(), 0.0);  // saturated pair: no push
}

TEST(DpoLoss, RejectsBadOptionsAndBatches) {
  auto p = torch::zeros({2});
  lora::DpoOptions bad;
  bad.beta = 0;
  try {
    lora::dpo_loss(p, p, torch::tensor(0.0), bad);
    ADD_FAILURE() << "no error for beta 0";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("DPO beta: 0"), std::string::npos) << e.what();
  }
  bad = {};
  bad.logit_clamp = -1;
  EXPECT_THROW(lora::dpo_loss(p, p, torch::tensor(0.0), bad), ConfigError);

  auto lc = loss_case("dpo_llama");
  auto batch = lc.batch();
  batch.input_ids = batch.input_ids.narrow(0, 0, 3);
  batch.attention_mask = batch.attention_mask.narrow(0, 0, 3);
  batch.labels = batch.labels.narrow(0, 0, 3);
  try {
    lora::dpo_logps(*lc.c.model, batch);
    ADD_FAILURE() << "no error for an odd DPO batch";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("DPO batch: 3 rows"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace character::testing
