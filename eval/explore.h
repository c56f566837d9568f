// The exploration views of seed 002 for `character analyze`: the domain test (do
// math, code, language and reasoning prompts use different experts?), one token
// in several contexts (does a token always route the same way?), and text tables
// of the routing analyses. Torch-free: prompts are routed through a
// SequenceRouter (eval/routing_capture.h route_sequences in the CLI).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "eval/moe_type.h"
#include "eval/routing_metrics.h"
#include "eval/routing_trace.h"
#include "model/text/tokenizer.h"

namespace character::eval {

// Routes token sequences (prefill only): one trace per sequence.
using SequenceRouter = std::function<std::vector<RoutingTrace>(const std::vector<std::vector<model::TokenId>>&)>;

// --- domain test ----------------------------------------------------------------

struct DomainPrompts {
  std::string domain;
  std::vector<std::string> prompts;
};

// Seed 002's domain test: 4 prompts each of math, code, language and reasoning.
const std::vector<DomainPrompts>& domain_test_prompts();

struct DomainLayer {
  int64_t layer = 0;
  std::vector<std::vector<int64_t>> counts;      // [domain][E] (position, slot) assignments
  std::vector<int64_t> shared;                   // experts every domain uses
  std::vector<std::vector<int64_t>> exclusive;   // [domain] experts only that domain uses
  double overlap = 0.0;                          // |used by all| / |used by any|
};

struct DomainTest {
  std::vector<std::string> domains;
  std::vector<int64_t> positions;  // [domain] positions routed
  std::vector<DomainLayer> layers;

  nlohmann::json to_json() const;
};

// `domain_of_trace[i]` names the domain of traces[i]; every position counts.
DomainTest domain_test(const std::vector<std::string>& domain_of_trace, const std::vector<RoutingTrace>& traces);
DomainTest run_domain_test(const model::Tokenizer& tokenizer, const SequenceRouter& route);

// --- one token in many contexts ---------------------------------------------------

struct TokenContext {
  std::string text;       // the context, e.g. "111 127"
  int64_t position = 0;   // index of the token's (last) piece in the tokenized context
  std::string piece;      // that piece, decoded
};

// Seed 002's contexts: solo, after a number, after an operator, in a sentence.
std::vector<std::string> token_contexts(const std::string& token);

// The position of `token` in `ids` (the tokenization of `text`): the first piece
// at which the decoded prefix covers the end of the token's last occurrence.
// ConfigError when `text` does not contain `token`.
int64_t find_token_position(const model::Tokenizer& tokenizer, const std::vector<model::TokenId>& ids,
                            const std::string& text, const std::string& token);

struct TokenRouting {
  std::string token;
  std::vector<TokenContext> contexts;
  std::vector<int64_t> layers;
  std::vector<std::vector<std::vector<int32_t>>> experts;  // [layer][context] top-k ids, by weight
  std::vector<int64_t> distinct_sets;     // [layer] distinct top-k sets over the contexts
  std::vector<int64_t> distinct_experts;  // [layer] experts used by any context

  nlohmann::json to_json() const;
};

// traces[i] is the routing of contexts[i].
TokenRouting token_routing(const std::string& token, std::vector<TokenContext> contexts,
                           const std::vector<RoutingTrace>& traces);
TokenRouting run_token_routing(const model::Tokenizer& tokenizer, const SequenceRouter& route, const std::string& token);

// --- text tables ---------------------------------------------------------------------

// `layer` picks one decoder layer for the detailed view; nullopt: a summary line per layer.
std::string format_domain_test(const DomainTest& test, std::optional<int64_t> layer);
std::string format_token_routing(const TokenRouting& routing, std::optional<int64_t> layer);
std::string format_utilization(const Utilization& u, std::optional<int64_t> layer);
std::string format_paraphrase(const ParaphraseDivergence& d, const std::vector<int64_t>& layers);
std::string format_circuits(const Circuits& c);
std::string format_moe_type(const MoeType& t);

}  // namespace character::eval
