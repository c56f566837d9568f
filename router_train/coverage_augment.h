// Coverage-guided prompt augmentation (seed 000's proposed workaround): LoRA trains
// an expert only through the tokens routed to it, so training prompts are picked,
// or rewritten, so that their routes cover the (layer, expert) pairs the probe
// prompts reach. Works on any MoE model the engine loads: routes come from a
// forward pass of the student over the rendered prompts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/arch/causal_lm.h"
#include "model/text/chat.h"
#include "model/text/tokenizer.h"

namespace character::router_train {

// Where one prompt's tokens go: top-k slot counts per (MoE layer, expert),
// row-major [L_moe · E], and the MoE layers they belong to.
struct RouteFootprint {
  std::vector<int64_t> layers;   // MoE decoder layer indices, ascending
  int64_t num_experts = 0;
  std::vector<int64_t> counts;   // [L_moe · E]
};

// The footprints of `prompts`, each rendered as a user message with the generation
// prompt (`chat`), run through `model` in batches of `batch_size` (left-padded, as
// generation does; sorted by length so a batch wastes little padding) with router
// capture. Padding positions do not count: a footprint is the one the prompt has
// alone, and its counts sum to its tokens · top_k per layer. ConfigError for a
// dense model, an empty prompt list entry that renders to no tokens, batch_size < 1.
std::vector<RouteFootprint> route_footprints(const model::CausalLM& model, const model::Tokenizer& tokenizer,
                                             const model::ChatRenderer& renderer,
                                             const std::vector<std::string>& prompts, int64_t batch_size = 16,
                                             const model::ChatOptions& chat = {});

// Rewrites of `prompt` with the variations that flip an MoE's routing (seed 000):
// politeness ("please", "could you"), case, punctuation, length (a short preamble
// or a follow-up), whitespace. Deterministic for (prompt, seed); never returns the
// prompt itself or duplicates; at most `count`.
std::vector<std::string> phrasing_variants(const std::string& prompt, uint64_t seed, int count);

struct AugmentOptions {
  std::size_t budget = 0;          // prompts to pick (≤ candidates)
  int64_t min_count = 1;           // a target (layer, expert) is covered once picked prompts give it this many slots
  uint64_t seed = 0;               // ties and the random fill
};

struct AugmentSelection {
  std::vector<std::size_t> picked;   // candidate indices, in pick order
  int64_t target_pairs = 0;          // (layer, expert) pairs the target reaches
  int64_t covered_before = 0;        // of those, covered by a seeded random pick of `budget` candidates
  int64_t covered_after = 0;         // covered by `picked`
};

// Greedy cover: picks candidates that add the most uncovered target pairs (weighted
// by the target's counts) until every target pair is covered or nothing adds more,
// then fills the budget with a seeded random sample of the rest. Ties go to a
// seeded order of the candidates. Exact greedy, computed lazily (the gain only
// shrinks as pairs get covered), so pools of thousands of prompts over a real
// model's L·E pairs stay cheap. ConfigError when footprints disagree in shape,
// budget > candidates or min_count < 1.
AugmentSelection select_covering_prompts(const std::vector<RouteFootprint>& candidates,
                                         const RouteFootprint& target, const AugmentOptions& options);

// Sums footprints (same shape; ConfigError otherwise, or for none).
RouteFootprint sum_footprints(const std::vector<RouteFootprint>& footprints);

}  // namespace character::router_train
