// RUN/manifest.json (pipeline/run_manifest.h): SHA-256 of files and directories
// checked against coreutils' sha256sum, the hash cache's (size, mtime) rule,
// stage records written to disk at every transition, the resume validity check,
// and load errors that name the file and field.
#include "pipeline/run_manifest.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>

#include "base/atomic_file.h"
#include "base/error.h"
#include "tests/test_support.h"

namespace character::pipeline {
namespace {

namespace fs = std::filesystem;
using character::testing::TempDir;
using nlohmann::json;

// stdout of a shell command (the reference: coreutils).
std::string shell(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  std::array<char, 4096> buf{};
  while (pipe && std::fgets(buf.data(), buf.size(), pipe)) out += buf.data();
  if (pipe) {
    EXPECT_EQ(pclose(pipe), 0) << command;
  }
  return out;
}

RunConfig test_config() {
  RunConfig c = default_run_config();
  c.persona = "pirate";
  c.scale = "smoke";
  c.teacher.url = "http://127.0.0.1:1/v1";
  c.teacher.model = "teacher";
  c.teacher.api_key_env = "CHARACTER_TEST_TEACHER_KEY";
  return c;
}

json read_manifest(const fs::path& run) { return json::parse(read_file(run / "manifest.json")); }

TEST(RunManifest, FileHashesAreSha256) {
  TempDir dir;
  write_file_atomic(dir / "empty", "");
  write_file_atomic(dir / "abc", "abc");
  EXPECT_EQ(sha256_file(dir / "empty"), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_file(dir / "abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // Larger than one 1 MiB read buffer.
  write_file_atomic(dir / "big", std::string(3 * (1 << 20) + 17, 'x'));
  EXPECT_EQ(sha256_file(dir / "big"), shell("sha256sum " + (dir / "big").string()).substr(0, 64));
  EXPECT_THROW(sha256_file(dir / "absent"), IoError);
}

TEST(RunManifest, DirectoryHashIsSha256sumOfSortedFileLines) {
  TempDir dir;
  const fs::path d = dir / "adapter";
  write_file_atomic(d / "b.json", "{}");
  write_file_atomic(d / "a.safetensors", "weights");
  write_file_atomic(d / "sub" / "Z.txt", "z");
  write_file_atomic(d / "sub" / "a.txt", "a");
  fs::create_directories(d / "empty-dir");
  const std::string reference =
      shell("cd " + d.string() + " && find . -type f | sed 's|^\\./||' | LC_ALL=C sort | xargs sha256sum | sha256sum");
  EXPECT_EQ(sha256_path(d), reference.substr(0, 64));
  EXPECT_EQ(sha256_path(d / "b.json"), sha256_file(d / "b.json"));
  write_file_atomic(d / "sub" / "a.txt", "A");
  EXPECT_NE(sha256_path(d), reference.substr(0, 64));
  EXPECT_THROW(sha256_path(dir / "absent"), IoError);
}

TEST(RunManifest, HashCacheTrustsSizeAndMtimeAndPersists) {
  TempDir dir;
  const fs::path file = dir / "weights";
  write_file_atomic(file, "aaaa");
  const auto mtime = fs::last_write_time(file);
  std::string first;
  {
    HashCache cache(dir / "cache.json");
    first = cache.file_hash(file);
    cache.save();
  }
  // Same size and mtime, other bytes: the cache answers (make's and rsync's rule).
  write_file_atomic(file, "bbbb");
  fs::last_write_time(file, mtime);
  HashCache reloaded(dir / "cache.json");
  EXPECT_EQ(reloaded.file_hash(file), first);
  // Another mtime: re-read.
  fs::last_write_time(file, mtime + std::chrono::seconds(5));
  EXPECT_EQ(reloaded.file_hash(file), sha256_file(file));
  EXPECT_NE(reloaded.file_hash(file), first);
}

TEST(RunManifest, CreateWritesTheSchemaWithEveryStagePending) {
  TempDir dir;
  setenv("CHARACTER_TEST_TEACHER_KEY", "sk-test-secret-value", 1);
  const RunConfig config = test_config();
  RunManifest::create(dir / "run", config, {"check", "generate-dpo"});
  const json m = read_manifest(dir / "run");
  EXPECT_EQ(m["format"], "character-run");
  EXPECT_EQ(m["version"], 1);
  EXPECT_EQ(m["persona"], "pirate");
  EXPECT_EQ(m["status"], "running");
  EXPECT_EQ(m["device"], "cpu");
  EXPECT_FALSE(m["code_version"].get<std::string>().empty());
  EXPECT_EQ(m["created"].get<std::string>().size(), 20u);  // 2026-11-23T16:40:05Z
  EXPECT_EQ(m["config"], to_json(config));
  EXPECT_EQ(m["scale"]["dpo_pairs"], 16);
  EXPECT_EQ(m["stages"]["check"]["status"], "pending");
  EXPECT_EQ(m["stages"]["generate-dpo"]["status"], "pending");
  EXPECT_TRUE(m["gates"].is_null());
  EXPECT_EQ(m["exports"], json::array());
  EXPECT_EQ(m["totals"]["cost_usd"], 0.0);
  // Secrets only by name.
  const std::string text = read_file(dir / "run" / "manifest.json");
  EXPECT_NE(text.find("CHARACTER_TEST_TEACHER_KEY"), std::string::npos);
  EXPECT_EQ(text.find("sk-test-secret-value"), std::string::npos);
  unsetenv("CHARACTER_TEST_TEACHER_KEY");
}

TEST(RunManifest, StageTransitionsAreOnDiskAtOnce) {
  TempDir dir;
  const fs::path run = dir / "run";
  RunManifest manifest = RunManifest::create(run, test_config(), {"generate-dpo", "train-dpo"});
  HashCache hashes;
  write_file_atomic(dir / "student" / "config.json", "{\"hidden_size\": 64}");
  write_file_atomic(run / "data" / "dpo.jsonl", "{\"prompt\": \"p\"}\n");

  manifest.stage_running("generate-dpo");
  EXPECT_EQ(read_manifest(run)["stages"]["generate-dpo"]["status"], "running");
  EXPECT_EQ(read_manifest(run)["stages"]["generate-dpo"]["attempts"], 1);

  StageResult result;
  result.inputs = {dir / "student"};
  result.outputs = {"data/dpo.jsonl", "data/never-written.jsonl"};
  result.counts = {{"pairs", 1}};
  result.usage = {{"prompt_tokens", 10}};
  result.cost_usd = 0.25;
  result.warnings = {"one warning"};
  result.summary = "1 pair";
  manifest.stage_done("generate-dpo", result, 2.5, hashes);
  json m = read_manifest(run);
  const json& s = m["stages"]["generate-dpo"];
  EXPECT_EQ(s["status"], "done");
  EXPECT_EQ(s["seconds"], 2.5);
  EXPECT_EQ(s["inputs"][(dir / "student").string()], sha256_path(dir / "student"));
  EXPECT_EQ(s["outputs"]["data/dpo.jsonl"], sha256_file(run / "data" / "dpo.jsonl"));
  EXPECT_TRUE(s["outputs"]["data/never-written.jsonl"].is_null());
  EXPECT_EQ(s["counts"]["pairs"], 1);
  EXPECT_EQ(s["usage"]["prompt_tokens"], 10);
  EXPECT_EQ(s["cost_usd"], 0.25);
  EXPECT_EQ(s["warnings"], json({"one warning"}));
  EXPECT_EQ(s["summary"], "1 pair");
  EXPECT_EQ(m["totals"]["cost_usd"], 0.25);
  EXPECT_EQ(m["totals"]["seconds"], 2.5);

  manifest.stage_running("train-dpo");
  manifest.stage_ended("train-dpo", "interrupted", "stopped at step 3", 1.0);
  m = read_manifest(run);
  EXPECT_EQ(m["stages"]["train-dpo"]["status"], "interrupted");
  EXPECT_EQ(m["stages"]["train-dpo"]["error"], "stopped at step 3");
  manifest.stage_running("train-dpo");  // the resume: a second attempt
  m = read_manifest(run);
  EXPECT_EQ(m["stages"]["train-dpo"]["attempts"], 2);
  EXPECT_FALSE(m["stages"]["train-dpo"].contains("error"));
  EXPECT_EQ(m["totals"]["seconds"], 3.5);

  // Loading gives back the same record and config.
  const RunManifest loaded = RunManifest::load(run);
  EXPECT_EQ(loaded.data(), manifest.data());
  EXPECT_EQ(to_json(loaded.config()), to_json(test_config()));
}

TEST(RunManifest, StillValidUntilAnInputOrOutputChanges) {
  TempDir dir;
  const fs::path run = dir / "run";
  RunManifest manifest = RunManifest::create(run, test_config(), {"train-dpo"});
  HashCache hashes;
  write_file_atomic(run / "data" / "dpo.jsonl", "row\n");
  write_file_atomic(run / "checkpoints" / "dpo" / "adapter" / "adapter_model.safetensors", "w");
  StageResult result;
  result.inputs = {run / "data" / "dpo.jsonl"};
  result.outputs = {"checkpoints/dpo/adapter", "checkpoints/dpo/absent"};
  std::string why;
  EXPECT_FALSE(manifest.stage_still_valid("train-dpo", hashes, why));
  EXPECT_EQ(why, "not finished");
  manifest.stage_running("train-dpo");
  manifest.stage_done("train-dpo", result, 1.0, hashes);
  EXPECT_EQ(read_manifest(run)["stages"]["train-dpo"]["inputs"].begin().key(), "data/dpo.jsonl");  // relative to RUN
  EXPECT_TRUE(manifest.stage_still_valid("train-dpo", hashes, why)) << why;

  HashCache fresh;  // no cached hashes: the content decides
  write_file_atomic(run / "data" / "dpo.jsonl", "other row\n");
  EXPECT_FALSE(manifest.stage_still_valid("train-dpo", fresh, why));
  EXPECT_EQ(why, "input data/dpo.jsonl changed");
  write_file_atomic(run / "data" / "dpo.jsonl", "row\n");
  EXPECT_TRUE(manifest.stage_still_valid("train-dpo", fresh, why)) << why;
  fs::remove_all(run / "checkpoints" / "dpo" / "adapter");
  EXPECT_FALSE(manifest.stage_still_valid("train-dpo", fresh, why));
  EXPECT_EQ(why, "output checkpoints/dpo/adapter is missing");
  write_file_atomic(run / "checkpoints" / "dpo" / "adapter" / "adapter_model.safetensors", "w");
  write_file_atomic(run / "checkpoints" / "dpo" / "absent", "now here");
  EXPECT_FALSE(manifest.stage_still_valid("train-dpo", fresh, why));
  EXPECT_EQ(why, "output checkpoints/dpo/absent changed");
}

TEST(RunManifest, LoadErrorsNameTheFileAndField) {
  TempDir dir;
  EXPECT_THROW(RunManifest::load(dir.path()), IoError);
  write_file_atomic(dir / "manifest.json", "{not json");
  EXPECT_THROW(RunManifest::load(dir.path()), FormatError);
  write_file_atomic(dir / "manifest.json", R"({"format": "character-run", "version": 2})");
  try {
    RunManifest::load(dir.path());
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_EQ(std::string(e.what()), (dir / "manifest.json").string() + ": version: found 2, expected 1");
  }
  write_file_atomic(dir / "manifest.json", R"({"format": "character-run", "version": 1, "persona": "p"})");
  try {
    RunManifest::load(dir.path());
    FAIL();
  } catch (const FormatError& e) {
    EXPECT_EQ(std::string(e.what()), (dir / "manifest.json").string() + ": missing field \"config\"");
  }
  // Issue 14: a field of the wrong type was a JSON type error deep in a command (exit 70).
  // Now it is a FormatError naming the field, whichever field it is.
  const auto created = RunManifest::create(dir / "run", test_config(), {"check", "eval"});
  const json good = read_manifest(dir / "run");
  for (const auto& [pointer, bad] : std::vector<std::pair<std::string, json>>{
           {"/status", 5},
           {"/stages/check", "done"},
           {"/stages/check/seconds", "ten"},
           {"/stages/eval/outputs", json::array({1})},
           {"/exports", json::object()},
           {"/totals/cost_usd", json::array()},
           {"/gates", "passed"}}) {
    json broken = good;
    broken[json::json_pointer(pointer)] = bad;
    write_file_atomic(dir / "run/manifest.json", broken.dump());
    try {
      RunManifest::load(dir / "run");
      ADD_FAILURE() << pointer << " accepted";
    } catch (const FormatError& e) {
      std::string field = pointer.substr(1);
      std::replace(field.begin(), field.end(), '/', '.');
      EXPECT_NE(std::string(e.what()).find(": " + field + " is "), std::string::npos) << e.what();
    }
  }
}

TEST(RunManifest, RecordKeysAreRelativeInsideTheRun) {
  TempDir dir;
  const RunManifest manifest = RunManifest::create(dir / "run", test_config(), {"check"});
  EXPECT_EQ(manifest.record_key(dir / "run" / "data" / "x.jsonl"), "data/x.jsonl");
  EXPECT_EQ(manifest.record_key(dir / "run" / "data" / ".." / "eval"), "eval");
  EXPECT_EQ(manifest.record_key(dir / "student"), (dir / "student").string());
  EXPECT_EQ(manifest.record_key(dir / "run-2" / "x"), (dir / "run-2" / "x").string());
  EXPECT_EQ(manifest.resolve("data/x.jsonl"), dir / "run" / "data" / "x.jsonl");
  EXPECT_EQ(manifest.resolve("/abs/p"), fs::path("/abs/p"));
}

TEST(RunManifest, GateTableLinesFromGatesJson) {
  const json gates = json::parse(R"({"passed": false, "gates": [
      {"name": "in_character_rate", "value": 0.5, "threshold": 1.01, "comparison": ">=", "verdict": "fail", "note": ""},
      {"name": "min_probe_coverage", "value": null, "threshold": 0.9, "comparison": ">=", "verdict": "skip",
       "note": "dense student"}], "notes": ["train the router"]})");
  const auto lines = gate_table(gates);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_NE(lines[1].find("in_character_rate"), std::string::npos);
  EXPECT_NE(lines[1].find("0.5"), std::string::npos);
  EXPECT_NE(lines[1].find("1.01"), std::string::npos);
  EXPECT_NE(lines[1].find("fail"), std::string::npos);
  EXPECT_NE(lines[2].find("(dense student)"), std::string::npos);
  EXPECT_EQ(lines[3], "  note: train the router");
  EXPECT_TRUE(gate_table(nullptr).empty());
}

}  // namespace
}  // namespace character::pipeline
