// ServingState: what every frontend asks before admitting a request, and what the health
// endpoints report. `serve` sets is_ready once the model is loaded and is_draining on SIGTERM:
// from then on readiness is false and new inference requests get 503, while liveness stays true.
//
// Thread-safety: atomics; read and written from any thread.
#pragma once

#include <atomic>

namespace llmserve::http {

struct ServingState {
  std::atomic<bool> is_ready{false};
  std::atomic<bool> is_draining{false};

  bool is_live() const { return true; }
  bool accepts_requests() const { return is_ready.load() && !is_draining.load(); }
};

}  // namespace llmserve::http
