#include "pipeline/commands.h"

#include <CLI/CLI.hpp>

#include <map>

#include "base/error.h"

namespace character::pipeline {

// One declaration per command file; each defines how its subcommand parses and runs.
// (declarations added as commands land)
void add_inspect_command(CLI::App& app);  // inspect_command.cpp
void add_tokenize_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_init_model_command(CLI::App& app);
void add_persona_command(CLI::App& app);  // persona_command.cpp
void add_serve_command(CLI::App& app);    // serve_command.cpp
void add_generate_data_command(CLI::App& app);  // generate_data_command.cpp
void add_export_command(CLI::App& app);         // export_command.cpp
void add_train_command(CLI::App& app);          // train_command.cpp
void add_eval_command(CLI::App& app);           // eval_command.cpp
void add_gate_command(CLI::App& app);           // gate_command.cpp
void add_report_command(CLI::App& app);         // report_command.cpp
void add_analyze_command(CLI::App& app);        // analyze_command.cpp
void add_pipeline_command(CLI::App& app);       // pipeline_command.cpp
void add_runs_command(CLI::App& app);           // runs_command.cpp
void add_lab_command(CLI::App& app);            // lab_command.cpp

namespace {
std::map<const CLI::App*, std::function<int()>>& actions() {
  static std::map<const CLI::App*, std::function<int()>> table;
  return table;
}
}  // namespace

std::string version_string() { return CHARACTER_VERSION; }

void set_command_action(CLI::App& sub, std::function<int()> run) { actions()[&sub] = std::move(run); }

void register_commands(CLI::App& app) {
  add_inspect_command(app);
  add_tokenize_command(app);
  add_generate_command(app);
  add_init_model_command(app);
  add_persona_command(app);
  add_serve_command(app);
  add_generate_data_command(app);
  add_export_command(app);
  add_train_command(app);
  add_eval_command(app);
  add_gate_command(app);
  add_report_command(app);
  add_analyze_command(app);
  add_pipeline_command(app);
  add_runs_command(app);
  add_lab_command(app);

}

int run_selected_command(CLI::App& app) {
  for (CLI::App* sub : app.get_subcommands()) {
    auto it = actions().find(sub);
    if (it != actions().end()) return it->second();
  }
  throw ConfigError("no command given; see `character --help`");
}

}  // namespace character::pipeline
