// MetricsRegistry: everything llmserve exports to Prometheus, over prometheus-cpp (the small
// wrapper Triton itself has). Two inputs feed it:
//   - RequestRecords, one per finished request (on_request_done, any thread): Triton's cumulative
//     counters, the latency histograms, token counters and the queue:compute window;
//   - EngineStats snapshots (update, from the poller thread start_polling owns): the live gauges,
//     and counters the engine keeps cumulatively (exported as deltas since the last snapshot).
// It renders the Prometheus text (render_text); `serve` answers /metrics with it on Triton's
// separate port 8002 through our own HTTP server.
//
// Exported families (labels model, version on every series; see spec/triton-stack.md §2):
//   Triton core (exact names, HELP texts and semantics; counters without `_total`):
//     nv_inference_request_success                  +1 per successful request
//     nv_inference_request_failure{reason}          REJECTED|CANCELED|BACKEND|OTHER, all at 0 first
//     nv_inference_count                            +1 per successful request (batch size 1)
//     nv_inference_exec_count                       engine steps (forward passes), from EngineStats
//     nv_inference_request_duration_us              Σ completed − arrival
//     nv_inference_queue_duration_us                Σ admitted − arrival
//     nv_inference_compute_input_duration_us        Σ input_duration (tokenization)
//     nv_inference_compute_infer_duration_us        Σ finished − admitted
//     nv_inference_compute_output_duration_us       Σ output_duration (detokenize + serialize)
//     nv_inference_pending_request_count (gauge)    waiting + running
//     nv_model_load_duration_secs (gauge)           set_model_load_seconds
//   As in Triton, the five duration counters (integer µs per request, truncated) and the count
//   counters grow only for successful requests, at completion; a failure bumps only its reason.
//   TensorRT-LLM backend (gauges, dashboard parity):
//     nv_trt_llm_request_metrics{request_type}      active (waiting + running), scheduled (last
//                                                   step's sequences, ≤ active), waiting
//                                                   (active − scheduled, TRT-LLM's definition),
//                                                   max (only after set_max_active_requests)
//     nv_trt_llm_kv_cache_block_metrics{kv_cache_block_type}
//                                                   max, free, used, tokens_per, fraction
//                                                   (used/max), reused (prefix-hit tokens / block
//                                                   size)
//     nv_trt_llm_inflight_batcher_metrics{inflight_batcher_specific_metric}
//                                                   micro_batch_id (always 0: no pipeline micro-
//                                                   batches); total_context_tokens,
//                                                   generation_requests and paused_requests are
//                                                   omitted: EngineStats has no per-step prefill /
//                                                   decode split nor a paused count
//     nv_trt_llm_general_metrics{general_type}      iteration_counter (engine steps), timestamp
//                                                   (µs since the epoch at the snapshot)
//     nv_trt_llm_runtime_memory_metrics, nv_trt_llm_v1_metrics: omitted (no memory figures in
//     EngineStats; no V1 batching).
//   llmserve (ours):
//     llmserve_time_to_first_token_seconds (histogram)  first_token − arrival, every request that
//                                                       produced a token
//     llmserve_inter_token_latency_seconds (histogram)  each RequestRecord::inter_token_seconds gap
//     llmserve_e2e_request_latency_seconds (histogram)  completed − arrival, successful requests
//     llmserve_request_queue_time_seconds (histogram)   admitted − arrival, successful requests
//     llmserve_prompt_tokens_total (counter)            prompt tokens of finished requests that
//     were
//                                                       admitted (from the records)
//     llmserve_generation_tokens_total (counter)        generated tokens of finished requests
//     llmserve_prefix_cache_queries_total, llmserve_prefix_cache_hits_total (counters, tokens),
//     llmserve_num_preemptions_total (counter)          from EngineStats' cumulative fields
//     llmserve_kv_window_released_blocks_total (counter)  KV blocks freed below a sliding window
//     llmserve_priority_admissions_total, llmserve_queue_timeouts_total,
//     llmserve_deadlines_exceeded_total (counters)      the same: what the priority order, the
//                                                       queue timeouts and the deadlines did
//     llmserve_spec_decode_num_drafts_total, llmserve_spec_decode_num_draft_tokens_total,
//     llmserve_spec_decode_num_accepted_tokens_total (counters)  speculative decoding: decodes
//                                                       with drafts, drafts, drafts accepted
//     llmserve_num_requests_running, llmserve_num_requests_waiting (gauges)
//     llmserve_kv_cache_usage_ratio (gauge)             used / total blocks
//     llmserve_queue_compute_ratio (gauge)              the HPA's triton:queue_compute:ratio over
//     the
//                                                       last MetricsOptions::queue_compute_window
//                                                       of successful completions
//                                                       (QueueComputeWindow)
//
// The registry labels every series with its own model name, not RequestRecord::model: the HPA's
// adapter sums the ratio over every model series of a pod, so one public model must carry it.
//
// GPU (add_gpu_metrics; `serve` on cuda, through NVML): Triton's nv_gpu_utilization,
// nv_gpu_memory_total_bytes, nv_gpu_memory_used_bytes, nv_gpu_power_usage, nv_gpu_power_limit and
// nv_energy_consumption, label gpu_uuid only (gpu_metrics.h), refreshed on every poll.
//
// Thread-safety: every public member may be called from any thread. on_request_done and update
// serialise on one mutex (the window and the last-snapshot state); the prometheus-cpp metrics are
// thread-safe themselves, so render_text and scrapes never wait on the engine.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "engine/engine.h"
#include "server/metrics/queue_compute_window.h"
#include "server/request_record.h"

namespace prometheus {
class Registry;
class Gauge;
}  // namespace prometheus

namespace llmserve {

struct MetricFamilies;
class GpuMetrics;
class GpuSampler;

struct MetricsOptions {
  // The recording rule's rate() range; the HPA's rule uses 1m.
  std::chrono::milliseconds queue_compute_window{std::chrono::seconds(60)};
};

class MetricsRegistry final : public RequestObserver {
 public:
  // Creates every series at 0 for {model, version}.
  explicit MetricsRegistry(std::string model, std::string version = "1",
                           MetricsOptions options = {});
  ~MetricsRegistry() override;  // stops the poller
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Adds one finished request (success or failure) to the counters and histograms.
  void on_request_done(const RequestRecord& record) override;

  // Refreshes the gauges from a snapshot and advances the cumulative-counter deltas; also expires
  // the queue:compute window at `now` (so the ratio decays without traffic).
  void update(const EngineStats& stats) { update(stats, Clock::now()); }
  void update(const EngineStats& stats, Clock::time_point now);

  // Starts a thread calling refresh() (and update_gpu()) now and then every `interval` until
  // stop_polling() or destruction, with `source` as refresh()'s snapshot. Restarting replaces the
  // previous poller. An exception from source is logged and the poller carries on.
  void start_polling(std::function<EngineStats()> source,
                     std::chrono::milliseconds interval = std::chrono::seconds(1));
  // idempotent; returns after the poller thread has exited, and refresh() does nothing after.
  void stop_polling();
  // update(source()) now, serialised with the poller's (a snapshot older than the one applied
  // last would subtract from the counters' deltas): /metrics calls it so a scrape sees the engine
  // as it is, not as it was at the last poll. A no-op while not polling; exceptions propagate.
  void refresh();

  // Adds the nv_gpu_* families read from `sampler`, sampled now and on every poll. Once.
  void add_gpu_metrics(std::unique_ptr<GpuSampler> sampler);
  void update_gpu();  // samples the GPUs now (a no-op without add_gpu_metrics)

  // The Prometheus text exposition (format 0.0.4) of every family.
  std::string render_text() const;

  void set_model_load_seconds(double seconds);
  // The HTTP server's open connections and its refusals since start (cumulative). Thread-safe.
  void set_http_connections(int64_t num_open, int64_t num_refused_total);
  // Requests queued for or being handled by a tokenizer thread; refused over its queue bound.
  void set_tokenizer_queue(int64_t num_pending, int64_t num_refused_total);
  // Creates nv_trt_llm_request_metrics{request_type="max"} (the engine's max batch size).
  void set_max_active_requests(int32_t num_requests);

  // Latest llmserve_queue_compute_ratio value.
  double queue_compute_ratio() const;

  // For other exporters to add families to the same exposition.
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

 private:
  void record_success(const RequestRecord& record);
  void record_failure(const RequestRecord& record);

  std::string model_;
  std::string version_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<MetricFamilies> families_;

  mutable std::mutex mutex_;  // guards the members below
  QueueComputeWindow window_;
  EngineStats last_stats_;
  prometheus::Gauge* max_active_requests_ = nullptr;
  int64_t last_http_refused_ = 0;
  int64_t last_tokenizer_refused_ = 0;

  std::mutex gpu_mutex_;  // guards gpu_
  std::unique_ptr<GpuMetrics> gpu_;

  std::mutex refresh_mutex_;  // serialises refresh(); guards source_
  std::function<EngineStats()> source_;
  std::jthread poller_;
};

}  // namespace llmserve
