// The seam through which training adds trainable deltas to a loaded model,
// without model/ knowing what they are (LoRA lives in lora/). A Linear, an
// expert bank, a router and the unembedding each hold an optional hook; with no
// hook set their forward is unchanged. Every hook is skipped while adapters are
// switched off (AdaptersDisabled), which is how DPO gets its reference model.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace character::model {

// Extra output added to y = x·Wᵀ (+ b) of a Linear (or of the unembedding).
struct LinearDelta {
  virtual ~LinearDelta() = default;
  // in: x [..., in]; out: [..., out]
  virtual at::Tensor forward(const at::Tensor& x) = 0;
};

// How the S = N*K (token, slot) rows of an expert bank are grouped: rows of
// expert e are the contiguous block after those of experts 0..e-1.
struct ExpertGroups {
  std::vector<int64_t> counts;  // [E] rows per expert, on the host (filled for the loop and for deltas)
  at::Tensor offsets;           // [E] int32 end row of each group, on the device (grouped GEMM)
  bool grouped_mm = false;      // run per-expert matmuls as one torch grouped GEMM
};

// Extra outputs added inside an expert bank, on each expert's own rows only
// ("split LoRA": (X·A)·B per group, never an [E, out, in] weight delta).
struct ExpertDelta {
  virtual ~ExpertDelta() = default;
  // in: x [S, D] grouped by expert; out: [S, 2F] added to the fused gate/up output
  virtual at::Tensor gate_up(const at::Tensor& x, const ExpertGroups& groups) = 0;
  // in: h [S, F] grouped by expert; out: [S, D] added to the down output
  virtual at::Tensor down(const at::Tensor& h, const ExpertGroups& groups) = 0;
};

// Replaces a router's logits computation: the hook gets the base weight and
// returns the logits it wants (base + a low-rank term, or a trained copy).
struct RouterDelta {
  virtual ~RouterDelta() = default;
  // in: x [N, D], weight [E, D] (the base router); out: logits [N, E] in x's dtype
  virtual at::Tensor logits(const at::Tensor& x, const at::Tensor& weight) = 0;
};

// Whether hooks run on this thread (true unless an AdaptersDisabled is alive).
bool adapters_enabled();

// RAII: switches every adapter hook off on this thread for its lifetime, e.g.
// for the DPO reference forward. Nests.
class AdaptersDisabled {
 public:
  AdaptersDisabled();
  ~AdaptersDisabled();
  AdaptersDisabled(const AdaptersDisabled&) = delete;
  AdaptersDisabled& operator=(const AdaptersDisabled&) = delete;

 private:
  bool previous_;
};

// y = x·wᵀ per expert group: x [S, in] grouped as `groups`, weight [E, out, in];
// out: [S, out]. Experts with no rows cost nothing.
at::Tensor grouped_linear(const at::Tensor& x, const at::Tensor& weight, const ExpertGroups& groups);

}  // namespace character::model
