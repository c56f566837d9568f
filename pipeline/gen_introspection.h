// The introspection stages (Open Character Training, section 2.3): reflections,
// the ten introspective prompts sampled many times, and self-interactions, two
// copies of the character talking for K turns with roles swapped so that each side
// sees itself as the assistant. Sampled with the constitution in the system prompt,
// saved without it ({"messages": [...]} SFT rows), so training teaches the
// character unprompted.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "pipeline/gen_filters.h"
#include "pipeline/gen_ledger.h"
#include "pipeline/gen_persona_prompts.h"
#include "remote/completion.h"

namespace character::personas {
struct Persona;
}

namespace character::pipeline {

struct IntrospectionOptions {
  remote::Sampling sampling;  // the paper's T 0.7, top-p 0.95; max_tokens 1024
  FilterOptions filter;
  std::size_t chunk = 64;     // requests per batch
  std::uint64_t seed = 0;
  bool system_prompt = true;  // sample with the constitution as system prompt
  // Checked between batches: when set, Interrupted (the ledger keeps what is done).
  const std::atomic<bool>* stop = nullptr;
  IntrospectionOptions();
};

// --- reflections ---------------------------------------------------------------

// Item i asks reflection prompt i % 10 (sample i / 10); its cache_salt is its key,
// so repeated samples of one prompt are independent answers, each cached.
remote::ChatRequest reflection_request(const personas::Persona& persona, std::size_t item,
                                       const IntrospectionOptions& options);

// Files: reflections.ledger.jsonl, reflections.jsonl, reflections.failures.jsonl.
StageReport run_reflections(const personas::Persona& persona, remote::CompletionBackend& model, std::size_t count,
                            const IntrospectionOptions& options, const std::filesystem::path& out_dir,
                            DropCounter& drops, const StageProgress& progress = {});

// --- self-interactions -----------------------------------------------------------

// Utterance j of a transcript is spoken by side j % 2 (side 0 opens). What `side`
// sees before writing the next utterance: its system prompt, then every utterance,
// its own as "assistant" and the other's as "user".
std::vector<remote::Message> interaction_view(const std::string& system_prompt,
                                              const std::vector<std::string>& utterances, int side);

// The SFT messages of a transcript from the answering side's view (side 1): the
// opener and side 0's turns are "user", side 1's are "assistant"; no system prompt.
nlohmann::json interaction_messages(const std::vector<std::string>& utterances);

// Transcript t: "free" when t is even, "leading" when odd; its opener is drawn from
// the variant's list by a seed derived from t.
InteractionVariant interaction_variant(std::size_t transcript);
std::string interaction_opener(std::size_t transcript, std::uint64_t seed);

// Files: interactions.ledger.jsonl, interactions.jsonl, interactions.failures.jsonl.
// `turns` utterances per transcript, the opener included. A transcript is dropped
// when any of its turns is.
StageReport run_interactions(const personas::Persona& persona, remote::CompletionBackend& model, std::size_t count,
                             int turns, const IntrospectionOptions& options, const std::filesystem::path& out_dir,
                             DropCounter& drops, const StageProgress& progress = {});

}  // namespace character::pipeline
