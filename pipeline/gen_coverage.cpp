// Coverage-guided DPO prompts (pipeline/gen_coverage.h): candidates, the probe's
// footprint as the target, the greedy cover, and the summary.
#include "pipeline/gen_coverage.h"

#include <cmath>
#include <cstdio>
#include <unordered_set>

#include "base/error.h"
#include "eval/probe_set.h"
#include "lora/adapter_file.h"
#include "model/arch/causal_lm.h"
#include "model/io/config.h"
#include "model/text/chat.h"
#include "model/text/tokenizer.h"
#include "personas/persona.h"

namespace character::pipeline {

nlohmann::json CoverageAugmentResult::to_json() const {
  return {{"target_pairs", selection.target_pairs},
          {"covered_before", selection.covered_before},
          {"covered_after", selection.covered_after},
          {"pool", pool},
          {"variants", variants},
          {"candidates", pool + variants},
          {"picked", prompts.size()},
          {"probe_prompts", probe_prompts}};
}

std::string CoverageAugmentResult::line() const {
  std::size_t picked_variants = 0;
  for (const auto& p : prompts) picked_variants += p.source == "variant" ? 1 : 0;
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "[prompts] coverage: %lld/%lld probe (layer, expert) pairs covered (a random pick covers %lld); "
                "%zu picked of %zu candidates (%zu variants, %zu of them picked)",
                static_cast<long long>(selection.covered_after), static_cast<long long>(selection.target_pairs),
                static_cast<long long>(selection.covered_before), prompts.size(), pool + variants, variants,
                picked_variants);
  return buf;
}

void check_coverage_student(const std::string& student_dir, const std::string& student_url) {
  if (student_dir.empty()) {
    throw ConfigError("--coverage-augment needs a local MoE student (--student DIR): routes come from its forward pass; got " +
                      (student_url.empty() ? std::string("no student") : "--student-url " + student_url));
  }
  const auto config = model::load_config(std::filesystem::path(student_dir) / "config.json");
  if (!config.is_moe()) {
    throw ConfigError("--coverage-augment: the student " + student_dir + " is dense (model_type " + config.model_type +
                      "), expected an MoE model");
  }
}

std::size_t coverage_pool_size(std::size_t count, double pool_factor) {
  if (!(pool_factor >= 1.0) || !std::isfinite(pool_factor)) {
    throw ConfigError("coverage_pool_factor " + std::to_string(pool_factor) + ", expected a number ≥ 1");
  }
  return static_cast<std::size_t>(std::ceil(static_cast<double>(count) * pool_factor));
}

CoverageAugmentResult coverage_augment_prompts(const personas::Persona& persona, const std::vector<PromptItem>& pool,
                                               std::size_t count, const CoverageAugmentOptions& options) {
  check_coverage_student(options.student_dir.string(), "");
  // Candidates: the pool, then the variants of each pool prompt whose normalised
  // text is new (the dedupe build_prompt_set applies).
  CoverageAugmentResult result;
  result.pool = pool.size();
  std::vector<PromptItem> candidates = pool;
  std::unordered_set<std::string> seen;
  for (const auto& p : pool) seen.insert(normalize_prompt(p.prompt));
  for (std::size_t i = 0; i < pool.size() && options.variants_per_prompt > 0; ++i) {
    int added = 0;
    // Ask for more than needed: case- or punctuation-only variants normalise away.
    for (auto& v : router_train::phrasing_variants(pool[i].prompt, options.seed + i, 4 * options.variants_per_prompt)) {
      if (added >= options.variants_per_prompt) break;
      if (!seen.insert(normalize_prompt(v)).second) continue;
      candidates.push_back({std::move(v), pool[i].category, "variant"});
      ++added;
    }
  }
  result.variants = candidates.size() - pool.size();

  model::LoadOptions load;
  load.device = options.device;
  load.dtype = options.dtype;
  const model::CausalLM student = model::load_model(options.student_dir, load);
  student->eval();
  std::shared_ptr<lora::Adapters> adapters;
  if (!options.adapter_dir.empty()) adapters = lora::load_adapter(student, lora::read_adapter(options.adapter_dir));
  const auto tokenizer = model::load_tokenizer(options.student_dir);
  const auto renderer = model::make_chat_renderer(model::detect_chat_family(options.student_dir));
  model::ChatOptions chat;
  chat.enable_thinking = false;  // as the probe asks (eval/probe_run.cpp)

  // Target: what eval's probe will ask of this persona.
  eval::ProbeSetOptions probe_options;
  probe_options.persona = &persona;
  const eval::ProbeSet probe = eval::build_probe_set(probe_options);
  std::vector<std::string> probe_prompts;
  for (const auto& item : probe.items) probe_prompts.push_back(item.prompt);
  result.probe_prompts = probe_prompts.size();
  const auto target = router_train::sum_footprints(
      router_train::route_footprints(student, *tokenizer, *renderer, probe_prompts, options.batch_size, chat));

  std::vector<std::string> texts;
  for (const auto& c : candidates) texts.push_back(c.prompt);
  const auto footprints = router_train::route_footprints(student, *tokenizer, *renderer, texts, options.batch_size, chat);
  router_train::AugmentOptions augment;
  augment.budget = std::min(count, candidates.size());
  augment.min_count = options.min_count;
  augment.seed = options.seed;
  result.selection = router_train::select_covering_prompts(footprints, target, augment);
  for (const auto i : result.selection.picked) result.prompts.push_back(candidates[i]);
  return result;
}

}  // namespace character::pipeline
