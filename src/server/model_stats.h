// ModelStats: the cumulative counters behind Triton's statistics extension (docs/server.md) for the
// one served model, fed one RequestRecord per finished request of any protocol or alias by
// GenerationService (a handle when it goes, or reject()). Both renderings read the same Snapshot:
// HTTP's GET /v2/models[/{m}]/stats JSON (kserve/stats_json.h) and gRPC's ModelStatistics
// (grpc/stats_proto.h). Durations are cumulative nanoseconds, as Triton reports them; failures
// (cancellations included) count in `fail` with the end-to-end time, cancellations also in
// num_cancelled; successes in the other durations. execution_count = inference_count (batch
// size 1 per request), batch_stats and memory_usage stay empty.
//
// Header-only: the test-only grpc_test_server links the gRPC objects and generation_service.cpp
// alone.
//
// Thread-safety: every member may be called from any thread (one mutex).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <mutex>

#include "server/request_record.h"

namespace llmserve {

class ModelStats final : public RequestObserver {
 public:
  struct Duration {
    uint64_t count = 0;
    uint64_t ns = 0;
    void add(Clock::duration d) {
      ++count;
      ns += static_cast<uint64_t>(
          std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(d).count()));
    }
  };
  struct Snapshot {
    uint64_t last_inference_ms = 0;  // since the Unix epoch
    uint64_t inference_count = 0;    // successful requests
    uint64_t execution_count = 0;
    Duration success, fail, queue, compute_input, compute_infer, compute_output;
    uint64_t num_cancelled = 0;
  };

  void on_request_done(const RequestRecord& r) override {
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now().time_since_epoch());
    std::lock_guard lock(mutex_);
    totals_.last_inference_ms = static_cast<uint64_t>(now_ms.count());
    const Clock::duration total = r.completed - r.arrival;
    if (!r.is_success) {
      totals_.fail.add(total);
      if (r.failure == FailureReason::kCancelled) ++totals_.num_cancelled;
      return;
    }
    ++totals_.inference_count;
    ++totals_.execution_count;
    totals_.success.add(total);
    totals_.compute_input.add(r.input_duration);
    totals_.compute_output.add(r.output_duration);
    if (r.admitted) totals_.queue.add(*r.admitted - r.arrival);
    if (r.admitted && r.finished) totals_.compute_infer.add(*r.finished - *r.admitted);
  }

  Snapshot snapshot() const {
    std::lock_guard lock(mutex_);
    return totals_;
  }

 private:
  mutable std::mutex mutex_;
  Snapshot totals_;
};

}  // namespace llmserve
