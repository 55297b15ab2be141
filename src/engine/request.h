// Request and RequestOutput: what a frontend hands the engine and what it gets back.
//
// A frontend turns its wire request into one Request (token ids + SamplingParams + limits) and
// reads RequestOutputs from the RequestStream that Engine::submit returns: one per step in which
// the request produced tokens, the last one carrying the finish reason (and the error for
// kError). Times are steady_clock; the frontend sets `arrival` when it received the request.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/sampler.h"
#include "engine/sampling_params.h"
#include "engine/stop_rules.h"

namespace llmserve {

using Clock = std::chrono::steady_clock;

struct Request {
  std::vector<int32_t> prompt_token_ids;
  SamplingParams sampling;
  Clock::time_point arrival = Clock::now();
  std::optional<Clock::time_point> deadline;  // finished with kDeadlineExceeded when passed
  // Still waiting for its first admission at this time: finished with kUnavailable ("request
  // timeout expired", Triton's queue `timeout`).
  std::optional<Clock::time_point> queue_deadline;
  // Lower is admitted first (vLLM's `priority`); equal priorities in arrival order. A decode that
  // needs a block preempts the lowest-priority running sequence (the latest admitted of those).
  int32_t priority = 0;
  // false: this request's decodes never carry drafts (speculative.h), whatever the server runs.
  bool speculative = true;
};

// The life of a request, for metrics (see docs/server.md, Metrics).
struct RequestTimes {
  Clock::time_point arrival;
  std::optional<Clock::time_point> admitted;     // first scheduled into the running batch
  std::optional<Clock::time_point> first_token;  // first token sampled
  std::optional<Clock::time_point> finished;
};

struct RequestOutput {
  std::vector<int32_t> token_ids;      // new tokens since the previous output
  std::vector<SampleResult> logprobs;  // aligned with token_ids when logprobs requested
  // With sampling.prompt_logprobs, on the output of the first token: prompt tokens 1.. scored
  // (the first prompt token has no logprob: nothing precedes it). Empty otherwise.
  std::vector<SampleResult> prompt_logprobs;
  FinishReason finish_reason = FinishReason::kNone;
  Status error;  // set with kError / kCancelled
  int32_t num_prompt_tokens = 0;
  int32_t num_cached_tokens = 0;     // prompt tokens served from the prefix cache
  int32_t num_generated_tokens = 0;  // total so far
  RequestTimes times;                // complete on the final output
  Clock::time_point emitted;         // when the engine produced this output

  bool is_final() const { return finish_reason != FinishReason::kNone; }
};

// A thread-safe queue of one request's outputs: the engine thread pushes, any thread reads.
class RequestStream {
 public:
  explicit RequestStream(uint64_t id) : id_(id) {}
  uint64_t id() const { return id_; }

  // Blocks until an output is available (or timeout); false on timeout.
  bool next(RequestOutput& out, std::chrono::milliseconds timeout = std::chrono::hours(24));
  bool try_next(RequestOutput& out);
  // Called (on the engine's output thread, output_writer.h, without the lock held) after each
  // push. Must be cheap and must not call back into the engine synchronously; e.g. post to an I/O
  // loop. Set before outputs flow.
  void set_listener(std::function<void()> listener);
  bool is_finished() const;

  // Engine side.
  void push(RequestOutput out);

 private:
  const uint64_t id_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<RequestOutput> queue_;
  std::function<void()> listener_;
  bool is_finished_ = false;
};

}  // namespace llmserve
