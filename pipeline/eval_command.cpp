// `character eval MODEL_DIR [--adapter A] --persona P --out DIR [...]`: runs the
// consistency probe and the routing analyses (eval/eval_run.h), writes
// OUT/report.json, report.md and report.html, and prints a short summary
// (--json: the summary as JSON). Exits 0 when it ran, whatever the gates say;
// `character gate` turns the verdict into an exit code.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "eval/eval_run.h"
#include "eval/gates.h"
#include "pipeline/commands.h"

namespace character::pipeline {

namespace {

struct EvalArgs {
  eval::EvalOptions options;
  std::string model_dir, adapter_dir, out_dir, extra_prompts, gates_file;
  std::vector<std::string> coverage, variants, categories;
  bool no_greedy = false;
  bool json = false;
  bool quiet = false;
};

std::string percent(double rate) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f%%", 100.0 * rate);
  return buffer;
}

void print_summary(const eval::EvalSummary& s) {
  std::cout << "in character: " << percent(s.in_character_rate) << " of " << s.responses << " responses";
  if (s.ci_low && s.ci_high) std::cout << " (95% CI " << percent(*s.ci_low) << " – " << percent(*s.ci_high) << ")";
  std::cout << "\n";
  if (!s.worst_categories.empty()) {
    std::cout << "worst categories:";
    for (const auto& c : s.worst_categories) std::cout << " " << c;
    std::cout << "\n";
  }
  for (const auto& w : s.warnings) std::cout << "warning: " << w << "\n";
  std::cout << eval::format_gate_table(s.gates);  // ends with the verdict line
  std::cout << "report: " << s.report_json.string() << "\n        " << s.report_md.string() << "\n        "
            << s.report_html.string() << "\n";
}

int run_eval_command(EvalArgs& args) {
  eval::EvalOptions& o = args.options;
  o.model_dir = args.model_dir;
  o.adapter_dir = args.adapter_dir;
  o.out_dir = args.out_dir;
  o.probe.extra_prompts = args.extra_prompts;
  o.probe.greedy = !args.no_greedy;
  for (const auto& c : args.coverage) o.coverage_files.emplace_back(c);
  // "--variants none" asks for the originals only (no paraphrase flip rate).
  o.probe.variants.clear();
  for (const auto& v : args.variants) {
    if (v != "none" && !v.empty()) o.probe.variants.push_back(v);
  }
  if (args.variants.empty()) o.probe.variants = {"please", "lower", "punct", "long"};
  o.probe.categories = args.categories;
  if (!args.gates_file.empty()) o.gates = eval::load_gate_thresholds(args.gates_file);
  o.progress = !args.quiet && !args.json;
  o.code_version = version_string();
  if (o.judge_url.empty() != o.judge_model.empty()) {
    throw ConfigError("eval: --judge-url and --judge-model go together; give both or neither");
  }
  const eval::EvalSummary summary = eval::run_eval(o);
  if (args.json) {
    std::cout << eval::to_json(summary).dump(2) << "\n";
  } else {
    print_summary(summary);
  }
  return 0;
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  eval::EvalOptions& o = args->options;
  CLI::App* sub = app.add_subcommand("eval", "Run the consistency probe and routing analyses; write OUT/report.{json,md,html}");
  sub->add_option("model_dir", args->model_dir, "Model directory (the base of the adapter)")
      ->required()
      ->check(CLI::ExistingDirectory);
  sub->add_option("--adapter", args->adapter_dir, "Adapter directory (or training checkpoint) to evaluate")
      ->check(CLI::ExistingDirectory);
  sub->add_option("--persona", o.persona, "Persona: a shipped name or a YAML file")->required();
  sub->add_option("--out", args->out_dir, "Output directory for the reports")->required();
  sub->add_flag("--base-routing", o.base_routing,
                "Also route the probe's token sequences through the base model (routing drift base → tuned)");
  sub->add_option("--samples", o.probe.samples, "Sampled responses per prompt variant (plus one greedy)")
      ->check(CLI::NonNegativeNumber);
  sub->add_flag("--no-greedy", args->no_greedy, "Leave out the greedy response of each prompt variant");
  sub->add_option("--max-new-tokens", o.probe.max_new_tokens, "Tokens per response at most")
      ->check(CLI::PositiveNumber);
  sub->add_option("--temperature", o.probe.temperature, "Sampling temperature (default: generation_config.json)");
  sub->add_option("--top-p", o.probe.top_p, "Nucleus sampling mass (default: generation_config.json)");
  sub->add_option("--variants", args->variants, "Paraphrase variants: please,lower,punct,long (none: originals only)")
      ->delimiter(',');
  sub->add_option("--categories", args->categories, "Probe categories to run (default: all eight)")->delimiter(',');
  sub->add_option("--prompts", args->extra_prompts, "JSON file of extra prompts [{\"category\", \"prompt\"}]")
      ->check(CLI::ExistingFile);
  sub->add_option("--coverage", args->coverage,
                  "Training coverage.json (repeatable, merged; default: the adapter's sibling coverage.json)")
      ->check(CLI::ExistingFile);
  sub->add_option("--judge-url", o.judge_url, "OpenAI-compatible endpoint of an LLM judge (off when unset)");
  sub->add_option("--judge-model", o.judge_model, "The judge's model name");
  sub->add_option("--judge-key-env", o.judge_key_env, "Environment variable holding the judge's API key");
  sub->add_option("--gates", args->gates_file, "Gate thresholds: a run config's gates: mapping (YAML or JSON)")
      ->check(CLI::ExistingFile);
  sub->add_option("--device", o.device, "cpu or cuda");
  sub->add_option("--dtype", o.dtype, "float32, bfloat16 or float16 (default: the device's)");
  sub->add_option("--seed", o.probe.seed, "Sampling seed (a rerun with the same seed gives the same report)");
  sub->add_option("--batch-rows", o.probe.batch_rows, "Responses generated per engine batch")->check(CLI::PositiveNumber);
  sub->add_flag("--json", args->json, "Print the summary as JSON instead of text (no progress lines)");
  sub->add_flag("--quiet", args->quiet, "No progress lines on stderr");
  set_command_action(*sub, [args] { return run_eval_command(*args); });
}

}  // namespace character::pipeline
