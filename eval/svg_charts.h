// Standalone SVG charts for report.html: horizontal bar charts (optionally with
// interval whiskers and several series per row) and layer × expert heatmaps.
// Each function returns one <svg> element with every label escaped, sized by a
// viewBox so it scales with the page, and a <title> per mark for hover values.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace character::eval {

struct BarSeries {
  std::string name;                         // legend entry ("" for a single series)
  std::string color;                        // CSS colour, e.g. "#2b6cb0"
  std::vector<std::optional<double>> values;  // one per row; unset: no bar ("n/a")
  std::vector<std::optional<std::pair<double, double>>> intervals;  // whiskers (low, high); may be empty
};

struct BarChartOptions {
  std::string title;
  double max_value = 1.0;                   // the axis runs 0..max_value
  bool percent = true;                      // labels as 70.0% (else 0.70)
  std::optional<double> threshold;          // a dashed vertical line (a gate)
  std::string threshold_label;
};

// One row per label; each series draws a bar in the row.
std::string svg_bar_chart(const std::vector<std::string>& labels, const std::vector<BarSeries>& series,
                          const BarChartOptions& options);

struct HeatmapOptions {
  std::string title;
  std::string value_name;                   // in tooltips, e.g. "utilization"
  bool log_scale = false;                   // colour by log10(1 + v) (token counts)
  bool percent = false;                     // values as percentages
  // Cells drawn with a red outline (e.g. under-trained experts), as (row, column).
  std::vector<std::pair<std::size_t, std::size_t>> marked;
  std::string marked_label;                 // legend text for the outline
};

// rows[r][c]; unset cells (NaN in the report) are drawn hatched grey.
std::string svg_heatmap(const std::vector<std::string>& row_labels,
                        const std::vector<std::vector<std::optional<double>>>& rows, const HeatmapOptions& options);

}  // namespace character::eval
