// `character lab build [--dir D] [--size tiny|demo|full] [--seed N] [--threads N]
// [--force] [--json]`: builds the persona lab (docs/lab.md) or reuses a finished one; progress on stderr,
// the parts' paths (or lab.json with --json) on stdout. Ctrl-C stops after the
// current training step's checkpoint; running the command again resumes.
#include <CLI/CLI.hpp>

#include <nlohmann/json.hpp>

#include <atomic>
#include <csignal>
#include <iostream>
#include <memory>

#include <unistd.h>

#include "lab/lab.h"
#include "pipeline/commands.h"

namespace character::pipeline {

namespace {

namespace fs = std::filesystem;

struct LabBuildArgs {
  std::string dir;
  std::string size = "demo";
  uint64_t seed = 0;
  int threads = 1;
  bool force = false;
  bool json = false;
};

// SIGINT/SIGTERM: the first asks the build to stop at the next step boundary (the
// trainer saves a checkpoint and the build resumes from it); a second exits at once.
std::atomic<bool> g_lab_stop{false};

extern "C" void on_lab_stop_signal(int) {
  if (g_lab_stop.exchange(true)) _exit(130);
  static const char kMessage[] = "\ncharacter lab: stopping after the current step (run it again to resume); again to quit now\n";
  [[maybe_unused]] const ssize_t n = write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
}

class LabStopSignals {
 public:
  LabStopSignals() {
    g_lab_stop = false;
    struct sigaction action {};
    action.sa_handler = on_lab_stop_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
  }
  ~LabStopSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  LabStopSignals(const LabStopSignals&) = delete;
  LabStopSignals& operator=(const LabStopSignals&) = delete;

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

int run_lab_build(const LabBuildArgs& args) {
  LabStopSignals signals;
  lab::LabBuildOptions o;
  o.dir = args.dir;
  o.size = args.size;
  o.seed = args.seed;
  o.force = args.force;
  o.threads = args.threads;
  o.stop_requested = &g_lab_stop;
  const lab::LabPaths paths = lab::build_lab(o);
  if (args.json) {
    nlohmann::json out = lab::read_lab_manifest(paths.dir);
    out["paths"] = {{"dir", paths.dir.string()}, {"student", paths.student.string()},
                    {"teacher", paths.teacher.string()}, {"tokenizer", paths.tokenizer.string()},
                    {"corpus", paths.corpus.string()}};
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << "lab:       " << paths.dir.string() << "\n"
              << "student:   " << paths.student.string() << "\n"
              << "teacher:   " << paths.teacher.string() << "\n"
              << "tokenizer: " << paths.tokenizer.string() << "\n";
  }
  return 0;
}

}  // namespace

void add_lab_command(CLI::App& app) {
  CLI::App* lab = app.add_subcommand("lab", "The persona lab: a small synthetic world to run everything offline");
  lab->require_subcommand(1);
  auto args = std::make_shared<LabBuildArgs>();
  CLI::App* build = lab->add_subcommand("build", "Build (or reuse) the lab's corpus, tokenizer, student and teacher");
  build->add_option("--dir", args->dir,
                    "Lab directory (default: $CHARACTER_LAB_DIR/<size>-seed<N> or ~/.cache/character/lab/<size>-seed<N>)");
  build->add_option("--size", args->size, "tiny (tests), demo (make demo) or full (the experiment)")
      ->check(CLI::IsMember(lab::lab_size_names()));
  build->add_option("--seed", args->seed, "Corpus, initialisation and batch-order seed");
  build->add_option("--threads", args->threads,
                    "libtorch threads while training (default 1: the lab's models are small; 0: libtorch's default)")
      ->check(CLI::NonNegativeNumber);
  build->add_flag("--force", args->force, "Rebuild every step, even those already built");
  build->add_flag("--json", args->json, "Print lab.json (with the parts' paths) when done");
  set_command_action(*build, [args] { return run_lab_build(*args); });
  set_command_action(*lab, [lab] { return run_selected_command(*lab); });
}

}  // namespace character::pipeline
