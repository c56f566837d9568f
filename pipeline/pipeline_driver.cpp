// The stage loop of `character pipeline` (pipeline_driver.h): selection, skip on
// unchanged hashes, manifest records, one printed line per stage, the gate stop.
#include "pipeline/pipeline_driver.h"

#include <chrono>
#include <cstdio>
#include <iostream>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/json_read.h"

namespace character::pipeline {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string seconds_text(double s) {
  char buf[32];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%.1fs", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s) / 3600, static_cast<int>(s) / 60 % 60);
  }
  return buf;
}

// {"pairs": 16, "steps": 4} → "pairs 16, steps 4" (nested values as compact JSON).
std::string counts_text(const json& counts) {
  std::string out;
  if (!counts.is_object()) return out;
  for (const auto& [k, v] : counts.items()) {
    out += (out.empty() ? "" : ", ") + k + " " + (v.is_string() ? v.get<std::string>() : v.dump());
  }
  return out;
}

std::string stage_line(std::size_t index, std::size_t total, const std::string& name, const std::string& text) {
  return "[" + std::to_string(index + 1) + "/" + std::to_string(total) + "] " + name + ": " + text;
}

// export/<persona>.tinker.tar → tinker, export/peft → peft, export/merged → merged.
json exports_from(const RunManifest& manifest, const std::string& stage, bool gated) {
  json out = json::array();
  const json& outputs = manifest.stage(stage).value("outputs", json::object());
  for (const auto& [key, hash] : outputs.items()) {
    if (hash.is_null()) continue;
    const fs::path p(key);
    const std::string name = p.filename().string();
    std::string format;
    if (name.size() > 11 && name.compare(name.size() - 11, 11, ".tinker.tar") == 0) format = "tinker";
    else if (name == "peft") format = "peft";
    else if (name == "merged") format = "merged";
    if (format.empty()) continue;
    out.push_back({{"format", format}, {"path", key}, {"sha256", hash}, {"gated", gated}});
  }
  return out;
}

void copy_gates(RunManifest& manifest) {
  const fs::path file = manifest.run_dir() / "eval" / "gates.json";
  if (!fs::exists(file)) return;
  const json gates = read_json_file(file);
  if (gates != manifest.data().value("gates", json(nullptr))) manifest.set_gates(gates);
}

}  // namespace

std::pair<std::size_t, std::size_t> select_stages(const std::vector<std::string>& names, const StageSelection& sel) {
  auto index = [&](const std::string& name, const char* flag) {
    for (std::size_t i = 0; i < names.size(); ++i)
      if (names[i] == name) return i;
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    throw ConfigError(std::string(flag) + " " + name + ": unknown stage, expected one of " + list);
  };
  if (names.empty()) throw ConfigError("no stages to run");
  if (!sel.only.empty()) {
    if (!sel.from.empty() || !sel.until.empty()) throw ConfigError("--only cannot be combined with --from or --until");
    const std::size_t i = index(sel.only, "--only");
    return {i, i};
  }
  const std::size_t first = sel.from.empty() ? 0 : index(sel.from, "--from");
  const std::size_t last = sel.until.empty() ? names.size() - 1 : index(sel.until, "--until");
  if (first > last) throw ConfigError("--from " + sel.from + " comes after --until " + sel.until);
  return {first, last};
}

DriverOutcome run_stages(RunManifest& manifest, const RunConfig& config, const std::vector<DriverStage>& stages,
                         const DriverOptions& options) {
  const auto print = options.print ? options.print : [](const std::string& line) { std::cout << line << std::endl; };
  std::vector<std::string> names;
  for (const auto& s : stages) names.push_back(s.name);
  const auto [first, last] = select_stages(names, options.selection);
  const bool rerun_selected = !options.selection.from.empty() || !options.selection.only.empty();

  for (std::size_t i = 0; i < first; ++i) {
    const std::string status = manifest.stage_status(names[i]);
    if (status != "done" && status != "skipped")
      throw ConfigError("--" + std::string(options.selection.only.empty() ? "from " : "only ") + names[first] +
                        ": the earlier stage " + names[i] + " has not finished (status " + status + ") in " +
                        manifest.run_dir().string() + "; run it first (drop --from/--only)");
  }

  HashCache hashes(manifest.run_dir() / ".hashes.json");
  StageContext ctx{config, manifest.run_dir(), options.stop_requested, options.quiet};
  DriverOutcome outcome;
  std::string gate_stage;  // the stage whose non-zero exit code stopped the run
  for (std::size_t i = 0; i < first; ++i) {
    if (manifest.stage(names[i]).value("exit_code", 0) != 0) {
      outcome.exit_code = manifest.stage(names[i]).value("exit_code", 0);
      gate_stage = names[i];
    }
  }

  for (std::size_t i = first; i <= last; ++i) {
    const std::string& name = names[i];
    if (options.stop_requested && options.stop_requested->load()) {
      manifest.set_status("interrupted");
      throw Interrupted("pipeline: stopped before " + name + "; continue with --resume " + manifest.run_dir().string());
    }
    if (!gate_stage.empty() && !config.force_export) {
      manifest.stage_skipped(name, "not run: " + gate_stage + " failed (--force-export runs it anyway)");
      print(stage_line(i, names.size(), name, "skipped, " + gate_stage + " failed"));
      outcome.skipped.push_back(name);
      continue;
    }
    std::string why;
    if (!rerun_selected && manifest.stage_status(name) == "done") {
      if (manifest.stage_still_valid(name, hashes, why)) {
        const json& s = manifest.stage(name);
        print(stage_line(i, names.size(), name, "done earlier, inputs unchanged: " + s.value("summary", "")));
        outcome.skipped.push_back(name);
        if (s.value("exit_code", 0) != 0) {
          outcome.exit_code = s.value("exit_code", 0);
          gate_stage = name;
        }
        continue;
      }
      print(stage_line(i, names.size(), name, "running again: " + why));
    }

    const bool ran_before = manifest.stage_status(name) == "done";
    manifest.stage_running(name);
    const auto start = std::chrono::steady_clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
    StageResult result;
    try {
      StageContext stage_ctx = ctx;
      stage_ctx.fresh = ran_before;
      result = stages[i].run(stage_ctx);
    } catch (const Interrupted& e) {
      const double seconds = elapsed();
      manifest.stage_ended(name, "interrupted", e.what(), seconds);
      manifest.set_status("interrupted");
      print(stage_line(i, names.size(), name, "interrupted after " + seconds_text(seconds)));
      throw;
    } catch (const std::exception& e) {
      const double seconds = elapsed();
      manifest.stage_ended(name, "failed", e.what(), seconds);
      manifest.set_status("failed");
      print(stage_line(i, names.size(), name, "failed after " + seconds_text(seconds)));
      throw;
    }
    const double seconds = elapsed();
    manifest.stage_done(name, result, seconds, hashes);
    copy_gates(manifest);
    outcome.ran.push_back(name);

    std::string text = result.summary.empty() ? counts_text(result.counts) : result.summary;
    char tail[64];
    std::snprintf(tail, sizeof tail, " (%s, $%.2f)", seconds_text(seconds).c_str(), result.cost_usd);
    print(stage_line(i, names.size(), name, text + tail));
    for (const auto& w : result.warnings) print("  warning: " + w);
    if (result.exit_code != 0) {
      outcome.exit_code = result.exit_code;
      gate_stage = name;
    }
    if (!result.exports.empty()) {
      // The stage says what it exported; the manifest adds each one's hash.
      json exports = json::array();
      for (json e : result.exports) {
        const fs::path path = manifest.resolve(e.value("path", ""));
        e["path"] = manifest.record_key(path);
        e["sha256"] = fs::exists(path) ? json(hashes.path_hash(path)) : json(nullptr);
        if (!gate_stage.empty()) e["gated"] = false;
        exports.push_back(e);
      }
      manifest.set_exports(exports);
    } else if (fs::exists(manifest.run_dir() / "export")) {
      const json exports = exports_from(manifest, name, /*gated=*/gate_stage.empty());
      if (!exports.empty()) manifest.set_exports(exports);
    }
  }

  if (!gate_stage.empty()) {
    outcome.status = "gated-out";
  } else {
    bool all_done = true;
    for (const auto& n : names) all_done = all_done && manifest.stage_status(n) == "done";
    outcome.status = all_done ? "finished" : "partial";
  }
  manifest.set_status(outcome.status);
  return outcome;
}

}  // namespace character::pipeline
