// Adjacent-layer circuits and generation dynamics of eval/routing_metrics.h
// (definitions in ../shared/REFERENCE.md and docs/eval.md); the other routing
// analyses are in eval/routing_metrics.cpp.
#include <cmath>

#include "eval/routing_detail.h"
#include "eval/routing_metrics.h"

namespace character::eval {

using nlohmann::json;
using namespace routing_detail;

// --- circuits -------------------------------------------------------------------

Circuits circuits(const std::vector<RoutingTrace>& traces, const CircuitOptions& options) {
  check_traces(traces, "circuits");
  const RoutingTrace& first = traces.front();
  const auto E = static_cast<size_t>(first.num_experts);
  const size_t pairs = static_cast<size_t>(first.num_layers()) - 1;
  // Sufficient statistics of Pearson's r, per adjacent layer pair: Σx, Σx², Σy,
  // Σy², Σxy over positions. Accumulated sparsely from the top-k slots (x is 0
  // off the top-k), which a dense [T, E] correlation routine could not do.
  struct Sums {
    std::vector<double> sx, sxx, sy, syy, sxy;  // [pairs·E] ×4, [pairs·E·E]
    int64_t n = 0;
    Sums& operator+=(const Sums& o) {
      auto add = [](std::vector<double>& a, const std::vector<double>& b) {
        for (size_t i = 0; i < a.size(); ++i) a[i] += b[i];
      };
      add(sx, o.sx), add(sxx, o.sxx), add(sy, o.sy), add(syy, o.syy), add(sxy, o.sxy);
      n += o.n;
      return *this;
    }
  };
  Sums identity{std::vector<double>(pairs * E, 0.0), std::vector<double>(pairs * E, 0.0), std::vector<double>(pairs * E, 0.0),
                std::vector<double>(pairs * E, 0.0), std::vector<double>(pairs * E * E, 0.0), 0};
  const Sums s = reduce_traces(traces.size(), identity, [&](Sums& acc, size_t i) {
    const RoutingTrace& trace = traces[i];
    auto [begin, end] = position_range(trace, options.positions);
    for (int64_t t = begin; t < end; ++t)
      for (size_t p = 0; p < pairs; ++p) {
        const auto l = static_cast<int64_t>(p);
        for (int64_t k = 0; k < trace.top_k; ++k) {
          const auto e = static_cast<size_t>(trace.id(t, l, k));
          const double x = trace.weight(t, l, k);
          const auto f = static_cast<size_t>(trace.id(t, l + 1, k));
          const double y = trace.weight(t, l + 1, k);
          acc.sx[p * E + e] += x, acc.sxx[p * E + e] += x * x;
          acc.sy[p * E + f] += y, acc.syy[p * E + f] += y * y;
          for (int64_t j = 0; j < trace.top_k; ++j)
            acc.sxy[(p * E + e) * E + static_cast<size_t>(trace.id(t, l + 1, j))] += x * trace.weight(t, l + 1, j);
        }
      }
    acc.n += end - begin;
  });

  Circuits out;
  out.threshold = options.threshold;
  out.positions = s.n;
  const double n = static_cast<double>(s.n);
  for (size_t p = 0; p < pairs; ++p) {
    CircuitPair pair;
    pair.from_layer = first.layers[p];
    pair.to_layer = first.layers[p + 1];
    std::vector<CircuitMatch> candidates;
    for (size_t e = 0; e < E; ++e)
      for (size_t f = 0; f < E; ++f) {
        const double vx = n * s.sxx[p * E + e] - s.sx[p * E + e] * s.sx[p * E + e];
        const double vy = n * s.syy[p * E + f] - s.sy[p * E + f] * s.sy[p * E + f];
        if (!(vx > 0.0) || !(vy > 0.0)) continue;  // an expert with constant weight: r undefined
        const double r = (n * s.sxy[(p * E + e) * E + f] - s.sx[p * E + e] * s.sy[p * E + f]) / std::sqrt(vx * vy);
        if (std::isfinite(r) && r >= options.threshold)
          candidates.push_back({static_cast<int64_t>(e), static_cast<int64_t>(f), r});
      }
    std::stable_sort(candidates.begin(), candidates.end(),
                     [](const CircuitMatch& a, const CircuitMatch& b) { return a.correlation > b.correlation; });
    std::vector<char> used_from(E, 0), used_to(E, 0);
    double sum = 0.0;
    for (const CircuitMatch& c : candidates) {
      if (used_from[static_cast<size_t>(c.from_expert)] || used_to[static_cast<size_t>(c.to_expert)]) continue;
      used_from[static_cast<size_t>(c.from_expert)] = used_to[static_cast<size_t>(c.to_expert)] = 1;
      pair.matched.push_back(c);
      sum += c.correlation;
    }
    if (!pair.matched.empty()) pair.alignment = sum / static_cast<double>(pair.matched.size());
    out.pairs.push_back(std::move(pair));
  }
  return out;
}

json Circuits::to_json() const {
  json list = json::array();
  for (const auto& p : pairs) {
    json matched = json::array();
    for (const auto& m : p.matched) matched.push_back({m.from_expert, m.to_expert, json_number(m.correlation)});
    list.push_back({{"from", p.from_layer}, {"to", p.to_layer}, {"alignment", json_number(p.alignment)}, {"matched", matched}});
  }
  return {{"threshold", json_number(threshold)}, {"positions", positions}, {"pairs", list}};
}

// --- generation dynamics -----------------------------------------------------------

GenerationDynamics generation_dynamics(const std::vector<RoutingTrace>& traces) {
  check_traces(traces, "generation dynamics");
  const RoutingTrace& first = traces.front();
  const auto layers = static_cast<size_t>(first.num_layers());
  std::vector<int64_t> kept(layers, 0), changed(layers, 0);
  GenerationDynamics out;
  for (const RoutingTrace& trace : traces) {
    for (int64_t t = trace.prompt_positions; t + 1 < trace.positions; ++t) {
      for (size_t l = 0; l < layers; ++l) {
        const auto li = static_cast<int64_t>(l);
        kept[l] += topk_intersection(trace, t, trace, t + 1, li);
        changed[l] += trace.id(t, li, 0) != trace.id(t + 1, li, 0);
      }
      ++out.transitions;
    }
  }
  for (size_t l = 0; l < layers; ++l) {
    LayerDynamics d;
    d.layer = first.layers[l];
    if (out.transitions > 0) {
      d.topk_overlap = static_cast<double>(kept[l]) / static_cast<double>(out.transitions * first.top_k);
      d.top1_change_rate = static_cast<double>(changed[l]) / static_cast<double>(out.transitions);
    }
    out.per_layer.push_back(d);
  }
  return out;
}

json GenerationDynamics::to_json() const {
  json list = json::array();
  for (const auto& d : per_layer)
    list.push_back({{"layer", d.layer},
                    {"topk_overlap", transitions > 0 ? json_number(d.topk_overlap) : json(nullptr)},
                    {"top1_change_rate", transitions > 0 ? json_number(d.top1_change_rate) : json(nullptr)}});
  return {{"transitions", transitions}, {"per_layer", list}};
}

}  // namespace character::eval
