// `character pipeline PERSONA [flags]`: persona → generated data → DPO → introspection
// → SFT → eval → gate → export in one run directory (docs/pipeline.md). Resolves
// the config (flags over --config YAML over defaults), creates or resumes RUN/,
// turns SIGINT/SIGTERM into a clean stop, runs the stages through
// pipeline_driver.h and prints the summary: the gate table and the exports.
// Without --student or --teacher-url the persona lab stands in for them
// (pipeline/lab_default.h).
#include <CLI/CLI.hpp>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <memory>

#include "base/dir_lock.h"
#include "base/error.h"
#include "base/log.h"
#include "base/utc_time.h"
#include "pipeline/commands.h"
#include "pipeline/lab_default.h"
#include "pipeline/pipeline_driver.h"
#include "pipeline/run_config.h"
#include "pipeline/run_manifest.h"
#include "pipeline/stages.h"

namespace character::pipeline {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A flag the user may pass: the option (for count()) and what it sets.
struct ConfigFlag {
  CLI::Option* option = nullptr;
  std::function<void(RunConfig&)> apply;
  bool on_resume = false;  // may change a resumed run's recorded config
};

struct PipelineArgs {
  std::string persona;
  fs::path config_file;
  bool print_config = false;
  fs::path resume;
  StageSelection selection;
  bool json = false;
  // Raw flag values; applied only when passed (ConfigFlag).
  std::string scale, teacher_url, teacher_model, teacher_key_env, judge_url, judge_model, judge_key_env;
  std::string train_router, device, dtype, student, runs_dir, lab_size, lab_dir;
  ScaleOverrides counts;
  double price_in = 0, price_out = 0, lr = 0, alpha = 0, sft_lr_factor = 0, constitution_share = 0,
         coverage_pool_factor = 0;
  int64_t rank = 0, epochs = 0, max_steps = 0, batch_size = 0;
  uint64_t seed = 0, lab_seed = 0;
  std::vector<std::string> exports;
  CLI::Option* paper_scale = nullptr;
  std::vector<ConfigFlag> flags;
};

// SIGINT/SIGTERM: the first asks the stages to stop at their next step or batch
// boundary (they save and throw Interrupted); a second one exits at once (130).
std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the signal handler needs a lock-free flag");

extern "C" void on_stop_signal(int) {
  if (g_stop.exchange(true)) _exit(130);
  static const char kMessage[] =
      "\ncharacter pipeline: stopping after the current step (the run stays resumable); again to quit now\n";
  [[maybe_unused]] const ssize_t n = write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
}

class StopSignals {
 public:
  StopSignals() {
    g_stop = false;
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

// "pirate" for "pirate" and for "my/pirate.yaml".
std::string persona_label(const std::string& persona) {
  fs::path p(persona);
  std::string name = (p.extension() == ".yaml" || p.extension() == ".yml") ? p.stem().string() : persona;
  for (char& ch : name)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_')) ch = '_';
  return name;
}

// RUN = <runs_dir>/<persona>-<UTC yyyymmddThhmmssZ>, with -2, -3 … when taken.
fs::path new_run_dir(const RunConfig& config) {
  const std::string base = persona_label(config.persona) + "-" + utc_now_text(kUtcCompact);
  fs::create_directories(config.runs_dir);
  for (int i = 1;; ++i) {
    const fs::path dir = config.runs_dir / (i == 1 ? base : base + "-" + std::to_string(i));
    std::error_code ec;
    if (fs::create_directory(dir, ec)) return dir;
    if (ec) throw IoError(dir.string() + ": cannot create the run directory: " + ec.message());
  }
}

// Defaults → lab defaults (when the lab stands in) → --paper-scale → --config →
// flags. Whether the lab stands in is known only from the file and the flags, so
// a first pass finds out and a second applies its preset beneath them.
RunConfig resolve_config(const PipelineArgs& args) {
  auto resolve = [&args](bool lab_student, bool lab_teacher) {
    RunConfig config = default_run_config();
    apply_lab_defaults(config, lab_student, lab_teacher);
    if (args.paper_scale->count() > 0) apply_paper_scale(config);
    if (!args.config_file.empty()) apply_config_file(config, args.config_file);
    for (const auto& flag : args.flags)
      if (flag.option->count() > 0) flag.apply(config);
    if (!args.persona.empty()) config.persona = args.persona;
    return config;
  };
  const RunConfig plain = resolve(false, false);
  RunConfig config = uses_lab(plain) ? resolve(uses_lab_student(plain), uses_lab_teacher(plain)) : plain;
  // The lab's directory as it resolves now (CHARACTER_LAB_DIR, the cache
  // directory), recorded so that a resumed run finds the same lab.
  if (uses_lab(config) && config.lab.dir.empty()) config.lab.dir = resolved_lab_dir(config);
  if (config.persona.empty()) throw ConfigError("pipeline: no persona: give PERSONA or `persona:` in --config");
  return config;
}

// A resumed run keeps its recorded config, except what only affects later
// stages' outputs (exports) or where they run (device).
RunConfig resumed_config(const PipelineArgs& args, const RunManifest& manifest) {
  RunConfig config = manifest.config();
  if (!args.config_file.empty() || args.paper_scale->count() > 0)
    throw ConfigError("pipeline: --resume keeps the run's recorded config; --config and --paper-scale start a new run");
  if (!args.persona.empty() && args.persona != config.persona)
    throw ConfigError("pipeline: PERSONA " + args.persona + " differs from the resumed run's " + config.persona);
  for (const auto& flag : args.flags) {
    if (flag.option->count() == 0) continue;
    if (!flag.on_resume)
      throw ConfigError("pipeline: " + flag.option->get_name() + " cannot change a resumed run (" +
                        (manifest.run_dir() / "manifest.json").string() +
                        " records its config); allowed with --resume: --device, --dtype, --export, --force-export, "
                        "--allow-drop-router");
    flag.apply(config);
  }
  return config;
}

void print_summary(const RunManifest& manifest, const DriverOutcome& outcome,
                   const std::function<void(const std::string&)>& print) {
  const json& m = manifest.data();
  char buf[160];
  std::snprintf(buf, sizeof buf, "run %s: %s in %.1fs, $%.2f", manifest.run_dir().string().c_str(),
                outcome.status.c_str(), m["totals"].value("seconds", 0.0), m["totals"].value("cost_usd", 0.0));
  print(buf);
  const json gates = m.value("gates", json(nullptr));
  if (gates.is_object()) {
    print(std::string("gates: ") + (gates.value("passed", false) ? "passed" : "FAILED"));
    for (const auto& line : gate_table(gates)) print(line);
  }
  for (const auto& e : m.value("exports", json::array())) {
    print("export " + e.value("format", "") + ": " + manifest.resolve(e.value("path", "")).string() +
          (e.value("gated", true) ? "" : "  (UNGATED: the gates failed, exported by --force-export)"));
  }
  if (outcome.status == "gated-out" && m.value("exports", json::array()).empty())
    print("nothing exported: a gate failed (--force-export exports anyway, marked ungated)");
}

int run_pipeline(PipelineArgs& args) {
  std::unique_ptr<RunManifest> manifest;
  RunConfig config;
  if (!args.resume.empty()) {
    manifest = std::make_unique<RunManifest>(RunManifest::load(args.resume));
    config = resumed_config(args, *manifest);
  } else {
    config = resolve_config(args);
  }
  validate(config);
  select_stages(stage_names(), args.selection);  // an unknown --from/--until/--only before anything is written
  if (args.print_config) {
    // JSON is YAML: the output is a valid --config file. Keys in the table's order.
    const json flat = to_json(config);
    nlohmann::ordered_json ordered;
    for (const auto& key : run_config_keys()) {
      std::string pointer = "/" + key;
      std::replace(pointer.begin(), pointer.end(), '.', '/');
      ordered[nlohmann::ordered_json::json_pointer(pointer)] = flat[json::json_pointer(pointer)];
    }
    std::cout << ordered.dump(2) << std::endl;
    return 0;
  }
  for (const auto* e : {&config.teacher, &config.judge})
    if (!e->api_key_env.empty())
      if (const char* key = std::getenv(e->api_key_env.c_str())) log::register_secret(key);

  // One process per run: a second resume of the same run is refused before it writes
  // anything (it would pay for every teacher request again).
  std::unique_ptr<DirLock> lock;
  if (manifest) {
    lock = std::make_unique<DirLock>(manifest->run_dir(), "run");
    manifest->set_config(config);
  } else {
    const fs::path run_dir = new_run_dir(config);
    lock = std::make_unique<DirLock>(run_dir, "run");
    manifest = std::make_unique<RunManifest>(RunManifest::create(run_dir, config, stage_names()));
  }
  StopSignals signals;  // from here on, Ctrl-C stops the lab build and the stages cleanly
  const fs::path log_file = manifest->run_dir() / "logs" / "pipeline.log";
  log::set_file(log_file);
  struct CloseLog {
    ~CloseLog() { log::set_file({}); }
  } close_log;
  std::ostream& out = args.json ? std::cerr : std::cout;
  // Printed lines go to the log file too (stage progress reaches it through log::).
  auto print = [&out](const std::string& line) {
    out << line << std::endl;
    log::write_file_only("PRINT", line);
  };
  print(std::string(args.resume.empty() ? "run " : "resuming ") + manifest->run_dir().string() + " (" +
        config.persona + ", scale " + config.scale + ", " + manifest->data().value("device", "") + ")");

  DriverOutcome outcome;
  try {
    // The lab (built when missing) stands in for the student and/or the teacher.
    LabRuntime lab(config, {&g_stop, !args.json, print});
    if (uses_lab(config)) {
      const json record = lab.record();
      const json earlier = manifest->data().value("lab", json(nullptr));
      if (earlier.is_object() && earlier.value("lab_json_sha256", json(nullptr)) != record["lab_json_sha256"])
        print("  warning: the lab in " + record.value("dir", "") +
              " was rebuilt since this run started (its lab.json changed); stages done earlier used the earlier lab");
      manifest->set_lab(record);
      std::string defaults;
      for (const auto& d : lab_defaults_in_effect(config)) defaults += (defaults.empty() ? "" : ", ") + d;
      if (!defaults.empty()) print("lab defaults (docs/pipeline.md, \"The lab\"): " + defaults);
    }
    std::vector<DriverStage> stages;
    for (const auto& name : stage_names()) stages.push_back({name, lab.wrap(name, stage_function(name))});
    DriverOptions options;
    options.selection = args.selection;
    options.stop_requested = &g_stop;
    options.quiet = args.json;
    options.print = print;
    outcome = run_stages(*manifest, lab.config(), stages, options);
  } catch (const Interrupted&) {
    if (manifest->status() == "running") manifest->set_status("interrupted");  // stopped during the lab build
    print("interrupted; continue with: character pipeline --resume " + manifest->run_dir().string());
    if (args.json) std::cout << manifest->data().dump() << std::endl;
    throw;
  } catch (const std::exception& e) {
    // main() prints the error on stderr; the log keeps it with the run.
    log::write_file_only("ERROR", e.what());
    if (manifest->status() == "running") manifest->set_status("failed");  // the lab build or the teacher's start
    if (args.json) std::cout << manifest->data().dump() << std::endl;
    throw;
  }
  print_summary(*manifest, outcome, print);
  if (args.json) {
    json summary = manifest->data();
    summary["run_dir"] = manifest->run_dir().string();
    summary["exit_code"] = outcome.exit_code;
    std::cout << summary.dump() << std::endl;
  }
  return outcome.exit_code;
}

}  // namespace

void add_pipeline_command(CLI::App& app) {
  auto args = std::make_shared<PipelineArgs>();
  PipelineArgs& a = *args;
  CLI::App* sub = app.add_subcommand(
      "pipeline", "Persona → data → DPO → introspection → SFT → eval → gate → export, in one resumable run directory");
  sub->add_option("persona", a.persona, "Persona: a shipped name or a YAML file (or `persona:` in --config)");
  sub->add_option("--config", a.config_file, "YAML run config (docs/pipeline.md); flags override it");
  sub->add_flag("--print-config", a.print_config, "Print the resolved config (JSON, a valid --config file) and exit");
  sub->add_option("--resume", a.resume, "Continue the run in this directory (its recorded config)")
      ->check(CLI::ExistingDirectory);
  sub->add_option("--from", a.selection.from, "Start at this stage (it and later stages run again)");
  sub->add_option("--until", a.selection.until, "Stop after this stage");
  sub->add_option("--only", a.selection.only, "Run this stage alone (again)");
  sub->add_flag("--json", a.json, "Stage lines to stderr; one JSON summary (the manifest) on stdout");
  a.paper_scale = sub->add_flag("--paper-scale")->description("The paper's hyperparameters: rank 64, batch 32, lr 5e-5, β 0.1, NLL 0.1, 1 epoch");

  auto flag = [&](CLI::Option* option, std::function<void(RunConfig&)> apply, bool on_resume = false) {
    a.flags.push_back({option, std::move(apply), on_resume});
  };
  PipelineArgs* p = args.get();  // lives as long as the command (shared_ptr held by the action)
  flag(sub->add_option("--scale", a.scale, "smoke, micro, mini (default), quarter, half, full"),
       [p](RunConfig& c) { c.scale = p->scale; });
  flag(sub->add_option("--dpo-pairs", a.counts.dpo_pairs, "Override the preset's DPO pairs"),
       [p](RunConfig& c) { c.counts.dpo_pairs = p->counts.dpo_pairs; });
  flag(sub->add_option("--reflections", a.counts.reflections, "Override the preset's reflections"),
       [p](RunConfig& c) { c.counts.reflections = p->counts.reflections; });
  flag(sub->add_option("--interactions", a.counts.interactions, "Override the preset's self-interactions"),
       [p](RunConfig& c) { c.counts.interactions = p->counts.interactions; });
  flag(sub->add_option("--interaction-turns", a.counts.interaction_turns, "Messages per self-interaction"),
       [p](RunConfig& c) { c.counts.interaction_turns = p->counts.interaction_turns; });
  flag(sub->add_option("--student", a.student, "Student model directory (Hugging Face format; none: the lab student)"),
       [p](RunConfig& c) { c.student = p->student; });
  flag(sub->add_option("--teacher-url", a.teacher_url, "OpenAI-compatible teacher, https://…/v1 (none: the lab teacher, served on loopback)"),
       [p](RunConfig& c) { c.teacher.url = p->teacher_url; });
  flag(sub->add_option("--teacher-model", a.teacher_model, "Teacher model name"),
       [p](RunConfig& c) { c.teacher.model = p->teacher_model; });
  flag(sub->add_option("--teacher-key-env,--teacher-api-key-env", a.teacher_key_env,
                       "NAME of the environment variable holding the teacher's API key"),
       [p](RunConfig& c) { c.teacher.api_key_env = p->teacher_key_env; });
  flag(sub->add_option("--price-input", a.price_in, "Teacher price, USD per 1M input tokens"),
       [p](RunConfig& c) { c.teacher.price_in = p->price_in; });
  flag(sub->add_option("--price-output", a.price_out, "Teacher price, USD per 1M output tokens"),
       [p](RunConfig& c) { c.teacher.price_out = p->price_out; });
  flag(sub->add_option("--judge-url", a.judge_url, "Optional LLM judge for eval (OpenAI-compatible)"),
       [p](RunConfig& c) { c.judge.url = p->judge_url; });
  flag(sub->add_option("--judge-model", a.judge_model, "Judge model name"),
       [p](RunConfig& c) { c.judge.model = p->judge_model; });
  flag(sub->add_option("--judge-key-env", a.judge_key_env, "NAME of the variable holding the judge's key"),
       [p](RunConfig& c) { c.judge.api_key_env = p->judge_key_env; });
  flag(sub->add_option("--train-router", a.train_router, "none (default), lora or full (MoE students)"),
       [p](RunConfig& c) { c.training.lora.train_router = lora::parse_router_training(p->train_router); });
  flag(sub->add_option("--rank", a.rank, "LoRA rank (default 32; --paper-scale 64)"),
       [p](RunConfig& c) { c.training.lora.rank = p->rank; });
  flag(sub->add_option("--alpha", a.alpha, "LoRA alpha (default 32)"),
       [p](RunConfig& c) { c.training.lora.alpha = p->alpha; });
  flag(sub->add_option("--lr", a.lr, "Peak learning rate (default: from the student's hidden size, Tinker's recipe)"),
       [p](RunConfig& c) { c.training.learning_rate = p->lr; });
  flag(sub->add_option("--sft-lr-factor", a.sft_lr_factor, "SFT learning rate = lr × this (default 0.25)"),
       [p](RunConfig& c) { c.training.sft_lr_factor = p->sft_lr_factor; });
  flag(sub->add_option("--epochs", a.epochs, "Training epochs per stage (default 1)"),
       [p](RunConfig& c) { c.training.epochs = p->epochs; });
  flag(sub->add_option("--max-steps", a.max_steps, "Optimizer steps per training stage; > 0 overrides --epochs"),
       [p](RunConfig& c) { c.training.max_steps = p->max_steps; });
  flag(sub->add_option("--batch-size", a.batch_size, "Rows or pairs per micro-batch (default 8; --paper-scale 32)"),
       [p](RunConfig& c) { c.training.batch_size = p->batch_size; });
  flag(sub->add_flag("--paper-mode")->description("SFT: fold DPO into the base and train a fresh adapter (the paper's recipe)"),
       [](RunConfig& c) { c.training.paper_mode = true; });
  flag(sub->add_option("--seed", a.seed, "Seeds data sampling, adapter init, batch order, the probe (default 0)"),
       [p](RunConfig& c) { c.seed = p->seed; });
  flag(sub->add_option("--runs-dir", a.runs_dir, "Where run directories are created (default runs)"),
       [p](RunConfig& c) { c.runs_dir = p->runs_dir; });
  flag(sub->add_option("--constitution-share", a.constitution_share,
                       "Share of DPO prompts the teacher writes from the constitution (default 0.5; lab teacher 0)"),
       [p](RunConfig& c) { c.constitution_share = p->constitution_share; });
  flag(sub->add_flag("--coverage-augment")
           ->description("Pick DPO prompts whose routes cover the experts the probe reaches (MoE students)"),
       [](RunConfig& c) { c.coverage_augment = true; });
  flag(sub->add_option("--coverage-pool-factor", a.coverage_pool_factor,
                       "--coverage-augment's candidate pool, × the DPO prompts (default 3)"),
       [p](RunConfig& c) { c.coverage_pool_factor = p->coverage_pool_factor; });
  flag(sub->add_option("--lab-size", a.lab_size, "Lab size when the lab stands in: tiny, demo (default), full"),
       [p](RunConfig& c) { c.lab.size = p->lab_size; });
  flag(sub->add_option("--lab-dir", a.lab_dir,
                       "Lab directory (default $CHARACTER_LAB_DIR/<size>-seed<N> or ~/.cache/character/lab/…)"),
       [p](RunConfig& c) { c.lab.dir = p->lab_dir; });
  flag(sub->add_option("--lab-seed", a.lab_seed, "Seed of the lab's corpus and models (default 0)"),
       [p](RunConfig& c) { c.lab.seed = p->lab_seed; });
  flag(sub->add_option("--export", a.exports, "Export formats: tinker, peft, merged (repeatable or a comma list)")
           ->delimiter(','),
       [p](RunConfig& c) { c.exports = p->exports; }, /*on_resume=*/true);
  flag(sub->add_flag("--force-export")->description("Export even when a gate fails; marked ungated (export/UNGATED)"),
       [](RunConfig& c) { c.force_export = true; }, /*on_resume=*/true);
  flag(sub->add_flag("--allow-drop-router")->description("Tinker export of a router-trained adapter without the router deltas"),
       [](RunConfig& c) { c.allow_drop_router = true; }, /*on_resume=*/true);
  flag(sub->add_option("--device", a.device, "cpu or cuda (default cpu)"),
       [p](RunConfig& c) { c.device = p->device; }, /*on_resume=*/true);
  flag(sub->add_option("--dtype", a.dtype, "float32, bfloat16 or float16 (default: the device's)"),
       [p](RunConfig& c) { c.dtype = p->dtype; }, /*on_resume=*/true);
  set_command_action(*sub, [args] { return run_pipeline(*args); });
}

}  // namespace character::pipeline
