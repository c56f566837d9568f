// report.html: the eval report (report.json, docs/eval.md) as ONE self-contained
// page that opens offline: inline CSS, inline SVG charts (eval/svg_charts.h), the
// gate table and every probe response in collapsible sections. Also the writer
// of both human-readable views (report.md and report.html).
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace character::eval {

// Renders the page. Every string from the report is HTML-escaped (model answers
// can contain anything); a Content-Security-Policy forbids any network load.
std::string render_report_html(const nlohmann::json& report);

// Writes DIR/report.md and DIR/report.html atomically from `report`.
void write_report_views(const nlohmann::json& report, const std::filesystem::path& dir);

}  // namespace character::eval
