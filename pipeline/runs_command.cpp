// `character runs [list|show RUN] [--runs-dir D] [--json]`: the past runs of
// `character pipeline` read from their manifests — persona, scale, status, gate
// verdict, exports, creation time and cost — or one run stage by stage.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>

#include "base/error.h"
#include "pipeline/commands.h"
#include "pipeline/run_manifest.h"
#include "pipeline/stages.h"

namespace character::pipeline {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct RunsArgs {
  fs::path runs_dir = "runs";
  std::string run;
  bool json = false;
};

std::string gates_verdict(const json& m) {
  const json gates = m.value("gates", json(nullptr));
  if (!gates.is_object()) return "-";
  return gates.value("passed", false) ? "passed" : "failed";
}

std::string export_formats(const json& m) {
  std::string out;
  for (const auto& e : m.value("exports", json::array())) {
    out += (out.empty() ? "" : ",") + e.value("format", "?");
    if (!e.value("gated", true)) out += "(ungated)";
  }
  return out.empty() ? "-" : out;
}

// One row of `runs list`; a manifest that cannot be read is a row saying why,
// so one damaged run does not hide the others.
json list_row(const fs::path& dir) {
  json row = {{"run", dir.filename().string()}, {"path", dir.string()}};
  try {
    const RunManifest manifest = RunManifest::load(dir);
    const json& m = manifest.data();
    row["persona"] = m.value("persona", "");
    row["scale"] = m.value("config", json::object()).value("scale", "");
    row["status"] = m.value("status", "");
    row["gates"] = gates_verdict(m);
    row["exports"] = m.value("exports", json::array());
    row["created"] = m.value("created", "");
    row["cost_usd"] = m.value("totals", json::object()).value("cost_usd", 0.0);
  } catch (const Error& e) {
    row["status"] = "unreadable";
    row["error"] = e.what();
  }
  return row;
}

int run_list(const RunsArgs& args) {
  json rows = json::array();
  if (fs::is_directory(args.runs_dir)) {
    for (const auto& entry : fs::directory_iterator(args.runs_dir))
      if (entry.is_directory() && fs::exists(entry.path() / "manifest.json")) rows.push_back(list_row(entry.path()));
  } else if (fs::exists(args.runs_dir)) {
    throw IoError(args.runs_dir.string() + ": not a directory (--runs-dir)");
  }
  std::sort(rows.begin(), rows.end(), [](const json& a, const json& b) {
    return a.value("created", "") + a.value("run", "") < b.value("created", "") + b.value("run", "");
  });
  if (args.json) {
    std::cout << rows.dump() << std::endl;
    return 0;
  }
  if (rows.empty()) {
    std::cout << "no runs in " << args.runs_dir.string() << std::endl;
    return 0;
  }
  char buf[512];
  std::snprintf(buf, sizeof buf, "%-36s %-12s %-8s %-11s %-7s %-24s %-20s %8s", "run", "persona", "scale", "status",
                "gates", "exports", "created", "cost");
  std::cout << buf << "\n";
  for (const auto& r : rows) {
    if (r.contains("error")) {
      std::cout << r.value("run", "") << "  unreadable: " << r.value("error", "") << "\n";
      continue;
    }
    std::snprintf(buf, sizeof buf, "%-36s %-12s %-8s %-11s %-7s %-24s %-20s %7.2f$", r.value("run", "").c_str(),
                  r.value("persona", "").c_str(), r.value("scale", "").c_str(), r.value("status", "").c_str(),
                  r.value("gates", "").c_str(), export_formats(r).c_str(), r.value("created", "").c_str(),
                  r.value("cost_usd", 0.0));
    std::cout << buf << "\n";
  }
  std::cout << std::flush;
  return 0;
}

// RUN as given, or a run name under --runs-dir.
fs::path find_run(const RunsArgs& args) {
  if (fs::exists(fs::path(args.run) / "manifest.json")) return args.run;
  const fs::path under = args.runs_dir / args.run;
  if (fs::exists(under / "manifest.json")) return under;
  throw IoError("runs show " + args.run + ": no manifest.json there nor in " + under.string());
}

int run_show(const RunsArgs& args) {
  const RunManifest manifest = RunManifest::load(find_run(args));
  const json& m = manifest.data();
  if (args.json) {
    std::cout << m.dump() << std::endl;
    return 0;
  }
  std::cout << "run      " << manifest.run_dir().string() << "\n"
            << "persona  " << m.value("persona", "") << ", scale " << m.value("config", json::object()).value("scale", "")
            << "\nstatus   " << m.value("status", "") << "\ncreated  " << m.value("created", "") << "\ncode     "
            << m.value("code_version", "") << "\ndevice   " << m.value("device", "") << "\n\nstages\n";
  // Pipeline order (the manifest's object is sorted by name), then any others.
  const json stages = m.value("stages", json::object());
  std::vector<std::string> order;
  for (const auto& name : stage_names())
    if (stages.contains(name)) order.push_back(name);
  for (const auto& [name, s] : stages.items())
    if (std::find(order.begin(), order.end(), name) == order.end()) order.push_back(name);
  char buf[512];
  for (const auto& name : order) {
    const json& s = stages[name];
    const std::string status = s.value("status", "");
    if (status == "pending") {
      std::snprintf(buf, sizeof buf, "  %-13s %s", name.c_str(), status.c_str());
    } else {
      std::snprintf(buf, sizeof buf, "  %-13s %-11s %8.1fs %7.2f$  ", name.c_str(), status.c_str(),
                    s.value("seconds", 0.0), s.value("cost_usd", 0.0));
    }
    std::string line = buf;
    line += s.contains("error") ? s.value("error", "") : s.value("summary", "");
    std::cout << line << "\n";
    for (const auto& w : s.value("warnings", json::array())) std::cout << "      warning: " << w.get<std::string>() << "\n";
  }
  const json gates = m.value("gates", json(nullptr));
  std::cout << "\ngates    " << gates_verdict(m) << "\n";
  for (const auto& line : gate_table(gates)) std::cout << line << "\n";
  std::cout << "\nexports\n";
  for (const auto& e : m.value("exports", json::array()))
    std::cout << "  " << e.value("format", "") << "  " << manifest.resolve(e.value("path", "")).string()
              << (e.value("gated", true) ? "" : "  (UNGATED)") << "\n";
  const json totals = m.value("totals", json::object());
  std::snprintf(buf, sizeof buf, "\ntotal    %.1fs, $%.2f", totals.value("seconds", 0.0), totals.value("cost_usd", 0.0));
  std::cout << buf << std::endl;
  return 0;
}

}  // namespace

void add_runs_command(CLI::App& app) {
  auto args = std::make_shared<RunsArgs>();
  CLI::App* sub = app.add_subcommand("runs", "Past pipeline runs: persona, scale, status, gates, exports, cost");
  sub->add_option("--runs-dir", args->runs_dir, "Directory holding the runs (default runs)");
  sub->add_flag("--json", args->json, "Print JSON");
  CLI::App* list = sub->add_subcommand("list", "One line per run (the default)");
  CLI::App* show = sub->add_subcommand("show", "One run stage by stage");
  show->add_option("run", args->run, "Run directory, or its name under --runs-dir")->required();
  for (CLI::App* s : {list, show}) {
    s->fallthrough();  // --runs-dir / --json after the subcommand too
  }
  sub->require_subcommand(0, 1);
  set_command_action(*sub, [args, show] { return show->parsed() ? run_show(*args) : run_list(*args); });
}

}  // namespace character::pipeline
