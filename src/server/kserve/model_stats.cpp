#include "server/kserve/model_stats.h"

#include <chrono>

namespace llmserve::kserve {

namespace {
uint64_t ns(Clock::duration d) {
  const auto n = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  return n > 0 ? static_cast<uint64_t>(n) : 0;
}
void add(ModelStats::Duration& d, Clock::duration v) {
  d.count += 1;
  d.ns += ns(v);
}
nlohmann::json to_json(const ModelStats::Duration& d) { return {{"count", d.count}, {"ns", d.ns}}; }
}  // namespace

void ModelStats::on_request_done(const RequestRecord& r) {
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now().time_since_epoch()).count();
  std::lock_guard lock(mutex_);
  totals_.last_inference_ms = static_cast<uint64_t>(now_ms);
  const Clock::duration total = r.completed - r.arrival;
  if (!r.is_success) {
    add(totals_.fail, total);
    if (r.failure == FailureReason::kCancelled) totals_.num_cancelled += 1;
    return;
  }
  add(totals_.success, total);
  add(totals_.compute_input, r.input_duration);
  add(totals_.compute_output, r.output_duration);
  if (r.admitted) {
    add(totals_.queue, *r.admitted - r.arrival);
    if (r.finished) add(totals_.compute_infer, *r.finished - *r.admitted);
  }
}

ModelStats::Totals ModelStats::totals() const {
  std::lock_guard lock(mutex_);
  return totals_;
}

nlohmann::json ModelStats::to_json(const std::string& name, const std::string& version) const {
  const Totals t = totals();
  const nlohmann::json zero = {{"count", 0}, {"ns", 0}};
  return {{"name", name},
          {"version", version},
          {"last_inference", t.last_inference_ms},
          {"inference_count", t.success.count},
          {"execution_count", t.success.count},
          {"inference_stats",
           {{"success", kserve::to_json(t.success)},
            {"fail", kserve::to_json(t.fail)},
            {"queue", kserve::to_json(t.queue)},
            {"compute_input", kserve::to_json(t.compute_input)},
            {"compute_infer", kserve::to_json(t.compute_infer)},
            {"compute_output", kserve::to_json(t.compute_output)},
            {"cache_hit", zero},
            {"cache_miss", zero}}},
          {"response_stats", nlohmann::json::object()},
          {"batch_stats", nlohmann::json::array()},
          {"memory_usage", nlohmann::json::array()},
          // Not in Triton: requests that ended because the client went away.
          {"cancel_count", t.num_cancelled}};
}

}  // namespace llmserve::kserve
