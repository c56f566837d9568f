#include "model/arch/adapter_hooks.h"

#include <torch/torch.h>

namespace character::model {

namespace {
// Thread-local: a DPO reference forward on one thread must not switch off the
// adapters of a policy forward running on another.
thread_local bool g_adapters_enabled = true;
}  // namespace

bool adapters_enabled() { return g_adapters_enabled; }

AdaptersDisabled::AdaptersDisabled() : previous_(g_adapters_enabled) { g_adapters_enabled = false; }
AdaptersDisabled::~AdaptersDisabled() { g_adapters_enabled = previous_; }

at::Tensor grouped_linear(const at::Tensor& x, const at::Tensor& weight, const ExpertGroups& groups) {
  if (groups.grouped_mm) return at::_grouped_mm(x, weight.transpose(1, 2), groups.offsets);  // [S, out]
  std::vector<at::Tensor> outputs;
  int64_t start = 0;
  for (int64_t e = 0; e < static_cast<int64_t>(groups.counts.size()); ++e) {
    const int64_t n = groups.counts[e];
    if (n == 0) continue;
    outputs.push_back(at::linear(x.narrow(0, start, n), weight[e]));  // [n_e, in] → [n_e, out]
    start += n;
  }
  if (outputs.empty()) return x.new_empty({0, weight.size(1)});
  return outputs.size() == 1 ? outputs.front() : at::cat(outputs, 0);
}

}  // namespace character::model
