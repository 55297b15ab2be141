// The offline throughput benchmark: synthetic requests of fixed input/output length, all
// submitted at once to one Engine (in-flight batching), measured from the first submit to the
// last token. Optionally the same requests one at a time, as the baseline, in the same run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/engine.h"

namespace llmserve::bench {

struct OfflineOptions {
  int32_t num_requests = 100;
  int32_t input_len = 128;
  int32_t output_len = 128;
  float temperature = 0.0f;
  uint64_t seed = 1;
  bool baseline_sequential = false;  // also run the requests one at a time
  int32_t num_warmup = 2;            // requests run (and discarded) before timing
};

struct LatencySummary {
  double mean = 0, p50 = 0, p90 = 0, p99 = 0;  // seconds
};

struct OfflineResult {
  std::string mode;  // "batched" or "sequential"
  int32_t num_requests = 0;
  double duration_s = 0;
  double requests_per_s = 0;
  double output_tokens_per_s = 0;
  double total_tokens_per_s = 0;
  int64_t num_output_tokens = 0;
  int64_t num_input_tokens = 0;
  LatencySummary ttft;  // submit -> first token
  LatencySummary itl;   // between consecutive tokens of a request
  LatencySummary e2e;   // submit -> last token
  int32_t num_errors = 0;
};

LatencySummary summarize(std::vector<double> samples);
nlohmann::json to_json(const OfflineResult& r);

// Runs the benchmark on `engine`: the batched run, then the sequential baseline if asked.
std::vector<OfflineResult> run_offline(Engine& engine, const OfflineOptions& options);

}  // namespace llmserve::bench
