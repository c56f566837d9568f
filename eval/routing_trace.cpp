// Shape checks of routing traces (eval/routing_trace.h): every analysis calls
// these first, so a trace that does not hold T·L·K ids, or two traces of
// different models, fail with a message naming the trace and the field.
#include "eval/routing_trace.h"

#include "base/error.h"

namespace character::eval {
namespace {

std::string str(int64_t v) { return std::to_string(v); }

}  // namespace

void validate_trace(const RoutingTrace& trace, const std::string& what) {
  if (trace.num_experts < 1) throw ConfigError(what + ": num_experts=" + str(trace.num_experts) + ", expected ≥ 1");
  if (trace.top_k < 1 || trace.top_k > trace.num_experts)
    throw ConfigError(what + ": top_k=" + str(trace.top_k) + ", expected 1 ≤ top_k ≤ num_experts=" +
                      str(trace.num_experts));
  if (trace.layers.empty()) throw ConfigError(what + ": no MoE layers, expected at least one");
  if (trace.positions < 0 || trace.prompt_positions < 0 || trace.prompt_positions > trace.positions)
    throw ConfigError(what + ": prompt_positions=" + str(trace.prompt_positions) + ", positions=" +
                      str(trace.positions) + ", expected 0 ≤ prompt_positions ≤ positions");
  const auto expected = static_cast<size_t>(trace.positions * trace.num_layers() * trace.top_k);
  if (trace.ids.size() != expected)
    throw ConfigError(what + ": ids holds " + str(static_cast<int64_t>(trace.ids.size())) + " values, expected T·L·K = " +
                      str(trace.positions) + "·" + str(trace.num_layers()) + "·" + str(trace.top_k) + " = " +
                      str(static_cast<int64_t>(expected)));
  if (trace.weights.size() != expected)
    throw ConfigError(what + ": weights holds " + str(static_cast<int64_t>(trace.weights.size())) +
                      " values, expected T·L·K = " + str(static_cast<int64_t>(expected)));
  for (size_t i = 0; i < trace.ids.size(); ++i) {
    const int32_t id = trace.ids[i];
    if (id < 0 || id >= trace.num_experts) {
      const auto slot = static_cast<int64_t>(i);
      const int64_t per_position = trace.num_layers() * trace.top_k;
      throw ConfigError(what + ": expert id " + str(id) + " at position " + str(slot / per_position) + ", layer " +
                        str(trace.layers[static_cast<size_t>((slot % per_position) / trace.top_k)]) + ", slot " +
                        str(slot % trace.top_k) + ", expected 0 ≤ id < num_experts=" + str(trace.num_experts));
    }
  }
}

void check_same_shape(const RoutingTrace& a, const RoutingTrace& b, const std::string& what) {
  auto list = [](const std::vector<int64_t>& layers) {
    std::string out = "[";
    for (size_t i = 0; i < layers.size(); ++i) out += (i ? ", " : "") + str(layers[i]);
    return out + "]";
  };
  if (a.layers != b.layers)
    throw ConfigError(what + ": MoE layers " + list(b.layers) + ", expected " + list(a.layers) + " as the first trace");
  if (a.num_experts != b.num_experts)
    throw ConfigError(what + ": num_experts=" + str(b.num_experts) + ", expected " + str(a.num_experts) +
                      " as the first trace");
  if (a.top_k != b.top_k)
    throw ConfigError(what + ": top_k=" + str(b.top_k) + ", expected " + str(a.top_k) + " as the first trace");
}

}  // namespace character::eval
