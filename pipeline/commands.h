// The subcommands of `character`. Each command file offers one add_*_command()
// that declares its flags on the app and binds the function that runs it.
#pragma once

#include <functional>
#include <string>

namespace CLI {
class App;
}

namespace character::pipeline {

// Version string: project version and git description, baked in at build time.
std::string version_string();

// Declares every subcommand on `app`.
void register_commands(CLI::App& app);

// Runs the subcommand that parsing selected; returns the process exit code.
int run_selected_command(CLI::App& app);

// Binds `run` to `sub`, so run_selected_command() can find it.
void set_command_action(CLI::App& sub, std::function<int()> run);

}  // namespace character::pipeline
