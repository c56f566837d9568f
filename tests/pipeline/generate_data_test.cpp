// `character generate-data` end to end over real HTTP on loopback:
// - with a REAL teacher: a tiny model from `init-model` behind the project's
//   OpenAI-compatible server (remote/server.h + the engine backend, what
//   `character serve` runs), the local engine as student; a rerun costs nothing;
// - with scripted backends behind the same server for fault cases: failed requests
//   are recorded and retried on resume, and SIGKILLs at several points followed by
//   resumes give files equal to an uninterrupted run's, with no request answered twice.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "base/atomic_file.h"
#include "base/dir_lock.h"
#include "base/error.h"
#include "pipeline/commands.h"
#include "pipeline/engine_backend.h"
#include "pipeline/gen_prompts.h"
#include "remote/server.h"
#include "tests/pipeline/cli_support.h"
#include "tests/test_support.h"

extern char** environ;

namespace character::pipeline {
namespace {

using character::testing::fixture;
using character::testing::TempDir;
using character::testing::character_binary;
using character::testing::run_cli;
using nlohmann::json;

std::vector<json> rows_of(const std::filesystem::path& path) {
  std::vector<json> rows;
  for (const auto& line : read_jsonl_lines(path)) rows.push_back(json::parse(line));
  return rows;
}

// A scripted model: a teacher that answers in the pirate's voice (and lists
// questions when asked for them), or a student that answers generically. It counts
// the answers it gave per request (messages + sampling), can fail chosen prompts,
// and can SIGKILL a child process when its Nth request of a run arrives.
class ScriptedModel : public remote::CompletionBackend {
 public:
  ScriptedModel(std::string id, bool teacher) : id_(std::move(id)), teacher_(teacher) {}
  std::string model_id() const override { return id_; }

  remote::Response complete_chat(const remote::ChatRequest& request, const remote::CallOptions&) override {
    std::lock_guard lock(mutex_);
    // Requests of a killed client still queued at the server are not answered: a
    // dead client cannot receive (or pay for) them.
    if (dead_) throw RemoteError("scripted: the client is dead");
    ++calls_;
    if (kill_at_ > 0 && calls_ == kill_at_ && victim_ > 0) {
      // Let the answers already sent reach the victim's cache, then kill it in the middle of its run.
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      ::kill(victim_, SIGKILL);
      dead_ = true;
      throw RemoteError("scripted: killed the client");
    }
    const std::string& user = request.messages.back().content;
    if (fail_ && request.messages.front().role == "system" && fail_(user)) {
      ++failed_;
      throw RemoteError("scripted failure for \"" + user + "\"");
    }
    json key = json::array();
    for (const auto& m : request.messages) key.push_back({m.role, m.content});
    key.push_back(request.sampling.seed.value_or(-1));
    key.push_back(request.sampling.max_tokens.value_or(-1));
    ++answered_[key.dump()];
    remote::Response response;
    response.choices.push_back({answer(request), "stop"});
    response.usage = {100, 30};
    return response;
  }
  remote::Response complete_text(const remote::CompletionRequest&, const remote::CallOptions&) override {
    throw ConfigError("scripted: no text completions");
  }

  void kill_on_call(int n, pid_t victim) {
    std::lock_guard lock(mutex_);
    calls_ = 0;
    kill_at_ = n;
    victim_ = victim;
    dead_ = false;
  }
  void fail_when(std::function<bool(const std::string&)> f) {
    std::lock_guard lock(mutex_);
    fail_ = std::move(f);
  }
  std::map<std::string, int> answered() const {
    std::lock_guard lock(mutex_);
    return answered_;
  }
  int failed() const {
    std::lock_guard lock(mutex_);
    return failed_;
  }

 private:
  std::string answer(const remote::ChatRequest& r) const {
    const std::string& user = r.messages.back().content;
    const std::string seed = std::to_string(r.sampling.seed.value_or(0) % 100000);
    if (user.starts_with("Below is a character")) {
      std::string lines;
      for (int i = 0; i < 12; ++i) lines += "What would ye do in storm number " + seed + "-" + std::to_string(i) + "?\n";
      return lines;
    }
    if (!teacher_) return "Of course! I'd be happy to help with that. Here is a clear answer (" + seed + ").";
    return "Ahoy, matey! Ye asked about \"" + user.substr(0, 30) + "\", and I be answerin' true, by the tide (" +
           seed + ").";
  }

  std::string id_;
  bool teacher_;
  mutable std::mutex mutex_;
  int calls_ = 0, kill_at_ = 0, failed_ = 0;
  bool dead_ = false;
  pid_t victim_ = 0;
  std::function<bool(const std::string&)> fail_;
  std::map<std::string, int> answered_;
};

// A backend behind the project's HTTP server on an ephemeral loopback port.
struct Served {
  explicit Served(remote::CompletionBackend& backend) : server(backend, options()) { server.start(); }
  static remote::ServerOptions options() {
    remote::ServerOptions o;
    o.port = 0;
    return o;
  }
  remote::Server server;
};

std::vector<std::string> scripted_args(const Served& teacher, const Served& student, const std::filesystem::path& out) {
  return {"generate-data", "pirate", "--teacher-url", teacher.server.base_url(), "--teacher-model", "scripted-teacher",
          "--student-url", student.server.base_url(), "--student-model", "scripted-student", "--out", out.string(),
          "--scale", "smoke", "--seed", "3", "--teacher-max-retries", "0"};
}

const std::vector<std::string> kOutputs = {"prompts.jsonl", "dpo.jsonl", "reflections.jsonl", "interactions.jsonl",
                                           "sft.jsonl"};

TEST(GenerateData, RealTeacherServedByTheEngineEndToEndAndRerunIsFree) {
  TempDir dir;
  const auto model_dir = dir / "tiny";
  run_cli({"init-model", "--arch", "qwen3", "--preset", "tiny", "--tokenizer", fixture("tokenizers/qwen3").string(),
           model_dir.string(), "--seed", "1"});
  EngineBackendOptions engine;
  engine.model_id = "tiny-teacher";
  EngineBackend teacher(model_dir, engine);
  Served served(teacher);
  const auto out = dir / "run";
  std::vector<std::string> args = {"generate-data", "pirate", "--teacher-url", served.server.base_url(),
                                   "--teacher-model", "tiny-teacher", "--student", model_dir.string(), "--out",
                                   out.string(), "--scale", "smoke", "--dpo-pairs", "6", "--reflections", "4",
                                   "--interactions", "2", "--interaction-turns", "3", "--max-tokens", "8",
                                   "--introspection-max-tokens", "8", "--question-max-tokens", "48", "--min-chars",
                                   "1", "--keep-unfinished", "--json"};
  const json first = json::parse(run_cli(args));

  // Every item is accounted for: kept + dropped + failed = the scale's counts.
  const auto total = [](const json& s) { return s["kept"].get<int>() + s["dropped"].get<int>() + s["failed"].get<int>(); };
  EXPECT_EQ(first["prompts"]["count"], 6);
  EXPECT_EQ(total(first["dpo"]), 6);
  EXPECT_EQ(total(first["reflections"]), 4);
  EXPECT_EQ(total(first["interactions"]), 2);
  EXPECT_EQ(first["dpo"]["failed"], 0);
  EXPECT_GT(first["dpo"]["kept"].get<int>(), 0);
  const auto prompts = rows_of(out / "prompts.jsonl");
  std::set<std::string> distinct;
  for (const auto& p : prompts) EXPECT_TRUE(distinct.insert(normalize_prompt(p["prompt"].get<std::string>())).second);
  for (const auto& row : rows_of(out / "dpo.jsonl")) {
    for (const char* field : {"prompt", "chosen", "rejected", "teacher_model", "student_model", "persona", "category", "source"}) {
      EXPECT_TRUE(row.contains(field)) << field;
    }
    EXPECT_EQ(row["teacher_model"], "tiny-teacher");
    EXPECT_EQ(row["student_model"], "tiny");
    EXPECT_EQ(row["persona"], "pirate");
  }
  for (const auto& row : rows_of(out / "sft.jsonl")) {
    const auto& m = row["messages"];
    ASSERT_GE(m.size(), 2u);
    for (std::size_t i = 0; i < m.size(); ++i) EXPECT_EQ(m[i]["role"], i % 2 == 0 ? "user" : "assistant");
  }
  const auto& usage = first["usage"]["teacher"]["total"];
  EXPECT_GT(usage["http_attempts"].get<int>(), 6);  // question rounds + 6 chosen answers

  // A rerun of the finished run sends nothing and changes nothing.
  std::map<std::string, std::string> before;
  for (const auto& f : kOutputs) before[f] = read_file(out / f);
  args.push_back("--resume");
  const json second = json::parse(run_cli(args));
  EXPECT_EQ(second["usage"]["teacher"]["total"]["http_attempts"], 0);
  for (const auto& f : kOutputs) EXPECT_EQ(read_file(out / f), before[f]) << f;

  // Everything but the cache removed: the teacher's answers all come from the cache,
  // and the seeded local student gives the same text, so prompts and pairs come out equal.
  for (const auto& entry : std::filesystem::directory_iterator(out)) {
    if (entry.path().filename() != "cache") std::filesystem::remove_all(entry.path());
  }
  auto dpo_only = args;
  dpo_only.insert(dpo_only.end(), {"--stage", "dpo"});
  const json third = json::parse(run_cli(dpo_only));
  EXPECT_EQ(third["usage"]["teacher"]["total"]["http_attempts"], 0);
  EXPECT_EQ(third["usage"]["teacher"]["total"]["cache_hits"], usage["http_attempts"]);
  for (const auto& f : {"prompts.jsonl", "dpo.jsonl"}) EXPECT_EQ(read_file(out / f), before[f]) << f;

  // Issue 14: prompts.jsonl cut at a line boundary passed for whole and gave fewer pairs.
  // It no longer matches prompts.done.json, so a resume builds the prompts again (from the
  // cache) and ends with every pair.
  const std::string prompt_lines = read_file(out / "prompts.jsonl");
  write_file_atomic(out / "prompts.jsonl", prompt_lines.substr(0, prompt_lines.find('\n', prompt_lines.size() / 2) + 1));
  const json fourth = json::parse(run_cli(dpo_only));  // dpo_only holds --resume
  EXPECT_EQ(fourth["usage"]["teacher"]["total"]["http_attempts"], 0);
  for (const auto& f : {"prompts.jsonl", "dpo.jsonl"}) EXPECT_EQ(read_file(out / f), before[f]) << f;

  // Without --resume an existing run is refused.
  args.pop_back();
  try {
    run_cli(args);
    ADD_FAILURE() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("--resume"), std::string::npos);
  }
}

// Issue 14: two processes resuming one --out both paid for every request. The second is
// refused before it sends or writes anything.
TEST(GenerateData, ASecondProcessOnTheSameOutIsRefused) {
  ScriptedModel teacher("scripted-teacher", true), student("scripted-student", false);
  Served t(teacher), s(student);
  TempDir dir;
  const auto out = dir / "run";
  const DirLock other(out, "generate-data --out");  // as another process would hold it
  try {
    run_cli(scripted_args(t, s, out));
    ADD_FAILURE() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("is in use by another process"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(teacher.answered().empty());
  EXPECT_FALSE(std::filesystem::exists(out / "prompts.jsonl"));
}

TEST(GenerateData, FailedRequestsAreRecordedAndRetriedOnResume) {
  ScriptedModel teacher("scripted-teacher", true), student("scripted-student", false);
  Served t(teacher), s(student);
  TempDir dir;
  const auto out = dir / "run";
  // Chosen answers of every third DPO prompt (by text) fail: HTTP 500, no retries.
  const auto doomed = [](const std::string& prompt) { return std::hash<std::string>{}(prompt) % 3 == 0; };
  teacher.fail_when([&](const std::string& user) { return !user.starts_with("Below is") && !user.starts_with("Write") && doomed(user); });
  auto args = scripted_args(t, s, out);
  ::setenv("GEN_TEST_TEACHER_KEY", "sk-gen-secret-4242", 1);
  args.insert(args.end(), {"--stage", "dpo", "--json", "--teacher-api-key-env", "GEN_TEST_TEACHER_KEY"});
  // Exit 6 (issue 14: it was 0 even when every request failed), after saving what came back.
  try {
    run_cli(args);
    ADD_FAILURE() << "expected RemoteError";
  } catch (const RemoteError& e) {
    EXPECT_NE(std::string(e.what()).find("request(s) failed after their retries"), std::string::npos) << e.what();
    EXPECT_EQ(e.exit_code(), 6);
  }
  const json first = json::parse(read_file(out / "generation.json"));
  int expected_failures = 0;
  for (const auto& p : rows_of(out / "prompts.jsonl")) expected_failures += doomed(p["prompt"].get<std::string>());
  ASSERT_GT(expected_failures, 0);
  EXPECT_EQ(first["dpo"]["failed"], expected_failures);
  // (A scripted answer that quotes a prompt such as "Are you just role-playing?" is an identity leak.)
  EXPECT_EQ(first["dpo"]["kept"].get<int>() + first["dpo"]["dropped"].get<int>(), 16 - expected_failures);
  const auto failures = rows_of(out / "dpo.failures.jsonl");
  ASSERT_EQ(static_cast<int>(failures.size()), expected_failures);
  for (const auto& f : failures) {
    EXPECT_NE(f["reason"].get<std::string>().find("teacher: HTTP 500"), std::string::npos) << f.dump();
    EXPECT_EQ(f["detail"]["http_status"], 500);
  }
  EXPECT_EQ(first["usage"]["teacher"]["total"]["failures"], expected_failures);

  // The teacher recovers; a resume asks again for the failed ones only.
  teacher.fail_when({});
  args.push_back("--resume");
  const json second = json::parse(run_cli(args));
  EXPECT_EQ(second["dpo"]["kept"].get<int>() + second["dpo"]["dropped"].get<int>(), 16);
  EXPECT_EQ(second["dpo"]["failed"], 0);
  EXPECT_EQ(second["dpo"]["resumed"], 16 - expected_failures);
  EXPECT_EQ(second["usage"]["teacher"]["total"]["http_attempts"], expected_failures);
  EXPECT_FALSE(std::filesystem::exists(out / "dpo.failures.jsonl"));
  for (const auto& [request, n] : teacher.answered()) EXPECT_EQ(n, 1) << request;
  for (const auto& [request, n] : student.answered()) EXPECT_EQ(n, 1) << request;

  // The key reached no file of the run (ledgers, outputs, summary, cache).
  int files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(out)) {
    if (!entry.is_regular_file()) continue;
    ++files;
    EXPECT_EQ(read_file(entry.path()).find("sk-gen-secret-4242"), std::string::npos) << entry.path();
  }
  EXPECT_GT(files, 16);  // the cache entries are among them
}

// Runs the binary with `args`, output to `log`; returns the wait status.
int run_child(const std::vector<std::string>& args, const std::filesystem::path& log, ScriptedModel* killer, int kill_at) {
  std::vector<std::string> full = {character_binary().string()};
  full.insert(full.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : full) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    ADD_FAILURE() << "cannot start " << argv[0];
    return -1;
  }
  if (killer) killer->kill_on_call(kill_at, pid);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (killer) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the dead client's queued requests drain
    killer->kill_on_call(0, 0);
  }
  return status;
}

TEST(GenerateData, SigkillAtSeveralPointsThenResumeEqualsAnUninterruptedRun) {
  ASSERT_TRUE(std::filesystem::exists(character_binary())) << character_binary() << " (build the character target)";
  TempDir dir;

  // The uninterrupted run.
  ScriptedModel clean_teacher("scripted-teacher", true), clean_student("scripted-student", false);
  Served ct(clean_teacher), cs(clean_student);
  auto clean_args = scripted_args(ct, cs, dir / "clean");
  clean_args.insert(clean_args.end(), {"--chunk", "4"});
  ASSERT_EQ(run_child(clean_args, dir / "clean.log", nullptr, 0), 0) << read_file(dir / "clean.log");

  // The same run (4 items per batch, so ledgers fill in steps) killed three times:
  // in the DPO stage with 8 pairs recorded (teacher call 9: two question rounds,
  // two batches of 4), among the first reflections (student call 6: 4 rejected
  // answers, then reflections), later among the reflections (student call 30), then resumed.
  ScriptedModel teacher("scripted-teacher", true), student("scripted-student", false);
  Served t(teacher), s(student);
  auto args = scripted_args(t, s, dir / "killed");
  args.insert(args.end(), {"--chunk", "4", "--resume"});
  const std::vector<std::pair<ScriptedModel*, int>> kills = {{&teacher, 9}, {&student, 6}, {&student, 30}};
  for (const auto& [who, at] : kills) {
    const int status = run_child(args, dir / "killed.log", who, at);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "kill at " << at << ": status " << status << "\n"
                                                                      << read_file(dir / "killed.log");
  }
  ASSERT_EQ(run_child(args, dir / "killed.log", nullptr, 0), 0) << read_file(dir / "killed.log");

  for (const auto& f : kOutputs) {
    EXPECT_EQ(read_file(dir / "killed" / f), read_file(dir / "clean" / f)) << f;
    std::set<std::string> ids;
    for (const auto& row : rows_of(dir / "killed" / f)) {
      if (row.contains("id")) {
        EXPECT_TRUE(ids.insert(row["id"].get<std::string>()).second) << f << " " << row["id"];
      }
    }
  }
  const json summary = json::parse(read_file(dir / "killed" / "generation.json"));
  EXPECT_EQ(summary["dpo"]["kept"].get<int>() + summary["dpo"]["dropped"].get<int>(), 16);
  EXPECT_EQ(rows_of(dir / "killed" / "dpo.jsonl").size(), summary["dpo"]["kept"].get<std::size_t>());
  EXPECT_EQ(summary["reflections"]["kept"], 40);
  EXPECT_EQ(summary["interactions"]["kept"], 4);
  EXPECT_GT(summary["reflections"]["resumed"].get<int>(), 0);  // the last run found finished reflections
  // No request was answered twice, and the killed run asked exactly what the clean run asked.
  for (const auto* m : {&teacher, &student}) {
    for (const auto& [request, n] : m->answered()) EXPECT_EQ(n, 1) << request;
  }
  const auto keys = [](const ScriptedModel& m) {
    std::set<std::string> k;
    for (const auto& [request, n] : m.answered()) k.insert(request);
    return k;
  };
  EXPECT_EQ(keys(teacher), keys(clean_teacher));
  EXPECT_EQ(keys(student), keys(clean_student));
}

}  // namespace
}  // namespace character::pipeline
