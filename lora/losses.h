// Training losses computed from the final hidden states (ForwardInput::skip_logits):
// next-token log-probabilities in chunks through CausalLMImpl::unembed (never the
// [N, V] logits at once, neither forward nor backward), the SFT masked cross-entropy
// (transformers' ForCausalLMLoss) and the DPO loss with an NLL term on the chosen
// side, as TRL 1.16's DPOTrainer computes loss_type ["sigmoid", "sft"].
// Shapes: B rows (2B for DPO: chosen rows first), T positions, D hidden, V vocabulary.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "model/arch/causal_lm.h"

namespace character::lora {

struct TokenBatch;  // lora/train_data.h: input_ids, attention_mask, labels [B, T]

// in: final_hidden [B, T, D] (model dtype, after the final norm), labels [B, T] int64
//     aligned with input_ids, -100 = no loss (the shift happens here).
// out: [B, T] fp32, position t holds log p(labels[t+1] | tokens ≤ t); 0 at the last
//     position and wherever labels[t+1] is -100.
// Only positions with a label are projected, `chunk_tokens` at a time; log_softmax runs
// in fp32 on the model-dtype logits. A custom autograd function keeps no logits. When
// nothing behind unembed() is trainable (the default), each chunk's forward also keeps
// d out_t / d final_hidden_t ([D] per position, (onehot − softmax)·W), so the backward
// is one multiply, no recompute. With the unembedding LoRA (lm_head.lora_A/B), the
// backward recomputes each chunk's logits with grad enabled (like reentrant
// checkpointing) and back-propagates into final_hidden and into the LoRA, whose
// gradients are accumulated into their .grad, as in reentrant checkpointing: train
// with at::Tensor::backward(), not torch::autograd::grad.
at::Tensor token_logprobs(model::CausalLMImpl& model, const at::Tensor& final_hidden, const at::Tensor& labels,
                          int64_t chunk_tokens = 1024);

struct SftLoss {
  at::Tensor loss;     // scalar fp32: mean −log p over the loss tokens (0, still differentiable, when there are none)
  int64_t tokens = 0;  // loss tokens: shifted labels that are not -100
};

// Masked mean next-token cross-entropy, as transformers' ForCausalLMLoss (fp32, shift
// inside, -100 ignored). in: final_hidden [B, T, D], labels [B, T].
SftLoss sft_loss(model::CausalLMImpl& model, const at::Tensor& final_hidden, const at::Tensor& labels,
                 int64_t chunk_tokens = 1024);

struct DpoOptions {
  double beta = 0.1;      // β of −log σ(β·Δ) (Rafailov et al. 2023, eq. 7)
  double nll_coef = 0.1;  // weight of the chosen-side NLL (TRL loss_weights for "sft"; RPO's alpha)
  // Bound on the DPO logit z = β·Δ: the loss uses clamp(z, −c, c). −log σ(z) is exact for
  // every |z| ≤ c (at c = 50, Δ up to 500 nats with β = 0.1; σ(−50) ≈ 2e-22, so nothing
  // in the normal range moves), and a degenerate pair (Δ = ±inf from an inf log-prob, or
  // a diverged policy) gives a loss of at most ≈ c with zero gradient instead of inf/NaN
  // that would poison the step; the trainer's health check sees the saturated loss.
  double logit_clamp = 50.0;
};

struct DpoLoss {
  at::Tensor loss;      // scalar: dpo_loss + nll_coef · nll_loss
  at::Tensor dpo_loss;  // scalar: mean over pairs of −log σ(clamp(β·Δ))
  at::Tensor nll_loss;  // scalar: chosen_nll as given
  // Metrics, as TRL logs them (means over the B pairs); reward = β·(π − r).
  double accuracy = 0;         // share of pairs with chosen reward > rejected reward
  double margin = 0;           // mean(chosen reward − rejected reward)
  double chosen_reward = 0;    // mean chosen reward
  double rejected_reward = 0;  // mean rejected reward
};

// Δ = (π_c − r_c) − (π_r − r_r) per pair from token-summed completion log-probs.
// in: policy_logps [2B] (differentiable), reference_logps [2B], chosen rows first;
//     chosen_nll scalar (DpoLogps::chosen_nll).
// ConfigError for options out of range (beta ≤ 0, nll_coef < 0, logit_clamp ≤ 0).
DpoLoss dpo_loss(const at::Tensor& policy_logps, const at::Tensor& reference_logps, const at::Tensor& chosen_nll,
                 const DpoOptions& options = {});

struct DpoForwardOptions {
  int64_t chunk_tokens = 1024;
  model::CaptureOptions capture;  // for the policy forward only (e.g. router, for a StepHook)
};

// The log-probs a DPO step needs, from one collated DPO batch (collate_dpo: 2B rows,
// chosen first, labels only on the completion tokens).
struct DpoLogps {
  at::Tensor policy;      // [2B] fp32 token sums over the completion, adapters on, differentiable
  at::Tensor reference;   // [2B] fp32, adapters off (model::AdaptersDisabled), no grad
  at::Tensor chosen_nll;  // scalar fp32: −mean log p over all chosen completion tokens of the
                          // batch (TRL's "sft" loss: a token mean, not a mean of row means)
  int64_t chosen_tokens = 0;
  int64_t rejected_tokens = 0;
  model::ForwardOutput policy_output;  // final_hidden and the captures asked for (routing)
};

// Runs the reference forward (no grad, adapters off, skip_logits) and the policy
// forward (adapters on, skip_logits) of `batch`, and their chunked token log-probs.
// FormatError when the batch does not have an even number of rows.
DpoLogps dpo_logps(model::CausalLMImpl& model, const TokenBatch& batch, const DpoForwardOptions& options = {});

}  // namespace character::lora
