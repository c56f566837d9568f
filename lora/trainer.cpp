#include "lora/trainer.h"

#include <torch/torch.h>

#include <ATen/autocast_mode.h>

#include <cmath>
#include <limits>
#include <optional>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/json_read.h"
#include "base/log.h"
#include "lora/adapter_file.h"
#include "lora/adapters.h"
#include "lora/losses.h"
#include "lora/optimizer.h"
#include "lora/train_checkpoint.h"
#include "lora/train_data.h"
#include "lora/train_monitor.h"
#include "lora/trainable.h"
#include "model/arch/checkpointing.h"

namespace character::lora {

namespace fs = std::filesystem;

LrSchedule parse_lr_schedule(const std::string& value, const std::string& field) {
  if (value == "constant") return LrSchedule::kConstant;
  if (value == "linear") return LrSchedule::kLinear;
  if (value == "cosine") return LrSchedule::kCosine;
  throw ConfigError(field + " " + value + ": expected constant, linear or cosine");
}

std::string to_string(LrSchedule value) {
  switch (value) {
    case LrSchedule::kConstant: return "constant";
    case LrSchedule::kLinear: return "linear";
    case LrSchedule::kCosine: return "cosine";
  }
  return "?";
}

std::string to_string(TrainKind value) { return value == TrainKind::kSft ? "sft" : "dpo"; }

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// bf16 autocast on CUDA for the forward, the loss and the backward: the chunked
// loss recomputes logits inside backward, which must see the same dtypes as its
// forward did. Does nothing on CPU (fp32 training).
class CudaAutocast {
 public:
  explicit CudaAutocast(bool on) : on_(on) {
    if (!on_) return;
    previous_enabled_ = at::autocast::is_autocast_enabled(at::kCUDA);
    previous_dtype_ = at::autocast::get_autocast_dtype(at::kCUDA);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    at::autocast::increment_nesting();
  }
  ~CudaAutocast() {
    if (!on_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(at::kCUDA, previous_enabled_);
    at::autocast::set_autocast_dtype(at::kCUDA, previous_dtype_);
  }
  CudaAutocast(const CudaAutocast&) = delete;
  CudaAutocast& operator=(const CudaAutocast&) = delete;

 private:
  bool on_;
  bool previous_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kBFloat16;
};

TokenBatch to_device(const TokenBatch& b, const at::Device& device) {
  return {b.input_ids.to(device), b.attention_mask.to(device), b.labels.to(device)};
}

// One micro-batch's outcome.
struct MicroResult {
  at::Tensor loss;         // scalar to back-propagate (incl. the hook's extra loss)
  double value = 0.0;      // loss.item()
  int64_t tokens = 0;      // real (unpadded) tokens in the batch
  int64_t loss_tokens = 0; // tokens carrying a label
  DpoLoss dpo;             // DPO only
};

// What differs between SFT and DPO: the data, the forward + loss, the held-out metrics.
class Task {
 public:
  virtual ~Task() = default;
  virtual std::vector<int64_t> lengths() const = 0;
  virtual int64_t held_out_rows() const = 0;
  virtual TokenBatch collate_train(const std::vector<int64_t>& rows) const = 0;
  virtual TokenBatch collate_held_out(const std::vector<int64_t>& rows) const = 0;
  virtual MicroResult forward(const TokenBatch& batch, StepHook* hook) = 0;
  // Metrics over the whole held-out set ("loss" first); adapters on, no grad.
  virtual nlohmann::json evaluate(int64_t batch_size) = 0;
};

class SftTask : public Task {
 public:
  SftTask(model::CausalLMImpl& model, const SftDataset& train, const SftDataset& held_out, const TrainOptions& o)
      : model_(model), train_(train), held_out_(held_out), options_(o) {}
  std::vector<int64_t> lengths() const override { return sequence_lengths(train_); }
  int64_t held_out_rows() const override { return static_cast<int64_t>(held_out_.rows.size()); }
  TokenBatch collate_train(const std::vector<int64_t>& rows) const override {
    return collate_sft(train_, rows, options_.pad_id);
  }
  TokenBatch collate_held_out(const std::vector<int64_t>& rows) const override {
    return collate_sft(held_out_, rows, options_.pad_id);
  }
  MicroResult forward(const TokenBatch& batch, StepHook* hook) override {
    model::ForwardInput in;
    in.input_ids = batch.input_ids;
    in.attention_mask = batch.attention_mask;
    in.skip_logits = true;
    in.capture.router = hook && hook->wants_routing();
    auto out = model_.forward(in);
    auto l = sft_loss(model_, out.final_hidden, batch.labels, options_.loss_chunk_tokens);
    MicroResult r;
    r.loss = l.loss;
    if (hook) r.loss = r.loss + hook->extra_loss(out, batch);
    r.loss_tokens = l.tokens;
    return r;
  }
  nlohmann::json evaluate(int64_t batch_size) override {
    torch::NoGradGuard no_grad;
    double nll = 0.0;
    int64_t tokens = 0;
    const auto device = model_.parameters().front().device();
    for (int64_t begin = 0; begin < held_out_rows(); begin += batch_size) {
      std::vector<int64_t> rows;
      for (int64_t i = begin; i < std::min(begin + batch_size, held_out_rows()); ++i) rows.push_back(i);
      const auto batch = to_device(collate_held_out(rows), device);
      model::ForwardInput in;
      in.input_ids = batch.input_ids;
      in.attention_mask = batch.attention_mask;
      in.skip_logits = true;
      auto out = model_.forward(in);
      auto l = sft_loss(model_, out.final_hidden, batch.labels, options_.loss_chunk_tokens);
      nll += l.loss.item<double>() * static_cast<double>(l.tokens);
      tokens += l.tokens;
    }
    return {{"loss", tokens > 0 ? nll / static_cast<double>(tokens) : kNaN}, {"tokens", tokens}};
  }

 private:
  model::CausalLMImpl& model_;
  const SftDataset& train_;
  const SftDataset& held_out_;
  const TrainOptions& options_;
};

class DpoTask : public Task {
 public:
  DpoTask(model::CausalLMImpl& model, const DpoDataset& train, const DpoDataset& held_out, const TrainOptions& o)
      : model_(model), train_(train), held_out_(held_out), options_(o) {
    loss_options_.beta = o.dpo_beta;
    loss_options_.nll_coef = o.dpo_nll_coef;
  }
  std::vector<int64_t> lengths() const override { return sequence_lengths(train_); }
  int64_t held_out_rows() const override { return static_cast<int64_t>(held_out_.rows.size()); }
  TokenBatch collate_train(const std::vector<int64_t>& rows) const override {
    return collate_dpo(train_, rows, options_.pad_id);
  }
  TokenBatch collate_held_out(const std::vector<int64_t>& rows) const override {
    return collate_dpo(held_out_, rows, options_.pad_id);
  }
  MicroResult forward(const TokenBatch& batch, StepHook* hook) override {
    DpoForwardOptions fo;
    fo.chunk_tokens = options_.loss_chunk_tokens;
    fo.capture.router = hook && hook->wants_routing();
    auto lp = dpo_logps(model_, batch, fo);
    MicroResult r;
    r.dpo = dpo_loss(lp.policy, lp.reference, lp.chosen_nll, loss_options_);
    r.loss = r.dpo.loss;
    if (hook) r.loss = r.loss + hook->extra_loss(lp.policy_output, batch);
    r.loss_tokens = lp.chosen_tokens + lp.rejected_tokens;
    return r;
  }
  nlohmann::json evaluate(int64_t batch_size) override {
    torch::NoGradGuard no_grad;
    double loss = 0, accuracy = 0, margin = 0, chosen = 0, rejected = 0;
    const auto device = model_.parameters().front().device();
    for (int64_t begin = 0; begin < held_out_rows(); begin += batch_size) {
      std::vector<int64_t> rows;
      for (int64_t i = begin; i < std::min(begin + batch_size, held_out_rows()); ++i) rows.push_back(i);
      const auto batch = to_device(collate_held_out(rows), device);
      DpoForwardOptions fo;
      fo.chunk_tokens = options_.loss_chunk_tokens;
      auto lp = dpo_logps(model_, batch, fo);
      auto l = dpo_loss(lp.policy, lp.reference, lp.chosen_nll, loss_options_);
      const auto n = static_cast<double>(rows.size());  // means over pairs, weighted by batch size
      loss += l.dpo_loss.item<double>() * n;
      accuracy += l.accuracy * n;
      margin += l.margin * n;
      chosen += l.chosen_reward * n;
      rejected += l.rejected_reward * n;
    }
    if (held_out_rows() == 0) return {{"loss", kNaN}};
    const auto n = static_cast<double>(held_out_rows());
    return {{"loss", loss / n},         {"dpo_accuracy", accuracy / n},   {"dpo_margin", margin / n},
            {"chosen_reward", chosen / n}, {"rejected_reward", rejected / n}, {"pairs", held_out_rows()}};
  }

 private:
  model::CausalLMImpl& model_;
  const DpoDataset& train_;
  const DpoDataset& held_out_;
  const TrainOptions& options_;
  DpoOptions loss_options_;
};

void validate(const TrainOptions& o, int64_t train_rows) {
  auto fail = [](const std::string& m) { throw ConfigError("train: " + m); };
  if (o.out_dir.empty()) fail("--out is empty, expected an output directory");
  if (train_rows == 0) fail("the training set is empty, expected at least one row");
  if (!(o.learning_rate > 0)) fail("--lr " + std::to_string(o.learning_rate) + ", expected > 0");
  if (o.batch_size < 1) fail("--batch-size " + std::to_string(o.batch_size) + ", expected ≥ 1");
  if (o.grad_accum < 1) fail("--grad-accum " + std::to_string(o.grad_accum) + ", expected ≥ 1");
  if (o.max_steps < 0) fail("--max-steps " + std::to_string(o.max_steps) + ", expected ≥ 0");
  if (o.max_steps == 0 && o.epochs < 1) fail("--epochs " + std::to_string(o.epochs) + ", expected ≥ 1");
  if (o.warmup_steps < 0) fail("--warmup " + std::to_string(o.warmup_steps) + ", expected ≥ 0");
  if (o.loss_chunk_tokens < 1) fail("loss chunk " + std::to_string(o.loss_chunk_tokens) + ", expected ≥ 1");
  if (!(o.explode_factor > 1)) fail("explode factor " + std::to_string(o.explode_factor) + ", expected > 1");
}

// Everything that decides the numbers a run produces; a resume must match it.
nlohmann::json run_config(const TrainOptions& o, const Trainable& trainable, int64_t train_rows, int64_t held_out_rows,
                          int64_t total_steps, bool hook) {
  nlohmann::json config{{"kind", to_string(o.kind)},
                        {"learning_rate", o.learning_rate},
                        {"schedule", to_string(o.schedule)},
                        {"warmup_steps", o.warmup_steps},
                        {"max_grad_norm", o.max_grad_norm},
                        {"batch_size", o.batch_size},
                        {"grad_accum", o.grad_accum},
                        {"epochs", o.epochs},
                        {"max_steps", o.max_steps},
                        {"total_steps", total_steps},
                        {"seed", o.seed},
                        {"dpo_beta", o.dpo_beta},
                        {"dpo_nll_coef", o.dpo_nll_coef},
                        {"loss_chunk_tokens", o.loss_chunk_tokens},
                        {"autocast_bf16", o.autocast_bf16},
                        {"activation_checkpointing", o.activation_checkpointing},
                        {"train_rows", train_rows},
                        {"held_out_rows", held_out_rows},
                        {"step_hook", hook}};
  trainable.describe(config);
  return config;
}

// LoRA adapters as the trained set: adapter/ in checkpoints and in OUT.
class AdapterTrainable : public Trainable {
 public:
  AdapterTrainable(Adapters& adapters, const std::filesystem::path& base_model)
      : adapters_(adapters), base_model_(base_model), checkpoint_(adapters, base_model) {}
  std::vector<at::Tensor> parameters() const override { return adapters_.parameters(); }
  std::vector<at::Tensor> router_parameters() const override { return adapters_.router_parameters(); }
  double router_lr_multiplier() const override { return adapters_.config().router_lr_multiplier; }
  void describe(nlohmann::json& config) const override {
    const LoraConfig& lc = adapters_.config();
    config["lora"] = {{"rank", lc.rank},
                      {"alpha", lc.alpha},
                      {"train_attn", lc.train_attn},
                      {"train_mlp", lc.train_mlp},
                      {"train_unembed", lc.train_unembed},
                      {"train_router", to_string(lc.train_router)},
                      {"router_lr_multiplier", lc.router_lr_multiplier},
                      {"expert_lora", to_string(lc.expert_lora)},
                      {"seed", lc.seed}};
  }
  std::string output_name() const override { return "adapter"; }
  void write_output(const std::filesystem::path& dir) const override { save_adapter(adapters_, base_model_, dir); }
  void save(const std::filesystem::path& checkpoint_dir) const override { checkpoint_.save(checkpoint_dir); }
  void load(const std::filesystem::path& checkpoint_dir) override { checkpoint_.load(checkpoint_dir); }

 private:
  Adapters& adapters_;
  std::filesystem::path base_model_;
  AdapterCheckpoint checkpoint_;
};

void check_same_config(const nlohmann::json& saved, const nlohmann::json& now, const fs::path& checkpoint) {
  std::string diffs;
  for (const auto& [key, value] : now.items()) {
    if (!saved.contains(key) || saved[key] != value) {
      diffs += "\n  " + key + ": checkpoint has " + (saved.contains(key) ? saved[key].dump() : "nothing") +
               ", this run has " + value.dump();
    }
  }
  if (!diffs.empty()) {
    throw ConfigError("--resume: " + checkpoint.string() + " was written by a run with other settings; "
                      "resume with the same flags and data, or start a new --out:" + diffs);
  }
}

// The held-out loss before training, from the step-0 line of a resumed run's metrics.
double first_held_out_from_metrics(const fs::path& metrics) {
  for (const auto& line : read_jsonl_lines(metrics)) {
    const auto j = try_parse_json(line).value_or(nlohmann::json());
    if (!j.is_object() || j.value("step", -1) != 0 || !j.contains("held_out")) continue;
    const auto& loss = j["held_out"].contains("loss") ? j["held_out"]["loss"] : nlohmann::json();
    return loss.is_number() ? loss.get<double>() : kNaN;  // NaN was written as null
  }
  return kNaN;
}

TrainResult run(Task& task, const model::CausalLM& model, Trainable& trainable, const TrainOptions& o,
                StepHook* hook) {
  const auto lengths = task.lengths();
  const auto train_rows = static_cast<int64_t>(lengths.size());
  validate(o, train_rows);
  const auto device = model->parameters().front().device();
  const bool autocast = o.autocast_bf16 && device.is_cuda();

  // The micro-batch stream: epoch after epoch of length_batches(seed, epoch);
  // optimizer step s consumes micro-batches [s·A, (s+1)·A) of it (A = grad_accum).
  const int64_t batches_per_epoch = (train_rows + o.batch_size - 1) / o.batch_size;
  const int64_t total_micro = o.max_steps > 0 ? o.max_steps * o.grad_accum : o.epochs * batches_per_epoch;
  const int64_t total_steps = (total_micro + o.grad_accum - 1) / o.grad_accum;

  OptimizerOptions oo;
  oo.learning_rate = o.learning_rate;
  oo.router_lr_multiplier = trainable.router_lr_multiplier();
  oo.schedule = o.schedule;
  oo.warmup_steps = o.warmup_steps;
  oo.total_steps = total_steps;
  oo.max_grad_norm = o.max_grad_norm;
  Optimizer optimizer(trainable.parameters(), trainable.router_parameters(), oo);

  fs::create_directories(o.out_dir);
  const auto metrics_file = o.out_dir / "metrics.jsonl";
  MonitorOptions mo;
  mo.metrics_file = metrics_file;
  mo.total_steps = total_steps;
  mo.warmup_steps = o.warmup_steps;
  mo.log_every = o.log_every;
  mo.explode_factor = o.explode_factor;
  mo.dpo = o.kind == TrainKind::kDpo;
  mo.progress = o.progress;
  TrainMonitor monitor(mo);

  TrainerState state;
  state.config = run_config(o, trainable, train_rows, task.held_out_rows(), total_steps, hook != nullptr);
  const auto checkpoint = latest_train_checkpoint(o.out_dir);
  TrainResult result;
  result.first_held_out_loss = kNaN;
  if (o.resume && checkpoint) {
    const auto saved = load_train_checkpoint(*checkpoint, trainable, optimizer, hook);
    check_same_config(saved.config, state.config, *checkpoint);
    state.step = saved.step;
    state.epoch = saved.epoch;
    state.position = saved.position;
    monitor.load_state(saved.monitor);
    TrainMonitor::truncate_metrics(metrics_file, state.step, /*redo_eval_at_step=*/state.step == total_steps);
    result.first_held_out_loss = first_held_out_from_metrics(metrics_file);
    log::info("resuming from " + checkpoint->string() + " (step " + std::to_string(state.step) + " of " +
              std::to_string(total_steps) + ")");
  } else if (!o.resume && (checkpoint || fs::exists(metrics_file) || fs::exists(o.out_dir / trainable.output_name()))) {
    throw ConfigError("train: " + o.out_dir.string() + " already holds a training run; pass --resume to continue it, "
                      "or choose another --out");
  } else {
    fs::remove(metrics_file);  // --resume before any checkpoint: start over
  }
  result.start_step = state.step;

  auto evaluate = [&](int64_t step) {
    if (task.held_out_rows() == 0) return nlohmann::json();
    CudaAutocast guard(autocast);
    auto values = task.evaluate(o.batch_size);
    monitor.record_eval(step, values);
    return values;
  };
  if (state.step == 0) {
    const auto first = evaluate(0);
    if (first.is_object()) result.first_held_out_loss = first.value("loss", kNaN);
  }

  auto order = length_batches(lengths, o.batch_size, o.seed, state.epoch);
  double last_loss = kNaN;
  for (int64_t step = state.step; step < total_steps; ++step) {
    if (o.stop_requested != nullptr && o.stop_requested->load()) {
      // A step boundary: keep what this call trained (a checkpoint of `step`
      // steps, unless that is where it started), then stop.
      if (step > result.start_step) {
        state.monitor = monitor.state();
        save_train_checkpoint(o.out_dir, trainable, optimizer, state, hook, o.keep_checkpoints);
      }
      throw Interrupted("train " + to_string(o.kind) + ": stopped on request after step " + std::to_string(step) +
                        " of " + std::to_string(total_steps) + "; resume continues from " +
                        (o.out_dir / kCheckpointsDir).string());
    }
    const int64_t micro = std::min(o.grad_accum, total_micro - step * o.grad_accum);
    double loss_sum = 0, acc = 0, margin = 0, chosen = 0, rejected = 0, dpo = 0, nll = 0;
    int64_t tokens = 0, loss_tokens = 0;
    {
      CudaAutocast guard(autocast);
      std::optional<model::LayerCheckpointing> checkpointing;
      if (o.activation_checkpointing) checkpointing.emplace();
      for (int64_t m = 0; m < micro; ++m) {
        if (state.position >= static_cast<int64_t>(order.size())) {
          ++state.epoch;
          state.position = 0;
          order = length_batches(lengths, o.batch_size, o.seed, state.epoch);
        }
        const auto batch = to_device(task.collate_train(order[static_cast<size_t>(state.position++)]), device);
        auto r = task.forward(batch, hook);
        // Mean over micro-batches: each contributes 1/micro of the step's gradient.
        (r.loss / static_cast<double>(micro)).backward();
        loss_sum += r.loss.item<double>();
        tokens += batch.attention_mask.sum().item<int64_t>();
        loss_tokens += r.loss_tokens;
        acc += r.dpo.accuracy, margin += r.dpo.margin, chosen += r.dpo.chosen_reward;
        rejected += r.dpo.rejected_reward;
        if (r.dpo.dpo_loss.defined()) dpo += r.dpo.dpo_loss.item<double>(), nll += r.dpo.nll_loss.item<double>();
      }
    }
    const double loss = loss_sum / static_cast<double>(micro);
    monitor.check_loss(step + 1, loss);  // before the update: a bad step never reaches the weights
    const auto stats = optimizer.step(step);
    last_loss = loss;

    nlohmann::json line{{"step", step + 1},          {"epoch", state.epoch}, {"loss", loss},
                        {"grad_norm", stats.grad_norm}, {"lr", stats.lr},   {"tokens", tokens},
                        {"loss_tokens", loss_tokens}};
    if (o.kind == TrainKind::kDpo) {
      const auto n = static_cast<double>(micro);
      line["dpo_loss"] = dpo / n, line["nll_loss"] = nll / n, line["dpo_accuracy"] = acc / n;
      line["dpo_margin"] = margin / n, line["chosen_reward"] = chosen / n, line["rejected_reward"] = rejected / n;
    }
    if (hook) hook->add_metrics(line);
    monitor.record_step(std::move(line));
    state.step = step + 1;

    const bool last = state.step == total_steps;
    if (!last && o.eval_every > 0 && state.step % o.eval_every == 0) evaluate(state.step);
    if (!last && o.checkpoint_every > 0 && state.step % o.checkpoint_every == 0) {
      state.monitor = monitor.state();
      save_train_checkpoint(o.out_dir, trainable, optimizer, state, hook, o.keep_checkpoints);
    }
  }
  monitor.finish();

  // The end: held-out metrics, a last checkpoint, the final adapter and hook outputs.
  const auto final_eval = evaluate(state.step);
  result.final_held_out_loss = final_eval.is_object() ? final_eval.value("loss", kNaN) : kNaN;
  if (final_eval.is_object() && o.kind == TrainKind::kDpo) {
    result.final_dpo_margin = final_eval.value("dpo_margin", kNaN);
    result.final_dpo_accuracy = final_eval.value("dpo_accuracy", kNaN);
  }
  state.monitor = monitor.state();
  save_train_checkpoint(o.out_dir, trainable, optimizer, state, hook, o.keep_checkpoints);
  result.adapter_dir = o.out_dir / trainable.output_name();
  trainable.write_output(result.adapter_dir);
  if (hook) hook->write_outputs(o.out_dir);
  result.steps = state.step;
  result.final_train_loss = last_loss;
  return result;
}

}  // namespace

TrainResult train_sft(const model::CausalLM& model, Adapters& adapters, const SftDataset& train,
                      const SftDataset& held_out, const TrainOptions& options, StepHook* hook) {
  if (options.kind != TrainKind::kSft) throw ConfigError("train_sft: options.kind is dpo, expected sft");
  AdapterTrainable trainable(adapters, options.base_model);
  return train_sft_over(trainable, model, train, held_out, options, hook);
}

TrainResult train_dpo(const model::CausalLM& model, Adapters& adapters, const DpoDataset& train,
                      const DpoDataset& held_out, const TrainOptions& options, StepHook* hook) {
  if (options.kind != TrainKind::kDpo) throw ConfigError("train_dpo: options.kind is sft, expected dpo");
  DpoTask task(*model, train, held_out, options);
  AdapterTrainable trainable(adapters, options.base_model);
  return run(task, model, trainable, options, hook);
}

TrainResult train_sft_over(Trainable& trainable, const model::CausalLM& model, const SftDataset& train,
                           const SftDataset& held_out, const TrainOptions& options, StepHook* hook) {
  if (options.kind != TrainKind::kSft) throw ConfigError("train_sft: options.kind is dpo, expected sft");
  SftTask task(*model, train, held_out, options);
  return run(task, model, trainable, options, hook);
}

}  // namespace character::lora
