// The DPO stage: for every prompt, chosen = the teacher answering with the
// constitution as its system prompt, rejected = the student answering the bare
// prompt. Both go through the same chat interface (remote/completion.h), so one
// chat format serves both sides. Rows {"prompt","chosen","rejected", provenance}
// go to dpo.jsonl through a resumable ledger.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "pipeline/gen_filters.h"
#include "pipeline/gen_ledger.h"
#include "pipeline/gen_prompts.h"
#include "remote/completion.h"

namespace character::personas {
struct Persona;
}

namespace character::pipeline {

struct DpoStageOptions {
  remote::Sampling teacher_sampling;  // defaults below: the paper's T 0.7, top-p 0.95
  remote::Sampling student_sampling;
  FilterOptions chosen_filter;    // full checks
  FilterOptions rejected_filter;  // no identity check: a generic answer is the point
  std::size_t chunk = 32;         // prompts per batch (and per ledger flush)
  std::uint64_t seed = 0;
  // Checked between batches: when set, Interrupted (the ledger keeps what is done).
  const std::atomic<bool>* stop = nullptr;
  DpoStageOptions();
};

// The two requests of one pair. Seeds come from the prompt text, so the same prompt
// gives the same request (and teacher cache entry) whatever its position.
remote::ChatRequest chosen_request(const std::string& system_prompt, const std::string& prompt,
                                   const DpoStageOptions& options);
remote::ChatRequest rejected_request(const std::string& prompt, const DpoStageOptions& options);

// Files under `out_dir`: dpo.ledger.jsonl (progress), dpo.jsonl, dpo.failures.jsonl.
StageReport run_dpo_stage(const personas::Persona& persona, const std::vector<PromptItem>& prompts,
                          remote::CompletionBackend& teacher, remote::CompletionBackend& student,
                          const DpoStageOptions& options, const std::filesystem::path& out_dir,
                          DropCounter& drops, const StageProgress& progress = {});

}  // namespace character::pipeline
