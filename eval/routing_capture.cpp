// Engine capture → RoutingTrace (eval/routing_capture.h). One device→host copy
// per forward; traces hold int32 ids and float32 weights.
#include "eval/routing_capture.h"

#include <torch/torch.h>

#include <algorithm>

#include "base/error.h"
#include "model/arch/causal_lm.h"
#include "model/arch/generate.h"
#include "router_train/coverage.h"

namespace character::eval {

RoutingTrace trace_from_generation(const model::GenerationRouting& r, int64_t num_experts) {
  const at::Tensor ids = torch::cat({r.prompt_topk_ids, r.topk_ids}, 0).to(torch::kCPU, torch::kInt).contiguous();  // [Tp+G, L, K]
  const at::Tensor weights =
      torch::cat({r.prompt_topk_weights, r.topk_weights}, 0).to(torch::kCPU, torch::kFloat).contiguous();  // [Tp+G, L, K]
  RoutingTrace trace;
  trace.layers = r.layers;
  trace.num_experts = num_experts;
  trace.top_k = ids.size(2);
  trace.positions = ids.size(0);
  trace.prompt_positions = r.prompt_topk_ids.size(0);
  trace.ids.assign(ids.data_ptr<int32_t>(), ids.data_ptr<int32_t>() + ids.numel());
  trace.weights.assign(weights.data_ptr<float>(), weights.data_ptr<float>() + weights.numel());
  validate_trace(trace, "generation routing capture");
  return trace;
}

std::vector<RoutingTrace> traces_from_forward(const std::vector<model::LayerRouting>& routing, int64_t num_experts,
                                              int64_t batch, int64_t seq_len,
                                              const std::vector<std::vector<char>>& real) {
  if (routing.empty()) throw ConfigError("routing capture: no MoE layer was captured (dense model?)");
  std::vector<at::Tensor> ids, weights;
  std::vector<int64_t> layers;
  for (const auto& layer : routing) {
    layers.push_back(layer.layer);
    ids.push_back(layer.topk_ids.to(torch::kCPU, torch::kInt));
    weights.push_back(layer.topk_weights.to(torch::kCPU, torch::kFloat));
  }
  const int64_t k = ids[0].size(1);
  const at::Tensor all_ids = torch::stack(ids, 1).view({batch, seq_len, -1, k}).contiguous();  // [N, L, K] → [B, T, L, K]
  const at::Tensor all_weights = torch::stack(weights, 1).view({batch, seq_len, -1, k}).contiguous();
  const auto L = static_cast<int64_t>(layers.size());
  std::vector<RoutingTrace> out;
  for (int64_t b = 0; b < batch; ++b) {
    RoutingTrace trace;
    trace.layers = layers;
    trace.num_experts = num_experts;
    trace.top_k = k;
    const int32_t* id = all_ids[b].data_ptr<int32_t>();
    const float* w = all_weights[b].data_ptr<float>();
    for (int64_t t = 0; t < seq_len; ++t) {
      if (!real.empty() && !real[static_cast<size_t>(b)][static_cast<size_t>(t)]) continue;
      trace.ids.insert(trace.ids.end(), id + t * L * k, id + (t + 1) * L * k);
      trace.weights.insert(trace.weights.end(), w + t * L * k, w + (t + 1) * L * k);
      ++trace.positions;
    }
    trace.prompt_positions = trace.positions;
    validate_trace(trace, "forward routing capture, row " + std::to_string(b));
    out.push_back(std::move(trace));
  }
  return out;
}

RoutingTrace as_generation_layout(const RoutingTrace& forward, int64_t prompt_positions) {
  if (prompt_positions < 1 || prompt_positions > forward.positions) {
    throw ConfigError("routing capture: " + std::to_string(prompt_positions) + " prompt positions in a trace of " +
                      std::to_string(forward.positions) + ", expected 1.." + std::to_string(forward.positions));
  }
  const auto row = static_cast<std::ptrdiff_t>(forward.num_layers() * forward.top_k);  // L·K values per position
  RoutingTrace out = forward;
  out.ids.assign(forward.ids.begin(), forward.ids.begin() + prompt_positions * row);
  out.weights.assign(forward.weights.begin(), forward.weights.begin() + prompt_positions * row);
  out.ids.insert(out.ids.end(), forward.ids.begin() + (prompt_positions - 1) * row, forward.ids.end());
  out.weights.insert(out.weights.end(), forward.weights.begin() + (prompt_positions - 1) * row, forward.weights.end());
  out.prompt_positions = prompt_positions;
  out.positions = forward.positions + 1;  // the last prompt position counts twice, as in generation
  return out;
}

std::vector<RoutingTrace> route_sequences(model::CausalLMImpl& model,
                                          const std::vector<std::vector<model::TokenId>>& sequences,
                                          const RouteOptions& options) {
  if (!model.config().is_moe())
    throw ConfigError("routing analyses: model_type " + model.config().model_type + " has no MoE layers");
  if (options.batch_rows < 1) throw ConfigError("routing: batch_rows=" + std::to_string(options.batch_rows) + ", expected ≥ 1");
  torch::NoGradGuard no_grad;
  const torch::Device device = model.parameters().front().device();
  std::vector<RoutingTrace> out;
  for (size_t begin = 0; begin < sequences.size(); begin += static_cast<size_t>(options.batch_rows)) {
    const size_t end = std::min(sequences.size(), begin + static_cast<size_t>(options.batch_rows));
    const auto batch = static_cast<int64_t>(end - begin);
    int64_t longest = 0;
    for (size_t i = begin; i < end; ++i) {
      if (sequences[i].empty()) throw ConfigError("routing: sequence " + std::to_string(i) + " has no tokens");
      longest = std::max<int64_t>(longest, static_cast<int64_t>(sequences[i].size()));
    }
    // Left padding as generation does; positions come from the mask (cumsum − 1).
    at::Tensor ids = torch::zeros({batch, longest}, torch::kLong);   // [B, T]
    at::Tensor mask = torch::zeros({batch, longest}, torch::kLong);  // [B, T]
    std::vector<std::vector<char>> real(static_cast<size_t>(batch), std::vector<char>(static_cast<size_t>(longest), 0));
    for (int64_t b = 0; b < batch; ++b) {
      const auto& seq = sequences[begin + static_cast<size_t>(b)];
      const auto n = static_cast<int64_t>(seq.size());
      std::vector<int64_t> row(seq.begin(), seq.end());
      ids[b].narrow(0, longest - n, n).copy_(torch::tensor(row, torch::kLong));
      mask[b].narrow(0, longest - n, n).fill_(1);
      std::fill(real[static_cast<size_t>(b)].begin() + (longest - n), real[static_cast<size_t>(b)].end(), 1);
    }
    model::ForwardInput input;
    input.input_ids = ids.to(device);
    input.attention_mask = mask.to(device);
    input.capture.router = true;
    input.skip_logits = true;
    const auto output = model.forward(input);
    auto traces = traces_from_forward(output.routing, model.config().num_experts, batch, longest, real);
    for (auto& t : traces) out.push_back(std::move(t));
  }
  return out;
}

CoverageCounts coverage_counts(const router_train::CoverageCounter& counter, std::vector<std::string> sources) {
  CoverageCounts c;
  c.sources = std::move(sources);
  c.layers = counter.layers();
  c.num_experts = counter.num_experts();
  c.top_k = counter.top_k();
  for (size_t l = 0; l < c.layers.size(); ++l)
    for (int64_t e = 0; e < c.num_experts; ++e) {
      c.loss_tokens.push_back(counter.loss_tokens(l, e));
      c.all_tokens.push_back(counter.all_tokens(l, e));
    }
  c.real_positions = counter.real_positions();
  return c;
}

CoverageCounts read_coverage(const std::vector<std::filesystem::path>& files) {
  if (files.empty()) throw ConfigError("training coverage: no coverage.json given");
  router_train::CoverageCounter merged = router_train::CoverageCounter::read_json(files.front());
  std::vector<std::string> sources = {files.front().string()};
  for (size_t i = 1; i < files.size(); ++i) {
    const auto other = router_train::CoverageCounter::read_json(files[i]);
    try {
      merged.merge(other);
    } catch (const ConfigError& e) {
      throw CheckpointError(files[i].string() + ": cannot be merged with " + files.front().string() + ": " + e.what());
    }
    sources.push_back(files[i].string());
  }
  return coverage_counts(merged, std::move(sources));
}

}  // namespace character::eval
