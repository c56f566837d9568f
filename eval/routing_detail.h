// Internals shared by the routing analyses (eval/routing_metrics.cpp and
// eval/routing_circuits.cpp): trace checks, position ranges, the deterministic
// oneTBB reduction over traces, top-k set intersections and JSON of numbers.
// Not an interface: eval/routing_metrics.h is.
#pragma once

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/parallel_reduce.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "eval/routing_metrics.h"

namespace character::eval::routing_detail {

// Every trace valid and of the first one's shape; ConfigError naming the trace.
inline void check_traces(const std::vector<RoutingTrace>& traces, const std::string& what) {
  if (traces.empty()) throw ConfigError(what + ": no routing traces, expected at least one");
  for (size_t i = 0; i < traces.size(); ++i) {
    const std::string name = what + ": routing trace " + std::to_string(i);
    validate_trace(traces[i], name);
    check_same_shape(traces[0], traces[i], name);
  }
}

inline std::pair<int64_t, int64_t> position_range(const RoutingTrace& trace, PositionSet set) {
  switch (set) {
    case PositionSet::kPrompt: return {0, trace.prompt_positions};
    case PositionSet::kGenerated: return {trace.prompt_positions, trace.positions};
    case PositionSet::kAll: break;
  }
  return {0, trace.positions};
}

// Sums `per_trace(acc, i)` over all traces with a deterministic oneTBB reduction;
// Acc needs operator+=. Grains of several traces keep the number of accumulator
// copies small (circuit sums hold E² doubles per layer pair).
template <class Acc, class PerTrace>
Acc reduce_traces(size_t count, const Acc& identity, PerTrace per_trace) {
  const size_t grain = std::max<size_t>(4, count / 64);
  return tbb::parallel_deterministic_reduce(
      tbb::blocked_range<size_t>(0, count, grain), identity,
      [&](const tbb::blocked_range<size_t>& range, Acc acc) {
        for (size_t i = range.begin(); i != range.end(); ++i) per_trace(acc, i);
        return acc;
      },
      [](Acc a, const Acc& b) {
        a += b;
        return a;
      });
}

// |top-k(a, t) ∩ top-k(b, u)| at layer l (K² compares; K is small).
inline int64_t topk_intersection(const RoutingTrace& a, int64_t t, const RoutingTrace& b, int64_t u, int64_t l) {
  int64_t both = 0;
  for (int64_t i = 0; i < a.top_k; ++i)
    for (int64_t j = 0; j < b.top_k; ++j) both += a.id(t, l, i) == b.id(u, l, j);
  return both;
}

// Numbers as JSON, non-finite ones as null (json_number).
inline nlohmann::json vector_json(const std::vector<double>& v) {
  nlohmann::json out = nlohmann::json::array();
  for (double x : v) out.push_back(json_number(x));
  return out;
}

inline nlohmann::json matrix_json(const std::vector<std::vector<double>>& m) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& row : m) out.push_back(vector_json(row));
  return out;
}

}  // namespace character::eval::routing_detail
