#include "bench/load/load_summary.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

namespace llmserve::bench::load {
namespace {

double seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

double rank(const std::vector<double>& sorted, double q) {
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - static_cast<double>(lo));
}

nlohmann::json to_json(const Percentiles& p) {
  return {{"mean", p.mean}, {"p50", p.p50}, {"p90", p.p90},    {"p99", p.p99},
          {"min", p.min},   {"max", p.max}, {"count", p.count}};
}

}  // namespace

Percentiles percentiles(std::vector<double> samples) {
  Percentiles p;
  if (samples.empty()) return p;
  std::sort(samples.begin(), samples.end());
  p.count = static_cast<int64_t>(samples.size());
  p.mean =
      std::accumulate(samples.begin(), samples.end(), 0.0) / static_cast<double>(samples.size());
  p.p50 = rank(samples, 0.50);
  p.p90 = rank(samples, 0.90);
  p.p99 = rank(samples, 0.99);
  p.min = samples.front();
  p.max = samples.back();
  return p;
}

LoadSummary summarize(const std::vector<RequestTrace>& traces, double duration_s, const Slo& slo) {
  LoadSummary s;
  s.duration_s = duration_s;
  s.num_requests = static_cast<int32_t>(traces.size());
  s.has_slo = slo.is_set();
  std::vector<double> tpot, e2e;
  for (const RequestTrace& t : traces) {
    if (!t.is_ok()) {
      ++s.errors[t.error_kind];
      continue;
    }
    ++s.num_ok;
    const int32_t num_out = t.num_output_tokens();
    s.num_input_tokens += t.num_input_tokens();
    s.num_output_tokens += num_out;
    if (t.usage_completion_tokens >= 0 && t.usage_completion_tokens != t.max_tokens)
      ++s.num_output_len_mismatches;
    if (t.usage_prompt_tokens >= 0 && t.usage_prompt_tokens != t.expected_input_tokens)
      ++s.num_input_len_mismatches;
    const double request_e2e = seconds(t.end - t.start);
    e2e.push_back(request_e2e);
    double request_ttft = request_e2e;
    if (!t.piece_times.empty()) request_ttft = seconds(t.piece_times.front() - t.start);
    s.ttft_samples.push_back(request_ttft);
    for (size_t i = 1; i < t.piece_times.size(); ++i)
      s.itl_samples.push_back(seconds(t.piece_times[i] - t.piece_times[i - 1]));
    double request_tpot = 0;
    if (num_out > 1 && t.piece_times.size() > 1) {  // a unary reply has no per-token timing
      request_tpot = (request_e2e - request_ttft) / (num_out - 1);
      tpot.push_back(request_tpot);
    }
    const bool is_good = (slo.ttft_s <= 0 || request_ttft <= slo.ttft_s) &&
                         (slo.tpot_s <= 0 || request_tpot <= slo.tpot_s) &&
                         (slo.e2e_s <= 0 || request_e2e <= slo.e2e_s);
    if (is_good) ++s.num_good;
  }
  if (duration_s > 0) {
    s.request_throughput = s.num_ok / duration_s;
    s.output_token_throughput = static_cast<double>(s.num_output_tokens) / duration_s;
    s.total_token_throughput =
        static_cast<double>(s.num_input_tokens + s.num_output_tokens) / duration_s;
    s.goodput = s.num_good / duration_s;
  }
  s.ttft = percentiles(s.ttft_samples);
  s.itl = percentiles(s.itl_samples);
  s.tpot = percentiles(tpot);
  s.e2e = percentiles(e2e);
  return s;
}

nlohmann::json to_json(const LoadSummary& s) {
  nlohmann::json j = {{"label", s.label},
                      {"concurrency", s.concurrency},
                      {"request_rate", s.request_rate},
                      {"duration_s", s.duration_s},
                      {"num_requests", s.num_requests},
                      {"num_ok", s.num_ok},
                      {"num_errors", s.num_errors()},
                      {"errors", s.errors},
                      {"num_input_tokens", s.num_input_tokens},
                      {"num_output_tokens", s.num_output_tokens},
                      {"num_input_len_mismatches", s.num_input_len_mismatches},
                      {"num_output_len_mismatches", s.num_output_len_mismatches},
                      {"request_throughput", s.request_throughput},
                      {"output_token_throughput", s.output_token_throughput},
                      {"total_token_throughput", s.total_token_throughput},
                      {"max_in_flight", s.max_in_flight},
                      {"client_cpu_s", s.client_cpu_s},
                      {"client_cpu_util", s.client_cpu_util},
                      {"ttft_s", to_json(s.ttft)},
                      {"itl_s", to_json(s.itl)},
                      {"tpot_s", to_json(s.tpot)},
                      {"e2e_s", to_json(s.e2e)}};
  if (s.has_slo) {
    j["num_good"] = s.num_good;
    j["goodput"] = s.goodput;
  }
  if (s.speculation) {
    const SpecCounters& c = *s.speculation;
    j["speculation"] = {{"num_drafts", c.drafts},
                        {"num_draft_tokens", c.draft_tokens},
                        {"num_accepted_tokens", c.accepted_tokens},
                        {"acceptance_rate", c.acceptance()},
                        {"tokens_per_decode", c.tokens_per_decode()}};
  } else {
    j["speculation"] = nullptr;  // the metrics port was not scraped or did not answer
  }
  return j;
}

}  // namespace llmserve::bench::load
