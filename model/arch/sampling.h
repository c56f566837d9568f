// Next-token selection for generation: the logits processors of transformers
// (repetition penalty, temperature, top-k, top-p, min-p), applied in the order
// GenerationMixin._get_logits_processor builds them, then greedy argmax or a
// seeded multinomial draw. The processors run on the logits' device (float32);
// the draw always uses a CPU generator, so on CPU a seed gives, for one prompt,
// the tokens transformers draws after torch.manual_seed(seed)
// (tools/oracle/check_init_model.py).
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "model/text/tokenizer.h"

namespace character::model {

// Defaults are transformers' GenerationConfig defaults (_get_default_generation_params).
struct SamplingOptions {
  bool do_sample = false;            // false: greedy (argmax after the processors)
  double temperature = 1.0;          // applied when != 1
  int64_t top_k = 50;                // 0 = off
  double top_p = 1.0;                // applied when < 1
  double min_p = 0.0;                // 0 = off
  double repetition_penalty = 1.0;   // applied when != 1 (also when greedy, as transformers)
};

// Each processor mirrors one class of transformers/generation/logits_process.py.
// in: scores [B, V] float32; out: processed scores [B, V] (removed tokens = -inf).

// RepetitionPenaltyLogitsProcessor: for every id in seen[b], score < 0 ? score·p : score/p.
at::Tensor apply_repetition_penalty(const at::Tensor& scores, const std::vector<std::vector<TokenId>>& seen,
                                    double penalty);
// TemperatureLogitsWarper: scores / t.
at::Tensor apply_temperature(const at::Tensor& scores, double temperature);
// TopKLogitsWarper: keep scores ≥ the k-th largest (ties kept), k ≥ min_tokens_to_keep.
at::Tensor apply_top_k(const at::Tensor& scores, int64_t top_k, int64_t min_tokens_to_keep = 1);
// TopPLogitsWarper: drop the ascending-sorted tokens whose cumulative probability ≤ 1 − p.
at::Tensor apply_top_p(const at::Tensor& scores, double top_p, int64_t min_tokens_to_keep = 1);
// MinPLogitsWarper: drop tokens with probability < min_p · max probability.
at::Tensor apply_min_p(const at::Tensor& scores, double min_p, int64_t min_tokens_to_keep = 1);

// The processors `options` switches on, in transformers' order: repetition penalty,
// then (when sampling) temperature, top-k, top-p, min-p.
at::Tensor process_logits(const at::Tensor& scores, const std::vector<std::vector<TokenId>>& seen,
                          const SamplingOptions& options);

// in: processed scores [B, V] (any device); out: next token ids [B] int64 on CPU.
// Greedy takes the argmax; sampling draws from softmax(scores) with `generator` (CPU).
at::Tensor choose_next_tokens(const at::Tensor& processed_scores, const SamplingOptions& options,
                              at::Generator& generator);

}  // namespace character::model
