// QueueComputeWindow: see the header for the arithmetic and its tie to the recording rule.
#include "server/metrics/queue_compute_window.h"

#include <algorithm>

namespace llmserve {

void QueueComputeWindow::add(Clock::time_point completed, int64_t queue_us,
                             int64_t compute_infer_us) {
  entries_.emplace(completed, Entry{queue_us, compute_infer_us});
  sum_queue_us_ += queue_us;
  sum_compute_infer_us_ += compute_infer_us;
}

void QueueComputeWindow::expire(Clock::time_point now) {
  const Clock::time_point horizon = now - window_;
  auto end = entries_.upper_bound(horizon);
  for (auto it = entries_.begin(); it != end; ++it) {
    sum_queue_us_ -= it->second.queue_us;
    sum_compute_infer_us_ -= it->second.compute_infer_us;
  }
  entries_.erase(entries_.begin(), end);
}

double QueueComputeWindow::ratio(Clock::time_point now) {
  expire(now);
  // clamp_min(rate, 1) with rate in µs/s is a floor of one µs per second of window on the sum.
  const double window_seconds = std::chrono::duration<double>(window_).count();
  const double denominator = std::max(static_cast<double>(sum_compute_infer_us_), window_seconds);
  return static_cast<double>(sum_queue_us_) / denominator;
}

}  // namespace llmserve
