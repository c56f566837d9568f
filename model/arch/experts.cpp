#include "model/arch/experts.h"

#include <torch/torch.h>

#include <vector>

namespace character::model {

TopKRouterImpl::TopKRouterImpl(int64_t num_experts, int64_t hidden_size, RouterOptions options,
                               const at::TensorOptions& tensor_options)
    : options(options) {
  weight = register_parameter("weight", torch::empty({num_experts, hidden_size}, tensor_options));
}

Routing TopKRouterImpl::forward(const at::Tensor& x) {
  // Qwen3MoeTopKRouter.forward / MixtralTopKRouter.forward
  auto raw = delta && adapters_enabled() ? delta->logits(x, weight) : at::linear(x, weight);
  auto logits = raw.to(at::kFloat);                     // [N, E]
  auto probs = at::softmax(logits, -1);                 // [N, E] float32
  auto [values, ids] = at::topk(probs, options.top_k, -1);  // [N, K], descending
  if (options.norm_topk_prob) values = values / values.sum(-1, /*keepdim=*/true);
  return {logits, ids, values};
}

ExpertBankImpl::ExpertBankImpl(int64_t num_experts, int64_t hidden_size, int64_t intermediate_size,
                               const at::TensorOptions& options)
    : num_experts(num_experts), intermediate_size(intermediate_size) {
  gate_up_proj =
      register_parameter("gate_up_proj", torch::empty({num_experts, 2 * intermediate_size, hidden_size}, options));
  down_proj = register_parameter("down_proj", torch::empty({num_experts, hidden_size, intermediate_size}, options));
}

bool ExpertBankImpl::use_grouped_mm() const {
  switch (kernel) {
    case ExpertKernel::kLoop: return false;
    case ExpertKernel::kGroupedMm: return true;
    case ExpertKernel::kAuto: break;
  }
  // One grouped GEMM per projection on CUDA bf16. On CPU torch's _grouped_mm is
  // itself a loop of mm (bit-identical results); our loop measured as fast or
  // faster (single thread: parity at Qwen3-30B/Mixtral shapes; 2 threads, 4096
  // pairs over 64 experts: 0.15 s vs 0.22 s).
  return gate_up_proj.is_cuda() && gate_up_proj.scalar_type() == at::kBFloat16;
}

namespace {

// y[rows of e] = x[rows of e]·w[e]ᵀ for every expert e with rows, written by
// at::mm_out straight into one [S, out] result (no per-expert temporaries and no
// cat, as transformers' grouped_mm fallback does). The same mm kernel as
// grouped_linear, so the same values; out= ops do not record autograd, so this
// is for the no-grad path only. in: x [S, in] grouped as `counts`, weight
// [E, out, in]; out: [S, out]
at::Tensor grouped_linear_no_grad(const at::Tensor& x, const at::Tensor& weight, const std::vector<int64_t>& counts) {
  auto y = at::empty({x.size(0), weight.size(1)}, x.options());
  int64_t start = 0;
  for (int64_t e = 0; e < static_cast<int64_t>(counts.size()); ++e) {
    const int64_t n = counts[e];
    if (n == 0) continue;
    auto rows = y.narrow(0, start, n);                               // [n_e, out] view into y
    at::mm_out(rows, x.narrow(0, start, n), weight[e].t());  // [n_e, in] → [n_e, out]
    start += n;
  }
  return y;
}

// y · w per row, in the promoted dtype (fp32: the routing weights are fp32), in
// place when y already has it. in: y [S, D], w [S]; out: [S, D]
at::Tensor weight_rows_no_grad(at::Tensor y, const at::Tensor& w) {
  auto column = w.reshape({-1, 1});  // [S, 1]
  return y.scalar_type() == at::result_type(y, column) ? y.mul_(column) : y * column;
}

// SwiGLU on fused gate/up rows: silu(gate) * up, into one new tensor (the
// in-place multiply saves the product's allocation; the values are those of
// silu(gate) * up). in: gate_up [S, 2F]; out: [S, F]
at::Tensor swiglu_no_grad(const at::Tensor& gate_up, int64_t intermediate_size) {
  auto h = at::silu(gate_up.narrow(1, 0, intermediate_size));  // [S, F]
  return h.mul_(gate_up.narrow(1, intermediate_size, intermediate_size));
}

// One token's K experts, each on the token's single row: the same per-row
// matmuls and fp32 weighting/sum as the grouped path below, without its
// sort/gather/scatter ops (which dominate a single-token decode step). No host
// sync beyond reading K ids, which are on the host already on CPU.
// in: x [1, D], topk_ids [1, K], topk_weights [1, K] float32; out: [1, D]
at::Tensor one_token_experts(const at::Tensor& x, const at::Tensor& topk_ids, const at::Tensor& topk_weights,
                             const at::Tensor& gate_up_proj, const at::Tensor& down_proj, int64_t intermediate_size) {
  const int64_t k = topk_ids.size(1), d = x.size(1);
  auto ids = topk_ids.to(at::kCPU).contiguous();
  const int64_t* id = ids.data_ptr<int64_t>();
  auto gate_up = at::empty({k, gate_up_proj.size(1)}, x.options());  // [K, 2F]
  for (int64_t j = 0; j < k; ++j) {
    auto row = gate_up.narrow(0, j, 1);  // [1, 2F] view
    at::mm_out(row, x, gate_up_proj[id[j]].t());
  }
  auto h = swiglu_no_grad(gate_up, intermediate_size);  // [K, F]
  auto y = at::empty({k, d}, x.options());              // [K, D]
  for (int64_t j = 0; j < k; ++j) {
    auto row = y.narrow(0, j, 1);  // [1, D] view
    at::mm_out(row, h.narrow(0, j, 1), down_proj[id[j]].t());
  }
  y = weight_rows_no_grad(y, topk_weights);                // [K, D] fp32 weighting
  return y.view({1, k, d}).sum(1).to(x.scalar_type());  // [1, K, D] → [1, D]
}

}  // namespace

at::Tensor ExpertBankImpl::forward(const at::Tensor& x, const at::Tensor& topk_ids, const at::Tensor& topk_weights) {
  const bool adapted = delta && adapters_enabled();
  const bool grouped_mm = use_grouped_mm();
  // out= kernels and in-place ops record no autograd: only when nothing needs a gradient.
  const bool no_grad = !at::GradMode::is_enabled() ||
                       !(x.requires_grad() || topk_weights.requires_grad() || gate_up_proj.requires_grad() ||
                         down_proj.requires_grad());
  if (x.size(0) == 1 && !grouped_mm && !adapted && no_grad) {
    // Single-token decode: every expert group is one row, so grouping is pure overhead.
    return one_token_experts(x, topk_ids, topk_weights, gate_up_proj, down_proj, intermediate_size);
  }
  // Mirrors integrations/moe.py grouped_mm_experts_forward, transformers' default
  // experts implementation (also on CPU).
  const int64_t n = x.size(0), k = topk_ids.size(1), d = x.size(1);
  // 1. Group the S = N*K (token, slot) pairs by expert; a stable sort keeps each
  //    expert's tokens in position order. [N, K] → [S]
  auto flat_ids = topk_ids.reshape({-1});
  auto order = flat_ids.argsort(/*stable=*/true);
  auto token_of = order.div(k, "floor");                               // [S] source row of each pair
  auto weight_of = topk_weights.reshape({-1}).index_select(0, order);  // [S]
  auto grouped = x.index_select(0, token_of);                          // [S, D]
  auto counts = flat_ids.bincount(/*weights=*/{}, /*minlength=*/num_experts);  // [E]

  // 2. Each expert runs once on its contiguous block of rows (adapter deltas
  //    on the same groups).
  ExpertGroups groups;
  groups.grouped_mm = grouped_mm;
  if (groups.grouped_mm) groups.offsets = counts.cumsum(0, at::kInt);  // [E] end row of each group
  if (!groups.grouped_mm || adapted) {
    counts = counts.to(at::kCPU);  // one host sync, then no per-expert syncs
    groups.counts.assign(counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + num_experts);
  }
  at::Tensor y;
  if (no_grad && !groups.grouped_mm && !adapted) {
    // Inference on CPU: results written in place, fewer [S, ·] temporaries.
    auto h = swiglu_no_grad(grouped_linear_no_grad(grouped, gate_up_proj, groups.counts), intermediate_size);  // [S, F]
    y = weight_rows_no_grad(grouped_linear_no_grad(h, down_proj, groups.counts), weight_of);  // [S, D] fp32
  } else {
    auto gate_up = grouped_linear(grouped, gate_up_proj, groups);  // [S, 2F]
    if (adapted) gate_up = gate_up + delta->gate_up(grouped, groups);
    auto h = at::silu(gate_up.narrow(1, 0, intermediate_size)) *
             gate_up.narrow(1, intermediate_size, intermediate_size);  // [S, F]
    y = grouped_linear(h, down_proj, groups);                        // [S, D]
    if (adapted) y = y + delta->down(h, groups);
    y = y * weight_of.unsqueeze(1);  // [S, D], in fp32: the weights are fp32
  }

  // 3. Put the weighted pairs back in [N, K] order and sum over K in fp32, then
  //    cast to the hidden dtype.
  auto unsorted = at::empty_like(y).index_copy(0, order, y);
  return unsorted.view({n, k, d}).sum(1).to(x.scalar_type());  // [N, K, D] → [N, D]
}

SparseMoeBlockImpl::SparseMoeBlockImpl(const ModelConfig& c, const at::TensorOptions& options) {
  gate = register_module("gate", TopKRouter(c.num_experts, c.hidden_size,
                                             RouterOptions{c.num_experts_per_tok, c.norm_topk_prob}, options));
  experts =
      register_module("experts", ExpertBank(c.num_experts, c.hidden_size, c.expert_intermediate_size(), options));
}

at::Tensor SparseMoeBlockImpl::forward(const at::Tensor& x, LayerRouting* capture) {
  const auto sizes = x.sizes();
  auto flat = x.reshape({-1, sizes.back()});  // [B, T, D] → [N, D]
  Routing routing = gate(flat);
  auto out = experts(flat, routing.topk_ids, routing.topk_weights);
  if (capture) {
    capture->router_logits = routing.logits;
    capture->topk_ids = routing.topk_ids;
    capture->topk_weights = routing.topk_weights;
  }
  return out.view(sizes);  // [N, D] → [B, T, D]
}

// --- checkpoint names -------------------------------------------------------

namespace {
std::string layer_prefix(int64_t layer) { return "model.layers." + std::to_string(layer) + "."; }
}  // namespace

std::string fused_gate_up_name(int64_t layer) { return layer_prefix(layer) + "mlp.experts.gate_up_proj"; }
std::string fused_down_name(int64_t layer) { return layer_prefix(layer) + "mlp.experts.down_proj"; }
std::string router_name(int64_t layer) { return layer_prefix(layer) + "mlp.gate.weight"; }
std::string hub_router_name(const ExpertNameRule& rule, int64_t layer) {
  return layer_prefix(layer) + rule.block + ".gate.weight";
}

std::vector<ExpertSlice> expert_slices(const ExpertNameRule& rule, int64_t layer, int64_t num_experts,
                                       int64_t intermediate_size, int64_t hidden_size) {
  // The table: Hub projection → (fused parameter, first row, row count).
  struct Row {
    const std::string& hub;
    std::string fused;
    int64_t row_begin, rows;
  };
  const Row table[] = {
      {rule.gate, fused_gate_up_name(layer), 0, intermediate_size},
      {rule.up, fused_gate_up_name(layer), intermediate_size, intermediate_size},
      {rule.down, fused_down_name(layer), 0, hidden_size},
  };
  std::vector<ExpertSlice> slices;
  slices.reserve(static_cast<std::size_t>(3 * num_experts));
  for (int64_t e = 0; e < num_experts; ++e) {
    for (const Row& row : table) {
      slices.push_back({layer_prefix(layer) + rule.block + ".experts." + std::to_string(e) + "." + row.hub + ".weight",
                        row.fused, e, row.row_begin, row.rows});
    }
  }
  return slices;
}

std::vector<std::pair<std::string, at::Tensor>> unstack_experts(const ExpertNameRule& rule, int64_t layer,
                                                                const at::Tensor& gate_up_proj,
                                                                const at::Tensor& down_proj) {
  const int64_t num_experts = gate_up_proj.size(0);
  const int64_t intermediate = gate_up_proj.size(1) / 2;
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const ExpertSlice& s : expert_slices(rule, layer, num_experts, intermediate, down_proj.size(1))) {
    const at::Tensor& fused = s.fused == fused_down_name(layer) ? down_proj : gate_up_proj;
    out.emplace_back(s.hub_key, fused[s.expert].narrow(0, s.row_begin, s.rows));
  }
  return out;
}

}  // namespace character::model
