#include "bench/load/load_report.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "bench/load/svg_chart.h"

namespace llmserve::bench::load {
namespace {

LoadSummary point(const char* label, double tput) {
  LoadSummary s;
  s.label = label;
  s.num_requests = 10;
  s.num_ok = 9;
  s.errors["timeout"] = 1;
  s.output_token_throughput = tput;
  s.ttft = {0.010, 0.009, 0.015, 0.020, 0.005, 0.021, 9};
  s.itl = {0.002, 0.002, 0.003, 0.004, 0.001, 0.005, 90};
  s.ttft_samples = {0.005, 0.009, 0.021};
  s.itl_samples = {0.001, 0.002, 0.005};
  return s;
}

TEST(SvgChart, NiceTicks) {
  auto t = nice_ticks(0, 97);
  EXPECT_DOUBLE_EQ(t.front(), 0);
  EXPECT_GE(t.back(), 97);
  EXPECT_DOUBLE_EQ(t[1] - t[0], 20);
}

TEST(SvgChart, RendersSeriesAndLegend) {
  SvgChart c;
  c.title = "t<1>";
  c.series.resize(2);
  c.series[0].name = "p50";
  c.series[0].points = {{1, 2}, {2, 3}};
  c.series[1].name = "p99";
  c.series[1].points = {{1, 4}, {2, 6}};
  c.series[1].point_labels = {"c=1", "c=2"};
  std::string svg = c.render();
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("t&lt;1&gt;"), std::string::npos);
  EXPECT_NE(svg.find(">p99</text>"), std::string::npos);
  EXPECT_NE(svg.find(">c=2</text>"), std::string::npos);
  size_t n = 0;
  for (size_t at = svg.find("<polyline"); at != std::string::npos;
       at = svg.find("<polyline", at + 1))
    ++n;
  EXPECT_EQ(n, 2u);
}

TEST(LoadReport, CsvHasOneRowPerPoint) {
  std::string csv = points_csv({point("c=1", 100), point("c=2", 180)});
  std::istringstream in(csv);
  std::string header, row;
  std::getline(in, header);
  EXPECT_NE(header.find("ttft_p99_ms"), std::string::npos);
  std::getline(in, row);
  EXPECT_EQ(row.rfind("c=1,", 0), 0u);
  EXPECT_NE(row.find("timeout=1"), std::string::npos);
  EXPECT_NE(row.find(",20.0000,"), std::string::npos);  // ttft p99 in ms
  std::getline(in, row);
  EXPECT_EQ(row.rfind("c=2,", 0), 0u);
}

TEST(LoadReport, JsonAndPlots) {
  LoadOptions o;
  auto j = run_json(o, {point("c=1", 100)});
  EXPECT_EQ(j["options"]["target"], "completions");
  EXPECT_EQ(j["points"][0]["errors"]["timeout"], 1);
  EXPECT_DOUBLE_EQ(j["points"][0]["ttft_s"]["p99"].get<double>(), 0.020);
  auto dir = std::filesystem::temp_directory_path() / "llmserve_plots_test";
  auto files = write_plots(dir.string(), "test", {point("c=1", 100), point("c=2", 180)});
  EXPECT_EQ(files.size(), 5u);
  for (const auto& f : files) EXPECT_GT(std::filesystem::file_size(f), 500u) << f;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace llmserve::bench::load
