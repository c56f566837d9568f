// report.md: the summary of an eval report (report.json, docs/eval.md) that a
// person reads in a terminal: model and persona, in-character rates with their
// intervals, paraphrase flips, the gate table and, for an MoE student, where the
// routing reaches experts that training did not.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace character::eval {

// Renders the Markdown summary. Sections whose data the report lacks (routing of
// a dense model, flips without variants) are left out; nothing here throws on a
// missing field.
std::string render_report_markdown(const nlohmann::json& report);

}  // namespace character::eval
