// MetricsRegistry: request records and engine snapshots into prometheus-cpp metrics.
#include "server/metrics/metrics_registry.h"

#include <algorithm>
#include <exception>

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "common/logging.h"
#include "common/status.h"
#include "server/metrics/gpu_metrics.h"
#include "server/metrics/metric_families.h"

namespace llmserve {
namespace {

// Moves `counter` up to `total`, a running total kept by its owner; `last` is the total it was
// given before.
void advance_to(prometheus::Counter& counter, int64_t total, int64_t& last) {
  if (total <= last) return;
  counter.Increment(static_cast<double>(total - last));
  last = total;
}

// Triton adds integer microseconds (ns / 1000, truncated) per request.
int64_t whole_us(Clock::duration d) {
  return std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::microseconds>(d).count());
}

double seconds(Clock::duration d) {
  return std::max(0.0, std::chrono::duration<double>(d).count());
}

// A counter mirrored from a cumulative engine total; a smaller total means a restarted engine.
void add_delta(prometheus::Counter* counter, int64_t now_total, int64_t last_total) {
  const int64_t delta = now_total >= last_total ? now_total - last_total : now_total;
  if (delta > 0) counter->Increment(static_cast<double>(delta));
}

}  // namespace

MetricsRegistry::MetricsRegistry(std::string model, std::string version, MetricsOptions options)
    : model_(std::move(model)),
      version_(std::move(version)),
      registry_(std::make_shared<prometheus::Registry>()),
      families_(
          std::make_unique<MetricFamilies>(build_metric_families(*registry_, model_, version_))),
      window_(options.queue_compute_window) {}

MetricsRegistry::~MetricsRegistry() {
  stop_polling();
}

void MetricsRegistry::on_request_done(const RequestRecord& record) {
  LlmMetrics& llm = families_->llm;
  if (record.first_token) {
    llm.time_to_first_token_seconds->Observe(seconds(*record.first_token - record.arrival));
  }
  for (double gap : record.inter_token_seconds) llm.inter_token_latency_seconds->Observe(gap);
  if (record.admitted) llm.prompt_tokens->Increment(std::max(0, record.num_prompt_tokens));
  llm.generation_tokens->Increment(std::max(0, record.num_generated_tokens));

  if (record.is_success) {
    record_success(record);
  } else {
    record_failure(record);
  }
}

void MetricsRegistry::record_success(const RequestRecord& record) {
  const int64_t request_us = whole_us(record.completed - record.arrival);
  const int64_t queue_us = record.admitted ? whole_us(*record.admitted - record.arrival) : 0;
  const int64_t infer_us =
      record.admitted && record.finished ? whole_us(*record.finished - *record.admitted) : 0;

  TritonMetrics& triton = families_->triton;
  triton.request_success->Increment();
  triton.inference_count->Increment();
  triton.request_duration_us->Increment(static_cast<double>(request_us));
  triton.queue_duration_us->Increment(static_cast<double>(queue_us));
  triton.compute_input_duration_us->Increment(static_cast<double>(whole_us(record.input_duration)));
  triton.compute_infer_duration_us->Increment(static_cast<double>(infer_us));
  triton.compute_output_duration_us->Increment(
      static_cast<double>(whole_us(record.output_duration)));

  LlmMetrics& llm = families_->llm;
  llm.e2e_request_latency_seconds->Observe(seconds(record.completed - record.arrival));
  if (record.admitted) {
    llm.request_queue_time_seconds->Observe(seconds(*record.admitted - record.arrival));
  }

  std::lock_guard lock(mutex_);
  window_.add(record.completed, queue_us, infer_us);
  llm.queue_compute_ratio->Set(window_.ratio(Clock::now()));
}

void MetricsRegistry::record_failure(const RequestRecord& record) {
  TritonMetrics& triton = families_->triton;
  switch (record.failure) {
    case FailureReason::kRejected:
      triton.failure_rejected->Increment();
      return;
    case FailureReason::kCancelled:
      triton.failure_canceled->Increment();
      return;
    case FailureReason::kBackend:
      triton.failure_backend->Increment();
      return;
    case FailureReason::kOther:
    case FailureReason::kNone:  // a failure nobody classified
      triton.failure_other->Increment();
      return;
  }
}

void MetricsRegistry::update(const EngineStats& stats, Clock::time_point now) {
  const int32_t num_active = std::max(0, stats.num_waiting) + std::max(0, stats.num_running);
  const int32_t num_scheduled = std::clamp(stats.last_step_num_seqs, 0, num_active);
  const double used_fraction =
      stats.num_total_blocks > 0
          ? static_cast<double>(stats.num_used_blocks) / stats.num_total_blocks
          : 0.0;

  families_->triton.pending_request_count->Set(num_active);

  TrtLlmMetrics& trt = families_->trt_llm;
  trt.request_active->Set(num_active);
  trt.request_scheduled->Set(num_scheduled);
  trt.request_waiting->Set(num_active - num_scheduled);
  trt.kv_max->Set(stats.num_total_blocks);
  trt.kv_free->Set(stats.num_free_blocks);
  trt.kv_used->Set(stats.num_used_blocks);
  trt.kv_tokens_per->Set(stats.block_size);
  // Prefix hits are whole blocks, so hit tokens / block size is the number of blocks reused.
  trt.kv_reused->Set(stats.block_size > 0 ? stats.num_prefix_hit_tokens / stats.block_size : 0);
  trt.kv_fraction->Set(used_fraction);
  trt.general_iteration_counter->Set(static_cast<double>(stats.num_steps));
  trt.general_timestamp->Set(
      static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count()));

  LlmMetrics& llm = families_->llm;
  llm.num_requests_running->Set(stats.num_running);
  llm.num_requests_waiting->Set(stats.num_waiting);
  llm.kv_cache_usage_ratio->Set(used_fraction);

  std::lock_guard lock(mutex_);
  add_delta(families_->triton.exec_count, stats.num_steps, last_stats_.num_steps);
  add_delta(llm.prefix_cache_queries, stats.num_prefix_query_tokens,
            last_stats_.num_prefix_query_tokens);
  add_delta(llm.prefix_cache_hits, stats.num_prefix_hit_tokens, last_stats_.num_prefix_hit_tokens);
  add_delta(llm.num_preemptions, stats.num_preemptions, last_stats_.num_preemptions);
  add_delta(llm.kv_window_released_blocks, stats.num_window_released_blocks,
            last_stats_.num_window_released_blocks);
  add_delta(llm.priority_admissions, stats.num_priority_admissions,
            last_stats_.num_priority_admissions);
  add_delta(llm.queue_timeouts, stats.num_queue_timeouts, last_stats_.num_queue_timeouts);
  add_delta(llm.deadlines_exceeded, stats.num_deadlines_exceeded,
            last_stats_.num_deadlines_exceeded);
  add_delta(llm.spec_decode_num_drafts, stats.num_spec_decodes, last_stats_.num_spec_decodes);
  add_delta(llm.spec_decode_num_draft_tokens, stats.num_draft_tokens, last_stats_.num_draft_tokens);
  add_delta(llm.spec_decode_num_accepted_tokens, stats.num_accepted_tokens,
            last_stats_.num_accepted_tokens);
  last_stats_ = stats;
  llm.queue_compute_ratio->Set(window_.ratio(now));
}

void MetricsRegistry::refresh() {
  std::lock_guard lock(refresh_mutex_);
  if (source_) update(source_());
}

void MetricsRegistry::start_polling(std::function<EngineStats()> source,
                                    std::chrono::milliseconds interval) {
  stop_polling();
  {
    std::lock_guard lock(refresh_mutex_);
    source_ = std::move(source);
  }
  poller_ = std::jthread([this, interval](std::stop_token stop) {
    std::mutex sleep_mutex;
    std::condition_variable_any sleep;
    while (!stop.stop_requested()) {
      try {
        refresh();
      } catch (const std::exception& e) {
        LOG_WARN("metrics: engine stats poll failed: {}", e.what());
      }
      try {
        update_gpu();
      } catch (const std::exception& e) {
        LOG_WARN("metrics: GPU poll failed: {}", e.what());
      }
      std::unique_lock lock(sleep_mutex);
      sleep.wait_for(lock, stop, interval, [] { return false; });
    }
  });
}

void MetricsRegistry::stop_polling() {
  if (poller_.joinable()) {
    poller_.request_stop();
    poller_.join();
  }
  std::lock_guard lock(refresh_mutex_);
  source_ = nullptr;
}

void MetricsRegistry::add_gpu_metrics(std::unique_ptr<GpuSampler> sampler) {
  {
    std::lock_guard lock(gpu_mutex_);
    if (gpu_) fail(StatusCode::kInternal, "add_gpu_metrics called twice");
    gpu_ = std::make_unique<GpuMetrics>(*registry_, std::move(sampler));
  }
  update_gpu();
}

void MetricsRegistry::update_gpu() {
  std::lock_guard lock(gpu_mutex_);
  if (gpu_) gpu_->update();
}

std::string MetricsRegistry::render_text() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

void MetricsRegistry::set_model_load_seconds(double seconds) {
  families_->triton.model_load_duration_secs->Set(seconds);
}

void MetricsRegistry::set_http_connections(int64_t num_open, int64_t num_refused_total) {
  std::lock_guard lock(mutex_);
  families_->llm.http_open_connections->Set(static_cast<double>(num_open));
  advance_to(*families_->llm.http_refused_connections, num_refused_total, last_http_refused_);
}

void MetricsRegistry::set_tokenizer_queue(int64_t num_pending, int64_t num_refused_total) {
  std::lock_guard lock(mutex_);
  families_->llm.tokenizer_pending_requests->Set(static_cast<double>(num_pending));
  advance_to(*families_->llm.tokenizer_refused_requests, num_refused_total,
             last_tokenizer_refused_);
}

void MetricsRegistry::set_max_active_requests(int32_t num_requests) {
  std::lock_guard lock(mutex_);
  if (!max_active_requests_) {
    max_active_requests_ = &families_->trt_llm.request_family->Add(
        {{"model", model_}, {"version", version_}, {"request_type", "max"}});
  }
  max_active_requests_->Set(num_requests);
}

double MetricsRegistry::queue_compute_ratio() const {
  return families_->llm.queue_compute_ratio->Value();
}

}  // namespace llmserve
