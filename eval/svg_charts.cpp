// SVG bar charts and heatmaps for report.html (eval/svg_charts.h).
//
// Why hand-written: report.html must be one file that opens offline, so the charts
// are inline SVG. Debian's C++ plotting packages do not fit: sciplot and
// gnuplot-iostream drive an external gnuplot process, PLplot and cairo(mm) are
// drawing APIs with their own runtime whose SVG embeds no structure we could
// style or test, and the rest are Qt widgets. Our charts are rectangles, lines
// and text (~250 lines); writing them directly keeps them small, testable as XML
// and free of new dependencies.
#include "eval/svg_charts.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>

#include "eval/xml_text.h"

namespace character::eval {
namespace {

std::string num(double v) {  // coordinates: short, locale-free
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.1f", v);
  return buffer;
}

std::string label_value(double v, bool percent) {
  char buffer[32];
  if (percent) std::snprintf(buffer, sizeof(buffer), "%.1f%%", 100.0 * v);
  else if (v == std::floor(v) && std::fabs(v) >= 10) std::snprintf(buffer, sizeof(buffer), "%.0f", v);
  else std::snprintf(buffer, sizeof(buffer), "%.3g", v);
  return buffer;
}

std::string svg_open(double width, double height, const std::string& title) {
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" role=\"img\" viewBox=\"0 0 " + num(width) + " " +
         num(height) + "\" width=\"" + num(width) + "\" height=\"" + num(height) + "\" aria-label=\"" + xml_escape(title) +
         "\">\n<title>" + xml_escape(title) + "</title>\n";
}

std::string text_at(double x, double y, const std::string& content, const std::string& attributes = "") {
  return "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\"" + (attributes.empty() ? "" : " " + attributes) + ">" +
         xml_escape(content) + "</text>\n";
}

// Viridis at five stops (matplotlib's _viridis_data at 0, .25, .5, .75, 1),
// interpolated linearly: perceptually ordered and readable for colour-blind readers.
std::string viridis(double t) {
  static constexpr std::array<std::array<double, 3>, 5> kStops = {{{68, 1, 84}, {59, 82, 139}, {33, 145, 140},
                                                                    {94, 201, 98}, {253, 231, 37}}};
  t = std::clamp(t, 0.0, 1.0) * 4.0;
  const int i = std::min(3, static_cast<int>(t));
  const double f = t - i;
  char buffer[16];
  std::snprintf(buffer, sizeof(buffer), "#%02x%02x%02x", static_cast<int>(std::lround(kStops[i][0] + f * (kStops[i + 1][0] - kStops[i][0]))),
                static_cast<int>(std::lround(kStops[i][1] + f * (kStops[i + 1][1] - kStops[i][1]))),
                static_cast<int>(std::lround(kStops[i][2] + f * (kStops[i + 1][2] - kStops[i][2]))));
  return buffer;
}

}  // namespace

std::string svg_bar_chart(const std::vector<std::string>& labels, const std::vector<BarSeries>& series,
                          const BarChartOptions& options) {
  constexpr double kLeft = 140, kAxis = 440, kRight = 110, kBar = 14, kGap = 10, kTop = 30;
  const bool legend = series.size() > 1;
  const double top = kTop + (legend ? 20 : 0);
  const double row = kBar * std::max<std::size_t>(1, series.size()) + kGap;
  const double width = std::max(kLeft + kAxis + kRight, 12 + 7.6 * options.title.size());
  const double height = top + row * labels.size() + 24;
  const double max_value = options.max_value > 0 ? options.max_value : 1.0;
  auto x_of = [&](double v) { return kLeft + kAxis * std::clamp(v / max_value, 0.0, 1.0); };

  std::string svg = svg_open(width, height, options.title);
  svg += text_at(4, 18, options.title, "class=\"chart-title\"");
  if (legend) {
    double x = kLeft;
    for (const BarSeries& s : series) {
      svg += "<rect x=\"" + num(x) + "\" y=\"28\" width=\"12\" height=\"12\" fill=\"" + xml_escape(s.color) + "\"/>\n";
      svg += text_at(x + 16, 38, s.name, "class=\"legend\"");
      x += 24 + 7.0 * s.name.size();
    }
  }
  // Grid at quarters of the axis.
  for (int q = 0; q <= 4; ++q) {
    const double x = kLeft + kAxis * q / 4.0;
    svg += "<line x1=\"" + num(x) + "\" y1=\"" + num(top - 4) + "\" x2=\"" + num(x) + "\" y2=\"" + num(height - 20) +
           "\" class=\"grid\"/>\n";
    svg += text_at(x, height - 6, label_value(max_value * q / 4.0, options.percent), "class=\"tick\" text-anchor=\"middle\"");
  }
  for (std::size_t r = 0; r < labels.size(); ++r) {
    const double y0 = top + row * r;
    svg += text_at(kLeft - 6, y0 + row / 2.0 + 1, labels[r], "class=\"label\" text-anchor=\"end\" dominant-baseline=\"middle\"");
    for (std::size_t s = 0; s < series.size(); ++s) {
      const double y = y0 + kBar * s;
      const auto value = r < series[s].values.size() ? series[s].values[r] : std::nullopt;
      if (!value) {
        svg += text_at(kLeft + 4, y + kBar - 3, "n/a", "class=\"value\"");
        continue;
      }
      std::string tip = labels[r] + (series[s].name.empty() ? "" : " (" + series[s].name + ")") + ": " +
                        label_value(*value, options.percent);
      std::optional<std::pair<double, double>> interval;
      if (r < series[s].intervals.size()) interval = series[s].intervals[r];
      if (interval)
        tip += ", interval " + label_value(interval->first, options.percent) + "–" + label_value(interval->second, options.percent);
      svg += "<rect x=\"" + num(kLeft) + "\" y=\"" + num(y + 1) + "\" width=\"" + num(x_of(*value) - kLeft) + "\" height=\"" +
             num(kBar - 2) + "\" fill=\"" + xml_escape(series[s].color) + "\"><title>" + xml_escape(tip) + "</title></rect>\n";
      double text_x = x_of(*value) + 4;
      if (interval) {
        const double lo = x_of(interval->first), hi = x_of(interval->second), mid = y + kBar / 2.0;
        svg += "<path class=\"whisker\" d=\"M" + num(lo) + " " + num(mid) + "H" + num(hi) + "M" + num(lo) + " " + num(y + 3) +
               "V" + num(y + kBar - 3) + "M" + num(hi) + " " + num(y + 3) + "V" + num(y + kBar - 3) + "\"/>\n";
        text_x = std::max(text_x, hi + 4);
      }
      svg += text_at(text_x, y + kBar - 3, label_value(*value, options.percent), "class=\"value\"");
    }
  }
  if (options.threshold) {
    const double x = x_of(*options.threshold);
    svg += "<line x1=\"" + num(x) + "\" y1=\"" + num(top - 6) + "\" x2=\"" + num(x) + "\" y2=\"" + num(height - 20) +
           "\" class=\"threshold\"/>\n";
    svg += text_at(x + 3, top - 8, options.threshold_label, "class=\"threshold-label\"");
  }
  return svg + "</svg>\n";
}

std::string svg_heatmap(const std::vector<std::string>& row_labels,
                        const std::vector<std::vector<std::optional<double>>>& rows, const HeatmapOptions& options) {
  std::size_t columns = 0;
  double max_value = 0.0;
  for (const auto& row : rows) {
    columns = std::max(columns, row.size());
    for (const auto& v : row)
      if (v) max_value = std::max(max_value, *v);
  }
  // A real student has up to 128 experts and 48 layers: cells shrink to fit ~640 px.
  const double cell_w = std::clamp(640.0 / std::max<std::size_t>(1, columns), 4.0, 44.0);
  const double cell_h = std::clamp(cell_w * 0.6, 6.0, 24.0);
  constexpr double kLeft = 50, kTop = 44;
  // Wide enough for the cells, the title and the legend (~7.6 px per character of the bold 13 px title).
  const double width = std::max({kLeft + cell_w * columns + 20, 420.0, 12 + 7.6 * options.title.size(),
                                 kLeft + 222 + 6.5 * options.marked_label.size()});
  const double height = kTop + cell_h * rows.size() + 46;
  const bool show_values = cell_w >= 40;
  auto scaled = [&](double v) {
    if (max_value <= 0) return 0.0;
    return options.log_scale ? std::log10(1.0 + std::max(0.0, v)) / std::log10(1.0 + max_value) : v / max_value;
  };

  std::string svg = svg_open(width, height, options.title);
  svg += text_at(4, 18, options.title, "class=\"chart-title\"");
  const std::size_t step = cell_w >= 16 ? 1 : cell_w >= 8 ? 4 : 16;  // which expert numbers fit above the columns
  for (std::size_t c = 0; c < columns; c += step)
    svg += text_at(kLeft + cell_w * (c + 0.5), kTop - 6, "E" + std::to_string(c), "class=\"tick\" text-anchor=\"middle\"");
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const double y = kTop + cell_h * r;
    const std::string label = r < row_labels.size() ? row_labels[r] : std::to_string(r);
    if (cell_h >= 8 || r % 4 == 0)
      svg += text_at(kLeft - 6, y + cell_h / 2.0 + 1, label, "class=\"label\" text-anchor=\"end\" dominant-baseline=\"middle\"");
    for (std::size_t c = 0; c < rows[r].size(); ++c) {
      const double x = kLeft + cell_w * c;
      const auto& v = rows[r][c];
      const std::string tip = label + " E" + std::to_string(c) + " " + options.value_name + ": " +
                              (v ? label_value(*v, options.percent) : std::string("n/a (NaN)"));
      svg += "<rect x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" + num(cell_w) + "\" height=\"" + num(cell_h) +
             "\" fill=\"" + (v ? viridis(scaled(*v)) : std::string("#bbbbbb")) + "\"><title>" + xml_escape(tip) +
             "</title></rect>\n";
      if (show_values && v)
        svg += text_at(x + cell_w / 2, y + cell_h / 2 + 1, label_value(*v, options.percent),
                       std::string("class=\"cell\" text-anchor=\"middle\" dominant-baseline=\"middle\" fill=\"") +
                           (scaled(*v) > 0.6 ? "#000" : "#fff") + "\"");
    }
  }
  for (const auto& [r, c] : options.marked) {
    if (r >= rows.size() || c >= columns) continue;
    svg += "<rect class=\"marked\" x=\"" + num(kLeft + cell_w * c + 1) + "\" y=\"" + num(kTop + cell_h * r + 1) +
           "\" width=\"" + num(cell_w - 2) + "\" height=\"" + num(cell_h - 2) + "\"/>\n";
  }
  // Legend: ten swatches from 0 to the maximum.
  const double ly = kTop + cell_h * rows.size() + 14;
  for (int i = 0; i < 10; ++i)
    svg += "<rect x=\"" + num(kLeft + 16.0 * i) + "\" y=\"" + num(ly) + "\" width=\"16\" height=\"10\" fill=\"" +
           viridis(i / 9.0) + "\"/>\n";
  svg += text_at(kLeft, ly + 24, "0", "class=\"tick\"");
  svg += text_at(kLeft + 160, ly + 24, label_value(max_value, options.percent) + (options.log_scale ? " (log scale)" : ""),
                 "class=\"tick\" text-anchor=\"end\"");
  if (!options.marked.empty())
    svg += "<rect class=\"marked\" x=\"" + num(kLeft + 190) + "\" y=\"" + num(ly) + "\" width=\"16\" height=\"10\"/>\n" +
           text_at(kLeft + 212, ly + 9, options.marked_label, "class=\"legend\"");
  return svg + "</svg>\n";
}

}  // namespace character::eval
