// report.html from report.json (eval/report_html.h). One file, no network: the
// style sheet and the charts are inline, and a Content-Security-Policy blocks
// every external load. All report text goes through xml_escape. A three-line
// script marks the body once the page has loaded, so the headless-browser check
// (tests/eval/check_report_html.py) can prove scripts ran without error.
#include "eval/report_html.h"

#include <algorithm>
#include <optional>
#include <sstream>
#include <vector>

#include "base/atomic_file.h"
#include "eval/report_format.h"
#include "eval/report_markdown.h"
#include "eval/svg_charts.h"
#include "eval/xml_text.h"

namespace character::eval {
namespace {

using nlohmann::json;
using namespace report_format;

constexpr const char* kStyle = R"css(
:root { --fg: #1a202c; --muted: #5a6473; --bg: #ffffff; --panel: #f5f7fa; --line: #d9dee5;
        --pass: #2f855a; --fail: #c53030; --skip: #8a94a3; --accent: #2b6cb0; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1100px; padding: 24px; color: var(--fg); background: var(--bg);
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
h1 { font-size: 22px; margin: 0 0 6px; } h2 { font-size: 18px; margin: 28px 0 10px; border-bottom: 1px solid var(--line); }
.meta { color: var(--muted); margin: 2px 0; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; min-width: 180px; }
.card .big { font-size: 24px; font-weight: 600; } .card .small { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; margin: 8px 0; } th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: var(--panel); } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: var(--pass); font-weight: 600; } .fail { color: var(--fail); font-weight: 600; } .skip { color: var(--skip); }
.badge { display: inline-block; border-radius: 3px; padding: 0 6px; font-size: 12px; color: #fff; }
.badge.in_character { background: var(--pass); } .badge.out_of_character { background: var(--fail); } .badge.neutral { background: var(--skip); }
.note { background: #fff8e1; border-left: 4px solid #d69e2e; padding: 6px 10px; margin: 6px 0; }
svg.chart { max-width: 100%; height: auto; display: block; margin: 8px 0 16px; }
svg .chart-title { font: 600 13px system-ui, sans-serif; fill: var(--fg); }
svg .label, svg .value, svg .legend { font: 12px system-ui, sans-serif; fill: var(--fg); }
svg .tick { font: 10px system-ui, sans-serif; fill: var(--muted); } svg .cell { font: 10px system-ui, sans-serif; }
svg .grid { stroke: var(--line); stroke-width: 1; } svg .whisker { stroke: var(--fg); stroke-width: 1.5; fill: none; }
svg .threshold { stroke: var(--fail); stroke-width: 1.5; stroke-dasharray: 4 3; } svg .threshold-label { font: 11px system-ui, sans-serif; fill: var(--fail); }
svg .marked { fill: none; stroke: #e53e3e; stroke-width: 2; }
details { border: 1px solid var(--line); border-radius: 4px; margin: 4px 0; padding: 4px 8px; }
summary { cursor: pointer; } pre { white-space: pre-wrap; word-break: break-word; background: var(--panel); padding: 6px 8px; margin: 4px 0; }
.response { margin: 6px 0 10px; } .response .meta { font-size: 12px; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 8px; }
)css";

// Marks the page as rendered after load (the browser check reads data-rendered).
constexpr const char* kScript = R"js(
window.addEventListener('load', function () {
  document.body.dataset.charts = String(document.querySelectorAll('svg.chart').length);
  document.body.dataset.rendered = '1';
});
)js";

std::string h(const std::string& s) { return xml_escape(s); }
std::string hj(const json& j, const char* fallback = "") { return xml_escape(text(j, fallback)); }

std::optional<double> opt(const json& j) {
  if (j.is_number()) return j.get<double>();
  return std::nullopt;
}

std::vector<std::vector<std::optional<double>>> matrix(const json& rows) {
  std::vector<std::vector<std::optional<double>>> out;
  for (const json& row : rows) {
    out.emplace_back();
    for (const json& v : row) out.back().push_back(opt(v));
  }
  return out;
}

std::vector<std::string> layer_labels(const json& routing, std::size_t n) {
  std::vector<std::string> labels;
  for (std::size_t i = 0; i < n; ++i) labels.push_back(layer_label(routing, i));
  return labels;
}

std::string verdict_class(const std::string& verdict) {
  return verdict == "pass" ? "pass" : verdict == "fail" ? "fail" : "skip";
}

void header(std::ostream& out, const json& report) {
  const json& model = get(report, "model");
  const json& persona = get(report, "persona");
  const json& probe = get(report, "probe");
  const json& gates = get(report, "gates");
  out << "<header><h1>Character eval: " << hj(get(persona, "name"), "?") << " on " << hj(get(model, "architecture"), "?") << "</h1>\n";
  out << "<p class=\"meta\">model <code>" << hj(get(model, "dir"), "?") << "</code>";
  if (get(model, "is_moe") == true)
    out << " · MoE, " << get(model, "moe_layers").size() << " MoE layers × " << integer(get(model, "num_experts")) << " experts, top-"
        << integer(get(model, "top_k"));
  out << "</p>\n<p class=\"meta\">adapter <code>" << hj(get(model, "adapter"), "none (base model)") << "</code>";
  if (!get(model, "adapter").is_null()) out << " · train_router: " << hj(get(model, "train_router"), "n/a");
  out << "</p>\n<p class=\"meta\">persona " << hj(get(persona, "name")) << " from " << hj(get(persona, "source"))
      << " · created " << hj(get(report, "created")) << " · character " << hj(get(report, "code_version")) << "</p></header>\n";

  const json& overall = get(probe, "overall");
  const json& paraphrase = get(probe, "paraphrase");
  const json& coverage = get(get(report, "routing"), "coverage");
  out << "<section class=\"cards\">\n";
  out << "<div class=\"card\"><div class=\"small\">gates</div><div class=\"big " << (get(gates, "passed") == true ? "pass\">passed" : "fail\">FAILED")
      << "</div></div>\n";
  out << "<div class=\"card\"><div class=\"small\">in character (overall)</div><div class=\"big\">" << percent(get(overall, "rate"))
      << "</div><div class=\"small\">" << integer(get(overall, "in_character")) << " / " << integer(get(overall, "responses"))
      << " · 95% CI " << h(interval(overall)) << "</div></div>\n";
  out << "<div class=\"card\"><div class=\"small\">paraphrase flip rate</div><div class=\"big\">" << percent(get(paraphrase, "flip_rate"))
      << "</div><div class=\"small\">" << integer(get(paraphrase, "flips")) << " / " << integer(get(paraphrase, "pairs")) << " pairs</div></div>\n";
  if (coverage.is_object())
    out << "<div class=\"card\"><div class=\"small\">probe training coverage</div><div class=\"big\">" << percent(get(coverage, "probe_coverage"))
        << "</div><div class=\"small\">experts with ≥ " << integer(get(coverage, "min_loss_tokens")) << " loss tokens</div></div>\n";
  out << "</section>\n";
}

void gates_section(std::ostream& out, const json& report) {
  const json& gates = get(report, "gates");
  if (!gates.is_object()) return;
  out << "<section id=\"gates\"><h2>Gates</h2>\n<table><tr><th>gate</th><th>value</th><th>threshold</th><th>verdict</th><th>note</th></tr>\n";
  for (const json& g : get(gates, "gates")) {
    const std::string verdict = text(get(g, "verdict"));
    out << "<tr><td>" << hj(get(g, "name")) << "</td><td class=\"num\">" << fixed(get(g, "value"), 3) << "</td><td class=\"num\">"
        << hj(get(g, "comparison")) << " " << fixed(get(g, "threshold"), 3) << "</td><td class=\"" << verdict_class(verdict) << "\">"
        << h(verdict) << "</td><td>" << hj(get(g, "note")) << "</td></tr>\n";
  }
  out << "</table>\n";
  for (const json& note : get(gates, "notes")) out << "<p class=\"note\">" << hj(note) << "</p>\n";
  out << "</section>\n";
}

void categories_section(std::ostream& out, const json& report) {
  const json& probe = get(report, "probe");
  std::vector<std::string> labels;
  BarSeries rates{"", "#2b6cb0", {}, {}};
  for (const json& c : get(probe, "categories")) {
    labels.push_back(text(get(c, "name")) + " (" + integer(get(c, "responses")) + ")");
    rates.values.push_back(opt(get(c, "rate")));
    if (opt(get(c, "ci_low")) && opt(get(c, "ci_high")))
      rates.intervals.push_back(std::make_pair(get(c, "ci_low").get<double>(), get(c, "ci_high").get<double>()));
    else
      rates.intervals.push_back(std::nullopt);
  }
  BarChartOptions options{"In-character rate by category (95% Wilson intervals)", 1.0, true, std::nullopt, ""};
  for (const json& g : get(get(report, "gates"), "gates"))
    if (text(get(g, "name")) == "min_category_rate" && opt(get(g, "threshold"))) {
      options.threshold = get(g, "threshold").get<double>();
      options.threshold_label = "gate " + percent(get(g, "threshold"), 0);
    }
  out << "<section id=\"categories\"><h2>In-character rate</h2>\n" << svg_bar_chart(labels, {rates}, options);
  std::string worst;
  for (const json& w : get(probe, "worst_categories")) worst += (worst.empty() ? "" : ", ") + text(w);
  if (!worst.empty()) out << "<p>Worst categories: <b>" << h(worst) << "</b></p>\n";
  out << "</section>\n";
}

void paraphrase_section(std::ostream& out, const json& report) {
  const json& paraphrase = get(get(report, "probe"), "paraphrase");
  out << "<section id=\"paraphrase\"><h2>Paraphrases</h2>\n";
  if (!paraphrase.is_object() || get(paraphrase, "pairs") == 0) {
    out << "<p>No paraphrase variants were probed.</p></section>\n";
    return;
  }
  out << "<p>Flip rate " << percent(get(paraphrase, "flip_rate")) << " (" << integer(get(paraphrase, "flips")) << " of "
      << integer(get(paraphrase, "pairs")) << " pairs; 95% CI " << h(interval(paraphrase)) << ").</p>\n";
  std::vector<std::string> labels;
  BarSeries flips{"", "#c05621", {}, {}};
  for (const auto& [name, v] : get(paraphrase, "by_variant").items()) {
    labels.push_back(name);
    flips.values.push_back(opt(get(v, "flip_rate")));
  }
  if (!labels.empty()) out << svg_bar_chart(labels, {flips}, {"Flip rate by variant", 1.0, true, std::nullopt, ""});
  out << "<table><tr><th>original</th><th>paraphrase</th></tr>\n";
  for (const json& pair : get(paraphrase, "flipped")) {
    const std::string a = text(get(pair, "original")), b = text(get(pair, "variant"));
    out << "<tr><td><code>" << h(a) << "</code> " << h(prompt_of(report, a)) << "</td><td><code>" << h(b) << "</code> "
        << h(prompt_of(report, b)) << "</td></tr>\n";
  }
  out << "</table></section>\n";
}

// The heatmap cells (row, column) of a report list of {"layer", "expert"} entries,
// rows being the layers as `labels` name them ("L<layer>").
std::vector<std::pair<std::size_t, std::size_t>> marked_cells(const std::vector<std::string>& labels, const json& list) {
  std::vector<std::pair<std::size_t, std::size_t>> cells;
  for (const json& entry : list) {
    if (!get(entry, "expert").is_number()) continue;
    std::string label = "L";
    label += integer(get(entry, "layer"));
    const auto row = std::find(labels.begin(), labels.end(), label);
    if (row != labels.end()) {
      cells.emplace_back(static_cast<std::size_t>(row - labels.begin()), get(entry, "expert").get<std::size_t>());
    }
  }
  return cells;
}

void routing_section(std::ostream& out, const json& report) {
  const json& routing = get(report, "routing");
  if (!routing.is_object()) return;
  out << "<section id=\"routing\"><h2>MoE routing</h2>\n";
  const json& utilization = get(routing, "utilization");
  const auto rates = matrix(get(utilization, "rates"));
  const auto labels = layer_labels(routing, rates.size());
  HeatmapOptions util{"Expert utilization on the probe (uniform " + percent(get(routing, "uniform_rate")) + ")",
                      "utilization", false, true, {}, ""};
  util.marked = marked_cells(labels, get(utilization, "cold"));
  util.marked_label = "cold (< " + percent(get(utilization, "cold_threshold"), 0) + ")";
  out << "<div class=\"grid2\">\n" << svg_heatmap(labels, rates, util);
  if (get(utilization, "training").is_array())
    out << svg_heatmap(labels, matrix(get(utilization, "training")),
                       {"Expert utilization on the training data", "utilization", false, true, {}, ""});
  const json& coverage = get(routing, "coverage");
  if (coverage.is_object()) {
    HeatmapOptions cov{"Training coverage: loss-bearing tokens per expert", "loss tokens", true, false, {}, ""};
    cov.marked = marked_cells(labels, get(coverage, "under_trained"));
    cov.marked_label = "under-trained (< " + integer(get(coverage, "min_loss_tokens")) + " tokens)";
    out << svg_heatmap(labels, matrix(get(coverage, "loss_tokens")), cov);
  }
  out << "</div>\n";
  const json& divergence = get(routing, "paraphrase_divergence");
  if (divergence.is_object()) {
    std::vector<BarSeries> series = {{"all pairs", "#2b6cb0", {}, {}}};
    for (const json& v : get(divergence, "per_layer")) series[0].values.push_back(opt(v));
    const json& highlight = get(divergence, "highlight");
    if (highlight.is_object()) {
      series.push_back({"\"" + text(get(highlight, "a")) + "\" vs \"" + text(get(highlight, "b")) + "\"", "#c05621", {}, {}});
      for (const json& v : get(highlight, "per_layer")) series[1].values.push_back(opt(v));
    }
    out << svg_bar_chart(layer_labels(routing, series[0].values.size()), series,
                         {"Paraphrase routing overlap per layer (Jaccard of expert sets; 1 = same experts)", 1.0, false, std::nullopt, ""});
  }
  const json& drift = get(routing, "drift");
  if (drift.is_object()) {
    std::vector<BarSeries> series = {{"1 − top-k Jaccard", "#6b46c1", {}, {}}, {"top-1 changed", "#d69e2e", {}, {}}};
    for (const json& v : get(drift, "per_layer")) series[0].values.push_back(opt(v));
    for (const json& v : get(drift, "changed_top1")) series[1].values.push_back(opt(v));
    out << svg_bar_chart(layer_labels(routing, series[0].values.size()), series,
                         {"Routing drift base → tuned per layer (" + integer(get(drift, "positions")) + " positions)", 1.0, false,
                          std::nullopt, ""});
    if (get(drift, "expert_churn").is_array()) {
      const auto churn = matrix(get(drift, "expert_churn"));
      out << svg_heatmap(layer_labels(routing, churn.size()), churn,
                         {"Routing drift per expert: share of positions that gained or lost it", "churn", false, true, {}, ""});
    }
  } else {
    out << "<p>Drift base → tuned: not measured (<code>character eval --base-routing</code>).</p>\n";
  }
  const json& attribution = get(routing, "attribution");
  if (attribution.is_object()) {
    out << "<h3>Attribution</h3><p>Correlation of a response's under-trained share with being in character: <b>"
        << fixed(get(attribution, "correlation")) << "</b> (n = " << integer(get(attribution, "n")) << "); mean share "
        << fixed(get(attribution, "mean_under_trained_in")) << " in character vs " << fixed(get(attribution, "mean_under_trained_out"))
        << " not.</p>\n<table><tr><th>category</th><th>n</th><th>in / out</th><th>mean share in</th><th>mean share out</th><th>correlation</th></tr>\n";
    for (const json& c : get(attribution, "per_category"))
      out << "<tr><td>" << hj(get(c, "category")) << "</td><td class=\"num\">" << integer(get(c, "n")) << "</td><td class=\"num\">"
          << integer(get(c, "n_in")) << " / " << integer(get(c, "n_out")) << "</td><td class=\"num\">" << fixed(get(c, "mean_in"))
          << "</td><td class=\"num\">" << fixed(get(c, "mean_out")) << "</td><td class=\"num\">" << fixed(get(c, "correlation")) << "</td></tr>\n";
    out << "</table>\n";
  }
  const json& moe_type = get(routing, "moe_type");
  if (moe_type.is_object()) {
    out << "<h3>MoE type: " << hj(get(moe_type, "verdict"), "n/a") << "</h3><p class=\"meta\">" << hj(get(moe_type, "definition"))
        << "</p>\n<table><tr><th>layer</th><th>rank ratio</th><th>mean cosine</th><th>verdict</th></tr>\n";
    for (const json& l : get(moe_type, "per_layer"))
      out << "<tr><td>L" << integer(get(l, "layer")) << "</td><td class=\"num\">" << fixed(get(l, "rank_ratio")) << "</td><td class=\"num\">"
          << fixed(get(l, "mean_cosine"), 3) << "</td><td>" << hj(get(l, "verdict")) << "</td></tr>\n";
    out << "</table>\n";
  }
  out << "</section>\n";
}

void warnings_section(std::ostream& out, const json& report) {
  std::vector<std::string> warnings;
  for (const json& w : get(report, "warnings")) warnings.push_back(text(w));
  for (const json& w : get(get(report, "routing"), "warnings"))
    if (std::find(warnings.begin(), warnings.end(), text(w)) == warnings.end()) warnings.push_back(text(w));
  if (get(get(report, "nan"), "found") == true) warnings.push_back("NaN/Inf found: " + get(get(report, "nan"), "where").dump());
  if (warnings.empty()) return;
  out << "<section id=\"warnings\"><h2>Warnings</h2>\n";
  for (const std::string& w : warnings) out << "<p class=\"note\">" << h(w) << "</p>\n";
  out << "</section>\n";
}

void responses_section(std::ostream& out, const json& report) {
  const json& items = get(get(report, "probe"), "items");
  out << "<section id=\"responses\"><h2>Responses (" << items.size() << " prompt variants)</h2>\n";
  for (const json& item : items) {
    const bool in = get(item, "in_character") == true;
    out << "<details><summary><span class=\"badge " << (in ? "in_character\">in character" : "out_of_character\">not in character")
        << "</span> <code>" << hj(get(item, "id")) << "</code> " << h(one_line(text(get(item, "prompt")), 100)) << " · "
        << percent(get(item, "in_character_rate"), 0) << "</summary>\n<p class=\"meta\">prompt:</p><pre>" << hj(get(item, "prompt"))
        << "</pre>\n";
    for (const json& r : get(item, "responses")) {
      const std::string verdict = text(get(r, "verdict"));
      std::string signals, anti;
      for (const json& s : get(r, "signals")) signals += (signals.empty() ? "" : ", ") + text(s);
      for (const json& s : get(r, "anti_signals")) anti += (anti.empty() ? "" : ", ") + text(s);
      out << "<div class=\"response\"><div class=\"meta\">sample " << integer(get(r, "sample"))
          << (get(r, "greedy") == true ? " (greedy)" : "") << " · <span class=\"badge " << h(verdict)
          << "\">" << h(verdict) << "</span> · signals " << integer(get(r, "signal_hits"))
          << (signals.empty() ? "" : " (" + h(signals) + ")") << " · anti " << integer(get(r, "anti_signal_hits"))
          << (anti.empty() ? "" : " (" + h(anti) + ")") << " · " << integer(get(r, "tokens")) << " tokens, "
          << hj(get(r, "finish_reason"));
      if (opt(get(r, "under_trained_share"))) out << " · under-trained share " << fixed(get(r, "under_trained_share"));
      const json& judge = get(r, "judge");
      if (judge.is_object()) out << " · judge: " << hj(get(judge, "verdict")) << " (" << hj(get(judge, "reason")) << ")";
      out << "</div><pre>" << hj(get(r, "text")) << "</pre></div>\n";
    }
    out << "</details>\n";
  }
  out << "</section>\n";
}

void settings_section(std::ostream& out, const json& report) {
  out << "<section id=\"settings\"><h2>Settings</h2><pre>" << h(get(report, "settings").dump(2)) << "</pre>\n";
  const json& judge = get(report, "judge");
  if (judge.is_object())
    out << "<h3>Judge</h3><p>" << hj(get(judge, "model")) << ": " << integer(get(judge, "calls")) << " calls, "
        << integer(get(judge, "cached")) << " cached.</p><pre>" << hj(get(judge, "rubric")) << "</pre>\n";
  out << "</section>\n";
}

}  // namespace

std::string render_report_html(const nlohmann::json& report) {
  std::ostringstream out;
  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
         // Nothing leaves the file: no fetch, image, font or frame from anywhere.
         "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
         "script-src 'unsafe-inline'; img-src data:\">\n"
      << "<title>Character eval: " << hj(get(get(report, "persona"), "name"), "?") << "</title>\n<style>" << kStyle
      << "</style>\n</head>\n<body>\n";
  header(out, report);
  gates_section(out, report);
  categories_section(out, report);
  paraphrase_section(out, report);
  routing_section(out, report);
  warnings_section(out, report);
  responses_section(out, report);
  settings_section(out, report);
  out << "<script>" << kScript << "</script>\n</body>\n</html>\n";
  return out.str();
}

void write_report_views(const nlohmann::json& report, const std::filesystem::path& dir) {
  write_file_atomic(dir / "report.md", render_report_markdown(report));
  write_file_atomic(dir / "report.html", render_report_html(report));
}

}  // namespace character::eval
