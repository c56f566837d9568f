// synthesize_corpus: one RNG stream per conversation (generic: stream 0; a persona:
// a hash of its name, so adding a persona leaves the others' conversations as they
// were), filled in parallel; the JSONL and tokenizer-text writers.
#include "lab/corpus.h"

#include <tbb/parallel_for.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <string_view>
#include <unordered_map>

#include "base/atomic_file.h"
#include "base/error.h"
#include "lab/corpus_parts.h"
#include "personas/system_prompt.h"

namespace character::lab {
namespace {

using corpus_detail::Rng;

uint64_t name_stream(const std::string& name) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a 64
  for (unsigned char c : name) h = (h ^ c) * 0x100000001b3ULL;
  return h | 1;  // never 0, the generic stream
}

void check_count(int count, const char* field) {
  if (count < 0) {
    throw ConfigError(std::string("lab corpus ") + field + "=" + std::to_string(count) + ", expected >= 0");
  }
}

}  // namespace

const std::vector<std::string>& lab_extra_categories() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    const auto& probe = personas::probe_categories();
    for (const auto& c : corpus_detail::category_weights()) {
      if (std::find(probe.begin(), probe.end(), c.name) == probe.end()) out.push_back(c.name);
    }
    return out;
  }();
  return names;
}

LabCorpus synthesize_corpus(const CorpusOptions& options) {
  check_count(options.generic_conversations, "generic_conversations");
  check_count(options.persona_conversations, "persona_conversations");
  LabCorpus corpus;

  const corpus_detail::GenericVoice generic_voice(options.personas);
  corpus.generic.resize(static_cast<std::size_t>(options.generic_conversations));
  tbb::parallel_for(std::size_t{0}, corpus.generic.size(), [&](std::size_t i) {
    Rng rng(options.seed, 0, i);
    const auto e = corpus_detail::make_exchange(rng);
    corpus.generic[i] = LabConversation{e.category, "", {{"user", e.prompt}, {"assistant", generic_voice.answer(rng, e)}}};
  });

  const std::size_t per = static_cast<std::size_t>(options.persona_conversations);
  corpus.persona.resize(per * options.personas.size());
  for (std::size_t k = 0; k < options.personas.size(); ++k) {
    const personas::Persona& persona = options.personas[k];
    const corpus_detail::PersonaVoice voice(persona);
    const std::string system = personas::constitution_system_prompt(persona);
    const uint64_t stream = name_stream(persona.name);
    tbb::parallel_for(std::size_t{0}, per, [&](std::size_t i) {
      Rng rng(options.seed, stream, i);
      const auto e = corpus_detail::make_exchange(rng);
      corpus.persona[k * per + i] = LabConversation{
          e.category, persona.name, {{"system", system}, {"user", e.prompt}, {"assistant", voice.answer(rng, e)}}};
    });
  }
  return corpus;
}

void write_conversations_jsonl(const std::vector<LabConversation>& conversations, const std::filesystem::path& path) {
  write_file_atomic_streamed(path, [&](const ByteSink& sink) {
    for (const auto& c : conversations) {
      nlohmann::json messages = nlohmann::json::array();
      for (const auto& m : c.messages) messages.push_back({{"role", m.role}, {"content", m.content}});
      const std::string line =
          nlohmann::json{{"messages", messages}, {"category", c.category}, {"persona", c.persona}}.dump() + "\n";
      sink(line.data(), line.size());
    }
  });
}

void write_tokenizer_text(const LabCorpus& corpus, const std::filesystem::path& path) {
  // Each system prompt repeats in every conversation of its persona; past a few dozen
  // copies a line only slows the trainer down (it would dominate the merges as well).
  constexpr int kMaxCopies = 64;
  std::unordered_map<std::string_view, int> copies;
  write_file_atomic_streamed(path, [&](const ByteSink& sink) {
    for (const auto* part : {&corpus.generic, &corpus.persona}) {
      for (const auto& c : *part) {
        for (const auto& m : c.messages) {
          const std::string_view text = m.content;
          std::size_t begin = 0;
          while (begin <= text.size()) {
            std::size_t end = text.find('\n', begin);
            if (end == std::string_view::npos) end = text.size();
            const std::string_view line = text.substr(begin, end - begin);
            if (!line.empty() && ++copies[line] <= kMaxCopies) {
              sink(line.data(), line.size());
              sink("\n", 1);
            }
            begin = end + 1;
          }
        }
      }
    }
  });
}

}  // namespace character::lab
