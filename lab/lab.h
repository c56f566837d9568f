// The persona lab (docs/lab.md): a small synthetic world in which a real teacher,
// a real MoE student and the real pipeline run offline on a CPU. `character lab
// build` and the pipeline's embedded default (no --student, no --teacher-url) call
// build_lab(); it builds what is missing and reuses what a build with the same
// size, seed and code already wrote (lab.json), resuming an interrupted training.
//
// DIR/
//   lab.json               size, seed, what each step wrote, their hashes, seconds
//   corpus/generic.jsonl   the student's pretraining conversations
//   corpus/persona.jsonl   the teacher's extra, persona-voiced conversations
//   corpus/tokenizer.txt   the tokenizer's training text
//   tokenizer/             the trained tokenizer (lab/tokenizer_train.h)
//   student/               Qwen3-MoE, pretrained from scratch on corpus/generic.jsonl
//   teacher/               dense Qwen3, trained on generic + persona conversations
//   work/                  trainer checkpoints and metrics (resume)
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace character::lab {

// A lab size: corpus counts, model shapes and training lengths.
struct LabSize {
  std::string name;
  int generic_conversations = 0;
  int persona_conversations = 0;   // per persona voiced (`personas` below)
  int vocab_size = 0;
  // Student: Qwen3-MoE.
  int64_t student_layers = 4, student_hidden = 64, student_experts = 8, student_top_k = 2;
  int64_t student_moe_intermediate = 64;
  // Teacher: dense Qwen3.
  int64_t teacher_layers = 2, teacher_hidden = 64, teacher_intermediate = 128;
  int64_t heads = 4, kv_heads = 2;
  // Full-parameter training.
  int64_t student_steps = 0, teacher_steps = 0, batch_size = 16;
  double learning_rate = 3e-3;
  int64_t max_length = 1024;
  // Personas voiced in the corpus (the teacher's); empty: every shipped persona.
  std::vector<std::string> personas;
};

// "tiny" (the tests' smallest size), "demo" (make demo), "full" (the experiment).
const std::vector<std::string>& lab_size_names();
// ConfigError listing the names otherwise.
LabSize lab_size(const std::string& name);

struct LabBuildOptions {
  std::filesystem::path dir;          // empty: default_lab_dir(size, seed)
  std::string size = "demo";
  uint64_t seed = 0;
  bool force = false;                 // rebuild everything
  bool progress = true;               // progress lines on stderr
  // libtorch intra-op threads while building (0: leave libtorch's setting). The lab's
  // models are too small to gain from more, and with other processes on the cores
  // OpenMP workers spin-wait: a step took 10× longer with 2 threads on a loaded machine.
  int threads = 1;
  const std::atomic<bool>* stop_requested = nullptr;  // Interrupted after a checkpoint
  // Replaces lab_size(size) (the tests' seconds-long "micro" labs); `size` must then
  // equal size_config->name.
  std::optional<LabSize> size_config;
};

struct LabPaths {
  std::filesystem::path dir, student, teacher, tokenizer, corpus;
};

// $CHARACTER_LAB_DIR/<size>-seed<N>, or ${XDG_CACHE_HOME:-~/.cache}/character/lab/<size>-seed<N>.
std::filesystem::path default_lab_dir(const std::string& size, uint64_t seed);

LabPaths lab_paths(const std::filesystem::path& dir);

// True when DIR holds a finished build of this size and seed by this code.
bool lab_is_built(const std::filesystem::path& dir, const std::string& size, uint64_t seed);
bool lab_is_built(const std::filesystem::path& dir, const LabSize& size, uint64_t seed);

// Builds (or finishes) the lab; returns where its parts are. lab.json is updated
// after each step, so a killed build resumes at the step it was in.
LabPaths build_lab(const LabBuildOptions& options);

// lab.json as written (for `character lab build --json` and the docs).
nlohmann::json read_lab_manifest(const std::filesystem::path& dir);

}  // namespace character::lab
