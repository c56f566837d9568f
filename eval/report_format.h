// Small readers and number formats shared by the report renderers
// (report_markdown.cpp, report_html.cpp): absent or null fields read as "n/a"
// instead of throwing, because a report is rendered even when a section is
// missing (a dense model has no routing, an eval without variants no flips).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdio>
#include <string>
#include <vector>

namespace character::eval::report_format {

using nlohmann::json;

// json[key] when `j` is an object holding it, else null.
inline const json& get(const json& j, const char* key) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

inline std::string text(const json& j, const char* fallback = "") {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_null()) return fallback;
  return j.dump();
}

// 0.7 → "70.0%"; null/absent → "n/a".
inline std::string percent(const json& value, int decimals = 1) {
  if (!value.is_number()) return "n/a";
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.*f%%", decimals, 100.0 * value.get<double>());
  return buffer;
}

// 0.41 → "0.41" with `decimals` places; null → "n/a".
inline std::string fixed(const json& value, int decimals = 2) {
  if (!value.is_number()) return "n/a";
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.*f", decimals, value.get<double>());
  return buffer;
}

inline std::string integer(const json& value) {
  if (!value.is_number()) return "n/a";
  return std::to_string(value.get<int64_t>());
}

// "66.8–73.0%" from {"ci_low", "ci_high"}.
inline std::string interval(const json& stats) {
  const json& low = get(stats, "ci_low");
  const json& high = get(stats, "ci_high");
  if (!low.is_number() || !high.is_number()) return "n/a";
  char buffer[48];
  std::snprintf(buffer, sizeof(buffer), "%.1f–%.1f%%", 100.0 * low.get<double>(), 100.0 * high.get<double>());
  return buffer;
}

// "L12" for index i of routing.layers (the model's layer number, not the index).
inline std::string layer_label(const json& routing, std::size_t i) {
  const json& layers = get(routing, "layers");
  if (layers.is_array() && i < layers.size() && layers[i].is_number()) return "L" + std::to_string(layers[i].get<int64_t>());
  return "L?" + std::to_string(i);
}

// The text of a prompt variant by id, from probe.items; empty when not listed.
inline std::string prompt_of(const json& report, const std::string& id) {
  for (const json& item : get(get(report, "probe"), "items"))
    if (text(get(item, "id")) == id) return text(get(item, "prompt"));
  return "";
}

// One line, at most `limit` bytes (cut at a UTF-8 boundary) with "…" when cut.
inline std::string one_line(std::string s, std::size_t limit = 80) {
  for (char& c : s)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  if (s.size() <= limit) return s;
  std::size_t cut = limit;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut) + "…";
}

}  // namespace character::eval::report_format
