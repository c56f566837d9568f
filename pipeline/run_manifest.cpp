// RUN/manifest.json: create, load, stage transitions (each saved atomically),
// and the content hashes that decide whether a finished stage may be skipped on
// resume. SHA-256 comes from OpenSSL's EVP (libcrypto, as remote/request_cache).
#include "pipeline/run_manifest.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/json_read.h"
#include "base/utc_time.h"
#include "pipeline/commands.h"

namespace character::pipeline {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

int64_t mtime_ns(const fs::path& file) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(fs::last_write_time(file).time_since_epoch()).count();
}

const std::vector<std::string>& run_statuses() {
  static const std::vector<std::string> s = {"running", "finished", "partial", "failed", "gated-out", "interrupted"};
  return s;
}

}  // namespace

std::string sha256_path(const fs::path& path) {
  HashCache uncached;
  return uncached.path_hash(path);
}

HashCache::HashCache(fs::path file) : file_(std::move(file)) {
  if (file_.empty() || !fs::exists(file_)) return;
  // A damaged cache only costs re-hashing: start empty rather than fail.
  const json data = try_parse_json(read_file(file_)).value_or(json());
  if (!data.is_object()) return;
  for (const auto& [path, e] : data.items()) {
    if (!e.is_object()) continue;
    entries_[path] = {e.value("size", uintmax_t{0}), e.value("mtime_ns", int64_t{0}), e.value("sha256", "")};
  }
}

std::string HashCache::file_hash(const fs::path& file) {
  const fs::path abs = fs::absolute(file).lexically_normal();
  const uintmax_t size = fs::file_size(abs);
  const int64_t mtime = mtime_ns(abs);
  auto it = entries_.find(abs.string());
  if (it != entries_.end() && it->second.size == size && it->second.mtime_ns == mtime && !it->second.sha256.empty())
    return it->second.sha256;
  std::string sha = sha256_file(abs);
  entries_[abs.string()] = {size, mtime, sha};
  dirty_ = true;
  return sha;
}

std::string HashCache::path_hash(const fs::path& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) throw IoError(path.string() + ": does not exist, cannot hash it");
  if (!fs::is_directory(st)) return file_hash(path);
  std::vector<std::pair<std::string, fs::path>> files;
  for (const auto& entry : fs::recursive_directory_iterator(path)) {
    if (entry.is_regular_file()) files.emplace_back(fs::relative(entry.path(), path).generic_string(), entry.path());
  }
  std::sort(files.begin(), files.end());
  Sha256 sha;
  for (const auto& [relative, file] : files) {
    sha.update(file_hash(file) + "  " + relative + "\n");
  }
  return sha.hex();
}

void HashCache::save() const {
  if (file_.empty() || !dirty_) return;
  json data = json::object();
  for (const auto& [path, e] : entries_) data[path] = {{"size", e.size}, {"mtime_ns", e.mtime_ns}, {"sha256", e.sha256}};
  write_file_atomic(file_, data.dump() + "\n");
}


std::string describe_device(const std::string& device) {
  if (device.rfind("cuda", 0) != 0) return device;
  // /proc/driver/nvidia/gpus/<bus id>/information: "Model:           NVIDIA H100 ..."
  std::error_code ec;
  for (const auto& gpu : fs::directory_iterator("/proc/driver/nvidia/gpus", ec)) {
    std::ifstream in(gpu.path() / "information");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("Model:", 0) == 0) {
        const auto start = line.find_first_not_of(" \t", 6);
        if (start != std::string::npos) return device + " (" + line.substr(start) + ")";
      }
    }
  }
  return device;
}

RunManifest RunManifest::create(const fs::path& run_dir, const RunConfig& config,
                                const std::vector<std::string>& stage_names) {
  json stages = json::object();
  for (const auto& name : stage_names) stages[name] = {{"status", "pending"}};
  json data = {{"format", "character-run"},
               {"version", 1},
               {"persona", config.persona},
               {"created", utc_now_text()},
               {"code_version", version_string()},
               {"device", describe_device(config.device)},
               {"config", to_json(config)},
               {"scale", to_json(resolve_scale(config.scale, config.counts))},
               {"status", "running"},
               {"stages", stages},
               {"gates", nullptr},
               {"exports", json::array()},
               {"totals", {{"cost_usd", 0.0}, {"seconds", 0.0}}}};
  RunManifest manifest(run_dir, std::move(data));
  manifest.save();
  return manifest;
}

namespace {

// The types of every field the commands read, so that a damaged or hand-edited manifest is
// a FormatError naming the field, not a type error (exit 70) deep inside a command.
void check_manifest_types(const json& data, const std::string& file) {
  const auto fail = [&](const std::string& field, const json& v, const char* expected) {
    throw FormatError(file + ": " + field + " is " + describe_json(v) + ", expected " + expected);
  };
  const auto optional = [&](const json& parent, const std::string& where, const char* key, auto is_ok,
                            const char* expected) {
    if (parent.contains(key) && !is_ok(parent.at(key))) fail(where + key, parent.at(key), expected);
  };
  const auto is_string = [](const json& v) { return v.is_string(); };
  const auto is_number = [](const json& v) { return v.is_number(); };
  const auto is_integer = [](const json& v) { return v.is_number_integer(); };
  const auto is_object = [](const json& v) { return v.is_object(); };
  const auto object_or_null = [](const json& v) { return v.is_object() || v.is_null(); };
  const auto hashes = [](const json& v) {
    return v.is_object() && std::all_of(v.begin(), v.end(), [](const json& h) { return h.is_string() || h.is_null(); });
  };
  const auto strings = [](const json& v) {
    return v.is_array() && std::all_of(v.begin(), v.end(), [](const json& s) { return s.is_string(); });
  };
  for (const char* key : {"persona", "status", "created", "code_version", "device"}) {
    optional(data, "", key, is_string, "a string");
  }
  optional(data, "", "config", is_object, "an object");
  optional(data, "", "scale", is_object, "an object");
  optional(data, "", "gates", object_or_null, "an object or null");
  optional(data, "", "lab", object_or_null, "an object or null");
  optional(data, "", "totals", is_object, "an object");
  if (data.contains("totals")) {
    for (const char* key : {"cost_usd", "seconds"}) optional(data["totals"], "totals.", key, is_number, "a number");
  }
  for (const auto& [name, stage] : data["stages"].items()) {
    const std::string where = "stages." + name + ".";
    if (!stage.is_object()) fail("stages." + name, stage, "an object");
    for (const char* key : {"status", "started", "ended", "summary", "error"}) {
      optional(stage, where, key, is_string, "a string");
    }
    for (const char* key : {"seconds", "cost_usd"}) optional(stage, where, key, is_number, "a number");
    for (const char* key : {"attempts", "exit_code"}) optional(stage, where, key, is_integer, "an integer");
    for (const char* key : {"inputs", "outputs"}) optional(stage, where, key, hashes, "an object of hashes");
    for (const char* key : {"counts", "usage"}) optional(stage, where, key, is_object, "an object");
    optional(stage, where, "warnings", strings, "a list of strings");
  }
  if (data.contains("exports")) {
    if (!data["exports"].is_array()) fail("exports", data["exports"], "a list");
    for (std::size_t i = 0; i < data["exports"].size(); ++i) {
      const json& e = data["exports"][i];
      const std::string where = "exports[" + std::to_string(i) + "].";
      if (!e.is_object()) fail("exports[" + std::to_string(i) + "]", e, "an object");
      for (const char* key : {"format", "path", "sha256"}) optional(e, where, key, is_string, "a string");
      optional(e, where, "gated", [](const json& v) { return v.is_boolean(); }, "true or false");
    }
  }
}

}  // namespace

RunManifest RunManifest::load(const fs::path& run_dir) {
  const fs::path file = run_dir / "manifest.json";
  if (!fs::exists(file)) throw IoError(file.string() + ": no manifest; is " + run_dir.string() + " a run directory?");
  json data = read_json_file(file);
  if (!data.is_object() || !data.contains("format") || data["format"] != "character-run")
    throw FormatError(file.string() + ": format: expected \"character-run\"");
  if (!data.contains("version") || data["version"] != 1)
    throw FormatError(file.string() + ": version: found " + describe_json(data.value("version", json(nullptr))) +
                      ", expected 1");
  for (const char* field : {"persona", "config", "stages", "status"})
    if (!data.contains(field)) throw FormatError(file.string() + ": missing field \"" + field + "\"");
  if (!data["stages"].is_object()) throw FormatError(file.string() + ": stages: expected an object");
  check_manifest_types(data, file.string());
  return RunManifest(run_dir, std::move(data));
}

RunConfig RunManifest::config() const {
  return run_config_from_json(data_.at("config"), (run_dir_ / "manifest.json").string() + ": config");
}

void RunManifest::set_config(const RunConfig& config) {
  data_["config"] = to_json(config);
  data_["device"] = describe_device(config.device);
  save();
}

void RunManifest::set_status(const std::string& status) {
  if (std::find(run_statuses().begin(), run_statuses().end(), status) == run_statuses().end())
    throw Error("internal: unknown run status " + status);
  data_["status"] = status;
  save();
}

const json& RunManifest::stage(const std::string& name) const {
  static const json empty = json::object();
  const json& stages = data_.at("stages");
  auto it = stages.find(name);
  return it == stages.end() ? empty : *it;
}

std::string RunManifest::stage_status(const std::string& name) const { return stage(name).value("status", "pending"); }

json& RunManifest::mutable_stage(const std::string& name) {
  json& record = data_["stages"][name];
  if (!record.is_object()) record = json::object();
  return record;
}

void RunManifest::stage_running(const std::string& name) {
  json& s = mutable_stage(name);
  s["status"] = "running";
  s["started"] = utc_now_text();
  s.erase("ended");
  s.erase("error");
  s["attempts"] = s.value("attempts", 0) + 1;
  data_["status"] = "running";
  save();
}

void RunManifest::stage_done(const std::string& name, const StageResult& result, double seconds, HashCache& hashes) {
  json& s = mutable_stage(name);
  auto hash_all = [&](const std::vector<fs::path>& paths) {
    json out = json::object();
    for (const auto& p : paths) {
      const fs::path full = p.is_absolute() ? p : run_dir_ / p;
      // A path that is not there is recorded as null: a later resume then checks
      // that it is still absent.
      out[record_key(full)] = fs::exists(full) ? json(hashes.path_hash(full)) : json(nullptr);
    }
    return out;
  };
  s["status"] = "done";
  s["ended"] = utc_now_text();
  s["seconds"] = s.value("seconds", 0.0) + seconds;
  s["inputs"] = hash_all(result.inputs);
  s["outputs"] = hash_all(result.outputs);
  s["counts"] = result.counts;
  s["usage"] = result.usage;
  s["cost_usd"] = result.cost_usd;
  s["warnings"] = result.warnings;
  s["summary"] = result.summary;
  s["exit_code"] = result.exit_code;
  hashes.save();
  update_totals();
  save();
}

void RunManifest::stage_ended(const std::string& name, const std::string& status, const std::string& error,
                              double seconds) {
  json& s = mutable_stage(name);
  s["status"] = status;
  s["ended"] = utc_now_text();
  s["seconds"] = s.value("seconds", 0.0) + seconds;
  s["error"] = error;
  update_totals();
  save();
}

void RunManifest::stage_skipped(const std::string& name, const std::string& reason) {
  json& s = mutable_stage(name);
  s["status"] = "skipped";
  s["summary"] = reason;
  save();
}

bool RunManifest::stage_still_valid(const std::string& name, HashCache& hashes, std::string& why) const {
  const json& s = stage(name);
  if (s.value("status", "") != "done") {
    why = "not finished";
    return false;
  }
  for (const char* side : {"inputs", "outputs"}) {
    if (!s.contains(side)) continue;
    for (const auto& [key, recorded] : s[side].items()) {
      const fs::path path = resolve(key);
      const bool exists = fs::exists(path);
      if (recorded.is_null() ? exists : (!exists || hashes.path_hash(path) != recorded.get<std::string>())) {
        why = std::string(side == std::string("inputs") ? "input " : "output ") + key + (exists ? " changed" : " is missing");
        return false;
      }
    }
  }
  return true;
}

void RunManifest::set_gates(const json& gates) {
  data_["gates"] = gates;
  save();
}

void RunManifest::set_lab(const json& lab) {
  data_["lab"] = lab;
  save();
}

void RunManifest::set_exports(const json& exports) {
  data_["exports"] = exports;
  save();
}

void RunManifest::update_totals() {
  double cost = 0, seconds = 0;
  for (const auto& [name, s] : data_["stages"].items()) {
    cost += s.value("cost_usd", 0.0);
    seconds += s.value("seconds", 0.0);
  }
  data_["totals"] = {{"cost_usd", cost}, {"seconds", seconds}};
}

void RunManifest::save() const { write_file_atomic(run_dir_ / "manifest.json", data_.dump(2) + "\n"); }

std::string RunManifest::record_key(const fs::path& path) const {
  const fs::path abs = fs::absolute(path).lexically_normal();
  const fs::path root = fs::absolute(run_dir_).lexically_normal();
  const fs::path rel = abs.lexically_relative(root);
  if (!rel.empty() && *rel.begin() != "..") return rel.generic_string();
  return abs.string();
}

fs::path RunManifest::resolve(const std::string& key) const {
  const fs::path p(key);
  return p.is_absolute() ? p : run_dir_ / p;
}

std::vector<std::string> gate_table(const json& gates) {
  std::vector<std::string> lines;
  if (!gates.is_object() || !gates.contains("gates") || !gates["gates"].is_array()) return lines;
  auto number = [](const json& v) {
    if (!v.is_number()) return std::string("-");
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4g", v.get<double>());
    return std::string(buf);
  };
  char buf[256];
  std::snprintf(buf, sizeof buf, "  %-26s %8s %2s %-9s %s", "gate", "value", "", "threshold", "verdict");
  lines.push_back(buf);
  for (const auto& g : gates["gates"]) {
    std::snprintf(buf, sizeof buf, "  %-26s %8s %2s %-9s %s", g.value("name", "").c_str(),
                  number(g.value("value", json(nullptr))).c_str(), g.value("comparison", "").c_str(),
                  number(g.value("threshold", json(nullptr))).c_str(), g.value("verdict", "").c_str());
    std::string line = buf;
    if (!g.value("note", "").empty()) line += "  (" + g.value("note", "") + ")";
    lines.push_back(line);
  }
  for (const auto& note : gates.value("notes", json::array()))
    if (note.is_string()) lines.push_back("  note: " + note.get<std::string>());
  return lines;
}

}  // namespace character::pipeline
