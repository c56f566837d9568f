// The embedded default of `character pipeline` (issue 7, docs/pipeline.md "The
// lab"): a run with no student trains the persona lab's student (lab/lab.h), a
// run with no teacher URL asks the lab's teacher, served by `character serve`'s
// code (pipeline/local_server.h) on 127.0.0.1 for the stages that call the
// teacher. The lab is built first when missing. The manifest records the lab
// (size, seed, directory, lab.json's hashes), never the teacher's port: the
// recorded config keeps teacher.url empty, so a resumed run serves it again.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/run_config.h"
#include "pipeline/stages.h"

namespace character::pipeline {

class LocalServer;

// Whether the run takes its student (student empty) or its teacher (teacher.url
// empty) from the lab.
bool uses_lab_student(const RunConfig& config);
bool uses_lab_teacher(const RunConfig& config);
inline bool uses_lab(const RunConfig& config) { return uses_lab_student(config) || uses_lab_teacher(config); }

// The lab's defaults, a preset beneath the YAML file and the flags (as
// --paper-scale is): the lab's small models answer in a few dozen tokens and train
// at a higher rate than the Tinker default for their width; the lab teacher cannot
// write constitution questions (constitution_share 0, only with the lab teacher).
// Gate thresholds are not changed. docs/pipeline.md lists the values.
void apply_lab_defaults(RunConfig& config, bool lab_student, bool lab_teacher);

// "constitution_share 0", "max_tokens 96", …: the lab defaults `config` still
// holds (a value the file or a flag changed is not listed), for the printed line.
std::vector<std::string> lab_defaults_in_effect(const RunConfig& config);

// lab.dir, or lab::default_lab_dir(lab.size, lab.seed); absolute.
std::filesystem::path resolved_lab_dir(const RunConfig& config);

// The lab during one `character pipeline` call: built when missing (progress on
// stderr), its student filled into the stages' config, its teacher served for
// the stages that call the teacher and stopped after the last of them (and by the
// destructor, on any error or interruption).
class LabRuntime {
 public:
  struct Options {
    const std::atomic<bool>* stop_requested = nullptr;  // Interrupted during the build
    bool progress = true;
    std::function<void(const std::string&)> print;      // one line per event (teacher up/down)
  };
  // `recorded` is the run's config (student and/or teacher.url empty). Builds the
  // lab when it is not built: lab::build_lab's errors, Interrupted.
  LabRuntime(const RunConfig& recorded, Options options);
  ~LabRuntime();
  LabRuntime(const LabRuntime&) = delete;
  LabRuntime& operator=(const LabRuntime&) = delete;

  // The config the stages see: the recorded one with the lab student's directory
  // and (while the teacher is served) the teacher's loopback URL and model.
  const RunConfig& config() const { return stage_config_; }

  // The manifest's "lab": {size, seed, dir, student, teacher, uses, lab_json_sha256, hashes}.
  nlohmann::json record() const;

  // The stage function as the driver should call it: the teacher's stages
  // (check, generate-dpo, introspect) start the teacher first; the teacher stops
  // when introspect ends. Other stages run as given.
  std::function<StageResult(const StageContext&)> wrap(const std::string& stage,
                                                       std::function<StageResult(const StageContext&)> run);

  void stop_teacher();

 private:
  void start_teacher();
  RunConfig stage_config_;
  bool lab_student_ = false, lab_teacher_ = false;
  std::filesystem::path dir_, student_, teacher_;
  Options options_;
  std::unique_ptr<LocalServer> server_;
};

// The stages that call the teacher.
const std::vector<std::string>& teacher_stage_names();

}  // namespace character::pipeline
