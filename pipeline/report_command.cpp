// `character report RUN_OR_EVAL_DIR [--markdown]`: re-renders report.md and
// report.html from an eval directory's report.json (after an upgrade of
// `character`, or from a report.json copied off a GPU machine). --markdown also
// prints report.md to stdout. docs/cli.md.
#include <CLI/CLI.hpp>

#include <iostream>

#include "eval/gates.h"
#include "eval/report_html.h"
#include "eval/report_markdown.h"
#include "pipeline/commands.h"

namespace character::pipeline {
namespace {

struct ReportArgs {
  std::string dir;
  bool markdown = false;
};

int run_report(const ReportArgs& args) {
  const auto eval_dir = eval::find_eval_dir(args.dir);
  const nlohmann::json report = eval::read_eval_report(eval_dir);
  eval::write_report_views(report, eval_dir);
  if (args.markdown) std::cout << eval::render_report_markdown(report);
  else std::cout << "wrote " << (eval_dir / "report.md").string() << " and " << (eval_dir / "report.html").string() << "\n";
  return 0;
}

}  // namespace

void add_report_command(CLI::App& app) {
  auto args = std::make_shared<ReportArgs>();
  CLI::App* sub = app.add_subcommand("report", "Re-render report.md and report.html from an eval report.json");
  sub->add_option("dir", args->dir, "A run directory (RUN/eval/report.json) or an eval directory (report.json)")->required();
  sub->add_flag("--markdown", args->markdown, "Also print report.md to stdout");
  set_command_action(*sub, [args] { return run_report(*args); });
}

}  // namespace character::pipeline
