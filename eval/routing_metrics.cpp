// The routing analyses of eval/routing_metrics.h (circuits and generation
// dynamics: eval/routing_circuits.cpp). Definitions follow
// ../shared/REFERENCE.md "Routing analyses" and docs/eval.md; counts over many
// traces are reduced with oneTBB (deterministic reduction: the same traces give
// bit-identical numbers whatever the thread count).
#include "eval/routing_metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "base/error.h"
#include "eval/routing_detail.h"
#include "eval/stats.h"

namespace character::eval {

using namespace routing_detail;

namespace {

using nlohmann::json;

std::string str(int64_t v) { return std::to_string(v); }

struct Counts {
  std::vector<int64_t> values;
  int64_t positions = 0;
  Counts& operator+=(const Counts& o) {
    for (size_t i = 0; i < values.size(); ++i) values[i] += o.values[i];
    positions += o.positions;
    return *this;
  }
};

// Presence counts [L·E] over the chosen positions: top-k ids are distinct, so
// counting slots counts positions.
Counts expert_counts(const std::vector<RoutingTrace>& traces, PositionSet set) {
  const RoutingTrace& first = traces.front();
  Counts identity{std::vector<int64_t>(static_cast<size_t>(first.num_layers() * first.num_experts), 0), 0};
  return reduce_traces(traces.size(), identity, [&](Counts& acc, size_t i) {
    const RoutingTrace& trace = traces[i];
    auto [begin, end] = position_range(trace, set);
    for (int64_t t = begin; t < end; ++t)
      for (int64_t l = 0; l < trace.num_layers(); ++l)
        for (int64_t k = 0; k < trace.top_k; ++k) ++acc.values[static_cast<size_t>(l * trace.num_experts + trace.id(t, l, k))];
    acc.positions += end - begin;
  });
}

// The set of experts a layer uses over [begin, end) as an E-long 0/1 vector.
std::vector<char> expert_set(const RoutingTrace& trace, int64_t l, int64_t begin, int64_t end) {
  std::vector<char> used(static_cast<size_t>(trace.num_experts), 0);
  for (int64_t t = begin; t < end; ++t)
    for (int64_t k = 0; k < trace.top_k; ++k) used[static_cast<size_t>(trace.id(t, l, k))] = 1;
  return used;
}

void check_coverage(const RoutingTrace& trace, const CoverageCounts& coverage) {
  const auto expected = static_cast<size_t>(static_cast<int64_t>(coverage.layers.size()) * coverage.num_experts);
  if (coverage.loss_tokens.size() != expected || coverage.all_tokens.size() != expected)
    throw ConfigError("training coverage: " + str(static_cast<int64_t>(coverage.loss_tokens.size())) +
                      " loss-token counts, expected L·E = " + str(static_cast<int64_t>(expected)));
  std::string sources;
  for (const auto& s : coverage.sources) sources += (sources.empty() ? "" : ", ") + s;
  const std::string what = "training coverage (" + (sources.empty() ? std::string("in memory") : sources) + ")";
  auto list = [](const std::vector<int64_t>& layers) {
    std::string out = "[";
    for (size_t i = 0; i < layers.size(); ++i) out += (i ? ", " : "") + str(layers[i]);
    return out + "]";
  };
  if (coverage.layers != trace.layers)
    throw ConfigError(what + ": MoE layers " + list(coverage.layers) + ", expected " + list(trace.layers) +
                      " as the probe's routing");
  if (coverage.num_experts != trace.num_experts || coverage.top_k != trace.top_k)
    throw ConfigError(what + ": num_experts=" + str(coverage.num_experts) + ", top_k=" + str(coverage.top_k) +
                      ", expected " + str(trace.num_experts) + " and " + str(trace.top_k) + " as the probe's routing");
}

}  // namespace

json json_number(std::optional<double> value) {
  if (!value || !std::isfinite(*value)) return nullptr;
  return *value;
}

// --- utilization -------------------------------------------------------------

Utilization utilization(const std::vector<RoutingTrace>& traces, const UtilizationOptions& options) {
  check_traces(traces, "utilization");
  const RoutingTrace& first = traces.front();
  const Counts counts = expert_counts(traces, options.positions);
  Utilization u;
  u.layers = first.layers;
  u.num_experts = first.num_experts;
  u.top_k = first.top_k;
  u.positions = counts.positions;
  u.uniform_rate = static_cast<double>(first.top_k) / static_cast<double>(first.num_experts);
  u.cold_threshold = options.cold_threshold;
  for (int64_t l = 0; l < first.num_layers(); ++l) {
    std::vector<double> rates, relative;
    for (int64_t e = 0; e < first.num_experts; ++e) {
      const double rate = counts.positions == 0 ? 0.0
                                                : static_cast<double>(counts.values[static_cast<size_t>(l * first.num_experts + e)]) /
                                                      static_cast<double>(counts.positions);
      rates.push_back(rate);
      relative.push_back(rate / u.uniform_rate);
      if (counts.positions > 0 && rate < options.cold_threshold) u.cold.push_back({first.layers[static_cast<size_t>(l)], e, rate});
    }
    u.rates.push_back(std::move(rates));
    u.relative.push_back(std::move(relative));
  }
  return u;
}

json Utilization::to_json() const {
  json cold_list = json::array();
  for (const auto& c : cold) cold_list.push_back({{"layer", c.layer}, {"expert", c.expert}, {"rate", json_number(c.rate)}});
  return {{"positions", positions},
          {"uniform_rate", json_number(uniform_rate)},
          {"rates", matrix_json(rates)},
          {"relative", matrix_json(relative)},
          {"cold_threshold", json_number(cold_threshold)},
          {"cold", cold_list},
          {"training", training ? matrix_json(*training) : json(nullptr)}};
}

// --- coverage -----------------------------------------------------------------

std::vector<std::vector<double>> CoverageCounts::training_rates() const {
  std::vector<std::vector<double>> out;
  for (size_t l = 0; l < layers.size(); ++l) {
    std::vector<double> row;
    for (int64_t e = 0; e < num_experts; ++e)
      row.push_back(real_positions == 0 ? 0.0
                                        : static_cast<double>(all_tokens[l * static_cast<size_t>(num_experts) + static_cast<size_t>(e)]) /
                                              static_cast<double>(real_positions));
    out.push_back(std::move(row));
  }
  return out;
}

ProbeCoverage probe_coverage(const std::vector<RoutingTrace>& traces, const std::vector<std::string>& categories,
                             const CoverageCounts& coverage, int64_t min_loss_tokens) {
  check_traces(traces, "probe coverage");
  check_coverage(traces.front(), coverage);
  if (!categories.empty() && categories.size() != traces.size())
    throw ConfigError("probe coverage: " + str(static_cast<int64_t>(categories.size())) + " category labels for " +
                      str(static_cast<int64_t>(traces.size())) + " traces, expected one per trace");
  const RoutingTrace& first = traces.front();
  const auto layers = static_cast<size_t>(first.num_layers());

  // Per trace and layer: assignments, and those on experts with ≥ N loss tokens.
  auto count_trace = [&](const RoutingTrace& trace, std::vector<int64_t>& covered, std::vector<int64_t>& total) {
    for (int64_t t = 0; t < trace.positions; ++t)
      for (size_t l = 0; l < layers; ++l)
        for (int64_t k = 0; k < trace.top_k; ++k) {
          covered[l] += coverage.loss(l, trace.id(t, static_cast<int64_t>(l), k)) >= min_loss_tokens;
          ++total[l];
        }
  };
  ProbeCoverage out;
  out.sources = coverage.sources;
  out.min_loss_tokens = min_loss_tokens;
  std::vector<int64_t> covered(layers, 0), total(layers, 0);
  std::map<std::string, std::pair<int64_t, int64_t>> by_category;  // covered, total
  for (size_t i = 0; i < traces.size(); ++i) {
    std::vector<int64_t> c(layers, 0), n(layers, 0);
    count_trace(traces[i], c, n);
    for (size_t l = 0; l < layers; ++l) {
      covered[l] += c[l];
      total[l] += n[l];
    }
    if (!categories.empty()) {
      auto& [cc, nn] = by_category[categories[i]];
      cc += std::accumulate(c.begin(), c.end(), int64_t{0});
      nn += std::accumulate(n.begin(), n.end(), int64_t{0});
    }
  }
  const int64_t all_covered = std::accumulate(covered.begin(), covered.end(), int64_t{0});
  out.assignments = std::accumulate(total.begin(), total.end(), int64_t{0});
  out.probe_coverage = out.assignments == 0 ? 0.0 : static_cast<double>(all_covered) / static_cast<double>(out.assignments);
  for (size_t l = 0; l < layers; ++l)
    out.per_layer.push_back(total[l] == 0 ? 0.0 : static_cast<double>(covered[l]) / static_cast<double>(total[l]));
  for (const auto& [name, ct] : by_category)
    out.per_category[name] = ct.second == 0 ? 0.0 : static_cast<double>(ct.first) / static_cast<double>(ct.second);

  const Utilization probe = utilization(traces);
  for (size_t l = 0; l < layers; ++l) {
    std::vector<int64_t> row;
    for (int64_t e = 0; e < first.num_experts; ++e) {
      const int64_t loss = coverage.loss(l, e);
      row.push_back(loss);
      const double rate = probe.rates[l][static_cast<size_t>(e)];
      if (loss < min_loss_tokens && rate > 0.0) out.under_trained.push_back({first.layers[l], e, loss, rate});
    }
    out.loss_tokens.push_back(std::move(row));
  }
  return out;
}

json ProbeCoverage::to_json() const {
  json under = json::array();
  for (const auto& u : under_trained)
    under.push_back({{"layer", u.layer}, {"expert", u.expert}, {"loss_tokens", u.loss_tokens},
                     {"probe_rate", json_number(u.probe_rate)}});
  json categories = json::object();
  for (const auto& [name, value] : per_category) categories[name] = json_number(value);
  return {{"sources", sources},
          {"min_loss_tokens", min_loss_tokens},
          {"assignments", assignments},
          {"probe_coverage", json_number(probe_coverage)},
          {"per_layer", vector_json(per_layer)},
          {"loss_tokens", loss_tokens},
          {"under_trained", under},
          {"per_category", categories}};
}

std::vector<std::optional<double>> under_trained_shares(const std::vector<RoutingTrace>& traces,
                                                        const CoverageCounts& coverage, int64_t min_loss_tokens) {
  check_traces(traces, "under-trained share");
  check_coverage(traces.front(), coverage);
  std::vector<std::optional<double>> out;
  for (const RoutingTrace& trace : traces) {
    int64_t under = 0, total = 0;
    for (int64_t t = trace.prompt_positions; t < trace.positions; ++t)
      for (int64_t l = 0; l < trace.num_layers(); ++l)
        for (int64_t k = 0; k < trace.top_k; ++k) {
          under += coverage.loss(static_cast<size_t>(l), trace.id(t, l, k)) < min_loss_tokens;
          ++total;
        }
    out.push_back(total == 0 ? std::nullopt : std::optional<double>(static_cast<double>(under) / static_cast<double>(total)));
  }
  return out;
}

// --- attribution ----------------------------------------------------------------

namespace {

AttributionGroup attribution_group(const std::string& category, const std::vector<double>& shares,
                                   const std::vector<double>& in_character) {
  AttributionGroup g;
  g.category = category;
  g.n = static_cast<int64_t>(shares.size());
  std::vector<double> in, out;
  for (size_t i = 0; i < shares.size(); ++i) (in_character[i] > 0.5 ? in : out).push_back(shares[i]);
  g.n_in = static_cast<int64_t>(in.size());
  g.n_out = static_cast<int64_t>(out.size());
  g.mean_in = mean(in);
  g.mean_out = mean(out);
  g.correlation = pearson_correlation(shares, in_character);
  return g;
}

json group_json(const AttributionGroup& g) {
  return {{"category", g.category}, {"n", g.n}, {"n_in", g.n_in}, {"n_out", g.n_out},
          {"mean_in", json_number(g.mean_in)}, {"mean_out", json_number(g.mean_out)},
          {"correlation", json_number(g.correlation)}};
}

}  // namespace

Attribution attribution(const std::vector<std::optional<double>>& shares, const std::vector<bool>& in_character,
                        const std::vector<std::string>& categories) {
  if (in_character.size() != shares.size() || (!categories.empty() && categories.size() != shares.size()))
    throw ConfigError("attribution: " + str(static_cast<int64_t>(shares.size())) + " shares, " +
                      str(static_cast<int64_t>(in_character.size())) + " verdicts and " +
                      str(static_cast<int64_t>(categories.size())) + " categories, expected one of each per response");
  std::vector<double> all_x, all_y;
  std::vector<std::string> order;
  std::map<std::string, std::pair<std::vector<double>, std::vector<double>>> by_category;
  for (size_t i = 0; i < shares.size(); ++i) {
    if (!shares[i]) continue;
    const double y = in_character[i] ? 1.0 : 0.0;
    all_x.push_back(*shares[i]);
    all_y.push_back(y);
    if (categories.empty()) continue;
    if (!by_category.count(categories[i])) order.push_back(categories[i]);
    auto& [x, ys] = by_category[categories[i]];
    x.push_back(*shares[i]);
    ys.push_back(y);
  }
  Attribution a;
  a.overall = attribution_group("", all_x, all_y);
  for (const auto& name : order) a.per_category.push_back(attribution_group(name, by_category[name].first, by_category[name].second));
  return a;
}

json Attribution::to_json() const {
  json categories = json::array();
  for (const auto& g : per_category) categories.push_back(group_json(g));
  return {{"n", overall.n}, {"n_in", overall.n_in}, {"n_out", overall.n_out},
          {"correlation", json_number(overall.correlation)},
          {"mean_under_trained_in", json_number(overall.mean_in)},
          {"mean_under_trained_out", json_number(overall.mean_out)},
          {"per_category", categories}};
}

// --- paraphrase divergence, drift ---------------------------------------------

std::vector<double> prompt_expert_jaccard(const RoutingTrace& a, const RoutingTrace& b) {
  validate_trace(a, "paraphrase divergence: first trace");
  validate_trace(b, "paraphrase divergence: second trace");
  check_same_shape(a, b, "paraphrase divergence: second trace");
  std::vector<double> out;
  for (int64_t l = 0; l < a.num_layers(); ++l) {
    const auto sa = expert_set(a, l, 0, a.prompt_positions);
    const auto sb = expert_set(b, l, 0, b.prompt_positions);
    int64_t both = 0, either = 0;
    for (size_t e = 0; e < sa.size(); ++e) {
      both += sa[e] && sb[e];
      either += sa[e] || sb[e];
    }
    out.push_back(either == 0 ? 1.0 : static_cast<double>(both) / static_cast<double>(either));
  }
  return out;
}

ParaphraseDivergence paraphrase_divergence(const std::vector<RoutingTrace>& traces,
                                           const std::vector<TracePair>& pairs) {
  ParaphraseDivergence out;
  out.pairs = static_cast<int64_t>(pairs.size());
  if (pairs.empty()) return out;
  check_traces(traces, "paraphrase divergence");
  std::vector<double> sum(static_cast<size_t>(traces.front().num_layers()), 0.0);
  for (const TracePair& p : pairs) {
    if (p.a >= traces.size() || p.b >= traces.size())
      throw ConfigError("paraphrase divergence: pair (" + str(static_cast<int64_t>(p.a)) + ", " +
                        str(static_cast<int64_t>(p.b)) + "), expected indices below " +
                        str(static_cast<int64_t>(traces.size())));
    const auto j = prompt_expert_jaccard(traces[p.a], traces[p.b]);
    for (size_t l = 0; l < sum.size(); ++l) sum[l] += j[l];
  }
  for (double s : sum) out.per_layer.push_back(s / static_cast<double>(pairs.size()));
  return out;
}

json ParaphraseDivergence::to_json() const {
  json h = nullptr;
  if (highlight) h = {{"a", highlight->a}, {"b", highlight->b}, {"per_layer", vector_json(highlight->per_layer)}};
  return {{"measure", "jaccard"}, {"pairs", pairs}, {"per_layer", vector_json(per_layer)}, {"highlight", h}};
}

Drift routing_drift(const std::vector<RoutingTrace>& base, const std::vector<RoutingTrace>& tuned) {
  check_traces(base, "routing drift (base)");
  check_traces(tuned, "routing drift (tuned)");
  if (base.size() != tuned.size())
    throw ConfigError("routing drift: " + str(static_cast<int64_t>(tuned.size())) + " tuned traces, expected " +
                      str(static_cast<int64_t>(base.size())) + " as the base traces");
  for (size_t i = 0; i < base.size(); ++i) {
    check_same_shape(base[i], tuned[i], "routing drift: tuned trace " + std::to_string(i));
    if (base[i].positions != tuned[i].positions)
      throw ConfigError("routing drift: tuned trace " + std::to_string(i) + " has " + str(tuned[i].positions) +
                        " positions, expected " + str(base[i].positions) + " as the base trace (same token sequence)");
  }
  const auto layers = static_cast<size_t>(base.front().num_layers());
  const auto E = static_cast<size_t>(base.front().num_experts);
  struct Sums {
    std::vector<double> jaccard;
    std::vector<int64_t> changed;
    std::vector<int64_t> churn;  // [L·E]
    int64_t positions = 0;
    Sums& operator+=(const Sums& o) {
      for (size_t l = 0; l < jaccard.size(); ++l) {
        jaccard[l] += o.jaccard[l];
        changed[l] += o.changed[l];
      }
      for (size_t i = 0; i < churn.size(); ++i) churn[i] += o.churn[i];
      positions += o.positions;
      return *this;
    }
  };
  const Sums zero{std::vector<double>(layers, 0.0), std::vector<int64_t>(layers, 0), std::vector<int64_t>(layers * E, 0), 0};
  const Sums sums = reduce_traces(base.size(), zero,
                                  [&](Sums& acc, size_t i) {
                                    const RoutingTrace& a = base[i];
                                    const RoutingTrace& b = tuned[i];
                                    for (int64_t t = 0; t < a.positions; ++t)
                                      for (size_t l = 0; l < layers; ++l) {
                                        const auto li = static_cast<int64_t>(l);
                                        const int64_t both = topk_intersection(a, t, b, t, li);
                                        acc.jaccard[l] += static_cast<double>(both) / static_cast<double>(2 * a.top_k - both);
                                        acc.changed[l] += a.id(t, li, 0) != b.id(t, li, 0);
                                        // An expert in one set only: +1 from a, +1 from b, −2 when in both.
                                        int64_t* churn = acc.churn.data() + l * E;
                                        for (int64_t k = 0; k < a.top_k; ++k) {
                                          ++churn[a.id(t, li, k)];
                                          ++churn[b.id(t, li, k)];
                                          for (int64_t j = 0; j < b.top_k; ++j)
                                            if (a.id(t, li, k) == b.id(t, li, j)) churn[a.id(t, li, k)] -= 2;
                                        }
                                      }
                                    acc.positions += a.positions;
                                  });
  Drift d;
  d.positions = sums.positions;
  for (size_t l = 0; l < layers; ++l) {
    const double n = static_cast<double>(std::max<int64_t>(sums.positions, 1));
    d.per_layer.push_back(sums.positions == 0 ? 0.0 : 1.0 - sums.jaccard[l] / n);
    d.changed_top1.push_back(sums.positions == 0 ? 0.0 : static_cast<double>(sums.changed[l]) / n);
    std::vector<double> churn(E, 0.0);
    for (size_t e = 0; e < E; ++e) churn[e] = sums.positions == 0 ? 0.0 : static_cast<double>(sums.churn[l * E + e]) / n;
    d.expert_churn.push_back(std::move(churn));
  }
  return d;
}

json Drift::to_json() const {
  return {{"positions", positions},
          {"per_layer", vector_json(per_layer)},
          {"changed_top1", vector_json(changed_top1)},
          {"expert_churn", matrix_json(expert_churn)}};
}

}  // namespace character::eval
