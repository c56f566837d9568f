// The exploration views of `character analyze` (eval/explore.h): seed 002's
// domain test and token-in-context test over routed prompts, and the text tables
// of every routing view.
#include "eval/explore.h"

#include <algorithm>
#include <cstdio>
#include <iomanip>
#include <set>
#include <sstream>

#include "base/error.h"

namespace character::eval {
namespace {

using nlohmann::json;

std::string experts_text(const std::vector<int64_t>& experts) {
  if (experts.empty()) return "-";
  std::string out;
  for (int64_t e : experts) out += (out.empty() ? "E" : " E") + std::to_string(e);
  return out;
}

std::string percent(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.1f%%", 100.0 * v);
  return buffer;
}

std::string fixed(double v, int digits = 3) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.*f", digits, v);
  return buffer;
}

bool shown(std::optional<int64_t> wanted, int64_t layer) { return !wanted || *wanted == layer; }

void check_layer(std::optional<int64_t> wanted, const std::vector<int64_t>& layers) {
  if (wanted && std::find(layers.begin(), layers.end(), *wanted) == layers.end()) {
    std::string list;
    for (int64_t l : layers) list += (list.empty() ? "" : ", ") + std::to_string(l);
    throw ConfigError("--layer " + std::to_string(*wanted) + " is not an MoE layer; MoE layers: " + list);
  }
}

std::vector<std::vector<model::TokenId>> encode_all(const model::Tokenizer& tokenizer, const std::vector<std::string>& texts) {
  // Special tokens as transformers' tokenizer(prompt) adds them (e.g. Llama's BOS).
  return model::encode_batch(tokenizer, texts, /*add_special_tokens=*/true);
}

}  // namespace

// --- domain test ----------------------------------------------------------------

const std::vector<DomainPrompts>& domain_test_prompts() {
  static const std::vector<DomainPrompts> prompts = {
      {"math", {"127 * 89 = ", "What is 15% of 240?", "Solve for x: 3x + 7 = 22.", "The derivative of x^2 is 2x."}},
      {"code", {"def fibonacci(n):", "for (int i = 0; i < n; ++i) {", "SELECT name FROM users WHERE age > 30;",
                "import numpy as np"}},
      {"language", {"King is to queen as man is to woman", "happy means joyful", "The cat sat quietly on the warm mat.",
                    "big versus small"}},
      {"reasoning", {"If it rains, the ground gets wet. It rained, so", "All birds have wings. A penguin is a bird. Therefore",
                     "She won because she trained every day.",
                     "Which is heavier, a kilogram of feathers or a kilogram of iron?"}},
  };
  return prompts;
}

DomainTest domain_test(const std::vector<std::string>& domain_of_trace, const std::vector<RoutingTrace>& traces) {
  if (traces.empty() || domain_of_trace.size() != traces.size())
    throw ConfigError("domain test: " + std::to_string(domain_of_trace.size()) + " domain labels for " +
                      std::to_string(traces.size()) + " traces, expected one per trace (and at least one)");
  const RoutingTrace& first = traces.front();
  DomainTest out;
  std::vector<size_t> index_of;
  for (const auto& d : domain_of_trace) {
    auto it = std::find(out.domains.begin(), out.domains.end(), d);
    if (it == out.domains.end()) {
      out.domains.push_back(d);
      out.positions.push_back(0);
      it = out.domains.end() - 1;
    }
    index_of.push_back(static_cast<size_t>(it - out.domains.begin()));
  }
  const size_t D = out.domains.size();
  const auto E = static_cast<size_t>(first.num_experts);
  for (int64_t l = 0; l < first.num_layers(); ++l) {
    DomainLayer layer;
    layer.layer = first.layers[static_cast<size_t>(l)];
    layer.counts.assign(D, std::vector<int64_t>(E, 0));
    out.layers.push_back(std::move(layer));
  }
  for (size_t i = 0; i < traces.size(); ++i) {
    const RoutingTrace& t = traces[i];
    validate_trace(t, "domain test: trace " + std::to_string(i));
    check_same_shape(first, t, "domain test: trace " + std::to_string(i));
    out.positions[index_of[i]] += t.positions;
    for (int64_t p = 0; p < t.positions; ++p)
      for (int64_t l = 0; l < t.num_layers(); ++l)
        for (int64_t k = 0; k < t.top_k; ++k) ++out.layers[static_cast<size_t>(l)].counts[index_of[i]][static_cast<size_t>(t.id(p, l, k))];
  }
  for (DomainLayer& layer : out.layers) {
    layer.exclusive.assign(D, {});
    int64_t any = 0;
    for (size_t e = 0; e < E; ++e) {
      size_t users = 0, last = 0;
      for (size_t d = 0; d < D; ++d)
        if (layer.counts[d][e] > 0) ++users, last = d;
      if (users > 0) ++any;
      if (users == D) layer.shared.push_back(static_cast<int64_t>(e));
      if (users == 1 && D > 1) layer.exclusive[last].push_back(static_cast<int64_t>(e));
    }
    layer.overlap = any == 0 ? 0.0 : static_cast<double>(layer.shared.size()) / static_cast<double>(any);
  }
  return out;
}

DomainTest run_domain_test(const model::Tokenizer& tokenizer, const SequenceRouter& route) {
  std::vector<std::string> texts, domains;
  for (const auto& group : domain_test_prompts())
    for (const auto& prompt : group.prompts) {
      texts.push_back(prompt);
      domains.push_back(group.domain);
    }
  return domain_test(domains, route(encode_all(tokenizer, texts)));
}

json DomainTest::to_json() const {
  json list = json::array();
  for (const auto& l : layers) {
    json exclusive_map = json::object();
    json counts_map = json::object();
    for (size_t d = 0; d < domains.size(); ++d) {
      exclusive_map[domains[d]] = l.exclusive[d];
      counts_map[domains[d]] = l.counts[d];
    }
    list.push_back({{"layer", l.layer}, {"shared", l.shared}, {"exclusive", exclusive_map},
                    {"overlap", json_number(l.overlap)}, {"counts", counts_map}});
  }
  json prompts = json::object();
  for (const auto& g : domain_test_prompts()) prompts[g.domain] = g.prompts;
  return {{"domains", domains}, {"positions", positions}, {"prompts", prompts}, {"layers", list}};
}

// --- one token in many contexts ---------------------------------------------------

std::vector<std::string> token_contexts(const std::string& token) {
  return {token, "111 " + token, "= " + token, "The value is " + token + "."};
}

int64_t find_token_position(const model::Tokenizer& tokenizer, const std::vector<model::TokenId>& ids,
                            const std::string& text, const std::string& token) {
  const size_t at = token.empty() ? std::string::npos : text.rfind(token);
  if (at == std::string::npos) throw ConfigError("token routing: context \"" + text + "\" does not contain \"" + token + "\"");
  const size_t end = at + token.size();
  // Offsets by decoding growing prefixes (the tokenizer has no offset mapping);
  // special tokens are skipped so the decoded text lines up with `text`.
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string prefix =
        tokenizer.decode(std::span<const model::TokenId>(ids.data(), i + 1), /*skip_special_tokens=*/true);
    if (prefix.size() >= end) return static_cast<int64_t>(i);
  }
  return static_cast<int64_t>(ids.size()) - 1;
}

TokenRouting token_routing(const std::string& token, std::vector<TokenContext> contexts,
                           const std::vector<RoutingTrace>& traces) {
  if (traces.empty() || traces.size() != contexts.size())
    throw ConfigError("token routing: " + std::to_string(traces.size()) + " traces for " + std::to_string(contexts.size()) +
                      " contexts, expected one per context");
  TokenRouting out;
  out.token = token;
  out.layers = traces.front().layers;
  for (size_t c = 0; c < traces.size(); ++c) {
    validate_trace(traces[c], "token routing: context " + std::to_string(c));
    check_same_shape(traces.front(), traces[c], "token routing: context " + std::to_string(c));
    if (contexts[c].position < 0 || contexts[c].position >= traces[c].positions)
      throw ConfigError("token routing: position " + std::to_string(contexts[c].position) + " of context \"" +
                        contexts[c].text + "\", expected < " + std::to_string(traces[c].positions));
  }
  for (int64_t l = 0; l < traces.front().num_layers(); ++l) {
    std::vector<std::vector<int32_t>> per_context;
    std::set<std::vector<int32_t>> sets;
    std::set<int32_t> experts;
    for (size_t c = 0; c < traces.size(); ++c) {
      std::vector<int32_t> ids;
      for (int64_t k = 0; k < traces[c].top_k; ++k) ids.push_back(traces[c].id(contexts[c].position, l, k));
      std::vector<int32_t> sorted = ids;
      std::sort(sorted.begin(), sorted.end());
      sets.insert(sorted);
      experts.insert(sorted.begin(), sorted.end());
      per_context.push_back(std::move(ids));
    }
    out.experts.push_back(std::move(per_context));
    out.distinct_sets.push_back(static_cast<int64_t>(sets.size()));
    out.distinct_experts.push_back(static_cast<int64_t>(experts.size()));
  }
  out.contexts = std::move(contexts);
  return out;
}

TokenRouting run_token_routing(const model::Tokenizer& tokenizer, const SequenceRouter& route, const std::string& token) {
  const std::vector<std::string> texts = token_contexts(token);
  const auto ids = encode_all(tokenizer, texts);
  std::vector<TokenContext> contexts;
  for (size_t i = 0; i < texts.size(); ++i) {
    const int64_t position = find_token_position(tokenizer, ids[i], texts[i], token);
    const model::TokenId piece = ids[i][static_cast<size_t>(position)];
    contexts.push_back({texts[i], position, tokenizer.decode(std::span<const model::TokenId>(&piece, 1))});
  }
  return token_routing(token, std::move(contexts), route(ids));
}

json TokenRouting::to_json() const {
  json ctx = json::array();
  for (const auto& c : contexts) ctx.push_back({{"text", c.text}, {"position", c.position}, {"piece", c.piece}});
  json list = json::array();
  for (size_t l = 0; l < layers.size(); ++l)
    list.push_back({{"layer", layers[l]}, {"experts", experts[l]}, {"distinct_sets", distinct_sets[l]},
                    {"distinct_experts", distinct_experts[l]}});
  return {{"token", token}, {"contexts", ctx}, {"layers", list}};
}

// --- text tables ---------------------------------------------------------------------

std::string format_domain_test(const DomainTest& test, std::optional<int64_t> layer) {
  std::vector<int64_t> layers;
  for (const auto& l : test.layers) layers.push_back(l.layer);
  check_layer(layer, layers);
  std::ostringstream out;
  out << "DOMAIN TEST (" << test.domains.size() << " domains; do different domains use different experts?)\n";
  if (!layer) {
    out << std::left << std::setw(7) << "layer" << std::setw(8) << "shared" << std::setw(9) << "overlap";
    for (const auto& d : test.domains) out << std::setw(static_cast<int>(d.size()) + 7) << ("only-" + d);
    out << "\n";
  }
  for (const auto& l : test.layers) {
    if (!shown(layer, l.layer)) continue;
    if (!layer) {
      out << std::left << std::setw(7) << ("L" + std::to_string(l.layer)) << std::setw(8) << l.shared.size()
          << std::setw(9) << percent(l.overlap);
      for (size_t d = 0; d < test.domains.size(); ++d)
        out << std::setw(static_cast<int>(test.domains[d].size()) + 7) << l.exclusive[d].size();
      out << "\n";
      continue;
    }
    out << "Layer " << l.layer << "\n  shared experts: " << experts_text(l.shared) << "\n";
    for (size_t d = 0; d < test.domains.size(); ++d)
      out << "  only in " << test.domains[d] << ": " << experts_text(l.exclusive[d]) << "\n";
    out << "  overlap: " << percent(l.overlap) << " (experts used by every domain / by any)\n";
    out << "  assignments per expert and domain\n  " << std::left << std::setw(8) << "expert" << std::right;
    for (const auto& d : test.domains) out << std::setw(static_cast<int>(d.size()) + 2) << d;
    out << "\n";
    for (size_t e = 0; e < l.counts.front().size(); ++e) {
      out << "  " << std::left << std::setw(8) << ("E" + std::to_string(e)) << std::right;
      for (size_t d = 0; d < test.domains.size(); ++d)
        out << std::setw(static_cast<int>(test.domains[d].size()) + 2) << l.counts[d][e];
      out << "\n";
    }
  }
  return out.str();
}

std::string format_token_routing(const TokenRouting& routing, std::optional<int64_t> layer) {
  check_layer(layer, routing.layers);
  std::ostringstream out;
  out << "TOKEN ROUTING \"" << routing.token << "\" in " << routing.contexts.size() << " contexts\n";
  for (const auto& c : routing.contexts) out << "  \"" << c.text << "\": position " << c.position << " piece \"" << c.piece << "\"\n";
  for (size_t l = 0; l < routing.layers.size(); ++l) {
    if (!shown(layer, routing.layers[l])) continue;
    out << "L" << routing.layers[l] << ": " << routing.distinct_sets[l] << " distinct top-k sets, "
        << routing.distinct_experts[l] << " experts |";
    for (const auto& ids : routing.experts[l]) out << " " << experts_text(std::vector<int64_t>(ids.begin(), ids.end())) << " |";
    out << "\n";
  }
  return out.str();
}

std::string format_utilization(const Utilization& u, std::optional<int64_t> layer) {
  check_layer(layer, u.layers);
  std::ostringstream out;
  out << "EXPERT UTILIZATION (" << u.positions << " positions per layer; uniform rate K/E = " << percent(u.uniform_rate)
      << "; cold < " << percent(u.cold_threshold) << ")\n";
  // REFERENCE.md: hundreds of positions per layer at least before a rate means much.
  if (u.positions < 200) out << "  note: only " << u.positions << " positions; rates of rare experts are rough\n";
  for (size_t l = 0; l < u.layers.size(); ++l) {
    if (!shown(layer, u.layers[l])) continue;
    const auto& r = u.rates[l];
    const auto [lo, hi] = std::minmax_element(r.begin(), r.end());
    std::vector<int64_t> cold;
    for (const auto& c : u.cold)
      if (c.layer == u.layers[l]) cold.push_back(c.expert);
    out << "L" << u.layers[l] << ": min " << percent(*lo) << " (E" << (lo - r.begin()) << "), max " << percent(*hi) << " (E"
        << (hi - r.begin()) << "), cold " << cold.size() << ": " << experts_text(cold) << "\n";
    if (layer) {
      for (size_t e = 0; e < r.size(); ++e)
        out << "  " << std::left << std::setw(6) << ("E" + std::to_string(e)) << std::right << std::setw(7) << percent(r[e])
            << std::setw(7) << ("x" + fixed(u.relative[l][e], 2)) << " uniform\n";
    }
  }
  return out.str();
}

std::string format_paraphrase(const ParaphraseDivergence& d, const std::vector<int64_t>& layers) {
  std::ostringstream out;
  out << "PARAPHRASE ROUTING (Jaccard of prompt expert sets, 1 = same experts; " << d.pairs << " pairs)\n";
  for (size_t l = 0; l < layers.size(); ++l) {
    out << "L" << layers[l] << ": mean " << (l < d.per_layer.size() ? fixed(d.per_layer[l]) : std::string("-"));
    if (d.highlight && l < d.highlight->per_layer.size())
      out << "   \"" << d.highlight->a << "\" vs \"" << d.highlight->b << "\": " << fixed(d.highlight->per_layer[l]);
    out << "\n";
  }
  return out.str();
}

std::string format_circuits(const Circuits& c) {
  std::ostringstream out;
  out << "ADJACENT-LAYER CIRCUITS (routing-weight correlation >= " << fixed(c.threshold, 2) << ", " << c.positions
      << " positions)\n";
  for (const auto& p : c.pairs) {
    out << "L" << p.from_layer << " -> L" << p.to_layer << ": alignment "
        << (p.alignment ? fixed(*p.alignment) : std::string("- (no pair above the threshold)")) << ", " << p.matched.size()
        << " matched";
    for (size_t i = 0; i < p.matched.size() && i < 6; ++i)
      out << (i ? ", " : ": ") << "E" << p.matched[i].from_expert << "->E" << p.matched[i].to_expert << " "
          << fixed(p.matched[i].correlation, 2);
    out << (p.matched.size() > 6 ? ", ..." : "") << "\n";
  }
  return out.str();
}

std::string format_moe_type(const MoeType& t) {
  std::ostringstream out;
  out << "MOE TYPE: " << t.verdict << " (pseudo: gate rank ratio < 5% and cosine > 0.25; native: > 50% and < 0.10)\n";
  for (const auto& l : t.per_layer) {
    out << "L" << l.layer << ": " << l.verdict << ", cosine " << fixed(l.mean_cosine);
    for (const auto& p : l.projections)
      out << ", " << p.name << " rank " << fixed(p.mean_rank, 1) << "/" << std::min(p.rows, p.cols) << " ("
          << percent(p.rank_ratio) << ")";
    if (l.adapter_rank) out << ", adapter gate-delta rank " << fixed(*l.adapter_rank, 1);
    out << "\n";
  }
  return out.str();
}

}  // namespace character::eval
