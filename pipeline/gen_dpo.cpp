#include "pipeline/gen_dpo.h"

#include <algorithm>
#include <future>

#include "personas/persona.h"
#include "pipeline/gen_persona_prompts.h"

namespace character::pipeline {

DpoStageOptions::DpoStageOptions() {
  // Open Character Training samples with temperature 0.7 and top-p 0.95 (section 2).
  for (remote::Sampling* s : {&teacher_sampling, &student_sampling}) {
    s->temperature = 0.7;
    s->top_p = 0.95;
    s->max_tokens = 512;
  }
  rejected_filter.check_identity = false;
}

remote::ChatRequest chosen_request(const std::string& system_prompt, const std::string& prompt,
                                   const DpoStageOptions& options) {
  remote::ChatRequest r;
  r.messages = {{"system", system_prompt}, {"user", prompt}};
  r.sampling = options.teacher_sampling;
  r.sampling.seed = derive_seed(options.seed, "chosen\x1f" + prompt);
  return r;
}

remote::ChatRequest rejected_request(const std::string& prompt, const DpoStageOptions& options) {
  remote::ChatRequest r;
  r.messages = {{"user", prompt}};
  r.sampling = options.student_sampling;
  r.sampling.seed = derive_seed(options.seed, "rejected\x1f" + prompt);
  return r;
}

StageReport run_dpo_stage(const personas::Persona& persona, const std::vector<PromptItem>& prompts,
                          remote::CompletionBackend& teacher, remote::CompletionBackend& student,
                          const DpoStageOptions& options, const std::filesystem::path& out_dir,
                          DropCounter& drops, const StageProgress& progress) {
  static const std::string kStage = "dpo";
  Ledger ledger(out_dir / "dpo.ledger.jsonl");
  StageReport report;
  report.stage = kStage;
  report.resumed = ledger.resumed();
  const std::string system_prompt = constitution_system_prompt(persona);
  const ResponseFilter chosen_filter(options.chosen_filter);
  const ResponseFilter rejected_filter(options.rejected_filter);

  std::vector<std::size_t> todo;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    if (!ledger.finished(item_key(kStage, i))) todo.push_back(i);
  }
  std::size_t finished = prompts.size() - todo.size();
  if (progress) progress(kStage, finished, prompts.size());
  const std::size_t chunk = std::max<std::size_t>(options.chunk, 1);
  for (std::size_t begin = 0; begin < todo.size(); begin += chunk) {
    stop_if_requested(options.stop, ledger, kStage, finished, prompts.size());
    const std::size_t end = std::min(todo.size(), begin + chunk);
    std::vector<remote::ChatRequest> chosen_requests, rejected_requests;
    for (std::size_t k = begin; k < end; ++k) {
      chosen_requests.push_back(chosen_request(system_prompt, prompts[todo[k]].prompt, options));
      rejected_requests.push_back(rejected_request(prompts[todo[k]].prompt, options));
    }
    // The teacher is remote and the student usually local: ask both at once.
    remote::BatchOptions teacher_batch, student_batch;
    teacher_batch.stage = "dpo_chosen";
    student_batch.stage = "dpo_rejected";
    auto chosen_future = std::async(std::launch::async, [&] { return teacher.complete_chat_batch(chosen_requests, teacher_batch); });
    std::vector<remote::Result> rejected;
    try {
      rejected = student.complete_chat_batch(rejected_requests, student_batch);
    } catch (...) {
      chosen_future.wait();  // the teacher thread references this frame
      throw;
    }
    const std::vector<remote::Result> chosen = chosen_future.get();

    for (std::size_t k = begin; k < end; ++k) {
      const std::size_t i = todo[k];
      const std::string key = item_key(kStage, i);
      const remote::Result& c = chosen[k - begin];
      const remote::Result& r = rejected[k - begin];
      if (!c.ok()) {
        ledger.record(failed_entry(key, i, "teacher", *c.failure));
        continue;
      }
      if (!r.ok()) {
        ledger.record(failed_entry(key, i, "student", *r.failure));
        continue;
      }
      LedgerEntry entry;
      entry.key = key;
      entry.index = i;
      const auto& chosen_choice = c.response->choices.front();
      const auto& rejected_choice = r.response->choices.front();
      const FilterVerdict cv = chosen_filter.apply(chosen_choice.text, chosen_choice.finish_reason);
      const FilterVerdict rv = rejected_filter.apply(rejected_choice.text, rejected_choice.finish_reason);
      if (!cv.kept || !rv.kept) {
        const bool chosen_dropped = !cv.kept;
        entry.status = ItemStatus::kDropped;
        entry.reason = chosen_dropped ? "chosen: " + cv.reason : "rejected: " + rv.reason;
        entry.detail = {{"filter", chosen_dropped ? "dpo_chosen" : "dpo_rejected"},
                        {"drop", chosen_dropped ? cv.reason : rv.reason}};
      } else {
        const PromptItem& p = prompts[i];
        entry.row = {{"prompt", p.prompt},         {"chosen", cv.text},
                     {"rejected", rv.text},        {"category", p.category},
                     {"source", p.source},         {"teacher_model", teacher.model_id()},
                     {"student_model", student.model_id()}, {"persona", persona.name},
                     {"id", key}};
        nlohmann::json truncated = nlohmann::json::array();
        if (cv.truncated) truncated.push_back("dpo_chosen");
        if (rv.truncated) truncated.push_back("dpo_rejected");
        if (!truncated.empty()) entry.detail = {{"truncated", truncated}};
      }
      ledger.record(entry);
      ++finished;
    }
    if (progress) progress(kStage, finished, prompts.size());
  }
  report.counts = finalize_stage(ledger, out_dir / "dpo.jsonl", out_dir / "dpo.failures.jsonl");
  tally_drops(ledger, kStage, drops);
  return report;
}

}  // namespace character::pipeline
