// Sanity check of a built lab: held-out prompts come from the corpus generator run
// with another seed, keeping only prompts the training corpus does not contain, a
// few per category; answers are greedy (no sampling noise) and short.
#include "lab/lab_sanity.h"

#include <torch/torch.h>

#include <map>
#include <set>

#include "base/atomic_file.h"
#include "base/error.h"
#include "base/json_read.h"
#include "base/log.h"
#include "lab/corpus.h"
#include "model/arch/generate.h"
#include "model/text/chat.h"
#include "model/text/tokenizer.h"
#include "personas/persona.h"
#include "personas/signal_match.h"
#include "personas/system_prompt.h"

namespace character::lab {

namespace {

namespace fs = std::filesystem;

// The user prompts of a corpus file written by write_conversations_jsonl.
void collect_user_prompts(const fs::path& file, std::set<std::string>& prompts) {
  for (const auto& line : read_jsonl_lines(file)) {
    const auto row = try_parse_json(line).value_or(nlohmann::json());
    if (!row.is_object() || !row.contains("messages")) {
      throw FormatError(file.string() + ": a row without \"messages\", expected the lab corpus format");
    }
    for (const auto& m : row["messages"])
      if (m.value("role", "") == "user") prompts.insert(m.value("content", ""));
  }
}

// Up to `count` user prompts that the training corpus does not hold, taken round-robin
// over categories so that every kind of prompt is represented.
std::vector<std::pair<std::string, std::string>> held_out_prompts(const LabPaths& paths, const SanityOptions& o) {
  std::set<std::string> seen;
  collect_user_prompts(paths.corpus / "generic.jsonl", seen);
  collect_user_prompts(paths.corpus / "persona.jsonl", seen);
  CorpusOptions co;
  co.seed = o.seed ^ 0x5a17'c0de'0000'0001ULL;  // another seed: other combinations of the templates
  co.generic_conversations = 40 * o.prompts;
  co.persona_conversations = 0;
  const LabCorpus other = synthesize_corpus(co);
  std::map<std::string, std::vector<std::string>> by_category;
  for (const auto& c : other.generic) {
    for (const auto& m : c.messages) {
      if (m.role != "user" || seen.count(m.content)) continue;
      seen.insert(m.content);
      by_category[c.category].push_back(m.content);
    }
  }
  std::vector<std::pair<std::string, std::string>> out;  // (category, prompt)
  for (size_t round = 0; static_cast<int>(out.size()) < o.prompts; ++round) {
    bool any = false;
    for (const auto& [category, prompts] : by_category) {
      if (round >= prompts.size() || static_cast<int>(out.size()) >= o.prompts) continue;
      out.emplace_back(category, prompts[round]);
      any = true;
    }
    if (!any) break;
  }
  if (out.empty()) throw ConfigError("lab sanity check: the corpus generator gave no prompt outside the training corpus");
  return out;
}

struct Setup {
  std::string name;
  fs::path model_dir;
  bool system_prompt;
};

std::vector<std::string> answers(const fs::path& model_dir, const std::vector<std::string>& prompts,
                                 const std::string& system, const SanityOptions& o) {
  const auto model = model::load_model(model_dir);
  model->eval();
  const auto tokenizer = model::load_tokenizer(model_dir);
  const auto renderer = model::make_chat_renderer(model::detect_chat_family(model_dir));
  std::vector<std::vector<model::TokenId>> ids;
  for (const auto& p : prompts) {
    std::vector<model::ChatMessage> chat;
    if (!system.empty()) chat.push_back({"system", system});
    chat.push_back({"user", p});
    ids.push_back(tokenizer->encode(renderer->render(chat, {}).text, /*add_special_tokens=*/false));
  }
  model::GenerationOptions g;
  g.max_new_tokens = o.max_new_tokens;
  g.sampling.do_sample = false;  // greedy
  g.stop_token_ids = model::default_stop_token_ids(model_dir, *tokenizer, renderer.get());
  std::vector<std::string> texts;
  for (auto& r : model::generate(*model, tokenizer.get(), ids, g)) texts.push_back(std::move(r.text));
  return texts;
}

}  // namespace

nlohmann::json run_sanity_check(const LabPaths& paths, const SanityOptions& o) {
  const personas::Persona persona = personas::find_persona(o.persona);
  const personas::SignalMatcher matcher(persona.signals);
  const auto held = held_out_prompts(paths, o);
  std::vector<std::string> prompts;
  for (const auto& [category, prompt] : held) prompts.push_back(prompt);

  const std::string constitution = personas::constitution_system_prompt(persona);
  const std::vector<std::pair<std::string, std::vector<std::string>>> runs = {
      {"teacher_in_persona", answers(paths.teacher, prompts, constitution, o)},
      {"teacher_no_system", answers(paths.teacher, prompts, "", o)},
      {"student", answers(paths.student, prompts, "", o)}};

  nlohmann::json out{{"persona", persona.name}, {"prompts", prompts.size()}, {"max_new_tokens", o.max_new_tokens}};
  for (const auto& [name, texts] : runs) {
    int64_t in = 0;
    for (const auto& t : texts) {
      // eval/scoring.h's verdict: at least one signal and more signals than anti-signals.
      const auto c = matcher.count(t);
      if (c.signal_hits >= 1 && c.signal_hits > c.anti_signal_hits) ++in;
    }
    const double rate = static_cast<double>(in) / static_cast<double>(texts.size());
    out[name] = {{"in_character", in}, {"n", texts.size()}, {"rate", rate}};
  }
  nlohmann::json samples = nlohmann::json::array();
  for (size_t i = 0; i < held.size() && i < 4; ++i) {
    samples.push_back({{"category", held[i].first}, {"prompt", held[i].second},
                       {"teacher_in_persona", runs[0].second[i]}, {"teacher_no_system", runs[1].second[i]},
                       {"student", runs[2].second[i]}});
  }
  out["samples"] = samples;
  const double teacher_rate = out["teacher_in_persona"]["rate"].get<double>();
  if (teacher_rate < o.warn_below) {
    out["warning"] = "the teacher answers in persona on only " + std::to_string(static_cast<int>(teacher_rate * 100)) +
                     "% of held-out prompts under the " + persona.name + " constitution";
  }
  return out;
}

}  // namespace character::lab
