// The lab's synthetic conversation corpus (docs/lab.md): prompts over the eight
// probe categories and more (greetings, advice, arithmetic, definitions, ...) with
// varied phrasing (politeness, case, punctuation, length), each answered twice:
// in a generic assistant voice with the usual chatbot markers (emoji, "Of course!",
// "happy to help") and, for every persona given, in that persona's voice, built
// from its file (signal keywords and phrases, examples, cues), under the
// constitution system prompt of personas/system_prompt.h. Deterministic for a seed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "model/text/chat.h"
#include "personas/persona.h"

namespace character::lab {

struct CorpusOptions {
  uint64_t seed = 0;
  int generic_conversations = 2000;      // no system prompt, generic voice
  int persona_conversations = 400;       // per persona: constitution system prompt, persona voice
  std::vector<personas::Persona> personas;
};

struct LabConversation {
  std::string category;  // a probe category (personas::probe_categories()) or one of lab_extra_categories()
  std::string persona;   // persona name; empty for the generic voice
  std::vector<model::ChatMessage> messages;  // [system], user, assistant (one exchange)
};

struct LabCorpus {
  std::vector<LabConversation> generic;  // what the student is pretrained on
  std::vector<LabConversation> persona;  // what the teacher adds to the generic part
};

// Categories the corpus covers beyond the eight probe categories.
const std::vector<std::string>& lab_extra_categories();

// The corpus. Thread-parallel (oneTBB) where it helps; the result does not depend
// on the thread count. ConfigError for negative counts.
LabCorpus synthesize_corpus(const CorpusOptions& options);

// One {"messages": [...], "category": ..., "persona": ...} row per conversation,
// the format lora::load_sft_jsonl reads; written to PATH.tmp and renamed.
void write_conversations_jsonl(const std::vector<LabConversation>& conversations,
                               const std::filesystem::path& path);

// Every message text of the corpus, one line per message (newlines inside a
// message kept as "\n" escapes are NOT wanted: the text is split on newlines),
// the input the SentencePiece trainer reads. A line repeated more than 64 times
// (a persona's system prompt) is written 64 times: its weight stays large without
// slowing the trainer down.
void write_tokenizer_text(const LabCorpus& corpus, const std::filesystem::path& path);

}  // namespace character::lab
