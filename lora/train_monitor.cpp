#include "lora/train_monitor.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "base/atomic_file.h"
#include "base/json_read.h"
#include "base/log.h"

namespace character::lora {

namespace {

double median(std::vector<double> values) {
  const size_t mid = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid), values.end());
  return values[mid];
}

double mean(const std::deque<double>& values) {
  double sum = 0.0;
  for (double v : values) sum += v;
  return values.empty() ? 0.0 : sum / static_cast<double>(values.size());
}

std::string format_duration(double seconds) {
  const auto s = static_cast<int64_t>(std::max(0.0, seconds));
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  return buf;
}

}  // namespace

TrainMonitor::TrainMonitor(MonitorOptions options) : options_(std::move(options)) {
  tty_ = options_.progress && ::isatty(STDERR_FILENO) == 1;
  start_ = last_ = std::chrono::steady_clock::now();
}

void TrainMonitor::check_loss(int64_t step, double loss) const {
  if (!std::isfinite(loss)) {
    throw TrainingError("training stopped at step " + std::to_string(step) + ": the loss is " + std::to_string(loss) +
                        ", expected a finite number (lower --lr, raise --warmup, or check the data); "
                        "the adapters from the last checkpoint are intact");
  }
  const bool warmed_up = step > options_.warmup_steps;
  if (!warmed_up || static_cast<int64_t>(losses_.size()) < kMinHistory) return;
  const double med = median({losses_.begin(), losses_.end()});
  if (loss > options_.explode_factor * med && loss > med + 1e-6) {
    std::ostringstream m;
    m << "training stopped at step " << step << ": the loss exploded to " << loss << ", more than "
      << options_.explode_factor << "x the running median " << med << " of the last " << losses_.size()
      << " steps (lower --lr or --clip); the adapters from the last checkpoint are intact";
    throw TrainingError(m.str());
  }
}

void TrainMonitor::warn_once(const std::string& key, const std::string& message, nlohmann::json& line) {
  if (!warned_.insert(key).second) return;
  warnings_.push_back(message);
  line["warning"] = message;
  if (bar_open_) std::fputc('\n', stderr), bar_open_ = false;
  log::warn(message);
}

void TrainMonitor::record_step(nlohmann::json line) {
  const auto now = std::chrono::steady_clock::now();
  const int64_t step = line.at("step").get<int64_t>();
  const double loss = line.at("loss").get<double>();
  const double seconds = std::chrono::duration<double>(now - last_).count();
  last_ = now;
  if (first_step_ < 0) first_step_ = step - 1;  // a resumed run's ETA counts its own steps only
  const double tokens_per_s = seconds > 0 ? line.at("tokens").get<double>() / seconds : 0.0;
  line["tokens_per_s"] = tokens_per_s;
  line["elapsed_s"] = std::chrono::duration<double>(now - start_).count();

  losses_.push_back(loss);
  if (static_cast<int64_t>(losses_.size()) > kWindow) losses_.pop_front();

  if (options_.dpo && line.contains("dpo_accuracy")) {
    dpo_accuracy_.push_back(line["dpo_accuracy"].get<double>());
    dpo_margin_.push_back(line["dpo_margin"].get<double>());
    if (static_cast<int64_t>(dpo_accuracy_.size()) > kDpoWindow) dpo_accuracy_.pop_front(), dpo_margin_.pop_front();
    // OpenRLHF's DPOTrainer (the seed repository trains with openrlhf.cli.train_dpo)
    // only logs acc / chosen_reward / reject_reward; these warnings read the same numbers.
    const bool full = static_cast<int64_t>(dpo_accuracy_.size()) == kDpoWindow;
    if (full && step > options_.warmup_steps) {
      const double acc = mean(dpo_accuracy_), margin = mean(dpo_margin_);
      std::ostringstream m;
      if (acc <= 0.5) {
        m << "DPO accuracy " << acc << " over the last " << kDpoWindow << " steps (step " << step
          << ") is no better than chance: the policy is not learning to prefer chosen over rejected "
             "(learning rate too low, or chosen and rejected too alike)";
        warn_once("dpo_accuracy_low", m.str(), line);
      } else if (acc >= 1.0 && margin > kDpoMarginLimit) {
        m << "DPO accuracy is 1.0 with a mean reward margin of " << margin << " over the last " << kDpoWindow
          << " steps (step " << step << "): the pairs are separated trivially and the policy is drifting from "
             "the reference (check for a length or format tell between chosen and rejected; lower --lr or --epochs)";
        warn_once("dpo_margin_exploding", m.str(), line);
      }
    }
  }

  if (!options_.metrics_file.empty()) append_jsonl_line(options_.metrics_file, line.dump());
  show_progress(step, loss, tokens_per_s);
}

void TrainMonitor::show_progress(int64_t step, double loss, double tokens_per_s) {
  if (!options_.progress) return;
  const double elapsed = std::chrono::duration<double>(last_ - start_).count();
  const int64_t done = step - first_step_;
  const double eta = done > 0 ? elapsed / static_cast<double>(done) * static_cast<double>(options_.total_steps - step) : 0;
  char text[160];
  if (tty_) {
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(kWidth * step / std::max<int64_t>(1, options_.total_steps));
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '.');
    std::snprintf(text, sizeof(text), "\r[%s] %lld/%lld loss %.4f %.0f tok/s ETA %s ", bar.c_str(),
                  static_cast<long long>(step), static_cast<long long>(options_.total_steps), loss, tokens_per_s,
                  format_duration(eta).c_str());
    std::fputs(text, stderr);
    bar_open_ = true;
  } else if (step % std::max<int64_t>(1, options_.log_every) == 0 || step == options_.total_steps) {
    std::snprintf(text, sizeof(text), "step %lld/%lld loss %.4f %.0f tok/s ETA %s\n", static_cast<long long>(step),
                  static_cast<long long>(options_.total_steps), loss, tokens_per_s, format_duration(eta).c_str());
    std::fputs(text, stderr);
  }
  std::fflush(stderr);
}

void TrainMonitor::record_eval(int64_t step, const nlohmann::json& values) {
  nlohmann::json line{{"step", step}, {"held_out", values}};
  if (!options_.metrics_file.empty()) append_jsonl_line(options_.metrics_file, line.dump());
  if (!options_.progress) return;
  if (bar_open_) std::fputc('\n', stderr), bar_open_ = false;
  log::info("step " + std::to_string(step) + " held-out " + values.dump());
}

void TrainMonitor::finish() {
  if (bar_open_) std::fputc('\n', stderr), bar_open_ = false;
}

nlohmann::json TrainMonitor::state() const {
  return {{"losses", std::vector<double>(losses_.begin(), losses_.end())},
          {"dpo_accuracy", std::vector<double>(dpo_accuracy_.begin(), dpo_accuracy_.end())},
          {"dpo_margin", std::vector<double>(dpo_margin_.begin(), dpo_margin_.end())},
          {"warned", std::vector<std::string>(warned_.begin(), warned_.end())}};
}

void TrainMonitor::load_state(const nlohmann::json& state) {
  auto to_deque = [](const nlohmann::json& j) {
    const auto v = j.get<std::vector<double>>();
    return std::deque<double>(v.begin(), v.end());
  };
  losses_ = to_deque(state.at("losses"));
  dpo_accuracy_ = to_deque(state.at("dpo_accuracy"));
  dpo_margin_ = to_deque(state.at("dpo_margin"));
  const auto warned = state.at("warned").get<std::vector<std::string>>();
  warned_ = {warned.begin(), warned.end()};
}

void TrainMonitor::truncate_metrics(const std::filesystem::path& metrics_file, int64_t step, bool redo_eval_at_step) {
  if (!std::filesystem::exists(metrics_file)) return;
  std::string kept;
  for (const auto& line : read_jsonl_lines(metrics_file)) {
    const auto j = try_parse_json(line).value_or(nlohmann::json());
    if (j.is_object() && j.contains("step") && j["step"].is_number_integer()) {
      const int64_t s = j["step"].get<int64_t>();
      if (s > step || (redo_eval_at_step && s == step && j.contains("held_out"))) continue;
    }
    kept += line + "\n";
  }
  write_file_atomic(metrics_file, kept);
}

}  // namespace character::lora
