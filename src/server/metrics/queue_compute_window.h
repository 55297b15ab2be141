// QueueComputeWindow: the live value of the HPA's `triton:queue_compute:ratio` without Prometheus.
//
// The recording rule is rate(nv_inference_queue_duration_us[1m]) /
// clamp_min(rate(nv_inference_compute_infer_duration_us[1m]), 1). Both counters grow at request
// completion, so over a window W the rule equals
//   sum(queue_us of requests completed in W) / max(sum(compute_infer_us of the same), W_seconds),
// because clamp_min(rate, 1 µs/s) over W seconds is a floor of W µs on the sum. This class keeps
// the (completion time, queue µs, compute µs) of successful requests completed in the last W and
// computes exactly that. With no completions in the window the ratio is 0, as the rule gives.
//
// Not thread-safe: MetricsRegistry serialises access under its own mutex.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>

#include "engine/request.h"

namespace llmserve {

class QueueComputeWindow {
 public:
  explicit QueueComputeWindow(std::chrono::milliseconds window) : window_(window) {}

  // Records one successful request completed at `completed`.
  void add(Clock::time_point completed, int64_t queue_us, int64_t compute_infer_us);
  // Drops entries completed at or before now − window, then returns the ratio.
  double ratio(Clock::time_point now);
  int64_t num_entries() const { return static_cast<int64_t>(entries_.size()); }

 private:
  struct Entry {
    int64_t queue_us;
    int64_t compute_infer_us;
  };
  void expire(Clock::time_point now);

  std::chrono::milliseconds window_;
  // Keyed by completion time: requests complete on several threads, slightly out of order.
  std::multimap<Clock::time_point, Entry> entries_;
  int64_t sum_queue_us_ = 0;
  int64_t sum_compute_infer_us_ = 0;
};

}  // namespace llmserve
