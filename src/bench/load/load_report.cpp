#include "bench/load/load_report.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "bench/load/svg_chart.h"
#include "common/status.h"

namespace llmserve::bench::load {
namespace {

std::string mode_name(LoadMode m) {
  switch (m) {
    case LoadMode::kClosedLoop:
      return "closed_loop";
    case LoadMode::kOpenLoop:
      return "open_loop";
  }
  return "?";
}

// At most `max_points` points of the empirical CDF of `samples` (seconds), x in ms.
std::vector<std::pair<double, double>> cdf(std::vector<double> samples, size_t max_points = 200) {
  std::vector<std::pair<double, double>> out;
  if (samples.empty()) return out;
  std::sort(samples.begin(), samples.end());
  const size_t n = samples.size();
  const size_t step = std::max<size_t>(1, n / max_points);
  for (size_t i = 0; i < n; i += step)
    out.emplace_back(samples[i] * 1e3, static_cast<double>(i + 1) / n);
  if (out.back().second < 1.0) out.emplace_back(samples.back() * 1e3, 1.0);
  return out;
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) fail(StatusCode::kInvalidArgument, "cannot write '{}'", path.string());
}

}  // namespace

void print_table_header(std::FILE* out, bool has_slo) {
  std::fprintf(out, "%-11s %6s %6s %8s %10s %11s %9s %9s %9s %8s %8s %8s %9s %9s %7s %s\n", "point",
               "reqs", "errs", "req/s", "out tok/s", "total tok/s", "ttft mean", "ttft p50",
               "ttft p99", "itl p50", "itl p99", "tpot p50", "e2e p50", "e2e p99", "gen cpu",
               has_slo ? "goodput" : "");
}

void print_table_row(std::FILE* out, const LoadSummary& s) {
  std::string goodput = s.has_slo ? fmt::format("{:.2f}/s", s.goodput) : "";
  std::fprintf(out,
               "%-11s %6d %6d %8.2f %10.1f %11.1f %7.1fms %7.1fms %7.1fms %6.2fms %6.2fms %6.2fms "
               "%8.3fs %8.3fs %6.1f%% %s\n",
               s.label.c_str(), s.num_requests, s.num_errors(), s.request_throughput,
               s.output_token_throughput, s.total_token_throughput, s.ttft.mean * 1e3,
               s.ttft.p50 * 1e3, s.ttft.p99 * 1e3, s.itl.p50 * 1e3, s.itl.p99 * 1e3,
               s.tpot.p50 * 1e3, s.e2e.p50, s.e2e.p99, s.client_cpu_util * 100, goodput.c_str());
  std::fflush(out);
}

void print_errors(std::FILE* out, const std::vector<LoadSummary>& points) {
  for (const auto& s : points) {
    if (s.errors.empty()) continue;
    std::string kinds;
    for (const auto& [kind, n] : s.errors) kinds += fmt::format(" {}={}", kind, n);
    std::fprintf(out, "errors at %s:%s\n", s.label.c_str(), kinds.c_str());
  }
}

void print_speculation(std::FILE* out, const std::vector<LoadSummary>& points) {
  for (const auto& s : points) {
    if (!s.speculation || s.speculation->drafts == 0) continue;
    const SpecCounters& c = *s.speculation;
    std::fprintf(out,
                 "speculation at %s: %lld draft tokens in %lld decodes, %lld accepted (%.1f %%), "
                 "%.2f tokens a decode\n",
                 s.label.c_str(), static_cast<long long>(c.draft_tokens),
                 static_cast<long long>(c.drafts), static_cast<long long>(c.accepted_tokens),
                 100 * c.acceptance(), c.tokens_per_decode());
  }
}

nlohmann::json run_json(const LoadOptions& o, const std::vector<LoadSummary>& points) {
  nlohmann::json opts = {{"target", std::string(target_name(o.target))},
                         {"host", o.host},
                         {"port", o.port},
                         {"metrics_port", o.metrics_port},
                         {"model", o.model},
                         {"mode", mode_name(o.mode)},
                         {"num_requests", o.num_requests},
                         {"duration_s", o.duration_s},
                         {"num_warmup", o.num_warmup},
                         {"input_len", o.input.len},
                         {"input_range", o.input.range},
                         {"output_len", o.output.len},
                         {"output_range", o.output.range},
                         {"prompt_file", o.prompt_file},
                         {"ignore_eos", o.ignore_eos},
                         {"temperature", o.temperature},
                         {"seed", o.seed}};
  if (o.slo.is_set())
    opts["slo"] = {{"ttft_s", o.slo.ttft_s}, {"tpot_s", o.slo.tpot_s}, {"e2e_s", o.slo.e2e_s}};
  nlohmann::json j = nlohmann::json::array();
  for (const auto& s : points) j.push_back(to_json(s));
  return {{"options", opts}, {"points", j}};
}

std::string points_csv(const std::vector<LoadSummary>& points) {
  std::string csv =
      "label,concurrency,request_rate,duration_s,num_requests,num_ok,num_errors,errors,num_input_"
      "tokens,"
      "num_output_tokens,request_throughput,output_token_throughput,total_token_throughput,goodput,"
      "client_cpu_util";
  for (const char* m : {"ttft", "itl", "tpot", "e2e"}) {
    for (const char* p : {"mean", "p50", "p90", "p99"}) csv += fmt::format(",{}_{}_ms", m, p);
  }
  csv += "\n";
  for (const auto& s : points) {
    std::string errors;
    for (const auto& [kind, n] : s.errors)
      errors += fmt::format("{}{}={}", errors.empty() ? "" : ";", kind, n);
    csv += fmt::format("{},{},{},{:.6f},{},{},{},{},{},{},{:.6f},{:.6f},{:.6f},{},{:.4f}", s.label,
                       s.concurrency, s.request_rate, s.duration_s, s.num_requests, s.num_ok,
                       s.num_errors(), errors, s.num_input_tokens, s.num_output_tokens,
                       s.request_throughput, s.output_token_throughput, s.total_token_throughput,
                       s.has_slo ? fmt::format("{:.6f}", s.goodput) : "", s.client_cpu_util);
    for (const Percentiles* p : {&s.ttft, &s.itl, &s.tpot, &s.e2e}) {
      csv += fmt::format(",{:.4f},{:.4f},{:.4f},{:.4f}", p->mean * 1e3, p->p50 * 1e3, p->p90 * 1e3,
                         p->p99 * 1e3);
    }
    csv += "\n";
  }
  return csv;
}

std::vector<std::string> write_plots(const std::string& dir, const std::string& title,
                                     const std::vector<LoadSummary>& points) {
  std::filesystem::create_directories(dir);
  std::vector<std::string> written;
  auto save = [&](const char* name, const SvgChart& chart) {
    auto path = std::filesystem::path(dir) / name;
    write_file(path, chart.render());
    written.push_back(path.string());
  };
  // Throughput vs latency: one point per sweep point, in sweep order.
  struct Metric {
    const char* file;
    const char* name;
    const Percentiles LoadSummary::*field;
  };
  for (const Metric& m : {Metric{"sweep_ttft.svg", "TTFT", &LoadSummary::ttft},
                          Metric{"sweep_itl.svg", "inter-token latency", &LoadSummary::itl},
                          Metric{"sweep_e2e.svg", "end-to-end latency", &LoadSummary::e2e}}) {
    SvgChart chart;
    chart.title = fmt::format("{}: output throughput vs {}", title, m.name);
    chart.x_label = "output tokens/s";
    chart.y_label = fmt::format("{} (ms)", m.name);
    SvgSeries p50, p90, p99;
    p50.name = "p50";
    p90.name = "p90";
    p99.name = "p99";
    for (const auto& s : points) {
      const Percentiles& p = s.*(m.field);
      p50.points.emplace_back(s.output_token_throughput, p.p50 * 1e3);
      p99.point_labels.push_back(s.label);
      p90.points.emplace_back(s.output_token_throughput, p.p90 * 1e3);
      p99.points.emplace_back(s.output_token_throughput, p.p99 * 1e3);
    }
    chart.series = {p50, p90, p99};
    save(m.file, chart);
  }
  struct Cdf {
    const char* file;
    const char* name;
    const std::vector<double> LoadSummary::*samples;
  };
  for (const Cdf& c : {Cdf{"ttft_cdf.svg", "TTFT", &LoadSummary::ttft_samples},
                       Cdf{"itl_cdf.svg", "inter-token latency", &LoadSummary::itl_samples}}) {
    SvgChart chart;
    chart.title = fmt::format("{}: {} CDF", title, c.name);
    chart.x_label = fmt::format("{} (ms, log scale)", c.name);
    chart.y_label = "fraction of samples";
    chart.is_x_log = true;
    for (const auto& s : points) {
      SvgSeries& curve = chart.series.emplace_back();
      curve.name = s.label;
      curve.points = cdf(s.*(c.samples));
      curve.has_markers = false;
    }
    save(c.file, chart);
  }
  return written;
}

}  // namespace llmserve::bench::load
