// generate_data(): the stages of `character generate-data` in order (prompts,
// DPO pairs, reflections, self-interactions) over a remote teacher and a local or
// remote student, with the run's identity checked on resume and a summary in
// OUT/generation.json. See pipeline/generate_data.h.
#include "pipeline/generate_data.h"

#include <chrono>
#include <cstdio>
#include <memory>

#include "base/atomic_file.h"
#include "base/dir_lock.h"
#include "base/error.h"
#include "base/json_read.h"
#include "base/log.h"
#include "base/sha256.h"
#include "personas/persona.h"
#include "pipeline/engine_backend.h"
#include "pipeline/gen_coverage.h"
#include "pipeline/gen_dpo.h"
#include "pipeline/gen_introspection.h"
#include "pipeline/gen_prompts.h"
#include "remote/client.h"
#include "remote/client_backend.h"

namespace character::pipeline {

std::string duration_text(double seconds) {
  const long s = static_cast<long>(seconds + 0.5);
  if (s < 60) return std::to_string(s) + "s";
  const long m = s / 60;
  char buf[32];
  if (m < 60) {
    std::snprintf(buf, sizeof buf, "%ldm%02lds", m, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", m / 60, m % 60);
  }
  return buf;
}

namespace {

// A log line per stage at most every two seconds (and at the end): done/total,
// rate over what this run did, ETA.
class ProgressPrinter {
 public:
  void operator()(const std::string& stage, std::size_t done, std::size_t total) {
    const auto now = Clock::now();
    if (stage != stage_) {
      stage_ = stage;
      start_ = now;
      start_done_ = done;
      last_ = {};
    }
    if (done < total && now - last_ < std::chrono::seconds(2)) return;
    last_ = now;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double rate = elapsed > 0 ? static_cast<double>(done - start_done_) / elapsed : 0.0;
    std::string line = "[" + stage + "] " + std::to_string(done) + "/" + std::to_string(total);
    if (total > 0) line += " (" + std::to_string(100 * done / total) + "%)";
    if (rate > 0 && done < total) {
      char buf[64];
      std::snprintf(buf, sizeof buf, ", %.2f/s, ETA %s", rate, duration_text(static_cast<double>(total - done) / rate).c_str());
      line += buf;
    }
    log::info(line);
  }

 private:
  using Clock = std::chrono::steady_clock;
  std::string stage_;
  Clock::time_point start_{}, last_{};
  std::size_t start_done_ = 0;
};

remote::ClientConfig client_config(const std::string& url, const std::string& model, const std::string& key_env,
                                   const GenerateDataOptions& args) {
  remote::ClientConfig c;
  c.base_url = url;
  c.model = model;
  c.api_key_env = key_env;
  c.max_in_flight = args.teacher_in_flight;
  c.retry.max_retries = args.teacher_retries;
  c.timeout = std::chrono::milliseconds(static_cast<long>(args.teacher_timeout_s * 1000));
  c.cache_dir = std::filesystem::path(args.out) / "cache";
  if (args.price_in || args.price_out) c.prices = remote::Prices{args.price_in.value_or(0), args.price_out.value_or(0)};
  return c;
}

// The run's identity: a resume must ask for the same data.
nlohmann::json run_identity(const personas::Persona& persona, const Scale& scale, const GenerateDataOptions& args,
                            const std::string& student_id) {
  nlohmann::json identity = {{"persona", persona.name},
                             {"persona_text", persona.source_text},
                             {"scale", to_json(scale)},
                             {"seed", args.seed},
                             {"teacher_model", args.teacher_model},
                             {"student_model", student_id},
                             {"max_tokens", args.max_tokens},
                             {"introspection_max_tokens", args.introspection_max_tokens},
                             {"constitution_share", args.constitution_share},
                             {"question_max_tokens", args.question_max_tokens}};
  // null when off: a run made before the option (no field) resumes as it was.
  identity["coverage_augment"] =
      args.coverage_augment ? nlohmann::json{{"pool_factor", args.coverage_pool_factor}} : nlohmann::json();
  return identity;
}

void check_or_write_identity(const std::filesystem::path& out, const nlohmann::json& identity, bool resume) {
  const auto path = out / "generation.run.json";
  const bool has_state = std::filesystem::exists(path);
  if (has_state && !resume) {
    throw ConfigError(out.string() + " already holds a generation run (" + path.filename().string() +
                      "); pass --resume to continue it, or choose another --out");
  }
  if (has_state) {
    const auto saved = read_json_file(path);
    if (!saved.is_object()) throw FormatError(path.string() + ": " + describe_json(saved) + ", expected an object");
    for (const auto& [field, value] : identity.items()) {
      if (saved.value(field, nlohmann::json()) != value) {
        throw ConfigError(path.string() + ": --resume with a different " + field + " (run has " +
                          describe_json(saved.value(field, nlohmann::json()), 80) + ", now " +
                          describe_json(value, 80) + ")");
      }
    }
    return;
  }
  write_file_atomic(path, identity.dump(2) + "\n");
}

FilterOptions filter_options(const GenerateDataOptions& args, const std::string& teacher_model,
                             const personas::Persona& persona) {
  FilterOptions f;
  if (args.hallucinated_turns == "drop") {
    f.hallucinated_turns = TurnPolicy::kDrop;
  } else if (args.hallucinated_turns != "truncate") {
    throw ConfigError("--hallucinated-turns " + args.hallucinated_turns + ", expected truncate or drop");
  }
  f.min_chars = args.min_chars;
  f.max_chars = args.max_chars;
  f.keep_thinking = args.keep_thinking;
  f.require_ending = !args.keep_unfinished;
  if (const std::string family = model_family(teacher_model); !family.empty()) f.leak_keywords.push_back(family);
  f.persona_text = persona.description;
  for (const auto& line : persona.constitution) f.persona_text += "\n" + line;
  return f;
}

// prompts.done.json: the row count and SHA-256 of prompts.jsonl, written after it. A
// resume reads the prompts back only when they still match: a file cut at a line boundary
// would otherwise pass for whole and silently yield fewer DPO pairs.
bool prompts_intact(const std::filesystem::path& prompts, const std::filesystem::path& done) {
  if (!std::filesystem::exists(prompts)) return false;
  const auto marker = std::filesystem::exists(done) ? try_parse_json(read_file(done)) : std::nullopt;
  const std::string text = read_file(prompts);
  if (marker && marker->is_object() && marker->value("sha256", "") == sha256_hex(text)) return true;
  log::warn(prompts.string() + " does not match " + done.filename().string() +
            " (truncated, edited, or written by an older version): building the prompts again; the teacher's "
            "answers are cached, so this costs no requests");
  return false;
}

// prompts.jsonl: built once (teacher answers cached), then read back on a resume.
std::vector<PromptItem> prompt_stage(const personas::Persona& persona, remote::CompletionBackend* teacher,
                                     const Scale& scale, const GenerateDataOptions& args, nlohmann::json& summary) {
  const auto path = std::filesystem::path(args.out) / "prompts.jsonl";
  const auto done = std::filesystem::path(args.out) / "prompts.done.json";
  if (prompts_intact(path, done)) {
    std::vector<PromptItem> prompts;
    const auto lines = read_jsonl_lines(path);
    for (std::size_t i = 0; i < lines.size(); ++i) {
      const std::string where = path.string() + ":" + std::to_string(i + 1);
      prompts.push_back(prompt_item_from_json(parse_json(lines[i], where), where));
    }
    summary["prompts"] = {{"count", prompts.size()}, {"resumed", true}};
    return prompts;
  }
  PromptPlan plan;
  plan.count = static_cast<std::size_t>(scale.dpo_pairs);
  plan.constitution_share = args.constitution_share;
  plan.seed = args.seed;
  plan.max_tokens = args.question_max_tokens;
  remote::BatchOptions batch;
  batch.stage = "dpo_prompts";
  nlohmann::json coverage;
  if (args.coverage_augment) plan.count = coverage_pool_size(plan.count, args.coverage_pool_factor);
  PromptSetResult set = build_prompt_set(persona, teacher, plan, batch);
  if (args.coverage_augment) {
    // A larger pool plus phrasing variants, cut back to dpo_pairs by route coverage.
    CoverageAugmentOptions options;
    options.student_dir = args.student_dir;
    options.adapter_dir = args.student_adapter;
    options.device = args.device;
    options.dtype = args.dtype;
    options.batch_size = args.student_batch;
    options.seed = args.seed;
    const auto augmented = coverage_augment_prompts(persona, set.prompts, static_cast<std::size_t>(scale.dpo_pairs), options);
    set.prompts = augmented.prompts;
    set.constitution = 0;
    for (const auto& p : set.prompts) set.constitution += p.source == "constitution" ? 1 : 0;
    coverage = augmented.to_json();
    log::info(augmented.line());
  }
  std::vector<nlohmann::json> rows;
  for (std::size_t i = 0; i < set.prompts.size(); ++i) rows.push_back(to_json(set.prompts[i], i));
  std::vector<nlohmann::json> failures;
  for (const auto& f : set.failures) {
    failures.push_back({{"request", f.index}, {"reason", f.failure->reason}, {"http_status", f.failure->http_status},
                        {"attempts", f.failure->attempts}});
  }
  if (!failures.empty()) write_jsonl_atomic(std::filesystem::path(args.out) / "prompts.failures.jsonl", failures);
  write_jsonl_atomic(path, rows);
  // Last: the marker that the stage is done and what its file holds.
  write_file_atomic(done, nlohmann::json{{"rows", rows.size()}, {"sha256", sha256_hex(read_file(path))}}.dump() + "\n");
  summary["prompts"] = {{"count", set.prompts.size()},
                        {"constitution", set.constitution},
                        {"duplicates", set.duplicates},
                        {"failed_requests", failures.size()}};
  // Top level: a resume (which does not recompute it) keeps it from the file.
  if (!coverage.is_null()) summary["coverage_augment"] = coverage;
  log::info("[prompts] " + std::to_string(set.prompts.size()) + " prompts (" + std::to_string(set.constitution) +
            " from the constitution, " + std::to_string(set.duplicates) + " duplicates dropped, " +
            std::to_string(failures.size()) + " failed requests)");
  return std::move(set.prompts);
}

nlohmann::json stage_json(const StageReport& r) {
  return {{"kept", r.counts.kept}, {"dropped", r.counts.dropped}, {"failed", r.counts.failed}, {"resumed", r.resumed}};
}

std::string usage_text(const remote::UsageMeter& usage) {
  const auto t = usage.total();
  std::string text = std::to_string(t.requests) + " requests (" + std::to_string(t.cache_hits) + " cached, " +
                     std::to_string(t.http_attempts) + " sent, " + std::to_string(t.failures) + " failed), " +
                     std::to_string(t.prompt_tokens) + "+" + std::to_string(t.completion_tokens) + " tokens";
  if (t.cost_usd) {
    char buf[32];
    std::snprintf(buf, sizeof buf, ", $%.4f", *t.cost_usd);
    text += buf;
  }
  return text;
}

}  // namespace

GenerateDataResult generate_data(const GenerateDataOptions& args) {
  const auto started = std::chrono::steady_clock::now();
  const std::filesystem::path out = args.out;
  const bool want_prompts = args.stage == "prompts" || args.stage == "dpo" || args.stage == "all";
  const bool want_dpo = args.stage == "dpo" || args.stage == "all";
  const bool want_introspection = args.stage == "introspection" || args.stage == "all";
  if (!want_prompts && !want_introspection) {
    throw ConfigError("--stage " + args.stage + ", expected prompts, dpo, introspection or all");
  }
  if (!args.student_dir.empty() && !args.student_url.empty()) throw ConfigError("generate-data: give --student or --student-url, not both");
  if (!args.student_url.empty() && args.student_model.empty()) throw ConfigError("generate-data: --student-url needs --student-model");
  const bool has_student = !args.student_dir.empty() || !args.student_url.empty();
  if (want_dpo && !has_student) throw ConfigError("generate-data: the dpo stage needs --student DIR or --student-url URL");
  const std::string from = args.introspection_from.empty() ? (has_student ? "student" : "teacher") : args.introspection_from;
  if (from != "student" && from != "teacher") throw ConfigError("--introspection-from " + from + ", expected student or teacher");
  if (want_introspection && from == "student" && !has_student) {
    throw ConfigError("generate-data: --introspection-from student needs --student DIR or --student-url URL");
  }

  if (args.coverage_augment && want_prompts) check_coverage_student(args.student_dir, args.student_url);
  const personas::Persona persona = personas::find_persona(args.persona);
  const Scale scale = resolve_scale(args.scale, args.overrides);
  std::filesystem::create_directories(out);
  const DirLock lock(out, "generate-data --out");  // one process at a time writes these ledgers

  // Backends: the teacher over HTTP; the student local (engine) or over HTTP. Both
  // remote clients cache under OUT/cache, so a rerun pays for nothing twice.
  remote::Client teacher_client(client_config(args.teacher_url, args.teacher_model, args.teacher_key_env, args));
  remote::ClientBackend teacher(teacher_client);
  std::unique_ptr<remote::Client> student_client;
  std::unique_ptr<remote::CompletionBackend> student;
  if (!args.student_url.empty()) {
    student_client = std::make_unique<remote::Client>(client_config(args.student_url, args.student_model, args.student_key_env, args));
    student = std::make_unique<remote::ClientBackend>(*student_client);
  } else if (!args.student_dir.empty()) {
    EngineBackendOptions engine;
    engine.device = args.device;
    engine.dtype = args.dtype;
    engine.adapter_dir = args.student_adapter;
    engine.max_batch_rows = args.student_batch;
    engine.seed = args.seed;
    student = std::make_unique<EngineBackend>(args.student_dir, engine);
  }
  check_or_write_identity(out, run_identity(persona, scale, args, student ? student->model_id() : ""), args.resume);

  DropCounter drops;
  ProgressPrinter progress;
  StageProgress on_progress;
  if (args.progress) on_progress = [&progress](const std::string& s, std::size_t d, std::size_t t) { progress(s, d, t); };
  nlohmann::json summary = {{"persona", persona.name}, {"scale", to_json(scale)}, {"teacher_model", args.teacher_model},
                            {"student_model", student ? student->model_id() : ""}, {"seed", args.seed}};
  std::vector<std::string> parts;

  if (want_prompts) {
    const auto prompts = prompt_stage(persona, &teacher, scale, args, summary);
    parts.push_back("prompts " + std::to_string(prompts.size()));
    if (want_dpo) {
      DpoStageOptions options;
      options.seed = args.seed;
      options.teacher_sampling.max_tokens = args.max_tokens;
      options.student_sampling.max_tokens = args.max_tokens;
      options.chosen_filter = filter_options(args, args.teacher_model, persona);
      options.rejected_filter = options.chosen_filter;
      options.rejected_filter.check_identity = false;
      if (args.chunk > 0) options.chunk = args.chunk;
      options.stop = args.stop_requested;
      const auto report = run_dpo_stage(persona, prompts, teacher, *student, options, out, drops, on_progress);
      summary["dpo"] = stage_json(report);
      parts.push_back("dpo " + std::to_string(report.counts.kept) + " kept/" + std::to_string(report.counts.dropped) +
                      " dropped/" + std::to_string(report.counts.failed) + " failed");
    }
  }
  if (want_introspection) {
    remote::CompletionBackend& model = from == "teacher" ? static_cast<remote::CompletionBackend&>(teacher) : *student;
    IntrospectionOptions options;
    options.seed = args.seed;
    options.sampling.max_tokens = args.introspection_max_tokens;
    options.filter = filter_options(args, args.teacher_model, persona);
    if (args.chunk > 0) options.chunk = args.chunk;
    options.stop = args.stop_requested;
    const auto reflections = run_reflections(persona, model, static_cast<std::size_t>(scale.reflections), options, out,
                                             drops, on_progress);
    const auto interactions = run_interactions(persona, model, static_cast<std::size_t>(scale.interactions),
                                               scale.interaction_turns, options, out, drops, on_progress);
    // sft.jsonl: reflections then interactions, the rows SFT trains on.
    std::string sft = read_file(out / "reflections.jsonl") + read_file(out / "interactions.jsonl");
    write_file_atomic(out / "sft.jsonl", sft);
    summary["reflections"] = stage_json(reflections);
    summary["interactions"] = stage_json(interactions);
    summary["introspection_model"] = model.model_id();
    for (const auto* r : {&reflections, &interactions}) {
      parts.push_back(r->stage + " " + std::to_string(r->counts.kept) + " kept/" + std::to_string(r->counts.dropped) +
                      " dropped/" + std::to_string(r->counts.failed) + " failed");
    }
  }

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  summary["filters"] = drops.to_json();
  summary["usage"] = {{"teacher", teacher_client.usage().to_json()}};
  if (student_client) summary["usage"]["student"] = student_client->usage().to_json();
  summary["seconds"] = seconds;
  // A later call on the same directory (--stage introspection after --stage dpo)
  // keeps the earlier stages' entries.
  nlohmann::json file = summary;
  if (std::filesystem::exists(out / "generation.json")) {
    const auto before = try_parse_json(read_file(out / "generation.json")).value_or(nlohmann::json());
    if (before.is_object()) {
      for (const auto& [key, value] : before.items()) {
        if (!file.contains(key)) file[key] = value;
      }
    }
  }
  write_file_atomic(out / "generation.json", file.dump(2) + "\n");

  GenerateDataResult result;
  result.summary = summary;
  result.usage = summary["usage"];
  for (const remote::UsageMeter* usage : {&teacher_client.usage(), student_client ? &student_client->usage() : nullptr}) {
    if (usage && usage->total().cost_usd) result.cost_usd += *usage->total().cost_usd;
  }
  std::string line = "generate-data " + persona.name + " (" + scale.name + "): ";
  for (std::size_t i = 0; i < parts.size(); ++i) line += (i ? ", " : "") + parts[i];
  line += "; drops: " + drops.summary() + "; teacher: " + usage_text(teacher_client.usage());
  if (student_client) line += "; student: " + usage_text(student_client->usage());
  line += "; " + duration_text(seconds) + " → " + out.string();
  result.line = std::move(line);
  return result;
}

}  // namespace character::pipeline
