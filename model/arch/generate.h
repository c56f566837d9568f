// Batched autoregressive generation over a CausalLM: left-padded prompts, one
// prefill pass into a KV cache, then one-token decode steps; greedy or seeded
// sampling (sampling.h), stop token ids, stop strings, max_new_tokens, streaming
// of complete UTF-8 text pieces, and optional per-token routing capture for the
// MoE analyses. Also reads generation_config.json, the defaults of a model dir.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "model/arch/causal_lm.h"
#include "model/arch/sampling.h"
#include "model/text/tokenizer.h"

namespace character::model {

class ChatRenderer;

// The fields of generation_config.json that generation reads; unset = absent.
struct GenerationConfig {
  std::optional<bool> do_sample;
  std::optional<double> temperature, top_p, min_p, repetition_penalty;
  std::optional<int64_t> top_k, max_new_tokens;
  std::vector<int64_t> eos_token_id;  // int or list in the file
  std::optional<int64_t> pad_token_id, bos_token_id;

  // transformers' defaults overridden by the fields present here.
  SamplingOptions sampling() const;
};

// Missing file: an empty GenerationConfig. A field of the wrong type: FormatError
// naming the file and the field.
GenerationConfig load_generation_config(const std::filesystem::path& model_dir);

// The ids that end a reply: the renderer's stop tokens (when given), config.json
// eos_token_id and generation_config.json eos_token_id, deduplicated, in that order.
std::vector<TokenId> default_stop_token_ids(const std::filesystem::path& model_dir, const Tokenizer& tokenizer,
                                            const ChatRenderer* renderer);

struct GenerationOptions {
  int64_t max_new_tokens = 256;
  SamplingOptions sampling;
  uint64_t seed = 0;                     // seeds the CPU generator used for sampling
  std::vector<TokenId> stop_token_ids;   // generating one ends the row ("stop")
  // Generation ends when the decoded text contains one; it and what follows are
  // dropped from the text (never other text: only these strings are matched).
  std::vector<std::string> stop_strings;
  bool capture_routing = false;          // fill GenerationResult::routing (MoE models; dense: stays unset)
  // Called with (prompt index, new text) as text becomes final: complete UTF-8 only,
  // never a stop token's text, never text that may still turn into a stop string.
  // The pieces of a row concatenate to its GenerationResult::text.
  std::function<void(int64_t, std::string_view)> on_text;
};

// Routing of the generated tokens of one prompt, for the routing analyses.
// Row g of the generated tensors is the forward pass whose logits chose token g
// (g = 0: the prefill's last prompt position; g ≥ 1: the decode step that fed
// token g−1). Prompt rows are the prompt positions of the prefill (padding excluded).
struct GenerationRouting {
  std::vector<int64_t> layers;  // MoE decoder-layer indices, the L_moe axis below
  at::Tensor topk_ids;          // [G, L_moe, K] int64, descending weight order
  at::Tensor topk_weights;      // [G, L_moe, K] float32, as applied
  at::Tensor prompt_topk_ids;   // [Tp, L_moe, K] int64
  at::Tensor prompt_topk_weights;  // [Tp, L_moe, K] float32
};

struct GenerationResult {
  // Generated ids, including the stop token that ended the row (as transformers'
  // generate returns it) and the tokens that completed a stop string.
  std::vector<TokenId> ids;
  // Decoded ids without a final stop token, cut before the first stop string.
  std::string text;
  std::string finish_reason;  // "stop" | "length"
  std::optional<GenerationRouting> routing;
};

// Generates a continuation for each prompt (token ids, no padding). Rows are
// left-padded to the longest prompt; the attention mask hides the padding.
// `tokenizer` may be null for ids-only generation: text stays empty, and
// stop_strings or on_text are then a ConfigError. Bad options (max_new_tokens < 1,
// empty prompt): ConfigError.
std::vector<GenerationResult> generate(CausalLMImpl& model, const Tokenizer* tokenizer,
                                       const std::vector<std::vector<TokenId>>& prompts,
                                       const GenerationOptions& options);

}  // namespace character::model
