#include "pipeline/commands.h"

#include <CLI/CLI.hpp>

#include <map>

#include "base/error.h"

namespace character::pipeline {

// One declaration per command file; each defines how its subcommand parses and runs.
// (declarations added as commands land)

namespace {
std::map<const CLI::App*, std::function<int()>>& actions() {
  static std::map<const CLI::App*, std::function<int()>> table;
  return table;
}
}  // namespace

std::string version_string() { return CHARACTER_VERSION; }

void set_command_action(CLI::App& sub, std::function<int()> run) { actions()[&sub] = std::move(run); }

void register_commands(CLI::App& app) {

}

int run_selected_command(CLI::App& app) {
  for (CLI::App* sub : app.get_subcommands()) {
    auto it = actions().find(sub);
    if (it != actions().end()) return it->second();
  }
  throw ConfigError("no command given; see `character --help`");
}

}  // namespace character::pipeline
