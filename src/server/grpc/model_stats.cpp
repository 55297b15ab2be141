#include "server/grpc/model_stats.h"

#include <algorithm>
#include <chrono>

namespace llmserve::grpc_frontend {

void ModelStats::Duration::add(Clock::duration d) {
  ++count;
  ns += static_cast<uint64_t>(std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(d).count()));
}

void ModelStats::Duration::fill(inference::StatisticDuration& out) const {
  out.set_count(count);
  out.set_ns(ns);
}

void ModelStats::on_request_done(const RequestRecord& r) {
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  std::lock_guard lock(mutex_);
  last_inference_ms_ = static_cast<uint64_t>(now_ms.count());
  const Clock::duration total = r.completed - r.arrival;
  if (!r.is_success) {
    fail_.add(total);
    if (r.failure == FailureReason::kCancelled) ++num_cancelled_;
    return;
  }
  ++num_inferences_;
  success_.add(total);
  compute_input_.add(r.input_duration);
  compute_output_.add(r.output_duration);
  if (r.admitted) queue_.add(*r.admitted - r.arrival);
  if (r.admitted && r.finished) compute_infer_.add(*r.finished - *r.admitted);
}

void ModelStats::fill(inference::ModelStatistics& out) const {
  std::lock_guard lock(mutex_);
  out.set_last_inference(last_inference_ms_);
  out.set_inference_count(num_inferences_);
  out.set_execution_count(num_inferences_);
  auto* s = out.mutable_inference_stats();
  success_.fill(*s->mutable_success());
  fail_.fill(*s->mutable_fail());
  queue_.fill(*s->mutable_queue());
  compute_input_.fill(*s->mutable_compute_input());
  compute_infer_.fill(*s->mutable_compute_infer());
  compute_output_.fill(*s->mutable_compute_output());
  s->mutable_cache_hit();
  s->mutable_cache_miss();
  // Per-response statistics of a decoupled model: we report the request-level cancellations here.
  auto& response = (*out.mutable_response_stats())["0"];
  response.mutable_cancel()->set_count(num_cancelled_);
}

}  // namespace llmserve::grpc_frontend
