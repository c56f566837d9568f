// Training data for `character train`: SFT and DPO JSONL rows rendered with the
// model's chat renderer and tokenized (in parallel, oneTBB) into ids + loss masks;
// batches of similar length; collation into padded [B, T] tensors with labels.
// Ids equal `apply_chat_template(..., tokenize=True)` and masks equal TRL 1.16's
// assistant masks (tools/oracle/fixtures_train_data.py writes the reference).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <utility>
#include <vector>

#include "model/text/chat.h"
#include "model/text/tokenizer.h"

namespace character::lora {

struct SftOptions {
  bool last_assistant_only = false;  // train on the last assistant message only
  int64_t max_length = 2048;         // rows longer than this are cut at the end (counted)
  model::ChatOptions chat;           // add_generation_prompt is ignored: SFT renders without it
};

// One training sequence. loss_mask[t] = 1 where ids[t] is a trained token (the
// tokens of RenderedChat::assistant_spans, end-of-turn marker included).
struct TokenizedSequence {
  std::vector<int64_t> ids;
  std::vector<uint8_t> loss_mask;  // same length as ids
};

struct SftDataset {
  std::vector<TokenizedSequence> rows;  // in file order (skipped rows left out)
  int64_t truncated = 0;                // rows cut to max_length
  int64_t skipped = 0;                  // rows with no trained token left after truncation
};

// Rows: {"messages": [{"role": "system|user|assistant", "content": "..."}, ...]}, with
// at least one assistant message. Rendered exactly as the model's chat template at
// inference (no generation prompt); the mask is TRL's assistant_only_loss mask with
// `{% generation %}` around each assistant message and its end-of-turn marker, i.e.
// transformers' char_to_token rule (a token straddling a span edge is trained).
// qwen3: history turns carry no think block, as the model's template renders them;
// TRL 1.16 would swap in qwen3_training.jinja, which adds an empty one to every turn.
// Bad JSON, a missing or ill-typed field, an unknown role: FormatError naming
// file:line, the field, what was found and what was expected.
SftDataset load_sft_jsonl(const std::filesystem::path& path, const model::Tokenizer& tokenizer,
                          const model::ChatRenderer& renderer, const SftOptions& options);

// Named DpoDataOptions, not DpoOptions: lora/losses.h has DpoOptions (beta, nll_coef ...).
struct DpoDataOptions {
  int64_t max_length = 2048;         // prompt + completion
  int64_t max_prompt_length = 1024;  // prompts keep their last max_prompt_length tokens
  model::ChatOptions chat;           // add_generation_prompt is ignored: the prompt always has it
};

// As TRL 1.16's DPO tokenize_fn: prompt = the ids of the prompt rendered with the
// generation prompt, cut where they stop agreeing with the ids of both full
// conversations (prompt + chosen, prompt + rejected); chosen / rejected = the rest of
// each full conversation. So prompt + chosen == ids of the full conversation (before
// truncation) even where the template is not prefix-stable;
// the completion holds the end-of-turn token and, as TRL, whatever the template puts
// after it ("<|im_end|>\n" for qwen3 / chatml, "<|eot_id|>" for llama3).
// qwen3 thinking: with enable_thinking unset (template default: on) the completion
// opens with the empty "<think>\n\n</think>\n\n" the template gives the last turn, so
// the policy learns to emit it; with enable_thinking=false that block ends the prompt
// instead (as at inference with thinking off). A prompt that ends in an assistant
// message is not a prefix of the full conversation (qwen3 drops that message's think
// block once a reply follows): the prompt is cut where the ids diverge, as TRL does.
struct DpoPair {
  std::vector<int64_t> prompt;
  std::vector<int64_t> chosen;
  std::vector<int64_t> rejected;
};

struct DpoDataset {
  std::vector<DpoPair> rows;
  int64_t truncated = 0;  // pairs where the prompt or a completion was cut
  int64_t skipped = 0;    // pairs with an empty chosen or rejected after truncation
};

// Rows: {"prompt": P, "chosen": C, "rejected": R}. P is a string (one user message) or
// a message list (the conversation so far); C and R are strings (one assistant
// message) or lists of assistant message(s). Errors as load_sft_jsonl.
DpoDataset load_dpo_jsonl(const std::filesystem::path& path, const model::Tokenizer& tokenizer,
                          const model::ChatRenderer& renderer, const DpoDataOptions& options);

// Sequence lengths for batching.
std::vector<int64_t> sequence_lengths(const SftDataset& data);
std::vector<int64_t> sequence_lengths(const DpoDataset& data);  // prompt + max(chosen, rejected)

// Batches of row indices, deterministic from (seed, epoch): indices are shuffled,
// cut into windows of 50 batches, sorted by length inside each window so that
// similar lengths share a batch, and the batch order is shuffled, except that the
// batch holding the longest row goes first (an out-of-memory shows on step 1).
// Every index appears exactly once; one batch (not necessarily the last) may be
// smaller. The same on every platform (own splitmix64 + Fisher-Yates).
std::vector<std::vector<int64_t>> length_batches(const std::vector<int64_t>& lengths, int64_t batch_size,
                                                 uint64_t seed, int64_t epoch);

// A padded batch (right padding). input_ids [B, T] int64; attention_mask [B, T]
// int64, 1 = real token; labels [B, T] int64, = input_ids on trained tokens, -100
// elsewhere (padding, prompt). Labels are aligned with input_ids: the loss shifts.
struct TokenBatch {
  at::Tensor input_ids;
  at::Tensor attention_mask;
  at::Tensor labels;
};

TokenBatch collate_sft(const SftDataset& data, const std::vector<int64_t>& rows, int64_t pad_id);
// 2·B rows: prompt+chosen for each pair first, then prompt+rejected; labels only on
// the completion tokens.
TokenBatch collate_dpo(const DpoDataset& data, const std::vector<int64_t>& rows, int64_t pad_id);

// Deterministic split of [0, n): round(n * fraction) indices held out (at least one
// when fraction > 0 and n > 1, never all). Both lists ascending.
std::pair<std::vector<int64_t>, std::vector<int64_t>> held_out_split(int64_t n, double fraction, uint64_t seed);

}  // namespace character::lora
