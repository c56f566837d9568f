// `character generate-data PERSONA --teacher-url U --teacher-model M
// [--student DIR | --student-url U --student-model M] --out DIR --scale S
// [--stage prompts|dpo|introspection|all] [--resume]`: the data of Open Character
// Training (DPO pairs, reflections, self-interactions) for one persona. The flags
// fill GenerateDataOptions; the work is generate_data() (pipeline/generate_data.h),
// which the pipeline's generate-dpo and introspect stages call too.
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>

#include "base/error.h"
#include "pipeline/commands.h"
#include "pipeline/generate_data.h"

namespace character::pipeline {

namespace {

struct GenerateDataCommandArgs {
  GenerateDataOptions options;
  bool json = false;  // print the summary as JSON
};

}  // namespace

void add_generate_data_command(CLI::App& app) {
  auto args = std::make_shared<GenerateDataCommandArgs>();
  GenerateDataOptions* o = &args->options;
  CLI::App* sub = app.add_subcommand("generate-data", "Generate DPO pairs, reflections and self-interactions for a persona");
  sub->add_option("persona", o->persona, "Shipped persona name or persona YAML file")->required();
  sub->add_option("--teacher-url", o->teacher_url, "Teacher base URL (OpenAI-compatible, e.g. http://127.0.0.1:8000/v1)")->required();
  sub->add_option("--teacher-model", o->teacher_model, "Teacher model name")->required();
  sub->add_option("--teacher-api-key-env", o->teacher_key_env, "NAME of the environment variable holding the teacher's API key");
  sub->add_option("--teacher-max-in-flight", o->teacher_in_flight, "Concurrent teacher requests (default 8)")->check(CLI::PositiveNumber);
  sub->add_option("--teacher-max-retries", o->teacher_retries, "Retries of a failed teacher request (default 5)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--teacher-timeout", o->teacher_timeout_s, "Seconds per teacher request (default 300)")->check(CLI::PositiveNumber);
  sub->add_option("--price-input", o->price_in, "Dollars per 1M prompt tokens (for the cost line)");
  sub->add_option("--price-output", o->price_out, "Dollars per 1M completion tokens");
  auto* student = sub->add_option("--student", o->student_dir, "Student model directory (local engine)")->check(CLI::ExistingDirectory);
  auto* student_url = sub->add_option("--student-url", o->student_url, "Student over an OpenAI-compatible API instead");
  student->excludes(student_url);
  sub->add_option("--student-model", o->student_model, "Student model name with --student-url");
  sub->add_option("--student-api-key-env", o->student_key_env, "NAME of the variable holding the student API's key");
  sub->add_option("--student-adapter", o->student_adapter, "LoRA adapter for the local student (the post-DPO checkpoint)")
      ->check(CLI::ExistingDirectory);
  sub->add_option("--device", o->device, "Device of the local student: cpu or cuda");
  sub->add_option("--student-batch", o->student_batch, "Rows per engine batch of the local student (default 16)")->check(CLI::PositiveNumber);
  sub->add_option("--out", o->out, "Output directory")->required();
  sub->add_option("--scale", o->scale, "smoke | micro | mini | quarter | half | full (default mini)");
  sub->add_option("--dpo-pairs", o->overrides.dpo_pairs, "Override the preset's DPO pair count");
  sub->add_option("--reflections", o->overrides.reflections, "Override the preset's reflection count");
  sub->add_option("--interactions", o->overrides.interactions, "Override the preset's self-interaction count");
  sub->add_option("--interaction-turns", o->overrides.interaction_turns, "Messages per self-interaction, opener included");
  sub->add_option("--stage", o->stage, "prompts | dpo | introspection | all (default all)");
  sub->add_option("--introspection-from", o->introspection_from, "student (default when given) or teacher");
  sub->add_flag("--resume", o->resume, "Continue the run already in --out");
  sub->add_option("--seed", o->seed, "Seed of prompt sampling and of every request (default 0)");
  sub->add_option("--max-tokens", o->max_tokens, "Token limit of DPO answers (default 512)")->check(CLI::PositiveNumber);
  sub->add_option("--introspection-max-tokens", o->introspection_max_tokens, "Token limit of reflections and turns (default 1024)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--constitution-share", o->constitution_share, "Share of DPO prompts the teacher derives from the constitution (default 0.5)")
      ->check(CLI::Range(0.0, 1.0));
  sub->add_option("--min-chars", o->min_chars, "Shortest answer kept (default 20)");
  sub->add_option("--max-chars", o->max_chars, "Longest answer kept (default 16000)");
  sub->add_option("--hallucinated-turns", o->hallucinated_turns, "truncate (default) or drop answers that write the next speaker's turn");
  sub->add_flag("--keep-thinking", o->keep_thinking, "Keep <think> blocks instead of stripping them");
  sub->add_flag("--keep-unfinished", o->keep_unfinished, "Keep answers cut by the token limit (tests, demos)");
  sub->add_flag("--json", args->json, "Print the summary as JSON");
  sub->add_option("--chunk", o->chunk, "Items per batch and ledger flush (tests)")->group("");
  sub->add_option("--question-max-tokens", o->question_max_tokens, "Token limit of a constitution-question request (tests)")
      ->group("");
  set_command_action(*sub, [args] {
    const GenerateDataResult result = generate_data(args->options);
    std::cout << (args->json ? result.summary.dump() : result.line) << "\n";
    std::cout.flush();
    // What was generated is saved and resumable, but the command did not do all it was
    // asked: a script must not take it for success (exit 6, as for a remote failure).
    int64_t failed = result.summary.value("prompts", nlohmann::json::object()).value("failed_requests", int64_t{0});
    for (const char* stage : {"dpo", "reflections", "interactions"}) {
      failed += result.summary.value(stage, nlohmann::json::object()).value("failed", int64_t{0});
    }
    if (failed > 0) {
      throw RemoteError("generate-data: " + std::to_string(failed) + " request(s) failed after their retries (see " +
                        args->options.out + "/*.failures.jsonl); the rest is saved, and --resume retries them");
    }
    return 0;
  });
}

}  // namespace character::pipeline
