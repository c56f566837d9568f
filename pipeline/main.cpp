// The `character` command line: parses flags with CLI11, runs one subcommand,
// and is the only place that catches character::Error and maps it to an exit code.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>

#include "base/error.h"
#include "base/log.h"
#include "pipeline/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"character: turn a persona into a fine-tuned LLM whose character holds, and prove it"};
  app.require_subcommand(1);
  app.set_version_flag("--version", character::pipeline::version_string());
  character::pipeline::register_commands(app);
  try {
    app.parse(argc, argv);
    return character::pipeline::run_selected_command(app);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const character::Error& e) {
    character::log::error(e.what());
    return e.exit_code();
  } catch (const std::exception& e) {
    character::log::error(std::string("internal error: ") + e.what());
    return 70;
  }
}
