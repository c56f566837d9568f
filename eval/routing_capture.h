// Fills RoutingTraces (eval/routing_trace.h) from the engine's routing capture:
// a generation's GenerationRouting, the per-layer LayerRouting of a forward pass,
// or a fresh prefill forward over token sequences; and reads training coverage
// files into CoverageCounts. The torch side of the routing analyses, kept apart
// so that eval/routing_metrics stays torch-free.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "eval/routing_metrics.h"
#include "eval/routing_trace.h"
#include "model/text/tokenizer.h"

namespace character::model {
class CausalLMImpl;
struct GenerationRouting;
struct LayerRouting;
}  // namespace character::model

namespace character::router_train {
class CoverageCounter;
}

namespace character::eval {

// The capture of one generated reply: the Tp prompt rows, then the G generated
// rows (row g = the forward pass whose logits chose token g, so row 0 repeats the
// last prompt position); prompt_positions = Tp. This is the layout of the probe's
// traces (eval/probe_run.cpp): "generated positions" are the G rows that chose the
// reply's tokens.
RoutingTrace trace_from_generation(const model::GenerationRouting& routing, int64_t num_experts);

// The routing of a forward pass over a [B, T] batch (LayerRouting rows are
// row-major over [B, T]) as one trace per row holding its real positions
// (attention_mask 1; undefined mask = all real), all of them prompt positions.
std::vector<RoutingTrace> traces_from_forward(const std::vector<model::LayerRouting>& routing, int64_t num_experts,
                                              int64_t batch, int64_t seq_len,
                                              const std::vector<std::vector<char>>& real);

// A teacher-forced trace of prompt + reply (every position a prompt position,
// as traces_from_forward gives it) in trace_from_generation's layout: its first
// `prompt_positions` rows, then the rows from the last prompt position on (the
// passes that chose the reply's tokens). ConfigError when prompt_positions is
// outside [1, positions].
RoutingTrace as_generation_layout(const RoutingTrace& forward, int64_t prompt_positions);

struct RouteOptions {
  int64_t batch_rows = 8;  // sequences per prefill forward (left-padded like generation)
};

// Prefill forwards with router capture (no generation): one trace per sequence,
// every position a prompt position. ConfigError for a dense model or an empty
// sequence.
std::vector<RoutingTrace> route_sequences(model::CausalLMImpl& model,
                                          const std::vector<std::vector<model::TokenId>>& sequences,
                                          const RouteOptions& options = {});

// A coverage counter's counts as plain arrays.
CoverageCounts coverage_counts(const router_train::CoverageCounter& counter, std::vector<std::string> sources);

// Reads coverage.json files (router_train/coverage.h) and merges their counts;
// CheckpointError naming the file that is unreadable or of other layers/E/K.
CoverageCounts read_coverage(const std::vector<std::filesystem::path>& files);

}  // namespace character::eval
