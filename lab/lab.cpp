// build_lab(): the lab's steps (corpus → tokenizer → student → teacher → sanity),
// each recorded in DIR/lab.json with the hash of its inputs (the previous steps'
// outputs), the SHA-256 of every file it wrote and its seconds. A step whose inputs
// and outputs are unchanged is skipped; a training step that was interrupted
// resumes from its checkpoints in DIR/work/<step>.
#include "lab/lab.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <functional>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/json_read.h"
#include "base/log.h"
#include "base/sha256.h"
#include "lab/corpus.h"
#include "lab/lab_models.h"
#include "lab/lab_sanity.h"
#include "lab/tokenizer_train.h"
#include "lora/full_train.h"
#include "lora/train_data.h"
#include "model/arch/init_weights.h"
#include "model/io/config.h"
#include "model/text/chat.h"
#include "model/text/tokenizer.h"
#include "personas/persona.h"

namespace character::lab {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kManifestFormat = 1;
// Bump when a step's recipe changes in a way the size fields do not show, so that
// labs built by older code are rebuilt rather than reused.
constexpr const char* kRecipeVersion = "lab-recipe-1";
constexpr const char* kManifestName = "lab.json";
constexpr const char* kSteps[] = {"corpus", "tokenizer", "student", "teacher", "sanity"};

// What a lab of this size and seed is made from: the recipe version, the size's
// fields and the shipped persona files (the persona corpus derives from them).
std::string recipe_hash(const LabSize& size) {
  Sha256 h;
  h.update(kRecipeVersion);
  h.update(to_json(size).dump());
  for (const auto& name : personas::shipped_personas()) {
    h.update(name);
    h.update(personas::find_persona(name).source_text);
  }
  return h.hex();
}

// {relative path: sha256} of every regular file under each of `paths` (files or
// directories, relative to `dir`).
json hash_outputs(const fs::path& dir, const std::vector<std::string>& paths) {
  json out = json::object();
  for (const auto& rel : paths) {
    const fs::path p = dir / rel;
    if (fs::is_regular_file(p)) {
      out[rel] = sha256_file(p);
    } else if (fs::is_directory(p)) {
      std::vector<fs::path> files;
      for (const auto& e : fs::recursive_directory_iterator(p))
        if (e.is_regular_file()) files.push_back(e.path());
      std::sort(files.begin(), files.end());
      for (const auto& f : files) out[fs::relative(f, dir).generic_string()] = sha256_file(f);
    } else {
      throw IoError("lab: step output " + p.string() + " was not written");
    }
  }
  return out;
}

bool outputs_intact(const fs::path& dir, const json& outputs) {
  if (!outputs.is_object()) return false;
  for (const auto& [rel, hash] : outputs.items()) {
    const fs::path p = dir / rel;
    if (!fs::is_regular_file(p) || !hash.is_string() || sha256_file(p) != hash.get<std::string>()) return false;
  }
  return true;
}

// The inputs of the step after one with `inputs` that wrote `outputs`.
std::string chain(const std::string& inputs, const json& outputs) { return sha256_hex(inputs + outputs.dump()); }

json read_manifest_or_null(const fs::path& dir) {
  const fs::path file = dir / kManifestName;
  if (!fs::exists(file)) return nullptr;
  json j = read_json_file(file);
  if (!j.is_object()) throw FormatError(file.string() + ": not a JSON object, expected lab.json");
  return j;
}

void write_manifest(const fs::path& dir, const json& manifest) {
  write_file_atomic(dir / kManifestName, manifest.dump(2) + "\n");
}

// Whether every step of `manifest` is done, chained and intact on disk.
bool steps_valid(const fs::path& dir, const json& manifest) {
  if (!manifest.contains("steps") || !manifest["steps"].is_object()) return false;
  std::string inputs = sha256_hex(manifest.value("recipe", ""));
  for (const char* name : kSteps) {
    const json& steps = manifest["steps"];
    if (!steps.contains(name)) return false;
    const json& s = steps[name];
    if (s.value("state", "") != "done" || s.value("inputs", "") != inputs || !outputs_intact(dir, s["outputs"])) {
      return false;
    }
    inputs = chain(inputs, s["outputs"]);
  }
  return true;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Build {
  LabBuildOptions options;
  LabSize size;
  LabPaths paths;
  json manifest;

  void progress(const std::string& line) const {
    if (options.progress) log::info("lab: " + line);
  }
  void check_stop(const std::string& where) const {
    if (options.stop_requested && options.stop_requested->load()) {
      throw Interrupted("lab build stopped " + where + "; run it again to resume");
    }
  }

  json run_corpus();
  json run_tokenizer();
  json run_training(LabModel which);
  json run_sanity();
};

json Build::run_corpus() {
  CorpusOptions co;
  co.seed = options.seed;
  co.generic_conversations = size.generic_conversations;
  co.persona_conversations = size.persona_conversations;
  for (const auto& name : size.personas.empty() ? personas::shipped_personas() : size.personas) {
    co.personas.push_back(personas::find_persona(name));
  }
  const LabCorpus corpus = synthesize_corpus(co);
  fs::create_directories(paths.corpus);
  write_conversations_jsonl(corpus.generic, paths.corpus / "generic.jsonl");
  write_conversations_jsonl(corpus.persona, paths.corpus / "persona.jsonl");
  write_tokenizer_text(corpus, paths.corpus / "tokenizer.txt");
  progress("corpus: " + std::to_string(corpus.generic.size()) + " generic and " + std::to_string(corpus.persona.size()) +
           " persona conversations (" + std::to_string(co.personas.size()) + " personas)");
  return {{"generic", corpus.generic.size()}, {"persona", corpus.persona.size()}, {"personas", co.personas.size()}};
}

json Build::run_tokenizer() {
  TokenizerTrainOptions to;
  to.text_file = paths.corpus / "tokenizer.txt";
  to.out_dir = paths.tokenizer;
  to.vocab_size = size.vocab_size;
  to.seed = options.seed;
  train_lab_tokenizer(to);
  const auto tokenizer = model::load_tokenizer(paths.tokenizer);
  progress("tokenizer: vocabulary " + std::to_string(tokenizer->vocab_size()));
  return {{"vocab_size", tokenizer->vocab_size()}};
}

// Pretrains the student (generic conversations) or the teacher (generic + persona)
// from scratch in full-parameter mode, then moves the trainer's OUT/model to DIR/<which>.
json Build::run_training(LabModel which) {
  const bool student = which == LabModel::kStudent;
  const std::string name = to_string(which);
  const auto tokenizer = model::load_tokenizer(paths.tokenizer);
  const std::string family = model::detect_chat_family(paths.tokenizer);
  if (family != "chatml") {
    throw ConfigError("lab: " + paths.tokenizer.string() + " has a " + family + " chat template, expected chatml");
  }
  const auto renderer = model::make_chat_renderer(family);
  const json config_json = lab_model_config(size, which, *tokenizer);
  const model::ModelConfig config = model::parse_config(config_json, "lab " + name + " config");

  lora::SftOptions so;
  so.max_length = size.max_length;
  lora::SftDataset data = lora::load_sft_jsonl(paths.corpus / "generic.jsonl", *tokenizer, *renderer, so);
  if (!student) {
    const auto persona = lora::load_sft_jsonl(paths.corpus / "persona.jsonl", *tokenizer, *renderer, so);
    data.rows.insert(data.rows.end(), persona.rows.begin(), persona.rows.end());
    data.truncated += persona.truncated;
    data.skipped += persona.skipped;
  }
  // A small held-out set: the loss curve in work/<which>/metrics.jsonl.
  const int64_t n = static_cast<int64_t>(data.rows.size());
  const double fraction = std::min(0.05, 64.0 / static_cast<double>(std::max<int64_t>(n, 1)));
  const auto [train_idx, held_idx] = lora::held_out_split(n, fraction, options.seed);
  lora::SftDataset train, held;
  for (int64_t i : train_idx) train.rows.push_back(data.rows[static_cast<size_t>(i)]);
  for (int64_t i : held_idx) held.rows.push_back(data.rows[static_cast<size_t>(i)]);

  const model::CausalLM net = model::create_model(config);
  model::init_weights(*net, {.seed = options.seed + (student ? 0 : 1), .initializer_range = kLabInitializerRange});
  int64_t parameters = 0;
  for (const auto& p : net->parameters()) parameters += p.numel();
  const int64_t steps = student ? size.student_steps : size.teacher_steps;
  progress(name + ": " + config.model_type + ", " + std::to_string(parameters) + " parameters, " +
           std::to_string(train.rows.size()) + " conversations, " + std::to_string(steps) + " steps");

  lora::TrainOptions o;
  o.kind = lora::TrainKind::kSft;
  o.out_dir = options.dir / "work" / name;
  o.base_model = "lab " + name + " (" + size.name + ", seed " + std::to_string(options.seed) + ")";
  o.learning_rate = size.learning_rate;
  o.schedule = lora::LrSchedule::kCosine;
  o.warmup_steps = std::max<int64_t>(1, steps / 10);
  o.batch_size = size.batch_size;
  o.max_steps = steps;
  o.seed = options.seed;
  o.pad_id = config.pad_token_id.value_or(0);
  o.checkpoint_every = std::max<int64_t>(25, steps / 4);
  o.keep_checkpoints = 1;
  o.log_every = std::max<int64_t>(10, steps / 10);
  o.resume = true;
  o.progress = options.progress;
  o.stop_requested = options.stop_requested;

  lora::FullTrainOutput output;
  output.config = config;
  output.model_dir.tokenizer_dir = paths.tokenizer;
  output.model_dir.extra_config = {{"initializer_range", kLabInitializerRange}};
  const lora::TrainResult result = lora::train_full_sft(net, train, held, o, output);

  const fs::path target = student ? paths.student : paths.teacher;
  std::error_code ec;
  fs::remove_all(target, ec);
  fs::rename(result.adapter_dir, target, ec);
  if (ec) throw IoError("lab: cannot move " + result.adapter_dir.string() + " to " + target.string() + ": " + ec.message());
  fs::remove_all(o.out_dir / "checkpoints", ec);  // optimizer state is not needed once the model is out
  auto finite = [](double v) { return std::isfinite(v) ? json(v) : json(nullptr); };
  progress(name + ": held-out loss " + std::to_string(result.first_held_out_loss) + " → " +
           std::to_string(result.final_held_out_loss));
  return {{"model_type", config.model_type},
          {"parameters", parameters},
          {"conversations", train.rows.size()},
          {"held_out", held.rows.size()},
          {"truncated", data.truncated},
          {"steps", result.steps},
          {"first_held_out_loss", finite(result.first_held_out_loss)},
          {"final_held_out_loss", finite(result.final_held_out_loss)},
          {"final_train_loss", finite(result.final_train_loss)}};
}

json Build::run_sanity() {
  SanityOptions so;
  so.seed = options.seed;
  json result = run_sanity_check(paths, so);
  auto pct = [&](const char* key) { return std::to_string(static_cast<int>(result[key]["rate"].get<double>() * 100)) + "%"; };
  progress("sanity: " + result["persona"].get<std::string>() + " in character: teacher with constitution " +
           pct("teacher_in_persona") + ", teacher without system prompt " + pct("teacher_no_system") + ", student " +
           pct("student"));
  if (result.contains("warning")) log::warn("lab: " + result["warning"].get<std::string>());
  return result;
}

}  // namespace

fs::path default_lab_dir(const std::string& size, uint64_t seed) {
  const std::string leaf = size + "-seed" + std::to_string(seed);
  if (const char* env = std::getenv("CHARACTER_LAB_DIR"); env && *env) return fs::path(env) / leaf;
  fs::path cache;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) {
    cache = xdg;
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    cache = fs::path(home) / ".cache";
  } else {
    throw ConfigError("lab: neither CHARACTER_LAB_DIR, XDG_CACHE_HOME nor HOME is set; pass --dir");
  }
  return cache / "character" / "lab" / leaf;
}

LabPaths lab_paths(const fs::path& dir) {
  return {dir, dir / "student", dir / "teacher", dir / "tokenizer", dir / "corpus"};
}

json read_lab_manifest(const fs::path& dir) {
  json j = read_manifest_or_null(dir);
  if (j.is_null()) throw IoError((dir / kManifestName).string() + ": no lab.json; build the lab with `character lab build`");
  return j;
}

bool lab_is_built(const fs::path& dir, const std::string& size, uint64_t seed) {
  return lab_is_built(dir, lab_size(size), seed);
}

bool lab_is_built(const fs::path& dir, const LabSize& size, uint64_t seed) {
  json m;
  try {
    m = read_manifest_or_null(dir);
  } catch (const FormatError&) {
    return false;
  }
  if (!m.is_object() || m.value("format", 0) != kManifestFormat || m.value("size", "") != size.name ||
      m.value("seed", uint64_t{0}) != seed || !m.value("complete", false)) {
    return false;
  }
  return m.value("recipe", "") == recipe_hash(size) && steps_valid(dir, m);
}

LabPaths build_lab(const LabBuildOptions& options) {
  Build b;
  b.options = options;
  if (options.size_config) {
    if (options.size_config->name != options.size) {
      throw ConfigError("lab: size_config is named '" + options.size_config->name + "' but size is '" + options.size +
                        "', expected the same name");
    }
    b.size = *options.size_config;
  } else {
    b.size = lab_size(options.size);
  }
  if (b.options.dir.empty()) b.options.dir = default_lab_dir(options.size, options.seed);
  const fs::path dir = b.options.dir;
  b.paths = lab_paths(dir);
  const std::string recipe = recipe_hash(b.size);

  json m = read_manifest_or_null(dir);
  if (m.is_null() && fs::exists(dir) && fs::is_directory(dir) && !fs::is_empty(dir)) {
    throw ConfigError("lab: " + dir.string() + " is not empty and holds no lab.json; choose an empty or new --dir");
  }
  if (!m.is_null() && !options.force &&
      (m.value("size", "") != options.size || m.value("seed", uint64_t{0}) != options.seed)) {
    throw ConfigError("lab: " + dir.string() + " holds a " + m.value("size", std::string("?")) + " lab with seed " +
                      std::to_string(m.value("seed", uint64_t{0})) + ", asked for " + options.size + " with seed " +
                      std::to_string(options.seed) + "; pass --force to rebuild it or choose another --dir");
  }
  const bool fresh = m.is_null() || options.force || m.value("format", 0) != kManifestFormat ||
                     m.value("recipe", "") != recipe;
  if (fresh) {
    if (!m.is_null()) b.progress(options.force ? "--force: rebuilding every step" : "built by other code: rebuilding");
    std::error_code ec;
    fs::remove_all(dir / "work", ec);  // checkpoints of another recipe must not be resumed
    m = json::object();
    m["steps"] = json::object();
  }
  // Restores libtorch's thread count when the build ends (or throws).
  struct ThreadsGuard {
    int old = torch::get_num_threads();
    ~ThreadsGuard() { torch::set_num_threads(old); }
  } threads_guard;
  if (options.threads > 0) torch::set_num_threads(options.threads);

  m["format"] = kManifestFormat;
  m["recipe"] = recipe;
  m["size"] = options.size;
  m["seed"] = options.seed;
  m["size_config"] = to_json(b.size);
  m["complete"] = false;
  fs::create_directories(dir);
  write_manifest(dir, m);
  b.manifest = m;

  struct StepDef {
    const char* name;
    std::vector<std::string> outputs;
    std::function<json()> run;
  };
  const std::vector<StepDef> steps = {
      {"corpus", {"corpus"}, [&] { return b.run_corpus(); }},
      {"tokenizer", {"tokenizer"}, [&] { return b.run_tokenizer(); }},
      {"student", {"student"}, [&] { return b.run_training(LabModel::kStudent); }},
      {"teacher", {"teacher"}, [&] { return b.run_training(LabModel::kTeacher); }},
      {"sanity", {}, [&] { return b.run_sanity(); }},
  };
  const auto t_build = std::chrono::steady_clock::now();
  std::string inputs = sha256_hex(recipe);
  bool ran_any = false;
  for (const auto& step : steps) {
    json& rec = b.manifest["steps"][step.name];
    if (rec.is_object() && rec.value("state", "") == "done" && rec.value("inputs", "") == inputs &&
        outputs_intact(dir, rec["outputs"])) {
      inputs = chain(inputs, rec["outputs"]);
      continue;
    }
    b.check_stop("before the " + std::string(step.name) + " step");
    // A training step started on other inputs must not resume from its checkpoints.
    if (!(rec.is_object() && rec.value("inputs", "") == inputs)) {
      std::error_code ec;
      fs::remove_all(dir / "work" / step.name, ec);
    }
    b.progress(std::string(step.name) + " ...");
    rec = {{"state", "running"}, {"inputs", inputs}};
    write_manifest(dir, b.manifest);
    const auto t0 = std::chrono::steady_clock::now();
    json details = step.run();
    const double seconds = seconds_since(t0);
    json outputs = hash_outputs(dir, step.outputs);
    rec = {{"state", "done"}, {"inputs", inputs}, {"outputs", outputs}, {"seconds", seconds}, {"details", details}};
    if (std::string(step.name) == "sanity") b.manifest["sanity"] = details;
    write_manifest(dir, b.manifest);
    b.progress(std::string(step.name) + " done in " + std::to_string(static_cast<int>(seconds + 0.5)) + " s");
    inputs = chain(inputs, outputs);
    ran_any = true;
  }
  double total = 0;
  for (const char* name : kSteps) total += b.manifest["steps"][name].value("seconds", 0.0);
  b.manifest["seconds"] = total;
  b.manifest["complete"] = true;
  write_manifest(dir, b.manifest);
  if (ran_any) {
    b.progress("built " + options.size + " (seed " + std::to_string(options.seed) + ") in " +
               std::to_string(static_cast<int>(seconds_since(t_build) + 0.5)) + " s: " + dir.string());
  } else {
    b.progress("reusing " + options.size + " (seed " + std::to_string(options.seed) + ") at " + dir.string());
  }
  return b.paths;
}

}  // namespace character::lab
