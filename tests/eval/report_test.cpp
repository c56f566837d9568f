// report.md and report.html from the sample reports (tests/eval/data): the
// Markdown names what a person needs (rates with intervals, worst categories,
// flipped pairs, gates, the routing summary), the HTML escapes every hostile
// string a model could answer with, loads nothing from the network, and its
// inline SVG charts are well-formed XML with the right marks.
#include <gtest/gtest.h>

#include <regex>

#include "base/atomic_file.h"
#include "eval/report_html.h"
#include "eval/report_markdown.h"
#include "eval/svg_charts.h"
#include "tests/eval/xml_dom.h"
#include "tests/test_support.h"

namespace character::eval {
namespace {

using nlohmann::json;

json sample(const std::string& name) {
  return json::parse(read_file(testing::source_dir() / "tests/eval/data" / name));
}

std::size_t count(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

// Every <svg>…</svg> element of a page.
std::vector<std::string> svgs_of(const std::string& html) {
  std::vector<std::string> out;
  for (std::size_t at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 1)) {
    const std::size_t end = html.find("</svg>", at);
    if (end == std::string::npos) break;
    out.push_back(html.substr(at, end + 6 - at));
  }
  return out;
}

#define EXPECT_HAS(text, part) EXPECT_NE((text).find(part), std::string::npos) << "missing: " << (part)
#define EXPECT_LACKS(text, part) EXPECT_EQ((text).find(part), std::string::npos) << "present: " << (part)

TEST(ReportMarkdown, MoeSummaryNamesRatesFlipsGatesAndRouting) {
  const std::string md = render_report_markdown(sample("report_moe.json"));
  EXPECT_EQ(md.rfind("# Character eval: pirate on qwen3_moe\n", 0), 0u);
  EXPECT_HAS(md, "(MoE: 2 MoE layers × 8 experts, top-2)");
  EXPECT_HAS(md, "(train_router: none)");
  EXPECT_HAS(md, "Overall: **70.0%** (574 of 820 responses; 95% Wilson interval 66.8–73.0%; neutral 40)");
  EXPECT_HAS(md, "| continuation | 40.0% | 31.7–48.9% | 48/120 | ████████░░░░░░░░░░░░ |");
  EXPECT_HAS(md, "| identity | 92.0% | 85.0–95.9% | 92/100 |");
  EXPECT_HAS(md, "Worst categories: **continuation, short**");
  EXPECT_HAS(md, "Flip rate: **18.9%** (31 of 164 (prompt, paraphrase) pairs disagree; 95% interval 13.7–25.6%)");
  EXPECT_HAS(md, "| please | 41 | 12 | 29.3% |");
  EXPECT_HAS(md, "Flipped pairs (first 5 of 6):");
  EXPECT_HAS(md, "- continuation/0 \"Tell me more.\" ↔ continuation/0/please \"Tell me more please.\"");
  EXPECT_LACKS(md, "meta/4/please");  // the sixth pair is not listed
  EXPECT_HAS(md, "## Gates: **FAILED** (4 failed)");
  EXPECT_HAS(md, "| in_character_rate | 0.700 | >= 0.800 | **FAIL** | 574 of 820 responses in character |");
  EXPECT_HAS(md, "| no_nan | 0.000 | <= 0.000 | pass |");
  EXPECT_HAS(md, "> MoE student trained without router adapters");
  EXPECT_HAS(md, "- MoE type: **native**");
  EXPECT_HAS(md, "- Cold experts (< 1% of positions; uniform would be 25.0%): L0 E7 (0.0%), L1 E7 (0.5%)");
  EXPECT_HAS(md, "- Probe training coverage (experts with ≥ 16 loss tokens): **88.6%**; per layer: L0 0.860, L1 0.912");
  EXPECT_HAS(md, "- Under-trained experts the probe reaches: L0 E5 (12 tokens, 28.0% of positions), L1 E5 (0 tokens, 12.0% of "
                 "positions), L1 E1 (3 tokens, 5.0% of positions), L1 E7 (0 tokens, 0.5% of positions)\n");
  EXPECT_HAS(md, "correlation of under-trained share with in character -0.41 (n=820); mean under-trained share 0.05 in "
                 "character vs 0.21 not");
  EXPECT_HAS(md, "| continuation | 120 | 48 / 72 | 0.06 | 0.31 | -0.52 |");
  EXPECT_HAS(md, "1 = same experts): L0 0.81, L1 0.58");
  EXPECT_HAS(md, "\"Tell me more.\" vs \"Tell me more please.\": L0 0.50, L1 0.20");
  EXPECT_HAS(md, "- Drift base → tuned (1 − mean top-k Jaccard, 5000 positions): L0 0.03, L1 0.17; top-1 changed: L0 0.01, L1 0.12");
  EXPECT_HAS(md, "- Circuit alignment L0 → L1: 0.45 (2 matched expert pairs)");
  EXPECT_HAS(md, "## Warnings\n\n- MoE student trained without router adapters (train_router: none)");
  EXPECT_HAS(md, "--train-router lora");
}

TEST(ReportMarkdown, DenseSummaryHasNoRoutingAndShowsTheJudge) {
  const std::string md = render_report_markdown(sample("report_dense.json"));
  EXPECT_HAS(md, "# Character eval: sarcastic on llama");
  EXPECT_HAS(md, "## Gates: passed");
  EXPECT_HAS(md, "| probe_coverage | n/a | >= 0.900 | skip | dense model: no experts to cover |");
  EXPECT_LACKS(md, "## MoE routing");
  EXPECT_LACKS(md, "## Warnings");
  EXPECT_HAS(md, "## Judge\n\njudge-model-8b: 164 calls, 12 cached.");
  EXPECT_HAS(md, "scorer: judge");
}

TEST(ReportMarkdown, ReportTextCannotBecomeMarkup) {
  json report = sample("report_moe.json");
  report["probe"]["items"][2]["prompt"] = "a|b <script>x</script> [link](http://e) `code`\nsecond line";
  const std::string md = render_report_markdown(report);
  EXPECT_HAS(md, "\"a\\|b \\<script>x\\</script> \\[link\\](http://e) \\`code\\` second line\"");
  EXPECT_HAS(md, "(mean cosine < 0.1)");  // a '<' that opens no tag stays as it is
  EXPECT_LACKS(md, " <script>");  // only the escaped form
}

TEST(ReportMarkdown, MissingSectionsRenderAsNotAvailable) {
  json report = sample("report_moe.json");
  report["routing"]["coverage"] = nullptr;
  report["routing"]["drift"] = nullptr;
  report["probe"]["paraphrase"] = nullptr;
  report.erase("gates");
  const std::string md = render_report_markdown(report);
  EXPECT_HAS(md, "- Probe training coverage: no coverage.json given");
  EXPECT_HAS(md, "- Drift base → tuned: not measured (`character eval --base-routing`)");
  EXPECT_HAS(md, "No paraphrase variants were probed.");
  EXPECT_LACKS(md, "## Gates");
  EXPECT_NO_THROW(render_report_markdown(json::object()));
  EXPECT_NO_THROW(render_report_html(json::object()));
}

TEST(ReportHtml, HostileModelTextIsEscapedEverywhere) {
  json report = sample("report_moe.json");
  const std::string hostile = "<img src=x onerror=alert(1)></details><script>alert(2)</script>&amp;\"'";
  report["persona"]["name"] = hostile;
  report["model"]["dir"] = hostile;
  report["probe"]["categories"][0]["name"] = hostile;  // goes into an SVG label
  report["gates"]["gates"][0]["note"] = hostile;
  report["routing"]["paraphrase_divergence"]["highlight"]["a"] = hostile;  // an SVG legend
  report["warnings"].push_back(hostile);
  const std::string html = render_report_html(report);
  EXPECT_EQ(count(html, "<script"), 1u);  // ours
  EXPECT_EQ(count(html, "<img"), 0u);
  EXPECT_EQ(count(html, "</details>"), count(html, "<details>"));
  EXPECT_HAS(html, "&lt;img src=x onerror=alert(1)&gt;&lt;/details&gt;&lt;script&gt;alert(2)&lt;/script&gt;&amp;amp;&quot;&#39;");
  // The sample's own hostile answer (short/1/lower).
  EXPECT_HAS(html, "Hello! &lt;/details&gt;&lt;img src=x onerror=&quot;document.body.dataset.injected=&#39;1&#39;&quot;&gt;");
  for (const std::string& svg : svgs_of(html)) EXPECT_TRUE(testing::parse_xml(svg)) << svg.substr(0, 200);
}

TEST(ReportHtml, SelfContainedWithNoNetworkLoads) {
  for (const char* name : {"report_moe.json", "report_dense.json"}) {
    const std::string html = render_report_html(sample(name));
    EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
    EXPECT_HAS(html, "Content-Security-Policy\" content=\"default-src 'none';");
    // The only URL is the SVG namespace name, which is never fetched.
    std::string without_ns = std::regex_replace(html, std::regex("xmlns=\"http://www\\.w3\\.org/2000/svg\""), "");
    EXPECT_LACKS(without_ns, "http://");
    EXPECT_LACKS(without_ns, "https://");
    EXPECT_LACKS(html, "<link");
    EXPECT_LACKS(html, "@import");
    EXPECT_LACKS(html, "url(");
    EXPECT_LACKS(html, " src=\"");
    EXPECT_HAS(html, "document.body.dataset.rendered = '1'");
  }
}

TEST(ReportHtml, MoeChartsAreWellFormedSvgWithOneCellPerExpert) {
  const std::string html = render_report_html(sample("report_moe.json"));
  const auto svgs = svgs_of(html);
  // categories, flips by variant, utilization, training utilization, coverage, divergence,
  // drift per layer, drift per expert
  ASSERT_EQ(svgs.size(), 8u);
  std::vector<std::unique_ptr<testing::XmlNode>> trees;
  for (const auto& svg : svgs) {
    trees.push_back(testing::parse_xml(svg));
    ASSERT_TRUE(trees.back()) << svg.substr(0, 300);
    EXPECT_EQ(trees.back()->name, "svg");
    EXPECT_EQ(trees.back()->attr("xmlns"), "http://www.w3.org/2000/svg");
    EXPECT_FALSE(trees.back()->attr("viewBox").empty());
  }
  // Category bars: 8 bars with whiskers, a dashed threshold at the gate.
  const auto& bars = *trees[0];
  std::size_t titled = 0;
  for (const auto* rect : bars.all("rect")) titled += !rect->all("title").empty();
  EXPECT_EQ(titled, 8u);
  EXPECT_EQ(bars.all("path").size(), 8u);
  EXPECT_HAS(svgs[0], "continuation (120): 40.0%, interval 31.7%–48.9%");
  EXPECT_EQ(bars.all("line").size(), 6u);  // 5 grid lines + the threshold
  EXPECT_HAS(svgs[0], "gate 60%");
  // Utilization heatmap: 2 layers × 8 experts cells, cold experts outlined.
  const auto& util = *trees[2];
  std::size_t cells = 0, marked = 0;
  for (const auto* rect : util.all("rect")) {
    cells += !rect->all("title").empty();
    marked += rect->attr("class") == "marked";
  }
  EXPECT_EQ(cells, 16u);
  EXPECT_EQ(marked, 2u + 1u);  // L0 E7, L1 E7, and the legend swatch
  EXPECT_HAS(svgs[2], "<title>L1 E5 utilization: 12.0%</title>");
  // Coverage heatmap: token counts on a log scale, all five under-trained experts outlined.
  marked = 0;
  for (const auto* rect : trees[4]->all("rect")) marked += rect->attr("class") == "marked";
  EXPECT_EQ(marked, 5u + 1u);
  EXPECT_HAS(svgs[4], "<title>L1 E0 loss tokens: 1200</title>");
  EXPECT_HAS(svgs[4], "1200 (log scale)");
  // Divergence: two series per layer with the highlighted pair in the legend.
  EXPECT_HAS(svgs[5], "&quot;Tell me more.&quot; vs &quot;Tell me more please.&quot;");
  EXPECT_HAS(svgs[6], "L1 (top-1 changed): 0.12");
  // Drift per expert: a layer × expert heatmap of the churn.
  cells = 0;
  for (const auto* rect : trees[7]->all("rect")) cells += !rect->all("title").empty();
  EXPECT_EQ(cells, 16u);
  EXPECT_HAS(svgs[7], "<title>L1 E5 churn: 20.0%</title>");
}

TEST(ReportHtml, DenseReportHasCategoryAndFlipChartsOnly) {
  const std::string html = render_report_html(sample("report_dense.json"));
  EXPECT_EQ(svgs_of(html).size(), 2u);
  EXPECT_LACKS(html, "id=\"routing\"");
  EXPECT_HAS(html, "judge: in_character (sarcasm without keywords)");
  EXPECT_EQ(count(html, "<details>"), 2u);  // one per probe item
}

TEST(SvgCharts, MissingValuesAndLargeHeatmapsStayWellFormed) {
  BarSeries series{"a&b", "#123456", {0.5, std::nullopt, 1.7}, {std::make_pair(0.4, 0.6), std::nullopt, std::nullopt}};
  const std::string bars = svg_bar_chart({"x<1>", "nan", "over"}, {series, series}, {"t\"itle", 1.0, true, 0.3, "gate"});
  const auto tree = testing::parse_xml(bars);
  ASSERT_TRUE(tree);
  EXPECT_HAS(bars, ">n/a</text>");
  EXPECT_HAS(bars, "x&lt;1&gt;");
  EXPECT_HAS(bars, "170.0%");  // the label says the value, the bar stops at the axis end
  // A 48-layer, 128-expert student: one cell each, width bounded.
  std::vector<std::vector<std::optional<double>>> rows(48, std::vector<std::optional<double>>(128, 3.0));
  rows[5][7] = std::nullopt;
  std::vector<std::string> labels;
  for (int l = 0; l < 48; ++l) labels.push_back("L" + std::to_string(l));
  const std::string heat = svg_heatmap(labels, rows, {"big", "tokens", true, false, {{5, 7}, {99, 0}}, "under"});
  const auto big = testing::parse_xml(heat);
  ASSERT_TRUE(big);
  std::size_t cells = 0;
  for (const auto* rect : big->all("rect")) cells += !rect->all("title").empty();
  EXPECT_EQ(cells, 48u * 128u);
  EXPECT_HAS(heat, "L5 E7 tokens: n/a (NaN)");
  EXPECT_LE(std::stod(big->attr("width")), 720.0);
}

TEST(ReportViews, WritesMarkdownAndHtml) {
  testing::TempDir dir;
  const json report = sample("report_moe.json");
  write_report_views(report, dir.path());
  EXPECT_EQ(read_file(dir / "report.md"), render_report_markdown(report));
  EXPECT_EQ(read_file(dir / "report.html"), render_report_html(report));
}

}  // namespace
}  // namespace character::eval
