// `character persona check FILE_OR_NAME [--json] [--strict]` loads and validates a persona and
// prints its summary and warnings (errors exit with the code of their class), and
// `character persona list [--json]` lists the personas built into the binary.
#include <CLI/CLI.hpp>

#include <iostream>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "personas/persona.h"
#include "personas/persona_report.h"
#include "pipeline/commands.h"

namespace character::pipeline {

namespace {

struct PersonaArgs {
  std::string persona;
  bool json = false;
  bool strict = false;
};

int run_check(const PersonaArgs& args) {
  const personas::Persona persona = personas::find_persona(args.persona);
  const nlohmann::json summary = personas::persona_summary(persona);
  if (args.json) std::cout << summary.dump(2) << "\n";
  else std::cout << personas::format_summary(summary);
  // For CI: a persona file that only loads with warnings can be refused too.
  if (args.strict && !persona.warnings.empty())
    throw FormatError(persona.source + ": " + std::to_string(persona.warnings.size()) +
                      " warning(s) and --strict was given");
  return 0;
}

int run_list(const PersonaArgs& args) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& name : personas::shipped_personas()) {
    const personas::Persona persona = personas::find_persona(name);
    list.push_back({{"name", persona.name}, {"display_name", persona.display_name}, {"description", persona.description}});
  }
  if (args.json) {
    std::cout << list.dump(2) << "\n";
  } else {
    for (const auto& p : list)
      std::cout << p["name"].get<std::string>() << "  " << p["display_name"].get<std::string>() << ": "
                << p["description"].get<std::string>() << "\n";
  }
  return 0;
}

}  // namespace

void add_persona_command(CLI::App& app) {
  auto args = std::make_shared<PersonaArgs>();
  CLI::App* persona = app.add_subcommand("persona", "Check persona files and list the shipped personas");
  persona->require_subcommand(1);

  CLI::App* check = persona->add_subcommand("check", "Load and validate a persona; print its summary and warnings");
  check->add_option("persona", args->persona, "A shipped persona name (see `persona list`) or a YAML file path")
      ->required();
  check->add_flag("--json", args->json, "Print the summary as one JSON object");
  check->add_flag("--strict", args->strict, "Fail (exit 3) when the persona loads with warnings");
  set_command_action(*check, [args] { return run_check(*args); });

  CLI::App* list = persona->add_subcommand("list", "List the personas built into this binary");
  list->add_flag("--json", args->json, "Print a JSON array");
  set_command_action(*list, [args] { return run_list(*args); });

  set_command_action(*persona, [persona] { return run_selected_command(*persona); });
}

}  // namespace character::pipeline
