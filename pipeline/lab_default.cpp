// The lab as the pipeline's default: the preset, the build on first use, the
// teacher served on loopback around the stages that call it.
#include "pipeline/lab_default.h"

#include <algorithm>
#include <sstream>

#include "base/error.h"
#include "base/sha256.h"
#include "lab/lab.h"
#include "pipeline/local_server.h"

namespace character::pipeline {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* const kTeacherModelId = "lab-teacher";

// "a.b.c" of a key → its value in to_json's tree (null when absent).
json at_key(const json& tree, const std::string& key) {
  std::string pointer = "/" + key;
  std::replace(pointer.begin(), pointer.end(), '.', '/');
  const json::json_pointer p(pointer);
  return tree.contains(p) ? tree.at(p) : json(nullptr);
}

std::string value_text(const json& v) {
  if (v.is_number_float()) {
    std::ostringstream s;
    s << v.get<double>();
    return s.str();
  }
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// lab.json's hashes: the recipe and, per build step, the hash of its inputs and
// the SHA-256 of every file it wrote (lab/lab.cpp), so that a rebuilt lab shows.
json lab_hashes(const json& manifest) {
  json out = {{"recipe", manifest.value("recipe", json(nullptr))}, {"steps", json::object()}};
  const json steps = manifest.value("steps", json::object());
  if (!steps.is_object()) return out;
  for (const auto& [name, step] : steps.items()) {
    if (!step.is_object()) continue;
    out["steps"][name] = {{"inputs", step.value("inputs", json(nullptr))},
                          {"outputs", step.value("outputs", json::object())}};
  }
  return out;
}

}  // namespace

void apply_lab_defaults(RunConfig& c, bool lab_student, bool lab_teacher) {
  if (!lab_student && !lab_teacher) return;
  // Both lab models were trained on one-exchange conversations whose answers are
  // a few dozen tokens: longer limits only let an unfinished answer ramble.
  c.max_tokens = 96;
  c.introspection_max_tokens = 96;
  if (lab_teacher) c.constitution_share = 0;  // it answers prompts; it never learned to write questions
  if (lab_student) {
    // Tinker's rate for a width-64 Qwen (6.5e-4) moves a tiny model too little in
    // a smoke run's few dozen steps; 2e-3 does without diverging (docs/pipeline.md).
    c.training.learning_rate = 2e-3;
    c.training.max_length = 512;         // the lab's conversations fit in a few hundred tokens
    c.training.max_prompt_length = 256;
    c.probe.max_new_tokens = 64;         // the probe's signals show in the first sentences
  }
}

bool uses_lab_student(const RunConfig& config) { return config.student.empty(); }
bool uses_lab_teacher(const RunConfig& config) { return config.teacher.url.empty(); }

std::vector<std::string> lab_defaults_in_effect(const RunConfig& config) {
  RunConfig plain = default_run_config();
  RunConfig lab = plain;
  apply_lab_defaults(lab, uses_lab_student(config), uses_lab_teacher(config));
  const json plain_json = to_json(plain), lab_json = to_json(lab), config_json = to_json(config);
  std::vector<std::string> out;
  for (const auto& key : run_config_keys()) {
    const json v = at_key(lab_json, key);
    if (v != at_key(plain_json, key) && at_key(config_json, key) == v) out.push_back(key + " " + value_text(v));
  }
  return out;
}

fs::path resolved_lab_dir(const RunConfig& config) {
  const fs::path dir = config.lab.dir.empty() ? lab::default_lab_dir(config.lab.size, config.lab.seed) : config.lab.dir;
  return fs::absolute(dir).lexically_normal();
}

const std::vector<std::string>& teacher_stage_names() {
  // introspect asks the post-DPO student, but generate_data sets up the teacher's
  // client for every stage, so the URL must answer there too.
  static const std::vector<std::string> names = {"check", "generate-dpo", "introspect"};
  return names;
}

LabRuntime::LabRuntime(const RunConfig& recorded, Options options)
    : stage_config_(recorded),
      lab_student_(uses_lab_student(recorded)),
      lab_teacher_(uses_lab_teacher(recorded)),
      options_(std::move(options)) {
  if (!options_.print) options_.print = [](const std::string&) {};
  if (!lab_student_ && !lab_teacher_) return;
  dir_ = resolved_lab_dir(recorded);
  lab::LabPaths paths;
  if (lab::lab_is_built(dir_, recorded.lab.size, recorded.lab.seed)) {
    paths = lab::lab_paths(dir_);
  } else {
    options_.print("lab: building the " + recorded.lab.size + " lab (seed " + std::to_string(recorded.lab.seed) +
                   ") in " + dir_.string() + "; later runs reuse it");
    lab::LabBuildOptions b;
    b.dir = dir_;
    b.size = recorded.lab.size;
    b.seed = recorded.lab.seed;
    b.progress = options_.progress;
    b.stop_requested = options_.stop_requested;
    paths = lab::build_lab(b);
  }
  student_ = paths.student;
  teacher_ = paths.teacher;
  if (lab_student_) stage_config_.student = student_;
  options_.print("lab: " + dir_.string() + " (size " + recorded.lab.size + ", seed " +
                 std::to_string(recorded.lab.seed) + "): " +
                 (lab_student_ ? "student " + student_.string() : std::string("student from --student")) + ", " +
                 (lab_teacher_ ? "teacher " + teacher_.string() + " (served on 127.0.0.1 while a stage needs it)"
                               : std::string("teacher from --teacher-url")));
}

LabRuntime::~LabRuntime() { stop_teacher(); }

json LabRuntime::record() const {
  if (!lab_student_ && !lab_teacher_) return nullptr;
  const fs::path manifest_file = dir_ / "lab.json";
  const json hashes = lab_hashes(lab::read_lab_manifest(dir_));
  return {{"size", stage_config_.lab.size},
          {"seed", stage_config_.lab.seed},
          {"dir", dir_.string()},
          {"uses", {{"student", lab_student_}, {"teacher", lab_teacher_}}},
          {"student", lab_student_ ? json(student_.string()) : json(nullptr)},
          {"teacher", lab_teacher_ ? json(teacher_.string()) : json(nullptr)},
          {"lab_json_sha256", fs::exists(manifest_file) ? json(sha256_file(manifest_file)) : json(nullptr)},
          {"hashes", hashes}};
}

void LabRuntime::start_teacher() {
  if (server_) return;
  EngineBackendOptions engine;
  engine.model_id = kTeacherModelId;
  engine.device = stage_config_.device;
  engine.dtype = stage_config_.dtype;
  engine.seed = stage_config_.seed;
  remote::ServerOptions server;
  server.host = "127.0.0.1";
  server.port = 0;  // any free port: never recorded, a resumed run gets a new one
  server_ = std::make_unique<LocalServer>(teacher_, engine, server);
  server_->start();
  stage_config_.teacher.url = server_->base_url();
  stage_config_.teacher.model = server_->model_id();
  options_.print("lab teacher: serving " + teacher_.string() + " at " + stage_config_.teacher.url + " (model " +
                 stage_config_.teacher.model + ")");
}

void LabRuntime::stop_teacher() {
  if (!server_) return;
  server_.reset();  // stops accepting, finishes requests in progress, joins
  stage_config_.teacher.url.clear();
  stage_config_.teacher.model.clear();
  options_.print("lab teacher: stopped");
}

std::function<StageResult(const StageContext&)> LabRuntime::wrap(const std::string& stage,
                                                                  std::function<StageResult(const StageContext&)> run) {
  const auto& names = teacher_stage_names();
  if (!lab_teacher_ || std::find(names.begin(), names.end(), stage) == names.end()) return run;
  const bool last = stage == names.back();
  return [this, run = std::move(run), last](const StageContext& ctx) {
    start_teacher();
    struct StopAfter {
      LabRuntime* lab;
      bool last;
      ~StopAfter() {
        if (last) lab->stop_teacher();
      }
    } stop_after{this, last};
    const StageContext with_teacher{stage_config_, ctx.run_dir, ctx.stop_requested, ctx.quiet, ctx.fresh};
    return run(with_teacher);
  };
}

}  // namespace character::pipeline
