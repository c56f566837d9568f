#include "pipeline/gen_introspection.h"

#include <algorithm>

#include "base/error.h"
#include "personas/persona.h"

namespace character::pipeline {

namespace {

// The SFT row's provenance fields.
nlohmann::json provenance(const personas::Persona& persona, const remote::CompletionBackend& model,
                          const std::string& kind, const std::string& key) {
  return {{"kind", kind}, {"persona", persona.name}, {"model", model.model_id()}, {"id", key}};
}

std::vector<std::size_t> unfinished(const Ledger& ledger, const std::string& prefix, std::size_t count) {
  std::vector<std::size_t> todo;
  for (std::size_t i = 0; i < count; ++i) {
    if (!ledger.finished(item_key(prefix, i))) todo.push_back(i);
  }
  return todo;
}

}  // namespace

IntrospectionOptions::IntrospectionOptions() {
  sampling.temperature = 0.7;
  sampling.top_p = 0.95;
  sampling.max_tokens = 1024;
}

remote::ChatRequest reflection_request(const personas::Persona& persona, std::size_t item,
                                       const IntrospectionOptions& options) {
  const auto& prompts = reflection_prompts();
  remote::ChatRequest r;
  if (options.system_prompt) r.messages.push_back({"system", constitution_system_prompt(persona)});
  r.messages.push_back({"user", prompts[item % prompts.size()]});
  r.sampling = options.sampling;
  r.cache_salt = item_key("reflection", item);
  r.sampling.seed = derive_seed(options.seed, r.cache_salt);
  return r;
}

StageReport run_reflections(const personas::Persona& persona, remote::CompletionBackend& model, std::size_t count,
                            const IntrospectionOptions& options, const std::filesystem::path& out_dir,
                            DropCounter& drops, const StageProgress& progress) {
  static const std::string kStage = "reflections", kPrefix = "reflection";
  Ledger ledger(out_dir / "reflections.ledger.jsonl");
  StageReport report;
  report.stage = kStage;
  report.resumed = ledger.resumed();
  const ResponseFilter filter(options.filter);
  const std::vector<std::size_t> todo = unfinished(ledger, kPrefix, count);
  std::size_t finished = count - todo.size();
  if (progress) progress(kStage, finished, count);
  const std::size_t chunk = std::max<std::size_t>(options.chunk, 1);
  for (std::size_t begin = 0; begin < todo.size(); begin += chunk) {
    stop_if_requested(options.stop, ledger, kStage, finished, count);
    const std::size_t end = std::min(todo.size(), begin + chunk);
    std::vector<remote::ChatRequest> requests;
    for (std::size_t k = begin; k < end; ++k) requests.push_back(reflection_request(persona, todo[k], options));
    remote::BatchOptions batch;
    batch.stage = kStage;
    const auto results = model.complete_chat_batch(requests, batch);
    for (std::size_t k = begin; k < end; ++k) {
      const std::size_t i = todo[k];
      const std::string key = item_key(kPrefix, i);
      const remote::Result& result = results[k - begin];
      if (!result.ok()) {
        ledger.record(failed_entry(key, i, "model", *result.failure));
        continue;
      }
      const auto& choice = result.response->choices.front();
      const FilterVerdict verdict = filter.apply(choice.text, choice.finish_reason);
      LedgerEntry entry;
      entry.key = key;
      entry.index = i;
      if (!verdict.kept) {
        entry.status = ItemStatus::kDropped;
        entry.reason = verdict.reason;
      } else {
        const std::string& prompt = requests[k - begin].messages.back().content;
        entry.row = provenance(persona, model, "reflection", key);
        entry.row["messages"] = nlohmann::json::array(
            {{{"role", "user"}, {"content", prompt}}, {{"role", "assistant"}, {"content", verdict.text}}});
        entry.row["prompt_index"] = i % reflection_prompts().size();
        if (verdict.truncated) entry.detail = {{"truncated", nlohmann::json::array({kStage})}};
      }
      ledger.record(entry);
      ++finished;
    }
    if (progress) progress(kStage, finished, count);
  }
  report.counts = finalize_stage(ledger, out_dir / "reflections.jsonl", out_dir / "reflections.failures.jsonl");
  tally_drops(ledger, kStage, drops);
  return report;
}

std::vector<remote::Message> interaction_view(const std::string& system_prompt,
                                              const std::vector<std::string>& utterances, int side) {
  std::vector<remote::Message> messages;
  if (!system_prompt.empty()) messages.push_back({"system", system_prompt});
  for (std::size_t j = 0; j < utterances.size(); ++j) {
    const bool own = static_cast<int>(j % 2) == side;
    messages.push_back({own ? "assistant" : "user", utterances[j]});
  }
  return messages;
}

nlohmann::json interaction_messages(const std::vector<std::string>& utterances) {
  nlohmann::json messages = nlohmann::json::array();
  for (const auto& m : interaction_view("", utterances, /*side=*/1)) {
    messages.push_back({{"role", m.role}, {"content", m.content}});
  }
  return messages;
}

InteractionVariant interaction_variant(std::size_t transcript) {
  return transcript % 2 == 0 ? InteractionVariant::kFree : InteractionVariant::kLeading;
}

std::string interaction_opener(std::size_t transcript, std::uint64_t seed) {
  const auto& openers = interaction_openers(interaction_variant(transcript));
  const auto pick = static_cast<std::uint64_t>(derive_seed(seed, item_key("opener", transcript)));
  return openers[pick % openers.size()];
}

StageReport run_interactions(const personas::Persona& persona, remote::CompletionBackend& model, std::size_t count,
                             int turns, const IntrospectionOptions& options, const std::filesystem::path& out_dir,
                             DropCounter& drops, const StageProgress& progress) {
  static const std::string kStage = "interactions", kPrefix = "interaction";
  if (turns < 2) throw ConfigError("interactions: turns " + std::to_string(turns) + ", expected ≥ 2");
  Ledger ledger(out_dir / "interactions.ledger.jsonl");
  StageReport report;
  report.stage = kStage;
  report.resumed = ledger.resumed();
  const ResponseFilter filter(options.filter);
  const std::string system[2] = {interaction_system_prompt(persona, InteractionVariant::kFree),
                                 interaction_system_prompt(persona, InteractionVariant::kLeading)};
  const std::vector<std::size_t> todo = unfinished(ledger, kPrefix, count);
  std::size_t finished = count - todo.size();
  if (progress) progress(kStage, finished, count);
  const std::size_t chunk = std::max<std::size_t>(options.chunk, 1);

  struct Transcript {
    std::size_t index = 0;
    std::vector<std::string> utterances;
    std::vector<std::string> truncated;  // turns cut at a hallucinated speaker line
    bool live = true;                    // not yet failed or dropped
    LedgerEntry outcome;                 // set when it stops early
  };
  for (std::size_t begin = 0; begin < todo.size(); begin += chunk) {
    stop_if_requested(options.stop, ledger, kStage, finished, count);
    const std::size_t end = std::min(todo.size(), begin + chunk);
    std::vector<Transcript> group;
    for (std::size_t k = begin; k < end; ++k) {
      Transcript t;
      t.index = todo[k];
      t.utterances.push_back(interaction_opener(t.index, options.seed));
      group.push_back(std::move(t));
    }
    // Turn by turn across the group, so each batch holds one request per live transcript.
    for (int turn = 1; turn < turns; ++turn) {
      std::vector<remote::ChatRequest> requests;
      std::vector<Transcript*> asked;
      for (auto& t : group) {
        if (!t.live) continue;
        const std::string key = item_key(kPrefix, t.index);
        const int variant = interaction_variant(t.index) == InteractionVariant::kFree ? 0 : 1;
        remote::ChatRequest r;
        r.messages = interaction_view(options.system_prompt ? system[variant] : "", t.utterances, turn % 2);
        r.sampling = options.sampling;
        r.cache_salt = key + "-turn-" + std::to_string(turn);
        r.sampling.seed = derive_seed(options.seed, r.cache_salt);
        requests.push_back(std::move(r));
        asked.push_back(&t);
      }
      if (requests.empty()) break;
      remote::BatchOptions batch;
      batch.stage = kStage;
      const auto results = model.complete_chat_batch(requests, batch);
      for (std::size_t q = 0; q < asked.size(); ++q) {
        Transcript& t = *asked[q];
        const std::string key = item_key(kPrefix, t.index);
        if (!results[q].ok()) {
          t.live = false;
          t.outcome = failed_entry(key, t.index, "model", *results[q].failure);
          continue;
        }
        const auto& choice = results[q].response->choices.front();
        const FilterVerdict verdict = filter.apply(choice.text, choice.finish_reason);
        if (!verdict.kept) {
          t.live = false;
          t.outcome.key = key;
          t.outcome.index = t.index;
          t.outcome.status = ItemStatus::kDropped;
          t.outcome.reason = "turn " + std::to_string(turn) + ": " + verdict.reason;
          t.outcome.detail = {{"drop", verdict.reason}};
          continue;
        }
        if (verdict.truncated) t.truncated.push_back(kStage);
        t.utterances.push_back(verdict.text);
      }
    }
    for (auto& t : group) {
      if (!t.live) {
        ledger.record(t.outcome);
      } else {
        LedgerEntry entry;
        entry.key = item_key(kPrefix, t.index);
        entry.index = t.index;
        entry.row = provenance(persona, model, "interaction", entry.key);
        entry.row["variant"] = interaction_variant_name(interaction_variant(t.index));
        entry.row["messages"] = interaction_messages(t.utterances);
        if (!t.truncated.empty()) entry.detail = {{"truncated", t.truncated}};
        ledger.record(entry);
      }
      finished += t.outcome.status != ItemStatus::kFailed || t.live;
    }
    if (progress) progress(kStage, finished, count);
  }
  report.counts = finalize_stage(ledger, out_dir / "interactions.jsonl", out_dir / "interactions.failures.jsonl");
  tally_drops(ledger, kStage, drops);
  return report;
}

}  // namespace character::pipeline
