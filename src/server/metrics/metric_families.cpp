// Builds the exported families. HELP texts of Triton's families are Triton's own, so dashboards
// and humans comparing the two expositions see the same lines.
#include "server/metrics/metric_families.h"

#include <prometheus/labels.h>

namespace llmserve {
namespace {

// Time to first token: a cached short prompt answers in ms, a long prefill under load in tens of s.
const prometheus::Histogram::BucketBoundaries kTtftBuckets = {
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25, 0.5,
    0.75,  1.0,   2.5,  5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0};
// Gaps between output chunks: a few ms on a GPU, up to seconds on a CPU or under preemption.
const prometheus::Histogram::BucketBoundaries kInterTokenBuckets = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1,  0.15, 0.2,
    0.3,   0.4,    0.5,   0.75, 1.0,   2.5,  5.0,   10.0, 20.0};
// End to end and queue time: generations run for seconds to minutes.
const prometheus::Histogram::BucketBoundaries kRequestBuckets = {
    0.01, 0.05, 0.1,  0.3,  0.5,  0.8,  1.0,  1.5,   2.0,   2.5,   5.0,
    10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0};

struct Builder {
  prometheus::Registry& registry;
  prometheus::Labels base;

  prometheus::Labels with(const std::string& key, const std::string& value) const {
    prometheus::Labels labels = base;
    labels.emplace(key, value);
    return labels;
  }
  prometheus::Family<prometheus::Counter>& counter_family(const std::string& name,
                                                          const std::string& help) const {
    return prometheus::BuildCounter().Name(name).Help(help).Register(registry);
  }
  prometheus::Counter* counter(const std::string& name, const std::string& help) const {
    return &counter_family(name, help).Add(base);
  }
  prometheus::Family<prometheus::Gauge>& gauge_family(const std::string& name,
                                                      const std::string& help) const {
    return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
  }
  prometheus::Gauge* gauge(const std::string& name, const std::string& help) const {
    return &gauge_family(name, help).Add(base);
  }
  prometheus::Histogram* histogram(const std::string& name, const std::string& help,
                                   const prometheus::Histogram::BucketBoundaries& buckets) const {
    auto& family = prometheus::BuildHistogram().Name(name).Help(help).Register(registry);
    return &family.Add(base, buckets);
  }
};

TritonMetrics build_triton(const Builder& b) {
  TritonMetrics m{};
  m.request_success = b.counter("nv_inference_request_success",
                                "Number of successful inference requests, all batch sizes");
  auto& failure = b.counter_family("nv_inference_request_failure",
                                   "Number of failed inference requests, all batch sizes");
  // Triton pre-creates all four reasons at 0.
  m.failure_rejected = &failure.Add(b.with("reason", "REJECTED"));
  m.failure_canceled = &failure.Add(b.with("reason", "CANCELED"));
  m.failure_backend = &failure.Add(b.with("reason", "BACKEND"));
  m.failure_other = &failure.Add(b.with("reason", "OTHER"));
  m.inference_count = b.counter(
      "nv_inference_count", "Number of inferences performed (does not include cached requests)");
  m.exec_count =
      b.counter("nv_inference_exec_count",
                "Number of model executions performed (does not include cached requests)");
  m.request_duration_us =
      b.counter("nv_inference_request_duration_us",
                "Cumulative inference request duration in microseconds (includes cached requests)");
  m.queue_duration_us =
      b.counter("nv_inference_queue_duration_us",
                "Cumulative inference queuing duration in microseconds (includes cached requests)");
  m.compute_input_duration_us = b.counter(
      "nv_inference_compute_input_duration_us",
      "Cumulative compute input duration in microseconds (does not include cached requests)");
  m.compute_infer_duration_us = b.counter(
      "nv_inference_compute_infer_duration_us",
      "Cumulative compute inference duration in microseconds (does not include cached requests)");
  m.compute_output_duration_us = b.counter(
      "nv_inference_compute_output_duration_us",
      "Cumulative inference compute output duration in microseconds (does not include cached "
      "requests)");
  m.pending_request_count = b.gauge(
      "nv_inference_pending_request_count",
      "Instantaneous number of pending requests awaiting execution per-model (llmserve: "
      "requests admitted and not finished, whether waiting for batch capacity or in the running "
      "batch).");
  m.model_load_duration_secs = b.gauge("nv_model_load_duration_secs", "Model load time in seconds");
  return m;
}

TrtLlmMetrics build_trt_llm(const Builder& b) {
  TrtLlmMetrics m{};
  m.request_family = &b.gauge_family("nv_trt_llm_request_metrics", "TRT LLM request metrics");
  m.request_active = &m.request_family->Add(b.with("request_type", "active"));
  m.request_scheduled = &m.request_family->Add(b.with("request_type", "scheduled"));
  m.request_waiting = &m.request_family->Add(b.with("request_type", "waiting"));

  auto& kv = b.gauge_family("nv_trt_llm_kv_cache_block_metrics", "TRT LLM KV cache block metrics");
  const std::string kv_key = "kv_cache_block_type";
  m.kv_max = &kv.Add(b.with(kv_key, "max"));
  m.kv_free = &kv.Add(b.with(kv_key, "free"));
  m.kv_used = &kv.Add(b.with(kv_key, "used"));
  m.kv_tokens_per = &kv.Add(b.with(kv_key, "tokens_per"));
  m.kv_reused = &kv.Add(b.with(kv_key, "reused"));
  m.kv_fraction = &kv.Add(b.with(kv_key, "fraction"));

  auto& ifb =
      b.gauge_family("nv_trt_llm_inflight_batcher_metrics", "TRT LLM inflight batcher metrics");
  m.ifb_micro_batch_id = &ifb.Add(b.with("inflight_batcher_specific_metric", "micro_batch_id"));

  auto& general = b.gauge_family("nv_trt_llm_general_metrics", "General TRT LLM metrics");
  m.general_iteration_counter = &general.Add(b.with("general_type", "iteration_counter"));
  m.general_timestamp = &general.Add(b.with("general_type", "timestamp"));
  return m;
}

LlmMetrics build_llm(const Builder& b) {
  LlmMetrics m{};
  m.time_to_first_token_seconds =
      b.histogram("llmserve_time_to_first_token_seconds",
                  "Seconds from arrival to the first generated token", kTtftBuckets);
  m.inter_token_latency_seconds =
      b.histogram("llmserve_inter_token_latency_seconds",
                  "Seconds between consecutive output chunks of a request", kInterTokenBuckets);
  m.e2e_request_latency_seconds = b.histogram(
      "llmserve_e2e_request_latency_seconds",
      "Seconds from arrival to the response sent, successful requests", kRequestBuckets);
  m.request_queue_time_seconds =
      b.histogram("llmserve_request_queue_time_seconds",
                  "Seconds from arrival to admission into the running batch, successful requests",
                  kRequestBuckets);
  m.prompt_tokens = b.counter("llmserve_prompt_tokens_total",
                              "Prompt tokens of finished requests that reached the engine");
  m.generation_tokens =
      b.counter("llmserve_generation_tokens_total", "Tokens generated for finished requests");
  m.prefix_cache_queries = b.counter("llmserve_prefix_cache_queries_total",
                                     "Prompt tokens looked up in the prefix cache");
  m.prefix_cache_hits =
      b.counter("llmserve_prefix_cache_hits_total", "Prompt tokens found in the prefix cache");
  m.num_preemptions =
      b.counter("llmserve_num_preemptions_total", "Sequences preempted to free KV blocks");
  m.kv_window_released_blocks = b.counter(
      "llmserve_kv_window_released_blocks_total",
      "KV blocks returned to the pool because every layer's sliding window had passed them");
  m.priority_admissions =
      b.counter("llmserve_priority_admissions_total",
                "Requests admitted ahead of an earlier arrival by their priority");
  m.queue_timeouts =
      b.counter("llmserve_queue_timeouts_total",
                "Requests ended because their queue timeout passed before admission");
  m.deadlines_exceeded = b.counter("llmserve_deadlines_exceeded_total",
                                   "Requests ended because their deadline passed");
  m.spec_decode_num_drafts =
      b.counter("llmserve_spec_decode_num_drafts_total",
                "Decode steps of a sequence that carried speculative drafts (--speculative)");
  m.spec_decode_num_draft_tokens = b.counter("llmserve_spec_decode_num_draft_tokens_total",
                                             "Speculative draft tokens proposed and verified");
  m.spec_decode_num_accepted_tokens =
      b.counter("llmserve_spec_decode_num_accepted_tokens_total",
                "Speculative draft tokens accepted: tokens gained over plain decoding");
  m.num_requests_running =
      b.gauge("llmserve_num_requests_running", "Requests in the running batch");
  m.num_requests_waiting =
      b.gauge("llmserve_num_requests_waiting", "Requests submitted and not yet admitted");
  m.kv_cache_usage_ratio =
      b.gauge("llmserve_kv_cache_usage_ratio", "Fraction of KV cache blocks in use (0 to 1)");
  m.queue_compute_ratio = b.gauge(
      "llmserve_queue_compute_ratio",
      "Sum of queue time over sum of compute-infer time of requests completed in the sliding "
      "window; the live value of triton:queue_compute:ratio");
  m.http_open_connections =
      b.gauge("llmserve_http_open_connections", "Open connections of the HTTP server (:8000)");
  m.http_refused_connections =
      b.counter("llmserve_http_refused_connections_total",
                "HTTP connections refused with 503 over --max-connections");
  m.tokenizer_pending_requests =
      b.gauge("llmserve_tokenizer_pending_requests",
              "Requests (HTTP POST, gRPC infer) waiting for or being parsed and tokenized by a "
              "tokenizer thread (--tokenizer-threads)");
  m.tokenizer_refused_requests =
      b.counter("llmserve_tokenizer_refused_requests_total",
                "Requests refused (HTTP 503, gRPC UNAVAILABLE) because --tokenizer-queue-size "
                "requests were waiting for a tokenizer thread");
  return m;
}

}  // namespace

MetricFamilies build_metric_families(prometheus::Registry& registry, const std::string& model,
                                     const std::string& version) {
  const Builder b{registry, {{"model", model}, {"version", version}}};
  return {build_triton(b), build_trt_llm(b), build_llm(b)};
}

}  // namespace llmserve
