// Helpers for the pipeline suites that run the `character` command line: in
// process (through the same registration main() uses) or as the real binary.
#pragma once

#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "pipeline/commands.h"

namespace character::testing {

// Runs `character ARGS...` in-process, expects exit code 0 and returns what it
// printed to std::cout. Errors propagate as the command threw them.
inline std::string run_cli(std::vector<std::string> args) {
  CLI::App app{"character"};
  app.require_subcommand(1);
  pipeline::register_commands(app);
  args.insert(args.begin(), "character");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  app.parse(static_cast<int>(argv.size()), argv.data());
  std::ostringstream captured;
  auto* old = std::cout.rdbuf(captured.rdbuf());
  try {
    const int rc = pipeline::run_selected_command(app);
    std::cout.rdbuf(old);
    EXPECT_EQ(rc, 0);
  } catch (...) {
    std::cout.rdbuf(old);
    throw;
  }
  return captured.str();
}

// The `character` binary beside the test binaries (<build>/character).
inline std::filesystem::path character_binary() {
  return std::filesystem::read_symlink("/proc/self/exe").parent_path().parent_path() / "character";
}

}  // namespace character::testing
