// LoadSummary: one sweep point's numbers, from its RequestTraces and its measured duration.
//
// Definitions (those of vLLM's bench serve and genai-perf):
//   TTFT  send → first piece carrying output text.
//   ITL   the gaps between consecutive pieces of a request (all requests pooled).
//   TPOT  per request, (e2e − TTFT) / (output tokens − 1); requests of one token have none.
//   e2e   send → end of the reply.
//   throughput = successful requests (tokens) / the point's duration (first send → last end).
//   goodput    = successful requests meeting every SLO / duration.
// Latencies are over successful requests only; failures are counted by kind.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/load/load_options.h"
#include "bench/load/request_trace.h"
#include "bench/load/server_metrics.h"

namespace llmserve::bench::load {

struct Percentiles {
  double mean = 0, p50 = 0, p90 = 0, p99 = 0, min = 0, max = 0;  // seconds
  int64_t count = 0;
};

// Linear interpolation between closest ranks (numpy's default). Empty input gives zeros.
Percentiles percentiles(std::vector<double> samples);

struct LoadSummary {
  std::string label;        // "c=4" or "rate=2.5"
  int32_t concurrency = 0;  // closed loop (or the open loop's cap, 0 = none)
  double request_rate = 0;  // open loop: the asked rate (0 = closed loop)
  double duration_s = 0;
  int32_t num_requests = 0;
  int32_t num_ok = 0;
  std::map<std::string, int32_t> errors;  // by kind
  int64_t num_input_tokens = 0;
  int64_t num_output_tokens = 0;
  // Successful requests whose output (input) token count differs from max_tokens (the prompt's
  // count), when the server reported usage for it.
  int32_t num_output_len_mismatches = 0;
  int32_t num_input_len_mismatches = 0;
  double request_throughput = 0;       // req/s
  double output_token_throughput = 0;  // tok/s
  double total_token_throughput = 0;   // (input + output) tok/s
  double max_in_flight = 0;
  // CPU the generator itself used during the point (user + sys, all its threads), and that as a
  // fraction of one core over the duration: the proof it was not the bottleneck.
  double client_cpu_s = 0;
  double client_cpu_util = 0;
  Percentiles ttft, itl, tpot, e2e;
  bool has_slo = false;
  int32_t num_good = 0;
  double goodput = 0;  // good req/s
  // The server's speculative-decoding counters over the point (their growth from before its
  // measured requests to after), when its metrics port answered; warm-up requests are outside.
  std::optional<SpecCounters> speculation;
  // Raw samples, for CDF plots (seconds).
  std::vector<double> ttft_samples, itl_samples;

  int32_t num_errors() const { return num_requests - num_ok; }
};

LoadSummary summarize(const std::vector<RequestTrace>& traces, double duration_s, const Slo& slo);

nlohmann::json to_json(const LoadSummary& s);

}  // namespace llmserve::bench::load
