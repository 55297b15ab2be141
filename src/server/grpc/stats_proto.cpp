#include "server/grpc/stats_proto.h"

namespace llmserve::grpc_frontend {

namespace {
void fill(const ModelStats::Duration& d, inference::StatisticDuration& out) {
  out.set_count(d.count);
  out.set_ns(d.ns);
}
}  // namespace

void fill_model_statistics(const ModelStats::Snapshot& t, inference::ModelStatistics& out) {
  out.set_last_inference(t.last_inference_ms);
  out.set_inference_count(t.inference_count);
  out.set_execution_count(t.execution_count);
  auto* s = out.mutable_inference_stats();
  fill(t.success, *s->mutable_success());
  fill(t.fail, *s->mutable_fail());
  fill(t.queue, *s->mutable_queue());
  fill(t.compute_input, *s->mutable_compute_input());
  fill(t.compute_infer, *s->mutable_compute_infer());
  fill(t.compute_output, *s->mutable_compute_output());
  s->mutable_cache_hit();
  s->mutable_cache_miss();
  auto& response = (*out.mutable_response_stats())["0"];
  response.mutable_cancel()->set_count(t.num_cancelled);
}

}  // namespace llmserve::grpc_frontend
