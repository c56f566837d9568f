// Training checkpoints: OUT/checkpoints/step-000123/ holds the trained tensors
// (adapter/ of lora/adapter_file.h for LoRA runs, model.safetensors for
// full-parameter runs: lora/full_train.h), optimizer.pt (AdamW state), rng.pt (torch generator states), trainer_state.json
// (step, epoch, position in the epoch's batch order, the run's config, the
// monitor's state), hook_state.json and the hook's outputs (coverage.json).
// Written to a temporary sibling and renamed, so a killed run leaves either a
// complete checkpoint or none; the newest `keep` are kept.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace character::lora {

class Adapters;
class Optimizer;
class StepHook;

// The trained tensors a checkpoint holds, written into and read back from a
// checkpoint directory (the rest of it is written here).
class CheckpointTensors {
 public:
  virtual ~CheckpointTensors() = default;
  virtual void save(const std::filesystem::path& checkpoint_dir) const = 0;
  // CheckpointError naming the file when something is missing or does not fit.
  virtual void load(const std::filesystem::path& checkpoint_dir) = 0;
};

// A LoRA run's checkpoint tensors: `adapters` as adapter/ (naming `base_model`).
class AdapterCheckpoint : public CheckpointTensors {
 public:
  AdapterCheckpoint(Adapters& adapters, std::filesystem::path base_model)
      : adapters_(adapters), base_model_(std::move(base_model)) {}
  void save(const std::filesystem::path& checkpoint_dir) const override;
  void load(const std::filesystem::path& checkpoint_dir) override;

 private:
  Adapters& adapters_;
  std::filesystem::path base_model_;
};

inline constexpr const char* kCheckpointsDir = "checkpoints";
inline constexpr const char* kTrainerStateFile = "trainer_state.json";

// Where a run stands after `step` optimizer steps.
struct TrainerState {
  int64_t step = 0;      // optimizer steps done
  int64_t epoch = 0;     // epoch of the next micro-batch
  int64_t position = 0;  // micro-batches of that epoch's batch order already consumed
  nlohmann::json config;   // what must be equal on resume (TrainOptions, LoraConfig, data sizes)
  nlohmann::json monitor;  // TrainMonitor::state()
};

// "step-000123"
std::string checkpoint_name(int64_t step);

// Writes OUT/checkpoints/step-NNNNNN (replacing one of that name), then removes
// all but the newest `keep` (keep ≤ 0: keep all). Returns its path.
std::filesystem::path save_train_checkpoint(const std::filesystem::path& out_dir, const CheckpointTensors& tensors,
                                            const Optimizer& optimizer, const TrainerState& state, StepHook* hook,
                                            int64_t keep);

// The newest complete checkpoint of OUT (highest step), if any; leftovers of a
// killed write (temporary directories) are ignored.
std::optional<std::filesystem::path> latest_train_checkpoint(const std::filesystem::path& out_dir);

// Restores the trained tensors, optimizer, RNG states and hook from `dir`;
// returns the trainer state. CheckpointError naming the file when something is
// missing or does not fit.
TrainerState load_train_checkpoint(const std::filesystem::path& dir, CheckpointTensors& tensors,
                                   Optimizer& optimizer, StepHook* hook);

}  // namespace character::lora
