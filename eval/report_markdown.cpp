// report.md from report.json (eval/report_markdown.h). Plain CommonMark that
// reads well in a terminal: short tables, rates as percentages with their Wilson
// intervals, and text from the report (prompts, answers, notes) escaped so that
// a model's answer cannot become markup when a forge renders the file.
#include "eval/report_markdown.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <sstream>
#include <vector>

#include "eval/report_format.h"

namespace character::eval {
namespace {

using nlohmann::json;
using namespace report_format;

// One table cell or inline phrase: one line, Markdown's active characters escaped.
// '<' only where it could open an HTML tag or an autolink (before a letter, '/',
// '!' or '?'), so "mean cosine < 0.1" and ">= 0.800" stay readable in a terminal.
std::string md(const std::string& raw, std::size_t limit = 80) {
  const std::string line = one_line(raw, limit);
  std::string out;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    const char next = i + 1 < line.size() ? line[i + 1] : '\0';
    const bool tag = c == '<' && (std::isalpha(static_cast<unsigned char>(next)) || next == '/' || next == '!' || next == '?');
    if (c == '\\' || c == '|' || c == '`' || c == '[' || c == ']' || tag) out += '\\';
    out += c;
  }
  return out;
}

// A 20-character bar for a rate in [0, 1], readable without colour.
std::string bar(const json& rate) {
  if (!rate.is_number()) return "";
  const int filled = static_cast<int>(std::lround(std::clamp(rate.get<double>(), 0.0, 1.0) * 20.0));
  std::string out;
  for (int i = 0; i < 20; ++i) out += i < filled ? "█" : "░";
  return out;
}

std::string per_layer(const json& routing, const json& values, int decimals = 2) {
  std::string out;
  for (std::size_t i = 0; values.is_array() && i < values.size(); ++i)
    out += (i ? ", " : "") + layer_label(routing, i) + " " + fixed(values[i], decimals);
  return out.empty() ? "n/a" : out;
}

void header(std::ostream& out, const json& report) {
  const json& model = get(report, "model");
  const json& persona = get(report, "persona");
  const json& settings = get(report, "settings");
  out << "# Character eval: " << md(text(get(persona, "name"), "?")) << " on " << md(text(get(model, "architecture"), "?"))
      << "\n\n";
  out << "- model: " << md(text(get(model, "dir"), "?"), 200);
  if (get(model, "is_moe") == true)
    out << " (MoE: " << get(model, "moe_layers").size() << " MoE layers × " << integer(get(model, "num_experts"))
        << " experts, top-" << integer(get(model, "top_k")) << ")";
  out << "\n- adapter: " << md(text(get(model, "adapter"), "none (base model)"), 200);
  if (!get(model, "adapter").is_null()) out << " (train_router: " << md(text(get(model, "train_router"), "n/a")) << ")";
  out << "\n- persona: " << md(text(get(persona, "name"), "?")) << " from " << md(text(get(persona, "source"), "?"), 200)
      << "\n";
  std::string variants;
  for (const json& v : get(settings, "variants")) variants += (variants.empty() ? "" : ", ") + text(v);
  out << "- probe: " << integer(get(settings, "samples")) << " samples"
      << (get(settings, "greedy") == true ? " + 1 greedy" : "") << " per prompt variant; variants: "
      << md(variants.empty() ? "none" : variants) << "; scorer: " << md(text(get(settings, "scorer"), "signals")) << "\n";
  out << "- created " << md(text(get(report, "created"), "?")) << " by character " << md(text(get(report, "code_version"), "?"))
      << "\n\n";
}

void gates_section(std::ostream& out, const json& report) {
  const json& gates = get(report, "gates");
  if (!gates.is_object()) return;
  int failed = 0;
  for (const json& g : get(gates, "gates")) failed += text(get(g, "verdict")) == "fail";
  out << "## Gates: " << (get(gates, "passed") == true ? "passed" : "**FAILED** (" + std::to_string(failed) + " failed)")
      << "\n\n| gate | value | threshold | verdict | note |\n|---|---:|---:|---|---|\n";
  for (const json& g : get(gates, "gates")) {
    const std::string verdict = text(get(g, "verdict"));
    out << "| " << md(text(get(g, "name"))) << " | " << fixed(get(g, "value"), 3) << " | " << md(text(get(g, "comparison")))
        << " " << fixed(get(g, "threshold"), 3) << " | " << (verdict == "fail" ? "**FAIL**" : verdict) << " | "
        << md(text(get(g, "note")), 240) << " |\n";
  }
  for (const json& note : get(gates, "notes")) out << "\n> " << md(text(note), 400) << "\n";
  out << "\n";
}

void rates_section(std::ostream& out, const json& report) {
  const json& probe = get(report, "probe");
  const json& overall = get(probe, "overall");
  out << "## In-character rate\n\nOverall: **" << percent(get(overall, "rate")) << "** (" << integer(get(overall, "in_character"))
      << " of " << integer(get(overall, "responses")) << " responses; 95% Wilson interval " << interval(overall)
      << "; neutral " << integer(get(overall, "neutral")) << ")\n\n";
  out << "| category | rate | 95% CI | in character | |\n|---|---:|---:|---:|---|\n";
  for (const json& c : get(probe, "categories"))
    out << "| " << md(text(get(c, "name"))) << " | " << percent(get(c, "rate")) << " | " << interval(c) << " | "
        << integer(get(c, "in_character")) << "/" << integer(get(c, "responses")) << " | " << bar(get(c, "rate")) << " |\n";
  std::string worst;
  for (const json& w : get(probe, "worst_categories")) worst += (worst.empty() ? "" : ", ") + text(w);
  if (!worst.empty()) out << "\nWorst categories: **" << md(worst) << "**\n";
  out << "\n";
}

void paraphrase_section(std::ostream& out, const json& report) {
  const json& paraphrase = get(get(report, "probe"), "paraphrase");
  if (!paraphrase.is_object() || get(paraphrase, "pairs") == 0) {
    out << "## Paraphrases\n\nNo paraphrase variants were probed.\n\n";
    return;
  }
  out << "## Paraphrases\n\nFlip rate: **" << percent(get(paraphrase, "flip_rate")) << "** (" << integer(get(paraphrase, "flips"))
      << " of " << integer(get(paraphrase, "pairs")) << " (prompt, paraphrase) pairs disagree; 95% interval "
      << interval(paraphrase) << ")\n\n";
  const json& by_variant = get(paraphrase, "by_variant");
  if (by_variant.is_object() && !by_variant.empty()) {
    out << "| variant | pairs | flips | flip rate |\n|---|---:|---:|---:|\n";
    for (const auto& [name, v] : by_variant.items())
      out << "| " << md(name) << " | " << integer(get(v, "pairs")) << " | " << integer(get(v, "flips")) << " | "
          << percent(get(v, "flip_rate")) << " |\n";
    out << "\n";
  }
  const json& flipped = get(paraphrase, "flipped");
  constexpr std::size_t kShown = 5;
  if (flipped.is_array() && !flipped.empty()) {
    out << "Flipped pairs" << (flipped.size() > kShown ? " (first " + std::to_string(kShown) + " of " + std::to_string(flipped.size()) + ")" : "")
        << ":\n\n";
    for (std::size_t i = 0; i < flipped.size() && i < kShown; ++i) {
      const std::string a = text(get(flipped[i], "original")), b = text(get(flipped[i], "variant"));
      const std::string pa = prompt_of(report, a), pb = prompt_of(report, b);
      out << "- " << md(a) << (pa.empty() ? "" : " \"" + md(pa, 60) + "\"") << " ↔ " << md(b)
          << (pb.empty() ? "" : " \"" + md(pb, 60) + "\"") << "\n";
    }
    out << "\n";
  }
}

void routing_section(std::ostream& out, const json& report) {
  const json& routing = get(report, "routing");
  if (!routing.is_object()) return;
  out << "## MoE routing\n\n";
  const json& moe_type = get(routing, "moe_type");
  if (moe_type.is_object())
    out << "- MoE type: **" << md(text(get(moe_type, "verdict"), "n/a")) << "** (" << md(text(get(moe_type, "definition")), 200)
        << ")\n";
  const json& utilization = get(routing, "utilization");
  std::string cold;
  for (const json& c : get(utilization, "cold"))
    cold += (cold.empty() ? "" : ", ") + std::string("L") + integer(get(c, "layer")) + " E" + integer(get(c, "expert")) + " (" +
            percent(get(c, "rate")) + ")";
  out << "- Cold experts (< " << percent(get(utilization, "cold_threshold"), 0) << " of positions; uniform would be "
      << percent(get(routing, "uniform_rate")) << "): " << (cold.empty() ? "none" : cold) << "\n";

  const json& coverage = get(routing, "coverage");
  if (coverage.is_object()) {
    out << "- Probe training coverage (experts with ≥ " << integer(get(coverage, "min_loss_tokens")) << " loss tokens): **"
        << percent(get(coverage, "probe_coverage")) << "**; per layer: " << per_layer(routing, get(coverage, "per_layer"), 3)
        << "\n";
    std::string reached;
    for (const json& u : get(coverage, "under_trained"))
      if (get(u, "probe_rate").is_number() && get(u, "probe_rate").get<double>() > 0.0)
        reached += (reached.empty() ? "" : ", ") + std::string("L") + integer(get(u, "layer")) + " E" + integer(get(u, "expert")) +
                   " (" + integer(get(u, "loss_tokens")) + " tokens, " + percent(get(u, "probe_rate")) + " of positions)";
    out << "- Under-trained experts the probe reaches: " << (reached.empty() ? "none" : reached) << "\n";
  } else {
    out << "- Probe training coverage: no coverage.json given\n";
  }

  const json& attribution = get(routing, "attribution");
  if (attribution.is_object()) {
    out << "- Attribution: correlation of under-trained share with in character " << fixed(get(attribution, "correlation"))
        << " (n=" << integer(get(attribution, "n")) << "); mean under-trained share " << fixed(get(attribution, "mean_under_trained_in"))
        << " in character vs " << fixed(get(attribution, "mean_under_trained_out")) << " not\n";
    if (!get(attribution, "per_category").empty()) {
      out << "\n  | category | n | in / out | mean share in | mean share out | correlation |\n"
             "  |---|---:|---:|---:|---:|---:|\n";
      for (const json& c : get(attribution, "per_category"))
        out << "  | " << md(text(get(c, "category"))) << " | " << integer(get(c, "n")) << " | " << integer(get(c, "n_in")) << " / "
            << integer(get(c, "n_out")) << " | " << fixed(get(c, "mean_in")) << " | " << fixed(get(c, "mean_out")) << " | "
            << fixed(get(c, "correlation")) << " |\n";
      out << "\n";
    }
  }
  const json& divergence = get(routing, "paraphrase_divergence");
  if (divergence.is_object()) {
    out << "- Paraphrase routing overlap (Jaccard of expert sets, " << integer(get(divergence, "pairs"))
        << " pairs; 1 = same experts): " << per_layer(routing, get(divergence, "per_layer")) << "\n";
    const json& highlight = get(divergence, "highlight");
    if (highlight.is_object())
      out << "  - \"" << md(text(get(highlight, "a")), 60) << "\" vs \"" << md(text(get(highlight, "b")), 60)
          << "\": " << per_layer(routing, get(highlight, "per_layer")) << "\n";
  }
  const json& drift = get(routing, "drift");
  if (drift.is_object())
    out << "- Drift base → tuned (1 − mean top-k Jaccard, " << integer(get(drift, "positions")) << " positions): "
        << per_layer(routing, get(drift, "per_layer")) << "; top-1 changed: " << per_layer(routing, get(drift, "changed_top1"))
        << "\n";
  else
    out << "- Drift base → tuned: not measured (`character eval --base-routing`)\n";
  for (const json& pair : get(get(routing, "circuits"), "pairs"))
    out << "- Circuit alignment L" << integer(get(pair, "from")) << " → L" << integer(get(pair, "to")) << ": "
        << fixed(get(pair, "alignment")) << " (" << get(pair, "matched").size() << " matched expert pairs)\n";
  out << "\n";
}

void warnings_section(std::ostream& out, const json& report) {
  std::vector<std::string> warnings;
  for (const json& w : get(report, "warnings")) warnings.push_back(text(w));
  for (const json& w : get(get(report, "routing"), "warnings"))
    if (std::find(warnings.begin(), warnings.end(), text(w)) == warnings.end()) warnings.push_back(text(w));
  const json& nan = get(report, "nan");
  if (get(nan, "found") == true) {
    std::string where;
    for (const json& w : get(nan, "where")) where += (where.empty() ? "" : ", ") + text(w);
    warnings.push_back("NaN/Inf found at: " + where);
  }
  if (warnings.empty()) return;
  out << "## Warnings\n\n";
  for (const std::string& w : warnings) out << "- " << md(w, 400) << "\n";
  out << "\n";
}

}  // namespace

std::string render_report_markdown(const nlohmann::json& report) {
  std::ostringstream out;
  header(out, report);
  gates_section(out, report);
  rates_section(out, report);
  paraphrase_section(out, report);
  routing_section(out, report);
  warnings_section(out, report);
  const json& judge = get(report, "judge");
  if (judge.is_object())
    out << "## Judge\n\n" << md(text(get(judge, "model"))) << ": " << integer(get(judge, "calls")) << " calls, "
        << integer(get(judge, "cached")) << " cached. Rubric:\n\n> " << md(text(get(judge, "rubric")), 2000) << "\n\n";
  out << "Per-prompt responses: report.html (or report.json, probe.items).\n";
  return out.str();
}

}  // namespace character::eval
