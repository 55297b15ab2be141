// The metric families llmserve exports, built once into a prometheus::Registry. Every series
// carries the labels model and version and exists (at 0) from construction, as Triton's per-model
// series exist from model load. Names, types and label values follow Triton and the TensorRT-LLM
// backend exactly (spec/triton-stack.md §2); the llmserve_* families are ours.
//
// Holds references into the registry, which owns the metrics; the registry must outlive these.
// The prometheus-cpp metrics are themselves thread-safe.
#pragma once

#include <string>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace llmserve {

// Triton core's per-model inference statistics (cumulative µs counters, no `_total`).
struct TritonMetrics {
  prometheus::Counter* request_success;
  prometheus::Counter* failure_rejected;
  prometheus::Counter* failure_canceled;
  prometheus::Counter* failure_backend;
  prometheus::Counter* failure_other;
  prometheus::Counter* inference_count;
  prometheus::Counter* exec_count;
  prometheus::Counter* request_duration_us;
  prometheus::Counter* queue_duration_us;
  prometheus::Counter* compute_input_duration_us;
  prometheus::Counter* compute_infer_duration_us;
  prometheus::Counter* compute_output_duration_us;
  prometheus::Gauge* pending_request_count;
  prometheus::Gauge* model_load_duration_secs;
};

// TensorRT-LLM backend custom metrics, for dashboard parity. Only the label values our
// EngineStats can fill honestly; see metrics_registry.h for what is left out and why.
struct TrtLlmMetrics {
  prometheus::Family<prometheus::Gauge>*
      request_family;  // `max` is added by set_max_active_requests
  prometheus::Gauge* request_active;
  prometheus::Gauge* request_scheduled;
  prometheus::Gauge* request_waiting;
  prometheus::Gauge* kv_max;
  prometheus::Gauge* kv_free;
  prometheus::Gauge* kv_used;
  prometheus::Gauge* kv_tokens_per;
  prometheus::Gauge* kv_reused;
  prometheus::Gauge* kv_fraction;
  prometheus::Gauge* ifb_micro_batch_id;
  prometheus::Gauge* general_iteration_counter;
  prometheus::Gauge* general_timestamp;
};

// llmserve's own LLM-native metrics (seconds, tokens).
struct LlmMetrics {
  prometheus::Histogram* time_to_first_token_seconds;
  prometheus::Histogram* inter_token_latency_seconds;
  prometheus::Histogram* e2e_request_latency_seconds;
  prometheus::Histogram* request_queue_time_seconds;
  prometheus::Counter* prompt_tokens;
  prometheus::Counter* generation_tokens;
  prometheus::Counter* prefix_cache_queries;
  prometheus::Counter* prefix_cache_hits;
  prometheus::Counter* num_preemptions;
  prometheus::Counter* kv_window_released_blocks;
  prometheus::Counter* priority_admissions;
  prometheus::Counter* queue_timeouts;
  prometheus::Counter* deadlines_exceeded;
  prometheus::Counter* spec_decode_num_drafts;
  prometheus::Counter* spec_decode_num_draft_tokens;
  prometheus::Counter* spec_decode_num_accepted_tokens;
  prometheus::Gauge* num_requests_running;
  prometheus::Gauge* num_requests_waiting;
  prometheus::Gauge* kv_cache_usage_ratio;
  prometheus::Gauge* queue_compute_ratio;
  prometheus::Gauge* http_open_connections;
  prometheus::Counter* http_refused_connections;
  prometheus::Gauge* tokenizer_pending_requests;
  prometheus::Counter* tokenizer_refused_requests;
};

struct MetricFamilies {
  TritonMetrics triton;
  TrtLlmMetrics trt_llm;
  LlmMetrics llm;
};

// Builds every family into `registry` with labels {model, version}.
MetricFamilies build_metric_families(prometheus::Registry& registry, const std::string& model,
                                     const std::string& version);

}  // namespace llmserve
