// The offline throughput benchmark: synthetic requests of fixed input/output length, all
// submitted at once to one Engine (in-flight batching), measured from the first submit to the
// last token. Optionally the same requests one at a time, as the baseline, in the same run.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "grammar/compiled_grammar.h"

namespace llmserve::bench {

struct OfflineOptions {
  int32_t num_requests = 100;
  int32_t input_len = 128;
  int32_t output_len = 128;
  float temperature = 0.0f;
  uint64_t seed = 1;
  // > 0: each prompt is one random run of this many tokens repeated to input_len (text that
  // copies itself, where prompt-lookup speculation has something to find); 0: random tokens.
  int32_t repeat_period = 0;
  bool baseline_sequential = false;  // also run the requests one at a time
  int32_t num_warmup = 2;            // requests run (and discarded) before timing
  // Structured output: every request decodes under this grammar (compiled for the engine's
  // vocabulary), with eos allowed where the grammar may end; null: free text, eos ignored.
  std::shared_ptr<const grammar::CompiledGrammar> grammar;
};

struct LatencySummary {
  double mean = 0, p50 = 0, p90 = 0, p99 = 0;  // seconds
};

// Where a run's time went, from the engine's counters (EngineStats) before and after it.
struct StepBreakdown {
  int64_t num_steps = 0;
  double schedule_ms = 0;  // host, totals over the run
  double runner_ms = 0;
  double update_ms = 0;
  StepTimeline device;  // the device's busy / idle time; empty unless EngineConfig::step_timing
  // Speculative decoding (EngineStats): decodes that carried drafts, drafts, drafts accepted.
  int64_t num_spec_decodes = 0;
  int64_t num_draft_tokens = 0;
  int64_t num_accepted_tokens = 0;
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
  StepBreakdown steps;
};

LatencySummary summarize(std::vector<double> samples);
// "412 steps; host a step: schedule 0.03 ms, runner 5.10 ms, update 0.21 ms; device a step: busy
// 4.92 ms, idle 0.38 ms between steps (7.2 %)" (the device part only when it was timed).
std::string describe(const StepBreakdown& s);
nlohmann::json to_json(const OfflineResult& r);

// Runs the benchmark on `engine`: the batched run, then the sequential baseline if asked.
std::vector<OfflineResult> run_offline(Engine& engine, const OfflineOptions& options);

}  // namespace llmserve::bench
