// Escaping text for XML, HTML and SVG: every string that came from a report
// (model answers, prompts, file names) goes through xml_escape before it is
// written into JUnit XML, report.html or an inline SVG chart.
#pragma once

#include <string>
#include <string_view>

namespace character::eval {

// & < > " ' as entities; control characters that XML 1.0 forbids (all below
// 0x20 except tab, newline, carriage return) become U+FFFD. Safe in text and in
// double- or single-quoted attributes.
std::string xml_escape(std::string_view text);

}  // namespace character::eval
