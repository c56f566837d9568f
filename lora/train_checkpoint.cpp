#include "lora/train_checkpoint.h"

#include <torch/torch.h>

#include <ATen/Context.h>

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <sstream>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/json_read.h"
#include "lora/adapter_file.h"
#include "lora/adapters.h"
#include "lora/optimizer.h"
#include "lora/trainer.h"

namespace character::lora {

namespace fs = std::filesystem;

namespace {

constexpr const char* kStepPrefix = "step-";
constexpr const char* kTempPrefix = ".tmp-";
constexpr const char* kOptimizerFile = "optimizer.pt";
constexpr const char* kRngFile = "rng.pt";
constexpr const char* kHookStateFile = "hook_state.json";
constexpr const char* kAdapterDir = "adapter";

// Step number of a "step-NNNNNN" directory name, or -1.
int64_t step_of(const std::string& name) {
  if (name.rfind(kStepPrefix, 0) != 0) return -1;
  const auto digits = name.substr(std::string(kStepPrefix).size());
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), ::isdigit)) return -1;
  return std::stoll(digits);
}

std::vector<std::pair<int64_t, fs::path>> list_checkpoints(const fs::path& out_dir) {
  std::vector<std::pair<int64_t, fs::path>> found;
  const auto root = out_dir / kCheckpointsDir;
  if (!fs::is_directory(root)) return found;
  for (const auto& entry : fs::directory_iterator(root)) {
    const int64_t step = step_of(entry.path().filename().string());
    if (step >= 0 && entry.is_directory() && fs::exists(entry.path() / kTrainerStateFile)) {
      found.emplace_back(step, entry.path());
    }
  }
  std::sort(found.begin(), found.end());
  return found;
}

// The generators whose state decides any random draw during training: the CPU
// one always, CUDA's when there is a GPU.
std::string save_rng() {
  torch::serialize::OutputArchive archive;
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    archive.write("cpu", gen.get_state());
  }
  if (at::hasCUDA()) {
    auto gen = at::globalContext().defaultGenerator(at::kCUDA);
    std::lock_guard<std::mutex> lock(gen.mutex());
    archive.write("cuda", gen.get_state());
  }
  std::ostringstream out;
  archive.save_to(out);
  return out.str();
}

void load_rng(const fs::path& file) {
  const auto bytes = read_file(file);
  std::istringstream in(bytes);
  torch::serialize::InputArchive archive;
  archive.load_from(in);
  at::Tensor state;
  if (!archive.try_read("cpu", state)) throw CheckpointError(file.string() + ": no \"cpu\" generator state");
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state);
  }
  if (at::hasCUDA() && archive.try_read("cuda", state)) {
    auto gen = at::globalContext().defaultGenerator(at::kCUDA);
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state);
  }
}

nlohmann::json read_json(const fs::path& file) { return read_json_file(file); }

}  // namespace

std::string checkpoint_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%s%06lld", kStepPrefix, static_cast<long long>(step));
  return buf;
}

void AdapterCheckpoint::save(const fs::path& checkpoint_dir) const {
  save_adapter(adapters_, base_model_, checkpoint_dir / kAdapterDir);
}

void AdapterCheckpoint::load(const fs::path& checkpoint_dir) {
  const auto adapter = read_adapter(checkpoint_dir / kAdapterDir);
  adapters_.load(adapter.tensors, (checkpoint_dir / kAdapterDir).string());
}

fs::path save_train_checkpoint(const fs::path& out_dir, const CheckpointTensors& tensors, const Optimizer& optimizer,
                               const TrainerState& state, StepHook* hook, int64_t keep) {
  const auto root = out_dir / kCheckpointsDir;
  const auto name = checkpoint_name(state.step);
  const auto tmp = root / (kTempPrefix + name);
  const auto final_dir = root / name;
  // Leftovers of writes killed half-way (this one or others) are removed.
  if (fs::is_directory(root)) {
    for (const auto& entry : fs::directory_iterator(root)) {
      if (entry.path().filename().string().rfind(kTempPrefix, 0) == 0) fs::remove_all(entry.path());
    }
  }
  fs::create_directories(tmp);

  tensors.save(tmp);
  write_file_atomic(tmp / kOptimizerFile, optimizer.save_state());
  write_file_atomic(tmp / kRngFile, save_rng());
  if (hook) {
    write_file_atomic(tmp / kHookStateFile, hook->state().dump());
    hook->write_outputs(tmp);
  }
  // trainer_state.json last: a directory without it is never taken for a checkpoint.
  const nlohmann::json j{{"step", state.step},     {"epoch", state.epoch},     {"position", state.position},
                         {"config", state.config}, {"monitor", state.monitor}};
  write_file_atomic(tmp / kTrainerStateFile, j.dump(2));

  std::error_code ec;
  fs::remove_all(final_dir, ec);
  fs::rename(tmp, final_dir, ec);
  if (ec) throw IoError("cannot rename " + tmp.string() + " to " + final_dir.string() + ": " + ec.message());

  if (keep > 0) {
    auto all = list_checkpoints(out_dir);
    for (size_t i = 0; i + static_cast<size_t>(keep) < all.size(); ++i) fs::remove_all(all[i].second);
  }
  return final_dir;
}

std::optional<fs::path> latest_train_checkpoint(const fs::path& out_dir) {
  auto all = list_checkpoints(out_dir);
  if (all.empty()) return std::nullopt;
  return all.back().second;
}

TrainerState load_train_checkpoint(const fs::path& dir, CheckpointTensors& tensors, Optimizer& optimizer,
                                   StepHook* hook) {
  const auto state_file = dir / kTrainerStateFile;
  if (!fs::exists(state_file)) {
    throw CheckpointError(dir.string() + ": no " + kTrainerStateFile + ", expected a training checkpoint directory");
  }
  const auto j = read_json(state_file);
  TrainerState state;
  try {
    state.step = j.at("step").get<int64_t>();
    state.epoch = j.at("epoch").get<int64_t>();
    state.position = j.at("position").get<int64_t>();
    state.config = j.at("config");
    state.monitor = j.at("monitor");
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(state_file.string() + ": " + e.what() + ", expected step, epoch, position, config, monitor");
  }
  // The position indexes the epoch's batch order: a negative one would read before it.
  for (const auto& [name, value] : {std::pair<const char*, int64_t>{"step", state.step},
                                    {"epoch", state.epoch}, {"position", state.position}}) {
    if (value < 0) {
      throw CheckpointError(state_file.string() + ": " + name + " is " + std::to_string(value) +
                            ", expected a non-negative integer");
    }
  }

  tensors.load(dir);
  for (const char* file : {kOptimizerFile, kRngFile}) {
    if (!fs::exists(dir / file)) throw CheckpointError(dir.string() + ": " + file + " is missing");
  }
  optimizer.load_state(read_file(dir / kOptimizerFile), (dir / kOptimizerFile).string());
  load_rng(dir / kRngFile);
  if (hook) {
    if (!fs::exists(dir / kHookStateFile)) {
      throw CheckpointError(dir.string() + ": " + kHookStateFile + " is missing, expected the router hook's state "
                            "(was the run started without router training?)");
    }
    hook->load_state(read_json(dir / kHookStateFile));
  }
  return state;
}

}  // namespace character::lora
