// SvgChart: a small line chart written as standalone SVG — axes with round ticks, a grid, one
// polyline (with point markers) per series and a legend. Enough for sweep curves and CDFs
// without a plotting dependency.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace llmserve::bench::load {

struct SvgSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y), drawn in order
  bool has_markers = true;
  std::vector<std::string> point_labels;  // optional, written beside the markers
};

struct SvgChart {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<SvgSeries> series;
  bool is_x_log = false;  // points with x <= 0 are left out

  std::string render(int width = 760, int height = 460) const;
};

// Round tick values covering [lo, hi] (about `target` of them).
std::vector<double> nice_ticks(double lo, double hi, int target = 6);

}  // namespace llmserve::bench::load
