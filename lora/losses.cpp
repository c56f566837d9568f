#include "lora/losses.h"

#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/functions/accumulate_grad.h>
#include <torch/torch.h>

#include <algorithm>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "base/error.h"
#include "lora/train_data.h"
#include "model/arch/adapter_hooks.h"

namespace character::lora {
namespace {

constexpr int64_t kIgnoreIndex = -100;  // transformers' ignore_index

// The model, kept alive by the autograd node until its backward has run
// (AutogradContext::saved_data holds IValues only).
struct ModelHolder : torch::CustomClassHolder {
  explicit ModelHolder(model::CausalLM m) : model(std::move(m)) {}
  model::CausalLM model;
};

// log p(target) of each row: log_softmax in fp32 at the target, as
// log_softmax(logits).gather(target) = logits[target] − logsumexp(logits).
// in: h [n, D] (model dtype), targets [n]; out: [n] fp32
at::Tensor chunk_logprobs(model::CausalLMImpl& model, const at::Tensor& h, const at::Tensor& targets) {
  auto logits = model.unembed(h).to(at::kFloat);                     // [n, V] fp32
  auto picked = logits.gather(1, targets.unsqueeze(1)).squeeze(1);   // [n]
  return picked - at::logsumexp(logits, /*dim=*/{1});                // [n]
}

// log p(target) of each row from fp32 logits that it overwrites (no [n, V]
// temporaries beyond them): logits[target] − (max + log Σ exp(logits − max)), the
// formula of at::logsumexp. With `leave_gradient`, `logits` ends up holding
// d log p(target) / d logits = onehot(target) − softmax(logits).
// in: logits [n, V] fp32 (owned, overwritten), targets [n]; out: [n] fp32
at::Tensor logprobs_in_place(at::Tensor& logits, const at::Tensor& targets, bool leave_gradient) {
  auto t = targets.unsqueeze(1);                                  // [n, 1]
  auto picked = logits.gather(1, t).squeeze(1);                   // [n]
  auto max = logits.amax(/*dim=*/{1}, /*keepdim=*/true);            // [n, 1]
  logits.sub_(max).exp_();                                        // [n, V] exp(logits − max)
  auto sum = logits.sum(/*dim=*/{1}, /*keepdim=*/true);           // [n, 1]
  auto logprobs = picked - (max + sum.log()).squeeze(1);          // [n]
  if (leave_gradient) {
    logits.mul_(sum.reciprocal().neg_());                         // −softmax, in one pass
    logits.scatter_add_(1, t, at::ones_like(t, logits.options()));  // + onehot(target)
  }
  return logprobs;
}

// True when the autograd graph of `out` reaches a leaf other than `input`: the
// unembedding has trainable tensors (its LoRA), whose gradients need the per-token
// weights that only the backward knows.
bool reaches_other_leaves(const at::Tensor& out, const at::Tensor& input) {
  std::vector<torch::autograd::Node*> stack{out.grad_fn().get()};
  std::unordered_set<torch::autograd::Node*> seen;
  while (!stack.empty()) {
    auto* node = stack.back();
    stack.pop_back();
    if (node == nullptr || !seen.insert(node).second) continue;
    if (auto* leaf = dynamic_cast<torch::autograd::AccumulateGrad*>(node)) {
      if (!leaf->variable.is_same(input)) return true;
      continue;
    }
    for (const auto& edge : node->next_edges()) stack.push_back(edge.function.get());
  }
  return false;
}

// CUDA/CPU autocast as the forward saw it, re-entered for the backward's recompute
// (autograd runs backward on its own thread, outside the caller's autocast scope),
// as torch.utils.checkpoint does.
struct AutocastState {
  bool cuda = false, cpu = false;
  at::ScalarType cuda_dtype = at::kBFloat16, cpu_dtype = at::kBFloat16;

  static AutocastState current() {
    return {at::autocast::is_autocast_enabled(at::kCUDA), at::autocast::is_autocast_enabled(at::kCPU),
            at::autocast::get_autocast_dtype(at::kCUDA), at::autocast::get_autocast_dtype(at::kCPU)};
  }
  void apply() const {
    at::autocast::set_autocast_enabled(at::kCUDA, cuda);
    at::autocast::set_autocast_enabled(at::kCPU, cpu);
    at::autocast::set_autocast_dtype(at::kCUDA, cuda_dtype);
    at::autocast::set_autocast_dtype(at::kCPU, cpu_dtype);
  }
};

class AutocastScope {
 public:
  explicit AutocastScope(const AutocastState& state)
      : previous_(AutocastState::current()), nested_(state.cuda || state.cpu) {
    state.apply();
    if (nested_) at::autocast::increment_nesting();
  }
  // Like leaving torch.autocast: the cast cache (low-precision copies of fp32 leaves such
  // as the LoRA factors) goes with the outermost scope, so no stale copy outlives an
  // optimizer step.
  ~AutocastScope() {
    if (nested_ && at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    previous_.apply();
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  AutocastState previous_;
  bool nested_;
};

// Token log-probs of M labelled positions, `chunk` rows at a time, keeping no logits:
// backward recomputes each chunk's [chunk, V] logits with grad enabled and runs a
// nested backward through them (reentrant checkpointing), which sends the gradient
// to the rows and accumulates it into the unembedding's trainable tensors.
class ChunkedTokenLogprobs : public torch::autograd::Function<ChunkedTokenLogprobs> {
 public:
  // in: rows [M, D], targets [M]; anchor: a scalar of the unembedding's graph that
  //     ties this node to it when the rows need no gradient (see token_logprobs).
  // out: [M] fp32
  //
  // Fast path (`rows_need_grad` and an unembedding with nothing trainable, the usual
  // case): log p(target_t) depends on row t alone, so its gradient is one [D] vector
  // per row, J_t = (onehot − softmax)·W, computed here from the chunk's logits while
  // they exist; the backward is then grad_t · J_t, with no recompute. Otherwise (the
  // unembedding LoRA, whose gradient sums over positions with the backward's weights)
  // the backward recomputes each chunk.
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& rows, const at::Tensor& targets,
                            const std::optional<at::Tensor>& anchor, const model::CausalLM& model, int64_t chunk,
                            bool rows_need_grad) {
    const int64_t m = rows.size(0);
    auto out = at::empty({m}, rows.options().dtype(at::kFloat));  // [M]
    at::Tensor jacobian;                                           // [M, D] fast path only
    bool fast = rows_need_grad && m > 0;
    for (int64_t start = 0; start < m; start += chunk) {
      const int64_t n = std::min(chunk, m - start);
      const auto chunk_targets = targets.narrow(0, start, n);
      if (!fast) {
        torch::NoGradGuard no_grad;
        auto logits = model->unembed(rows.narrow(0, start, n)).to(at::kFloat);  // [n, V] fp32
        if (logits.is_same(rows)) logits = logits.clone();  // never overwrite the input
        out.narrow(0, start, n).copy_(logprobs_in_place(logits, chunk_targets, /*leave_gradient=*/false));
        continue;
      }
      torch::AutoGradMode grad_on(true);
      auto h = rows.narrow(0, start, n).detach().requires_grad_(true);  // [n, D] leaf
      auto logits = model->unembed(h);                                  // [n, V] model dtype
      if (start == 0 && reaches_other_leaves(logits, h)) {
        fast = false;  // unembedding LoRA: the recompute path for every chunk
        torch::NoGradGuard no_grad;
        auto work = logits.detach().to(at::kFloat).clone();  // [n, V] fp32, owned
        out.narrow(0, start, n).copy_(logprobs_in_place(work, chunk_targets, /*leave_gradient=*/false));
        continue;
      }
      at::Tensor work = logits.detach().to(at::kFloat);  // [n, V] fp32; aliases logits when fp32 (the
                                                         // linear's backward needs only its weight)
      out.narrow(0, start, n).copy_(logprobs_in_place(work, chunk_targets, /*leave_gradient=*/true));
      auto j = torch::autograd::grad({logits}, {h}, {work.to(logits.scalar_type())})[0];  // [n, D]
      if (!jacobian.defined()) jacobian = at::empty({m, rows.size(1)}, j.options());
      jacobian.narrow(0, start, n).copy_(j);
    }
    ctx->save_for_backward({fast ? jacobian : rows, targets});
    ctx->saved_data["fast"] = fast;
    ctx->saved_data["model"] = at::IValue::make_capsule(c10::make_intrusive<ModelHolder>(model));
    ctx->saved_data["chunk"] = chunk;
    ctx->saved_data["adapters_enabled"] = model::adapters_enabled();
    const auto autocast = AutocastState::current();
    ctx->saved_data["autocast_cuda"] = autocast.cuda;
    ctx->saved_data["autocast_cpu"] = autocast.cpu;
    ctx->saved_data["autocast_cuda_dtype"] = static_cast<int64_t>(autocast.cuda_dtype);
    ctx->saved_data["autocast_cpu_dtype"] = static_cast<int64_t>(autocast.cpu_dtype);
    const bool has_anchor = anchor.has_value() && anchor->defined();
    ctx->saved_data["has_anchor"] = has_anchor;
    if (has_anchor) ctx->saved_data["anchor_dtype"] = static_cast<int64_t>(anchor->scalar_type());
    return out;
  }

  // in: grads[0] [M] d loss / d out; out: d loss / d rows [M, D], then one
  // (undefined or zero) entry per other forward argument.
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& rows = saved[0];
    const at::Tensor& targets = saved[1];
    const auto& grad_out = grads[0];  // [M] fp32
    auto holder = ctx->saved_data["model"].toCapsule();
    auto& model = *static_cast<ModelHolder*>(holder.get())->model;
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const bool rows_need_grad = ctx->needs_input_grad(0);

    at::Tensor anchor_grad;
    if (ctx->saved_data["has_anchor"].toBool()) {
      const auto dtype = static_cast<at::ScalarType>(ctx->saved_data["anchor_dtype"].toInt());
      anchor_grad = at::zeros({}, rows.options().dtype(dtype));
    }
    if (ctx->saved_data["fast"].toBool()) {  // rows = J [M, D]: d out_t / d row_t
      if (!grad_out.defined() || !rows_need_grad) {
        return {at::Tensor(), at::Tensor(), anchor_grad, at::Tensor(), at::Tensor(), at::Tensor()};
      }
      auto grad_rows = (rows.to(at::kFloat) * grad_out.unsqueeze(1)).to(rows.scalar_type());  // [M, D]
      return {grad_rows, at::Tensor(), anchor_grad, at::Tensor(), at::Tensor(), at::Tensor()};
    }
    at::Tensor grad_rows = rows_need_grad ? at::zeros_like(rows) : at::Tensor();  // [M, D]
    if (!grad_out.defined()) return {grad_rows, at::Tensor(), anchor_grad, at::Tensor(), at::Tensor(), at::Tensor()};

    // Recompute in the state the forward ran in: grad on (backward runs with it
    // off), the same adapter switch and autocast.
    torch::AutoGradMode grad_on(true);
    std::optional<model::AdaptersDisabled> adapters_off;
    if (!ctx->saved_data["adapters_enabled"].toBool()) adapters_off.emplace();
    AutocastState autocast;
    autocast.cuda = ctx->saved_data["autocast_cuda"].toBool();
    autocast.cpu = ctx->saved_data["autocast_cpu"].toBool();
    autocast.cuda_dtype = static_cast<at::ScalarType>(ctx->saved_data["autocast_cuda_dtype"].toInt());
    autocast.cpu_dtype = static_cast<at::ScalarType>(ctx->saved_data["autocast_cpu_dtype"].toInt());
    AutocastScope autocast_scope(autocast);

    const int64_t m = rows.size(0);
    for (int64_t start = 0; start < m; start += chunk) {
      const int64_t n = std::min(chunk, m - start);
      auto h = rows.narrow(0, start, n).detach().requires_grad_(rows_need_grad);  // [n, D] leaf
      auto logprobs = chunk_logprobs(model, h, targets.narrow(0, start, n));     // [n]
      if (!logprobs.requires_grad()) continue;  // nothing trainable behind this chunk
      torch::autograd::backward({logprobs}, {grad_out.narrow(0, start, n)});
      if (rows_need_grad) grad_rows.narrow(0, start, n).copy_(h.grad());
    }
    return {grad_rows, at::Tensor(), anchor_grad, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

model::CausalLM shared_model(model::CausalLMImpl& model) {
  auto shared = std::dynamic_pointer_cast<model::CausalLMImpl>(model.shared_from_this());
  TORCH_CHECK(shared, "token_logprobs: the model is not a CausalLMImpl held by a shared_ptr");
  return shared;
}

}  // namespace

at::Tensor token_logprobs(model::CausalLMImpl& model, const at::Tensor& final_hidden, const at::Tensor& labels,
                          int64_t chunk_tokens) {
  TORCH_CHECK(final_hidden.dim() == 3, "token_logprobs: final_hidden must be [B, T, D], got ", final_hidden.sizes());
  TORCH_CHECK(labels.dim() == 2 && labels.size(0) == final_hidden.size(0) && labels.size(1) == final_hidden.size(1),
              "token_logprobs: labels must be [B, T] = ", final_hidden.sizes().slice(0, 2), ", got ", labels.sizes());
  if (chunk_tokens < 1) {
    throw ConfigError("loss chunk size: " + std::to_string(chunk_tokens) + " tokens, expected ≥ 1");
  }
  const int64_t batch = final_hidden.size(0), steps = final_hidden.size(1), hidden = final_hidden.size(2);
  const auto device = final_hidden.device();
  auto out = at::zeros({batch, steps}, final_hidden.options().dtype(at::kFloat));  // [B, T]
  if (steps < 2) return out;  // no position has a next token

  // 1. The positions whose next token is a label (the shift): position t predicts labels[t+1].
  auto next = labels.narrow(1, 1, steps - 1).to(device, at::kLong);         // [B, T-1]
  auto index = next.reshape({-1}).ne(kIgnoreIndex).nonzero().squeeze(1);   // [M]
  auto targets = next.reshape({-1}).index_select(0, index);                 // [M]
  auto rows = final_hidden.narrow(1, 0, steps - 1).reshape({-1, hidden}).index_select(0, index);  // [M, D]
  const int64_t m = index.size(0);
  if (m > 0) {
    const int64_t vocab = model.config().vocab_size;
    const auto range = at::stack({targets.min(), targets.max()}).cpu();
    const int64_t lo = range[0].item<int64_t>(), hi = range[1].item<int64_t>();
    if (lo < 0 || hi >= vocab) {
      throw FormatError("labels: token id " + std::to_string(lo < 0 ? lo : hi) + ", expected -100 or an id in [0, " +
                        std::to_string(vocab) + ") of the " + model.config().model_type + " vocabulary");
    }
  }

  // 2. When the rows need no gradient but the unembedding has trainable tensors
  //    (unembedding LoRA alone), a one-row probe of unembed() ties the node to them,
  //    so that its backward runs and reaches them.
  std::optional<at::Tensor> anchor;
  if (at::GradMode::is_enabled() && !rows.requires_grad() && m > 0) {
    auto probe = model.unembed(rows.narrow(0, 0, 1));  // [1, V]
    if (probe.requires_grad()) anchor = probe.sum();
  }

  // 3. Chunked log-probs, scattered back to their positions; the last position stays 0.
  auto picked = ChunkedTokenLogprobs::apply(rows, targets, anchor, shared_model(model), chunk_tokens,
                                            at::GradMode::is_enabled() && rows.requires_grad());  // [M]
  auto flat = at::zeros({batch * (steps - 1)}, picked.options()).index_copy(0, index, picked);      // [B*(T-1)]
  return at::constant_pad_nd(flat.view({batch, steps - 1}), {0, 1});                                 // [B, T]
}

SftLoss sft_loss(model::CausalLMImpl& model, const at::Tensor& final_hidden, const at::Tensor& labels,
                 int64_t chunk_tokens) {
  auto logprobs = token_logprobs(model, final_hidden, labels, chunk_tokens);  // [B, T]
  SftLoss out;
  if (labels.size(1) > 1) out.tokens = labels.narrow(1, 1, labels.size(1) - 1).ne(kIgnoreIndex).sum().item<int64_t>();
  // transformers loss_utils.py ForCausalLMLoss: cross_entropy(reduction="sum") / num items,
  // i.e. the mean over the non-ignored shifted labels.
  out.loss = -logprobs.sum() / static_cast<double>(std::max<int64_t>(out.tokens, 1));
  return out;
}

DpoLoss dpo_loss(const at::Tensor& policy_logps, const at::Tensor& reference_logps, const at::Tensor& chosen_nll,
                 const DpoOptions& options) {
  if (!(options.beta > 0)) throw ConfigError("DPO beta: " + std::to_string(options.beta) + ", expected > 0");
  if (!(options.nll_coef >= 0)) {
    throw ConfigError("DPO NLL coefficient: " + std::to_string(options.nll_coef) + ", expected ≥ 0");
  }
  if (!(options.logit_clamp > 0)) {
    throw ConfigError("DPO logit clamp: " + std::to_string(options.logit_clamp) + ", expected > 0");
  }
  TORCH_CHECK(policy_logps.dim() == 1 && policy_logps.size(0) % 2 == 0 && policy_logps.size(0) > 0,
              "dpo_loss: policy_logps must be [2B], got ", policy_logps.sizes());
  TORCH_CHECK(reference_logps.sizes() == policy_logps.sizes(), "dpo_loss: reference_logps must be ",
              policy_logps.sizes(), ", got ", reference_logps.sizes());
  const int64_t pairs = policy_logps.size(0) / 2;
  auto policy = policy_logps.to(at::kFloat);
  auto reference = reference_logps.to(policy.device(), at::kFloat).detach();

  // Rafailov et al. 2023 eq. 7; TRL 1.16 dpo_trainer.py 1350-1351 (log ratios), 1383 (delta_score),
  // 1388 (-F.logsigmoid(self.beta * delta_score)), 1528 (per_sequence_loss.mean() * loss_weight).
  auto chosen_ratio = policy.narrow(0, 0, pairs) - reference.narrow(0, 0, pairs);        // [B]
  auto rejected_ratio = policy.narrow(0, pairs, pairs) - reference.narrow(0, pairs, pairs);  // [B]
  auto logits = (options.beta * (chosen_ratio - rejected_ratio)).clamp(-options.logit_clamp, options.logit_clamp);
  DpoLoss out;
  out.dpo_loss = -at::log_sigmoid(logits).mean();
  // TRL 1.16 has no rpo_alpha: RPO is loss_type ["sigmoid", "sft"] with loss_weights
  // [1, alpha], the "sft" term being the chosen NLL (dpo_trainer.py 1495-1502, 1528).
  out.nll_loss = chosen_nll.to(at::kFloat);
  out.loss = out.dpo_loss + options.nll_coef * out.nll_loss;

  // Metrics as TRL logs them (dpo_trainer.py 1582-1597), in one device→host copy.
  torch::NoGradGuard no_grad;
  auto chosen_rewards = options.beta * chosen_ratio.detach();      // [B]
  auto rejected_rewards = options.beta * rejected_ratio.detach();  // [B]
  auto metrics = at::stack({chosen_rewards.gt(rejected_rewards).to(at::kFloat).mean(),
                            (chosen_rewards - rejected_rewards).mean(), chosen_rewards.mean(),
                            rejected_rewards.mean()})
                     .to(at::kDouble)
                     .cpu();
  const double* m = metrics.data_ptr<double>();
  out.accuracy = m[0];
  out.margin = m[1];
  out.chosen_reward = m[2];
  out.rejected_reward = m[3];
  return out;
}

DpoLogps dpo_logps(model::CausalLMImpl& model, const TokenBatch& batch, const DpoForwardOptions& options) {
  const int64_t rows = batch.input_ids.size(0);
  if (rows == 0 || rows % 2 != 0) {
    throw FormatError("DPO batch: " + std::to_string(rows) +
                      " rows, expected an even number > 0 (the chosen rows, then the rejected rows)");
  }
  TORCH_CHECK(batch.labels.sizes() == batch.input_ids.sizes(), "dpo_logps: labels must be ", batch.input_ids.sizes(),
              ", got ", batch.labels.sizes());
  const int64_t pairs = rows / 2, steps = batch.input_ids.size(1);
  model::ForwardInput input;
  input.input_ids = batch.input_ids;
  input.attention_mask = batch.attention_mask;
  input.skip_logits = true;

  DpoLogps out;
  {
    // The reference is the base model: the same weights with every adapter hook off.
    torch::NoGradGuard no_grad;
    model::AdaptersDisabled adapters_off;
    auto reference = model.forward(input);
    out.reference = token_logprobs(model, reference.final_hidden, batch.labels, options.chunk_tokens).sum(1);  // [2B]
  }
  input.capture = options.capture;
  out.policy_output = model.forward(input);
  auto per_token =
      token_logprobs(model, out.policy_output.final_hidden, batch.labels, options.chunk_tokens);  // [2B, T]
  out.policy = per_token.sum(1);  // [2B]

  if (steps > 1) {
    auto counts = batch.labels.narrow(1, 1, steps - 1).ne(kIgnoreIndex).sum(1).cpu();  // [2B]
    out.chosen_tokens = counts.narrow(0, 0, pairs).sum().item<int64_t>();
    out.rejected_tokens = counts.narrow(0, pairs, pairs).sum().item<int64_t>();
  }
  // TRL's "sft" term: -chosen_per_token_logps[chosen_mask.bool()].mean(), a mean over
  // every chosen completion token of the batch (dpo_trainer.py 1495-1498).
  out.chosen_nll = -per_token.narrow(0, 0, pairs).sum() / static_cast<double>(std::max<int64_t>(out.chosen_tokens, 1));
  return out;
}

}  // namespace character::lora
