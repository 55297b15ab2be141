// ModelStats: the cumulative counters behind the ModelStatistics RPC (Triton's statistics
// extension), fed one RequestRecord per finished request.
//
// GrpcServer feeds it the requests it serves itself. It is also a RequestObserver, so `serve` may
// register it on the GenerationService to count every protocol instead (then it must outlive the
// service's last finish(), and GrpcServer must not be told to feed it too: see
// GrpcServerOptions::stats). Cancelled requests count as failures, as in Triton, and separately in
// num_cancelled. batch_stats and memory_usage stay empty; execution_count = inference_count.
//
// Thread-safety: every member is safe to call from any thread.
#pragma once

#include <cstdint>
#include <mutex>

#include "grpc_service.pb.h"
#include "server/request_record.h"

namespace llmserve::grpc_frontend {

class ModelStats : public RequestObserver {
 public:
  void on_request_done(const RequestRecord& record) override;
  // Fills one ModelStatistics entry (name and version are the caller's).
  void fill(inference::ModelStatistics& out) const;

 private:
  struct Duration {
    uint64_t count = 0;
    uint64_t ns = 0;
    void add(Clock::duration d);
    void fill(inference::StatisticDuration& out) const;
  };

  mutable std::mutex mutex_;
  uint64_t last_inference_ms_ = 0;  // since the Unix epoch
  uint64_t num_inferences_ = 0;
  uint64_t num_cancelled_ = 0;
  Duration success_, fail_, queue_, compute_input_, compute_infer_, compute_output_;
};

}  // namespace llmserve::grpc_frontend
