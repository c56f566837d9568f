// Logits processors and next-token choice; each function cites the transformers
// class it reproduces (transformers/generation/logits_process.py, v5.5).
#include "model/arch/sampling.h"

#include <torch/torch.h>

#include <algorithm>
#include <limits>

namespace character::model {

namespace {
constexpr float kFilterValue = -std::numeric_limits<float>::infinity();

void check_scores(const at::Tensor& scores) {
  TORCH_CHECK(scores.dim() == 2, "sampling: scores must be [B, V], got ", scores.sizes());
  TORCH_CHECK(scores.scalar_type() == at::kFloat, "sampling: scores must be float32");
}
}  // namespace

at::Tensor apply_repetition_penalty(const at::Tensor& scores, const std::vector<std::vector<TokenId>>& seen,
                                    double penalty) {
  check_scores(scores);
  TORCH_CHECK(static_cast<int64_t>(seen.size()) == scores.size(0), "repetition penalty: one id list per row");
  at::Tensor out = scores.clone();
  for (int64_t b = 0; b < scores.size(0); ++b) {
    if (seen[b].empty()) continue;
    std::vector<int64_t> ids(seen[b].begin(), seen[b].end());
    at::Tensor index = torch::tensor(ids, torch::kLong).to(out.device());    // [S]
    at::Tensor row = out[b];                                                  // [V] view
    at::Tensor score = row.index_select(0, index);                            // [S]
    // logits_process.py RepetitionPenaltyLogitsProcessor: where(score < 0, score * p, score / p)
    score = torch::where(score < 0, score * penalty, score / penalty);
    row.index_put_({index}, score);  // duplicates write the same value, as scatter does
  }
  return out;
}

at::Tensor apply_temperature(const at::Tensor& scores, double temperature) {
  check_scores(scores);
  return scores / temperature;
}

at::Tensor apply_top_k(const at::Tensor& scores, int64_t top_k, int64_t min_tokens_to_keep) {
  check_scores(scores);
  const int64_t k = std::min(std::max(top_k, min_tokens_to_keep), scores.size(-1));
  // TopKLogitsWarper: remove scores < the k-th largest.
  at::Tensor kth = std::get<0>(torch::topk(scores, k)).select(-1, k - 1).unsqueeze(-1);  // [B, 1]
  return scores.masked_fill(scores < kth, kFilterValue);
}

at::Tensor apply_top_p(const at::Tensor& scores, double top_p, int64_t min_tokens_to_keep) {
  check_scores(scores);
  // TopPLogitsWarper: sort ascending, remove while the cumulative mass ≤ 1 − p, keep the last
  // min_tokens_to_keep, scatter the mask back to vocabulary order.
  auto [sorted_logits, sorted_indices] = torch::sort(scores, /*dim=*/-1, /*descending=*/false);
  at::Tensor cumulative = sorted_logits.softmax(-1).cumsum(-1);
  at::Tensor sorted_remove = cumulative <= (1.0 - top_p);
  const int64_t vocab = scores.size(-1);
  sorted_remove.narrow(-1, vocab - std::min(min_tokens_to_keep, vocab), std::min(min_tokens_to_keep, vocab))
      .fill_(false);
  at::Tensor remove = sorted_remove.scatter(1, sorted_indices, sorted_remove);
  return scores.masked_fill(remove, kFilterValue);
}

at::Tensor apply_min_p(const at::Tensor& scores, double min_p, int64_t min_tokens_to_keep) {
  check_scores(scores);
  // MinPLogitsWarper: threshold = min_p · max probability; keep the top min_tokens_to_keep.
  at::Tensor probs = scores.softmax(-1);
  at::Tensor threshold = probs.amax(-1, /*keepdim=*/true) * min_p;
  at::Tensor remove = probs < threshold;
  const int64_t k = std::min(min_tokens_to_keep, probs.size(-1));
  remove.scatter_(-1, std::get<1>(torch::topk(probs, k, -1)), false);
  return scores.masked_fill(remove, kFilterValue);
}

at::Tensor process_logits(const at::Tensor& scores, const std::vector<std::vector<TokenId>>& seen,
                          const SamplingOptions& options) {
  at::Tensor out = scores;
  // GenerationMixin._get_logits_processor: penalties first, then the sampling warpers.
  if (options.repetition_penalty != 1.0) out = apply_repetition_penalty(out, seen, options.repetition_penalty);
  if (!options.do_sample) return out;
  if (options.temperature != 1.0) out = apply_temperature(out, options.temperature);
  if (options.top_k != 0) out = apply_top_k(out, options.top_k);
  if (options.top_p < 1.0) out = apply_top_p(out, options.top_p);
  if (options.min_p > 0.0) out = apply_min_p(out, options.min_p);
  return out;
}

at::Tensor choose_next_tokens(const at::Tensor& processed_scores, const SamplingOptions& options,
                              at::Generator& generator) {
  check_scores(processed_scores);
  if (!options.do_sample) return processed_scores.argmax(-1).to(torch::kCPU);
  at::Tensor probs = processed_scores.softmax(-1).to(torch::kCPU);  // [B, V]
  return at::multinomial(probs, /*num_samples=*/1, /*replacement=*/false, generator).squeeze(-1);  // [B]
}

}  // namespace character::model
