// Verdicts from signal counts and the probe aggregates (eval/scoring.h).
#include "eval/scoring.h"

#include <tbb/parallel_for.h>

#include <algorithm>
#include <set>
#include <utility>

#include "base/error.h"
#include "eval/probe_set.h"

namespace character::eval {

const char* to_string(Verdict verdict) {
  switch (verdict) {
    case Verdict::kInCharacter: return "in_character";
    case Verdict::kOutOfCharacter: return "out_of_character";
    case Verdict::kNeutral: return "neutral";
  }
  return "neutral";
}

std::optional<Verdict> parse_verdict(std::string_view name) {
  for (Verdict v : {Verdict::kInCharacter, Verdict::kOutOfCharacter, Verdict::kNeutral}) {
    if (name == to_string(v)) return v;
  }
  return std::nullopt;
}

Verdict verdict_from_counts(std::size_t signal_hits, std::size_t anti_signal_hits, const ScoringOptions& options) {
  if (options.min_signal_hits < 1) {
    throw ConfigError("min_signal_hits=" + std::to_string(options.min_signal_hits) +
                      ", expected >= 1 (with 0 an answer without any signal could be in character)");
  }
  const auto min_signal = static_cast<std::size_t>(options.min_signal_hits);
  if (signal_hits >= min_signal && signal_hits > anti_signal_hits) return Verdict::kInCharacter;
  if (anti_signal_hits > 0 && anti_signal_hits >= signal_hits) return Verdict::kOutOfCharacter;
  return Verdict::kNeutral;
}

double score_from_counts(std::size_t signal_hits, std::size_t anti_signal_hits) {
  const std::size_t total = signal_hits + anti_signal_hits;
  return total == 0 ? 0.0 : static_cast<double>(signal_hits) / static_cast<double>(total);
}

SignalScore score_response(const personas::SignalMatcher& matcher, std::string_view text,
                           const ScoringOptions& options) {
  const auto hits = matcher.find(text);
  const auto counts = personas::SignalMatcher::count(hits);
  SignalScore score;
  score.signal_hits = counts.signal_hits;
  score.anti_signal_hits = counts.anti_signal_hits;
  std::set<std::string> seen_signals, seen_anti;
  for (const auto& hit : hits) {
    // A keyword or phrase is named as the profile writes it; a regex or a class by
    // what it matched, which says more than the pattern ("arrr", "😊").
    const bool literal = hit.kind == personas::TermKind::kKeyword || hit.kind == personas::TermKind::kPhrase;
    std::string name = literal ? hit.term : std::string(text.substr(hit.offset, hit.length));
    const bool signal = hit.polarity == personas::Polarity::kSignal;
    auto& seen = signal ? seen_signals : seen_anti;
    if (seen.insert(name).second) (signal ? score.signals : score.anti_signals).push_back(std::move(name));
  }
  score.verdict = verdict_from_counts(score.signal_hits, score.anti_signal_hits, options);
  score.score = score_from_counts(score.signal_hits, score.anti_signal_hits);
  return score;
}

std::vector<SignalScore> score_responses(const personas::SignalMatcher& matcher, const std::vector<std::string>& texts,
                                         const ScoringOptions& options) {
  verdict_from_counts(0, 0, options);  // reject bad options on this thread, before the workers
  std::vector<SignalScore> scores(texts.size());
  tbb::parallel_for(std::size_t{0}, texts.size(),
                    [&](std::size_t i) { scores[i] = score_response(matcher, texts[i], options); });
  return scores;
}

nlohmann::json to_json(const SignalScore& score) {
  return {{"signal_hits", score.signal_hits}, {"anti_signal_hits", score.anti_signal_hits},
          {"signals", score.signals},         {"anti_signals", score.anti_signals},
          {"verdict", to_string(score.verdict)}, {"score", score.score}};
}

// --- aggregation --------------------------------------------------------------

RateWithInterval rate_with_interval(std::int64_t k, std::int64_t n) {
  RateWithInterval r;
  r.n = n;
  r.k = k;
  r.interval = wilson_interval(k, n);  // validates 0 <= k <= n
  if (n > 0) r.rate = static_cast<double>(k) / static_cast<double>(n);
  return r;
}

ProbeSummary summarize_probe(const std::vector<ItemVerdicts>& items, const SummaryOptions& options) {
  ProbeSummary summary;
  std::map<std::string, std::size_t> index_of;  // item id → position
  std::map<std::string, std::size_t> original_of;  // base id → position of its original
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (!index_of.emplace(items[i].id, i).second)
      throw ConfigError("probe item \"" + items[i].id + "\" appears twice, expected unique item ids");
    if (items[i].variant == kOriginalVariant) original_of[items[i].base_id] = i;
  }

  // Per item: the majority verdict.
  std::vector<std::string> category_order;
  std::map<std::string, CategoryResult> categories;
  std::int64_t responses = 0, in_character = 0;
  for (const auto& item : items) {
    ItemResult result;
    result.id = item.id;
    result.responses = static_cast<std::int64_t>(item.verdicts.size());
    std::int64_t neutral = 0;
    for (Verdict v : item.verdicts) {
      result.in_character_responses += v == Verdict::kInCharacter;
      neutral += v == Verdict::kNeutral;
    }
    if (result.responses > 0) {
      result.in_character_rate =
          static_cast<double>(result.in_character_responses) / static_cast<double>(result.responses);
      result.in_character = 2 * result.in_character_responses > result.responses;  // strict majority
    }
    auto [it, fresh] = categories.try_emplace(item.category);
    if (fresh) {
      it->second.name = item.category;
      category_order.push_back(item.category);
    }
    it->second.variants += 1;
    it->second.neutral += neutral;
    it->second.responses.n += result.responses;
    it->second.responses.k += result.in_character_responses;
    responses += result.responses;
    in_character += result.in_character_responses;
    summary.neutral += neutral;
    summary.items.push_back(std::move(result));
  }
  for (const auto& name : category_order) {
    CategoryResult c = categories[name];
    c.responses = rate_with_interval(c.responses.k, c.responses.n);
    summary.categories.push_back(std::move(c));
  }
  summary.overall = rate_with_interval(in_character, responses);

  // Paraphrase flips: an original and one of its variants disagree on the majority.
  std::int64_t pairs = 0, flips = 0;
  for (std::size_t i = 0; i < items.size(); ++i) {
    const auto& item = items[i];
    if (item.variant == kOriginalVariant) continue;
    const auto original = original_of.find(item.base_id);
    if (original == original_of.end()) {
      throw ConfigError("probe item \"" + item.id + "\": its original \"" + item.base_id +
                        "/original\" is missing, expected every variant beside its original");
    }
    const ItemResult& a = summary.items[original->second];
    const ItemResult& b = summary.items[i];
    if (a.responses == 0 || b.responses == 0) continue;  // nothing to compare
    auto& by_variant = summary.paraphrase.by_variant[item.variant];
    ++pairs;
    ++by_variant.pairs;
    if (a.in_character != b.in_character) {
      ++flips;
      ++by_variant.flips;
      summary.paraphrase.flipped.push_back({item.base_id, item.id, a.in_character, b.in_character});
    }
  }
  summary.paraphrase.flips = rate_with_interval(flips, pairs);

  // Worst categories: below the overall rate, lowest first.
  if (summary.overall.rate) {
    std::vector<const CategoryResult*> below;
    for (const auto& c : summary.categories) {
      if (c.responses.rate && *c.responses.rate < *summary.overall.rate) below.push_back(&c);
    }
    std::sort(below.begin(), below.end(), [](const CategoryResult* a, const CategoryResult* b) {
      return std::pair(*a->responses.rate, a->name) < std::pair(*b->responses.rate, b->name);
    });
    for (std::size_t i = 0; i < below.size() && i < options.max_worst_categories; ++i)
      summary.worst_categories.push_back(below[i]->name);
  }
  return summary;
}

namespace {

nlohmann::json optional_json(const std::optional<double>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

// "rate", "ci_low", "ci_high" of a count, null when it has no trials.
void put_rate(nlohmann::json& out, const RateWithInterval& r) {
  out["rate"] = optional_json(r.rate);
  out["ci_low"] = r.interval ? nlohmann::json(r.interval->low) : nlohmann::json(nullptr);
  out["ci_high"] = r.interval ? nlohmann::json(r.interval->high) : nlohmann::json(nullptr);
}

}  // namespace

nlohmann::json to_json(const ProbeSummary& summary) {
  nlohmann::json categories = nlohmann::json::array();
  for (const auto& c : summary.categories) {
    nlohmann::json j = {{"name", c.name},
                        {"variants", c.variants},
                        {"responses", c.responses.n},
                        {"in_character", c.responses.k},
                        {"neutral", c.neutral}};
    put_rate(j, c.responses);
    categories.push_back(std::move(j));
  }
  nlohmann::json overall = {{"responses", summary.overall.n},
                            {"in_character", summary.overall.k},
                            {"neutral", summary.neutral},
                            {"confidence", 0.95},
                            {"interval", "wilson"}};
  put_rate(overall, summary.overall);

  const auto& p = summary.paraphrase;
  nlohmann::json paraphrase = {{"pairs", p.flips.n}, {"flips", p.flips.k}};
  paraphrase["flip_rate"] = optional_json(p.flips.rate);
  paraphrase["ci_low"] = p.flips.interval ? nlohmann::json(p.flips.interval->low) : nlohmann::json(nullptr);
  paraphrase["ci_high"] = p.flips.interval ? nlohmann::json(p.flips.interval->high) : nlohmann::json(nullptr);
  nlohmann::json by_variant = nlohmann::json::object();
  for (const auto& [name, v] : p.by_variant) {
    by_variant[name] = {{"pairs", v.pairs},
                        {"flips", v.flips},
                        {"flip_rate", v.pairs > 0 ? nlohmann::json(static_cast<double>(v.flips) / v.pairs)
                                                  : nlohmann::json(nullptr)}};
  }
  paraphrase["by_variant"] = std::move(by_variant);
  nlohmann::json flipped = nlohmann::json::array();
  for (const auto& f : p.flipped) {
    flipped.push_back({{"original", f.original},
                       {"variant", f.variant},
                       {"original_in_character", f.original_in_character},
                       {"variant_in_character", f.variant_in_character}});
  }
  paraphrase["flipped"] = std::move(flipped);

  return {{"categories", std::move(categories)},
          {"overall", std::move(overall)},
          {"paraphrase", std::move(paraphrase)},
          {"worst_categories", summary.worst_categories}};
}

}  // namespace character::eval
