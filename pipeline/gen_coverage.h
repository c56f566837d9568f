// Coverage-guided DPO prompts (`--coverage-augment`, docs/data.md): from a pool
// `pool_factor` times the usual size plus phrasing variants of its prompts, pick
// the prompts whose routes through the local MoE student cover the (layer, expert)
// pairs the persona's probe prompts reach (router_train/coverage_augment.h).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "pipeline/gen_prompts.h"
#include "router_train/coverage_augment.h"

namespace character::personas {
struct Persona;
}

namespace character::pipeline {

struct CoverageAugmentOptions {
  std::filesystem::path student_dir;   // the local MoE student (required)
  std::filesystem::path adapter_dir;   // its adapter, when the student carries one
  std::string device = "cpu";
  std::string dtype;
  int64_t batch_size = 16;             // prompts per footprint forward
  int variants_per_prompt = 2;         // phrasing variants added per pool prompt
  int64_t min_count = 1;               // slots that make a target pair covered
  uint64_t seed = 0;
};

struct CoverageAugmentResult {
  std::vector<PromptItem> prompts;  // the picked ones, in pick order
  std::size_t pool = 0;             // pool prompts given
  std::size_t variants = 0;         // phrasing variants added to them
  std::size_t probe_prompts = 0;    // probe items whose footprint is the target
  router_train::AugmentSelection selection;

  // generation.json's prompts.coverage: target_pairs, covered_before, covered_after, ...
  nlohmann::json to_json() const;
  // "[prompts] coverage: 41/48 probe (layer, expert) pairs covered (random pick: 35) ..."
  std::string line() const;
};

// Before any work: ConfigError unless the student is a local directory of an MoE
// model (its config.json is read, not its weights).
void check_coverage_student(const std::string& student_dir, const std::string& student_url);

// The pool's number of prompts for `count` picked ones: ceil(count · factor).
// ConfigError for a factor below 1.
std::size_t coverage_pool_size(std::size_t count, double pool_factor);

// Picks `count` prompts (fewer only when the candidates run out) from `pool` plus
// its phrasing variants (a variant whose normalised text is already a candidate is
// skipped, as build_prompt_set deduplicates), by their routes through the student.
// Target: the persona's probe items (eval/probe_set.h, originals and paraphrase
// variants: what eval runs). Variants keep their prompt's category, with source
// "variant". The student is loaded here, and freed on return. ConfigError when no
// student is given or it is dense.
CoverageAugmentResult coverage_augment_prompts(const personas::Persona& persona, const std::vector<PromptItem>& pool,
                                               std::size_t count, const CoverageAugmentOptions& options);

}  // namespace character::pipeline
