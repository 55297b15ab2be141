// The outputs of a sweep: the summary table (stdout), JSON and CSV (one row per point) and the
// SVG plots (throughput vs latency across the sweep; TTFT and ITL CDFs, one curve per point).
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/load/load_options.h"
#include "bench/load/load_summary.h"

namespace llmserve::bench::load {

void print_table_header(std::FILE* out, bool has_slo);
void print_table_row(std::FILE* out, const LoadSummary& s);
// Errors by kind, one line per point that had any.
void print_errors(std::FILE* out, const std::vector<LoadSummary>& points);
// The server's speculative decoding, one line per point where it proposed drafts.
void print_speculation(std::FILE* out, const std::vector<LoadSummary>& points);

// The whole run: options (what was asked) and one object per point.
nlohmann::json run_json(const LoadOptions& options, const std::vector<LoadSummary>& points);
std::string points_csv(const std::vector<LoadSummary>& points);

// Writes <dir>/sweep_ttft.svg, sweep_itl.svg, sweep_e2e.svg, ttft_cdf.svg and itl_cdf.svg;
// returns the paths written. Throws Error when a file cannot be written.
std::vector<std::string> write_plots(const std::string& dir, const std::string& title,
                                     const std::vector<LoadSummary>& points);

}  // namespace llmserve::bench::load
