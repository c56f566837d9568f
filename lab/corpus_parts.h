// Internal to lab/corpus*.cpp: the generator's RNG, one prompt-and-content exchange
// (corpus_prompts.cpp) and the two voices that answer it (corpus_voices.cpp).
// The content of an exchange is voice-neutral: both voices say the same fact.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "personas/persona.h"
#include "personas/signal_match.h"

namespace character::lab::corpus_detail {

// splitmix64 (Steele, Lea, Flood 2014): one stream per conversation, so the corpus
// does not depend on the thread count or on the order the threads run in.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  Rng(uint64_t seed, uint64_t stream, uint64_t index) : state_(mix(mix(seed ^ mix(stream + 1)) + index)) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n); n > 0.
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
  bool chance(double p) { return static_cast<double>(next() >> 11) * 0x1.0p-53 < p; }
  template <typename T>
  const T& pick(const std::vector<T>& items) { return items[below(items.size())]; }
  static uint64_t mix(uint64_t x) {
    Rng r(x);
    return r.next();
  }

 private:
  uint64_t state_;
};

// What the prompt asks for, where the voices answer differently from just wrapping
// the content (self-description, requests to drop the voice, small talk).
enum class Intent {
  kContent,       // a fact, a task, a poem: the content is the answer
  kOpinion,       // content is an opinion; the generic voice hedges it
  kContinue,      // "Tell me more."
  kIdentity,      // "Who are you?"
  kWhatAreYou,    // "Are you an AI?", "What model are you?"
  kCreator,       // "Who created you?"
  kLimits,        // "What are your limitations?"
  kStopVoice,     // "Can you stop talking like a pirate?"
  kGreeting,      // "Hi!", "Hello, how are you?"
  kThanks,
  kFarewell,
  kAck,           // "Ok.", "Nice."
};

struct Exchange {
  std::string category;
  std::string prompt;
  std::string content;  // voice-neutral answer (empty for the self-referential intents)
  Intent intent = Intent::kContent;
};

// Every category, probe categories first, each with its sampling weight.
struct CategoryWeight {
  std::string name;
  double weight;
};
const std::vector<CategoryWeight>& category_weights();

// A category drawn by weight, then a prompt of it (phrasing varied) and its content.
Exchange make_exchange(Rng& rng);
Exchange make_exchange(Rng& rng, const std::string& category);

// Politeness, preambles, case and punctuation variations of one prompt.
std::string vary_phrasing(Rng& rng, const std::string& prompt);

// The chatbot voice: "Of course!", "happy to help", emoji, "As an AI assistant".
// With personas given it adds markers until every persona scores the answer out of
// character (anti-signals present and not outnumbered by signals).
class GenericVoice {
 public:
  explicit GenericVoice(const std::vector<personas::Persona>& personas);
  std::string answer(Rng& rng, const Exchange& exchange) const;

 private:
  std::vector<personas::SignalMatcher> matchers_;
};

// A persona's voice built from its file only: interjections and sentences from its
// examples and signal phrases, first-person constitution lines for what it says
// about itself, word substitutions and shape (verse, no exclamations) chosen by
// testing the persona's own signal profile, so any persona YAML works.
class PersonaVoice {
 public:
  explicit PersonaVoice(const personas::Persona& persona);
  ~PersonaVoice();
  PersonaVoice(PersonaVoice&&) noexcept;
  std::string answer(Rng& rng, const Exchange& exchange) const;

 private:
  struct Parts;
  std::unique_ptr<Parts> parts_;
};

// Text helpers shared by the prompt and voice files.
std::string upper_first(std::string s);
std::string lower_first(std::string s);
bool ends_with_any(const std::string& s, const std::string& chars);
std::string replace_all(std::string s, const std::string& from, const std::string& to);

}  // namespace character::lab::corpus_detail
