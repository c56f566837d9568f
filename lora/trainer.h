// The SFT and DPO training loops over LoRA adapters: batches by length, the
// chunked losses of lora/losses.h, AdamW with a schedule, clipping and gradient
// accumulation (lora/optimizer.h), held-out loss, metrics and health checks
// (lora/train_monitor.h), and resumable checkpoints (lora/train_checkpoint.h).
// Router work (aux losses, coverage) plugs in as a StepHook, since lora/ must
// not depend on router_train/.
#pragma once

#include <ATen/core/Tensor.h>
#include <nlohmann/json_fwd.hpp>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <string>

#include "model/arch/causal_lm.h"

namespace character::lora {

class Adapters;
struct TokenBatch;   // lora/train_data.h
struct SftDataset;   // lora/train_data.h
struct DpoDataset;   // lora/train_data.h

// Extra per-step work that the trainer does not know about (router_train's
// RouterStepHook: load-balancing and z-loss, training coverage).
// Call order per optimizer step: for each micro-batch, one policy forward
// (with ForwardInput::capture.router set when wants_routing()), then
// extra_loss(out, batch) — its value is added to that micro-batch's loss before
// the 1/grad_accum scaling and backward; then add_metrics() once for the step.
// Held-out and DPO reference forwards never reach the hook. For DPO, `batch` is
// the collated 2·B batch (chosen rows first) and `out` the policy forward of it.
class StepHook {
 public:
  virtual ~StepHook() = default;
  virtual bool wants_routing() const = 0;
  // A scalar (fp32, on the model's device) added to the loss; may be a zero tensor.
  virtual at::Tensor extra_loss(const model::ForwardOutput& out, const TokenBatch& batch) = 0;
  // Adds this step's entries (e.g. "aux_loss", "z_loss", "coverage") to the metrics line.
  virtual void add_metrics(nlohmann::json& step_metrics) = 0;
  // Saved into and restored from each training checkpoint (hook_state.json).
  virtual nlohmann::json state() const = 0;
  virtual void load_state(const nlohmann::json& state) = 0;
  // Writes the hook's files (coverage.json) into a checkpoint or the final output dir.
  virtual void write_outputs(const std::filesystem::path& checkpoint_dir) = 0;
};

enum class TrainKind { kSft, kDpo };
enum class LrSchedule { kConstant, kLinear, kCosine };

// "constant" | "linear" | "cosine"; ConfigError naming `field` otherwise.
LrSchedule parse_lr_schedule(const std::string& value, const std::string& field = "--schedule");
std::string to_string(LrSchedule value);
std::string to_string(TrainKind value);

struct TrainOptions {
  TrainKind kind = TrainKind::kSft;
  std::filesystem::path out_dir;       // OUT: adapter/, checkpoints/, metrics.jsonl
  std::filesystem::path base_model;    // recorded in adapter_config.json

  // Optimisation. AdamW betas 0.9/0.95, eps 1e-8, weight decay 0.
  double learning_rate = 1e-4;
  LrSchedule schedule = LrSchedule::kLinear;
  int64_t warmup_steps = 0;
  double max_grad_norm = 1.0;          // ≤ 0: no clipping (the norm is still reported)
  int64_t batch_size = 8;              // sequences (SFT) or pairs (DPO) per micro-batch
  int64_t grad_accum = 1;              // micro-batches per optimizer step
  int64_t epochs = 1;
  int64_t max_steps = 0;               // > 0: stop after this many optimizer steps
  uint64_t seed = 0;                   // batch order
  int64_t pad_id = 0;                  // padding token (masked out; any id works)

  // DPO (lora/losses.h DpoOptions).
  double dpo_beta = 0.1;
  double dpo_nll_coef = 0.1;

  // Evaluation, checkpoints, monitoring.
  int64_t eval_every = 0;              // held-out loss every N steps (0: at start and end only)
  int64_t checkpoint_every = 0;        // 0: only at the end
  int64_t keep_checkpoints = 3;        // most recent K step-* directories kept
  int64_t log_every = 10;              // plain progress line every N steps when stderr is not a TTY
  double explode_factor = 10.0;        // loss > factor × running median after warmup: stop
  // Continue from the newest checkpoint in out_dir (a fresh start when there is
  // none). Without it, an out_dir that already holds a run is a ConfigError.
  bool resume = false;
  bool progress = true;                // progress bar / lines on stderr
  // Checked at every step boundary: when set, the trainer writes a checkpoint of
  // the steps done and throws Interrupted (base/error.h); `resume` continues.
  const std::atomic<bool>* stop_requested = nullptr;

  // Memory and speed.
  bool autocast_bf16 = true;           // CUDA only; CPU stays fp32
  bool activation_checkpointing = false;
  int64_t loss_chunk_tokens = 1024;    // tokens per unembedding chunk in the loss
};

struct TrainResult {
  int64_t steps = 0;                   // optimizer steps done in total (incl. before a resume)
  int64_t start_step = 0;              // step resumed from (0 for a fresh run)
  double first_held_out_loss = 0.0;    // before training (NaN when there is no held-out set or it is unknown)
  double final_held_out_loss = 0.0;
  double final_train_loss = 0.0;
  double final_dpo_margin = 0.0;       // DPO: mean chosen−rejected reward margin on held-out
  double final_dpo_accuracy = 0.0;
  std::filesystem::path adapter_dir;   // OUT/adapter
};

// Trains `adapters` (attached to `model`) on `train`, evaluating on `held_out`
// (may be empty). Writes OUT/metrics.jsonl, checkpoints and OUT/adapter.
// TrainingError (lora/train_monitor.h) when a health check stops the run;
// Interrupted after a checkpoint when options.stop_requested is set.
TrainResult train_sft(const model::CausalLM& model, Adapters& adapters, const SftDataset& train,
                      const SftDataset& held_out, const TrainOptions& options, StepHook* hook = nullptr);
TrainResult train_dpo(const model::CausalLM& model, Adapters& adapters, const DpoDataset& train,
                      const DpoDataset& held_out, const TrainOptions& options, StepHook* hook = nullptr);

}  // namespace character::lora
