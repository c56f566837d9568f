// Watches a training run: appends one JSON line per optimizer step to
// OUT/metrics.jsonl, draws a progress bar with ETA on stderr (a plain line every
// N steps when stderr is not a terminal), and stops the run with a
// TrainingError when the loss or the gradient norm is NaN/Inf or the loss
// explodes; warns (once each) when DPO accuracy looks wrong.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "base/error.h"

namespace character::lora {

// A health check stopped training: the adapters would be garbage from here on.
// The last checkpoint (if any) is intact; nothing is written after the failure.
class TrainingError : public Error {
 public:
  using Error::Error;
  int exit_code() const override { return 7; }
};

struct MonitorOptions {
  std::filesystem::path metrics_file;  // OUT/metrics.jsonl
  int64_t total_steps = 1;
  int64_t warmup_steps = 0;
  int64_t log_every = 10;              // plain progress line every N steps (not a TTY)
  // Exploding loss: after warmup and kMinHistory steps, a step loss above
  // explode_factor × the median of the last kWindow step losses.
  double explode_factor = 10.0;
  bool dpo = false;
  bool progress = true;                // false: no progress output at all (tests)
};

class TrainMonitor {
 public:
  static constexpr int64_t kWindow = 50;      // losses kept for the running median
  static constexpr int64_t kMinHistory = 10;  // losses needed before the explosion check
  static constexpr int64_t kDpoWindow = 20;   // steps averaged by the DPO warnings
  // DPO margin (chosen − rejected reward, β·Δlog-ratio) above which a perfect
  // accuracy means the pairs are separated trivially: σ(20) ≈ 1 − 2e-9, the loss is flat.
  static constexpr double kDpoMarginLimit = 20.0;

  explicit TrainMonitor(MonitorOptions options);

  // Throws TrainingError naming the step when `loss` is not finite or has
  // exploded; call it before the optimizer update so bad steps never apply.
  void check_loss(int64_t step, double loss) const;

  // Records a finished optimizer step. `line` must hold "step", "loss",
  // "grad_norm", "lr", "tokens"; DPO steps also "dpo_accuracy", "dpo_margin".
  // Adds "tokens_per_s" and "elapsed_s", appends the line, updates the progress
  // output, and runs the DPO warnings.
  void record_step(nlohmann::json line);
  // Appends {"step", "held_out": values} and prints it.
  void record_eval(int64_t step, const nlohmann::json& values);
  // Ends the progress bar line.
  void finish();

  const std::vector<std::string>& warnings() const { return warnings_; }

  // What a checkpoint keeps so a resumed run checks exactly as an uninterrupted one.
  nlohmann::json state() const;
  void load_state(const nlohmann::json& state);

  // Keeps only the metric lines of steps ≤ `step` (a resumed run redoes the rest), and
  // drops the held-out line of `step` itself too when `redo_eval_at_step` (a run resumed
  // from its final checkpoint evaluates that step again, and must not list it twice).
  static void truncate_metrics(const std::filesystem::path& metrics_file, int64_t step, bool redo_eval_at_step = false);

 private:
  void warn_once(const std::string& key, const std::string& message, nlohmann::json& line);
  void show_progress(int64_t step, double loss, double tokens_per_s);

  MonitorOptions options_;
  std::deque<double> losses_;        // last kWindow step losses
  std::deque<double> dpo_accuracy_;  // last kDpoWindow DPO accuracies
  std::deque<double> dpo_margin_;
  std::set<std::string> warned_;
  std::vector<std::string> warnings_;
  bool tty_ = false;
  bool bar_open_ = false;
  int64_t first_step_ = -1;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace character::lora
