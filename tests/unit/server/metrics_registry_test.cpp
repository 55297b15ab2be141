// MetricsRegistry: crafted RequestRecords and EngineStats in, exact exposition text out.
#include "server/metrics/metrics_registry.h"

#include <atomic>
#include <cmath>
#include <map>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "server/metrics/queue_compute_window.h"

namespace llmserve {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

const std::string kLabels = R"({model="llama",version="1"})";

// The value of the sample named exactly `series` (name plus label set); NaN and a failure if
// absent.
double sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  ADD_FAILURE() << "no sample " << series << " in:\n" << text;
  return std::nan("");
}

bool has_line_starting(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

// `family{key="value",model="llama",version="1"}`: labels sorted by key, as prometheus-cpp emits.
std::string series(const std::string& family, const std::string& key, const std::string& value) {
  const std::map<std::string, std::string> labels = {
      {key, value}, {"model", "llama"}, {"version", "1"}};
  std::string text = family + "{";
  for (const auto& [k, v] : labels) text += k + "=\"" + v + "\",";
  text.back() = '}';
  return text;
}

std::string reason(const std::string& r) {
  return R"({model="llama",reason=")" + r + R"(",version="1"})";
}

// A successful request: queue 1.5 ms, infer 8.5 ms, end to end 12.25 ms, input 300 µs, output 250
// µs.
RequestRecord success_record(Clock::time_point t0) {
  RequestRecord r;
  r.model = "llama";
  r.protocol = "generate";
  r.is_success = true;
  r.arrival = t0;
  r.admitted = t0 + microseconds(1500);
  r.first_token = t0 + milliseconds(3);
  r.finished = t0 + milliseconds(10);
  r.completed = t0 + microseconds(12250);
  r.input_duration = microseconds(300);
  r.output_duration = microseconds(250);
  r.num_prompt_tokens = 7;
  r.num_cached_tokens = 0;
  r.num_generated_tokens = 4;
  r.inter_token_seconds = {0.004, 0.02, 0.3};
  return r;
}

RequestRecord failure_record(Clock::time_point t0, FailureReason failure) {
  RequestRecord r = success_record(t0);
  r.is_success = false;
  r.failure = failure;
  r.status = Status(StatusCode::kCancelled, "gone");
  return r;
}

TEST(MetricsRegistryTest, EverySeriesExistsAtZeroWithTritonNamesAndTypes) {
  MetricsRegistry metrics("llama");
  const std::string text = metrics.render_text();
  for (const char* name :
       {"nv_inference_request_success", "nv_inference_count", "nv_inference_exec_count",
        "nv_inference_request_duration_us", "nv_inference_queue_duration_us",
        "nv_inference_compute_input_duration_us", "nv_inference_compute_infer_duration_us",
        "nv_inference_compute_output_duration_us"}) {
    EXPECT_NE(text.find(std::string("# TYPE ") + name + " counter\n"), std::string::npos) << name;
    EXPECT_EQ(sample(text, name + kLabels), 0.0) << name;
  }
  for (const char* r : {"REJECTED", "CANCELED", "BACKEND", "OTHER"}) {
    EXPECT_EQ(sample(text, "nv_inference_request_failure" + reason(r)), 0.0) << r;
  }
  EXPECT_NE(text.find("# TYPE nv_inference_request_failure counter\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE nv_inference_pending_request_count gauge\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE nv_model_load_duration_secs gauge\n"), std::string::npos);
  EXPECT_NE(text.find("# HELP nv_inference_queue_duration_us Cumulative inference queuing "
                      "duration in microseconds (includes cached requests)\n"),
            std::string::npos);
  EXPECT_NE(text.find("# HELP nv_trt_llm_request_metrics TRT LLM request metrics\n"),
            std::string::npos);
  EXPECT_EQ(sample(text, "nv_inference_pending_request_count" + kLabels), 0.0);
  EXPECT_EQ(sample(text, series("nv_trt_llm_request_metrics", "request_type", "active")), 0);
  EXPECT_EQ(
      sample(text, series("nv_trt_llm_kv_cache_block_metrics", "kv_cache_block_type", "fraction")),
      0);
  EXPECT_EQ(sample(text, series("nv_trt_llm_inflight_batcher_metrics",
                                "inflight_batcher_specific_metric", "micro_batch_id")),
            0);
  EXPECT_EQ(sample(text, series("nv_trt_llm_general_metrics", "general_type", "iteration_counter")),
            0);
  // Triton's counters carry no `_total`; a `max` request_type only once the limit is known.
  EXPECT_FALSE(has_line_starting(text, "nv_inference_request_success_total"));
  EXPECT_EQ(text.find("request_type=\"max\""), std::string::npos);
  EXPECT_NE(text.find("# TYPE llmserve_time_to_first_token_seconds histogram\n"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE llmserve_queue_compute_ratio gauge\n"), std::string::npos);
}

TEST(MetricsRegistryTest, SuccessAddsCumulativeMicroseconds) {
  MetricsRegistry metrics("llama", "1");
  const Clock::time_point t0 = Clock::now();
  metrics.on_request_done(success_record(t0));
  std::string text = metrics.render_text();
  EXPECT_EQ(sample(text, "nv_inference_request_success" + kLabels), 1);
  EXPECT_EQ(sample(text, "nv_inference_count" + kLabels), 1);
  EXPECT_EQ(sample(text, "nv_inference_queue_duration_us" + kLabels), 1500);
  EXPECT_EQ(sample(text, "nv_inference_compute_infer_duration_us" + kLabels), 8500);
  EXPECT_EQ(sample(text, "nv_inference_request_duration_us" + kLabels), 12250);
  EXPECT_EQ(sample(text, "nv_inference_compute_input_duration_us" + kLabels), 300);
  EXPECT_EQ(sample(text, "nv_inference_compute_output_duration_us" + kLabels), 250);
  EXPECT_NE(text.find("nv_inference_queue_duration_us" + kLabels + " 1500\n"), std::string::npos);

  // Cumulative, and truncated to whole µs per request as Triton does (1500.9 µs adds 1500).
  RequestRecord second = success_record(t0);
  second.admitted = t0 + nanoseconds(1'500'900);
  second.finished = *second.admitted + milliseconds(2);
  metrics.on_request_done(second);
  text = metrics.render_text();
  EXPECT_EQ(sample(text, "nv_inference_request_success" + kLabels), 2);
  EXPECT_EQ(sample(text, "nv_inference_queue_duration_us" + kLabels), 3000);
  EXPECT_EQ(sample(text, "nv_inference_compute_infer_duration_us" + kLabels), 10500);
  EXPECT_EQ(sample(text, "nv_inference_request_duration_us" + kLabels), 24500);
}

TEST(MetricsRegistryTest, FailuresCountByReasonAndAddNoDurations) {
  MetricsRegistry metrics("llama");
  const Clock::time_point t0 = Clock::now();
  metrics.on_request_done(failure_record(t0, FailureReason::kRejected));
  metrics.on_request_done(failure_record(t0, FailureReason::kCancelled));
  metrics.on_request_done(failure_record(t0, FailureReason::kCancelled));
  metrics.on_request_done(failure_record(t0, FailureReason::kBackend));
  metrics.on_request_done(failure_record(t0, FailureReason::kOther));
  metrics.on_request_done(failure_record(t0, FailureReason::kNone));  // unclassified: OTHER
  const std::string text = metrics.render_text();
  EXPECT_EQ(sample(text, "nv_inference_request_failure" + reason("REJECTED")), 1);
  EXPECT_EQ(sample(text, "nv_inference_request_failure" + reason("CANCELED")), 2);
  EXPECT_EQ(sample(text, "nv_inference_request_failure" + reason("BACKEND")), 1);
  EXPECT_EQ(sample(text, "nv_inference_request_failure" + reason("OTHER")), 2);
  EXPECT_EQ(sample(text, "nv_inference_request_success" + kLabels), 0);
  EXPECT_EQ(sample(text, "nv_inference_count" + kLabels), 0);
  for (const char* name :
       {"nv_inference_request_duration_us", "nv_inference_queue_duration_us",
        "nv_inference_compute_input_duration_us", "nv_inference_compute_infer_duration_us",
        "nv_inference_compute_output_duration_us"}) {
    EXPECT_EQ(sample(text, name + kLabels), 0) << name;
  }
  EXPECT_EQ(sample(text, "llmserve_e2e_request_latency_seconds_count" + kLabels), 0);
  EXPECT_EQ(metrics.queue_compute_ratio(), 0.0);
}

TEST(MetricsRegistryTest, HistogramsAndTokenCounters) {
  MetricsRegistry metrics("llama");
  const Clock::time_point t0 = Clock::now();
  metrics.on_request_done(success_record(t0));  // TTFT 3 ms, gaps 4 ms, 20 ms, 300 ms
  RequestRecord rejected = failure_record(t0, FailureReason::kRejected);
  rejected.admitted.reset();  // never reached the engine: no prompt tokens
  rejected.first_token.reset();
  rejected.num_generated_tokens = 0;
  rejected.inter_token_seconds.clear();
  metrics.on_request_done(rejected);
  RequestRecord cancelled = failure_record(t0, FailureReason::kCancelled);  // produced tokens
  metrics.on_request_done(cancelled);

  const std::string text = metrics.render_text();
  auto bucket = [&](const std::string& name, const std::string& le) {
    // prometheus-cpp appends `le` after the sorted labels.
    return sample(text, name + R"(_bucket{model="llama",version="1",le=")" + le + "\"}");
  };
  const std::string ttft = "llmserve_time_to_first_token_seconds";
  EXPECT_EQ(bucket(ttft, "0.001"), 0);
  EXPECT_EQ(bucket(ttft, "0.005"), 2);  // the success and the cancelled one both had a first token
  EXPECT_EQ(bucket(ttft, "+Inf"), 2);
  EXPECT_EQ(sample(text, ttft + "_count" + kLabels), 2);
  EXPECT_NEAR(sample(text, ttft + "_sum" + kLabels), 0.006, 1e-9);

  const std::string itl = "llmserve_inter_token_latency_seconds";
  EXPECT_EQ(sample(text, itl + "_count" + kLabels), 6);
  EXPECT_NEAR(sample(text, itl + "_sum" + kLabels), 2 * 0.324, 1e-9);
  EXPECT_EQ(bucket(itl, "0.005"), 2);
  EXPECT_EQ(bucket(itl, "0.025"), 4);
  EXPECT_EQ(bucket(itl, "0.2"), 4);
  EXPECT_EQ(bucket(itl, "0.3"), 6);

  const std::string e2e = "llmserve_e2e_request_latency_seconds";  // successes only
  EXPECT_EQ(sample(text, e2e + "_count" + kLabels), 1);
  EXPECT_NEAR(sample(text, e2e + "_sum" + kLabels), 0.01225, 1e-9);
  EXPECT_EQ(bucket(e2e, "0.01"), 0);
  EXPECT_EQ(bucket(e2e, "0.05"), 1);
  const std::string queue = "llmserve_request_queue_time_seconds";
  EXPECT_EQ(sample(text, queue + "_count" + kLabels), 1);
  EXPECT_NEAR(sample(text, queue + "_sum" + kLabels), 0.0015, 1e-9);
  EXPECT_EQ(bucket(queue, "0.01"), 1);

  EXPECT_EQ(sample(text, "llmserve_prompt_tokens_total" + kLabels), 14);  // not the rejected one
  EXPECT_EQ(sample(text, "llmserve_generation_tokens_total" + kLabels), 8);
}

EngineStats busy_stats() {
  EngineStats s;
  s.num_waiting = 3;
  s.num_running = 5;
  s.num_total_blocks = 100;
  s.num_used_blocks = 40;
  s.num_free_blocks = 60;
  s.block_size = 16;
  s.num_prefix_query_tokens = 128;
  s.num_prefix_hit_tokens = 64;
  s.num_preemptions = 2;
  s.num_window_released_blocks = 11;
  s.num_priority_admissions = 4;
  s.num_queue_timeouts = 1;
  s.num_deadlines_exceeded = 6;
  s.num_spec_decodes = 7;
  s.num_draft_tokens = 28;
  s.num_accepted_tokens = 19;
  s.num_steps = 42;
  s.last_step_num_tokens = 300;
  s.last_step_num_seqs = 5;
  s.num_prompt_tokens = 1000;
  s.num_generated_tokens = 200;
  return s;
}

TEST(MetricsRegistryTest, EngineStatsGauges) {
  MetricsRegistry metrics("llama");
  metrics.update(busy_stats());
  std::string text = metrics.render_text();
  auto trt = [&](const std::string& family, const std::string& key, const std::string& value) {
    return sample(text, series(family, key, value));
  };
  EXPECT_EQ(sample(text, "nv_inference_pending_request_count" + kLabels), 8);
  EXPECT_EQ(trt("nv_trt_llm_request_metrics", "request_type", "active"), 8);
  EXPECT_EQ(trt("nv_trt_llm_request_metrics", "request_type", "scheduled"), 5);
  EXPECT_EQ(trt("nv_trt_llm_request_metrics", "request_type", "waiting"), 3);
  const std::string kv = "nv_trt_llm_kv_cache_block_metrics";
  EXPECT_EQ(trt(kv, "kv_cache_block_type", "max"), 100);
  EXPECT_EQ(trt(kv, "kv_cache_block_type", "free"), 60);
  EXPECT_EQ(trt(kv, "kv_cache_block_type", "used"), 40);
  EXPECT_EQ(trt(kv, "kv_cache_block_type", "tokens_per"), 16);
  EXPECT_EQ(trt(kv, "kv_cache_block_type", "reused"), 4);
  EXPECT_DOUBLE_EQ(trt(kv, "kv_cache_block_type", "fraction"), 0.4);
  EXPECT_EQ(trt("nv_trt_llm_general_metrics", "general_type", "iteration_counter"), 42);
  EXPECT_GT(trt("nv_trt_llm_general_metrics", "general_type", "timestamp"), 1.7e15);  // µs epoch
  EXPECT_EQ(sample(text, "nv_inference_exec_count" + kLabels), 42);
  EXPECT_EQ(sample(text, "llmserve_num_requests_running" + kLabels), 5);
  EXPECT_EQ(sample(text, "llmserve_num_requests_waiting" + kLabels), 3);
  EXPECT_DOUBLE_EQ(sample(text, "llmserve_kv_cache_usage_ratio" + kLabels), 0.4);
  EXPECT_EQ(sample(text, "llmserve_prefix_cache_queries_total" + kLabels), 128);
  EXPECT_EQ(sample(text, "llmserve_prefix_cache_hits_total" + kLabels), 64);
  EXPECT_EQ(sample(text, "llmserve_num_preemptions_total" + kLabels), 2);
  EXPECT_EQ(sample(text, "llmserve_kv_window_released_blocks_total" + kLabels), 11);
  EXPECT_EQ(sample(text, "llmserve_priority_admissions_total" + kLabels), 4);
  EXPECT_EQ(sample(text, "llmserve_queue_timeouts_total" + kLabels), 1);
  EXPECT_EQ(sample(text, "llmserve_deadlines_exceeded_total" + kLabels), 6);
  EXPECT_EQ(sample(text, "llmserve_spec_decode_num_drafts_total" + kLabels), 7);
  EXPECT_EQ(sample(text, "llmserve_spec_decode_num_draft_tokens_total" + kLabels), 28);
  EXPECT_EQ(sample(text, "llmserve_spec_decode_num_accepted_tokens_total" + kLabels), 19);

  // Cumulative engine totals become counter deltas; gauges follow the latest snapshot. An idle
  // engine's stale last-step count does not make `scheduled` exceed `active`.
  EngineStats idle = busy_stats();
  idle.num_waiting = 0;
  idle.num_running = 0;
  idle.num_steps = 50;
  idle.num_prefix_hit_tokens = 96;
  idle.num_queue_timeouts = 3;
  metrics.update(idle);
  text = metrics.render_text();
  EXPECT_EQ(sample(text, "llmserve_queue_timeouts_total" + kLabels), 3);
  EXPECT_EQ(sample(text, "nv_inference_exec_count" + kLabels), 50);
  EXPECT_EQ(sample(text, "llmserve_prefix_cache_hits_total" + kLabels), 96);
  EXPECT_EQ(sample(text, "nv_inference_pending_request_count" + kLabels), 0);
  EXPECT_EQ(trt("nv_trt_llm_request_metrics", "request_type", "scheduled"), 0);
  EXPECT_EQ(trt("nv_trt_llm_request_metrics", "request_type", "waiting"), 0);

  // A restarted engine (smaller totals) adds its new total rather than going backwards.
  EngineStats restarted;
  restarted.num_steps = 7;
  metrics.update(restarted);
  EXPECT_EQ(sample(metrics.render_text(), "nv_inference_exec_count" + kLabels), 57);
}

TEST(MetricsRegistryTest, CallerSetGauges) {
  MetricsRegistry metrics("llama", "3");
  metrics.set_model_load_seconds(12.5);
  metrics.set_max_active_requests(256);
  const std::string text = metrics.render_text();
  EXPECT_EQ(sample(text, R"(nv_model_load_duration_secs{model="llama",version="3"})"), 12.5);
  EXPECT_EQ(
      sample(text, R"(nv_trt_llm_request_metrics{model="llama",request_type="max",version="3"})"),
      256);
}

TEST(MetricsRegistryTest, HttpConnectionsGaugeAndRefusalCounter) {
  MetricsRegistry metrics("llama");
  metrics.set_http_connections(7, 0);
  std::string text = metrics.render_text();
  EXPECT_DOUBLE_EQ(sample(text, "llmserve_http_open_connections" + kLabels), 7);
  EXPECT_DOUBLE_EQ(sample(text, "llmserve_http_refused_connections_total" + kLabels), 0);
  metrics.set_http_connections(3, 5);
  metrics.set_http_connections(2, 5);  // totals: the counter moves by the difference only
  metrics.set_http_connections(4, 9);
  text = metrics.render_text();
  EXPECT_DOUBLE_EQ(sample(text, "llmserve_http_open_connections" + kLabels), 4);
  EXPECT_DOUBLE_EQ(sample(text, "llmserve_http_refused_connections_total" + kLabels), 9);
}

TEST(MetricsRegistryTest, TokenizerQueueGaugeAndRefusalCounter) {
  MetricsRegistry metrics("llama");
  metrics.set_tokenizer_queue(3, 0);
  std::string text = metrics.render_text();
  EXPECT_DOUBLE_EQ(sample(text, "llmserve_tokenizer_pending_requests" + kLabels), 3);
  EXPECT_DOUBLE_EQ(sample(text, "llmserve_tokenizer_refused_requests_total" + kLabels), 0);
  metrics.set_tokenizer_queue(9, 4);
  metrics.set_tokenizer_queue(0, 6);
  text = metrics.render_text();
  EXPECT_DOUBLE_EQ(sample(text, "llmserve_tokenizer_pending_requests" + kLabels), 0);
  EXPECT_DOUBLE_EQ(sample(text, "llmserve_tokenizer_refused_requests_total" + kLabels), 6);
}

TEST(MetricsRegistryTest, QueueComputeRatioOverSlidingWindow) {
  MetricsRegistry metrics("llama");
  const Clock::time_point now = Clock::now();
  RequestRecord waited = success_record(now - seconds(4));  // queue 3 s, infer 1 s
  waited.admitted = waited.arrival + seconds(3);
  waited.finished = *waited.admitted + seconds(1);
  waited.completed = now;
  metrics.on_request_done(waited);
  EXPECT_DOUBLE_EQ(metrics.queue_compute_ratio(), 3.0);
  EXPECT_DOUBLE_EQ(sample(metrics.render_text(), "llmserve_queue_compute_ratio" + kLabels), 3.0);

  RequestRecord direct = success_record(now - seconds(1));  // queue 0, infer 1 s
  direct.admitted = direct.arrival;
  direct.finished = direct.arrival + seconds(1);
  direct.completed = now;
  metrics.on_request_done(direct);
  EXPECT_DOUBLE_EQ(metrics.queue_compute_ratio(), 1.5);

  metrics.on_request_done(failure_record(now, FailureReason::kCancelled));  // no effect
  EXPECT_DOUBLE_EQ(metrics.queue_compute_ratio(), 1.5);

  metrics.update(EngineStats{}, now + seconds(59));
  EXPECT_DOUBLE_EQ(metrics.queue_compute_ratio(), 1.5);
  metrics.update(EngineStats{}, now + seconds(61));  // both left the 60 s window
  EXPECT_DOUBLE_EQ(metrics.queue_compute_ratio(), 0.0);
}

TEST(QueueComputeWindowTest, MatchesTheRecordingRuleClamp) {
  const Clock::time_point t = Clock::now();
  QueueComputeWindow window(seconds(60));
  EXPECT_EQ(window.ratio(t), 0.0);
  // rate(compute) < 1 µs/s is clamped to 1: the denominator never falls below 60 µs over 60 s.
  window.add(t, 30, 0);
  EXPECT_DOUBLE_EQ(window.ratio(t), 0.5);
  window.add(t + seconds(10), 90, 200);
  EXPECT_DOUBLE_EQ(window.ratio(t + seconds(10)), 120.0 / 200.0);
  // Out-of-order completions still expire by their own time.
  window.add(t - seconds(30), 1000, 1000);
  EXPECT_DOUBLE_EQ(window.ratio(t + seconds(10)), 1120.0 / 1200.0);
  EXPECT_DOUBLE_EQ(window.ratio(t + seconds(31)), 120.0 / 200.0);
  EXPECT_EQ(window.num_entries(), 2);
  EXPECT_DOUBLE_EQ(window.ratio(t + seconds(61)), 90.0 / 200.0);
  EXPECT_DOUBLE_EQ(window.ratio(t + seconds(71)), 0.0);
  EXPECT_EQ(window.num_entries(), 0);
}

TEST(MetricsRegistryTest, PollerUpdatesUntilStopped) {
  MetricsRegistry metrics("llama");
  std::atomic<int> num_polls{0};
  metrics.start_polling(
      [&] {
        EngineStats s;
        s.num_running = ++num_polls;
        return s;
      },
      milliseconds(5));
  const auto deadline = Clock::now() + seconds(5);
  while (num_polls < 3 && Clock::now() < deadline) std::this_thread::sleep_for(milliseconds(1));
  metrics.stop_polling();
  const int polled = num_polls;
  ASSERT_GE(polled, 3);
  EXPECT_EQ(sample(metrics.render_text(), "llmserve_num_requests_running" + kLabels), polled);
  std::this_thread::sleep_for(milliseconds(30));
  EXPECT_EQ(num_polls, polled);
  metrics.stop_polling();  // idempotent
}

// A scrape's refresh() applies a snapshot taken now, between polls (an hour apart here), and
// counters keep their deltas when refresh() and the poller alternate; after stop_polling it does
// nothing.
TEST(MetricsRegistryTest, RefreshTakesASnapshotNow) {
  MetricsRegistry metrics("llama");
  std::atomic<int64_t> drafts{0};
  std::atomic<int> num_calls{0};
  metrics.start_polling(
      [&] {
        ++num_calls;
        EngineStats s;
        s.num_spec_decodes = drafts;
        return s;
      },
      std::chrono::hours(1));
  const auto deadline = Clock::now() + seconds(5);
  while (num_calls < 1 && Clock::now() < deadline) std::this_thread::sleep_for(milliseconds(1));
  const std::string name = "llmserve_spec_decode_num_drafts_total" + kLabels;
  drafts = 7;
  metrics.refresh();
  EXPECT_EQ(sample(metrics.render_text(), name), 7);
  drafts = 12;
  metrics.refresh();
  metrics.refresh();
  EXPECT_EQ(sample(metrics.render_text(), name), 12);
  metrics.stop_polling();
  const int calls = num_calls;
  drafts = 20;
  metrics.refresh();
  EXPECT_EQ(num_calls, calls);
  EXPECT_EQ(sample(metrics.render_text(), name), 12);
}

TEST(MetricsRegistryTest, PollerSurvivesAThrowingSource) {
  MetricsRegistry metrics("llama");
  std::atomic<int> num_polls{0};
  metrics.start_polling(
      [&]() -> EngineStats {
        if (++num_polls == 1) throw std::runtime_error("engine busy");
        EngineStats s;
        s.num_waiting = 9;
        return s;
      },
      milliseconds(5));
  const auto deadline = Clock::now() + seconds(5);
  while (num_polls < 2 && Clock::now() < deadline) std::this_thread::sleep_for(milliseconds(1));
  metrics.stop_polling();
  ASSERT_GE(num_polls, 2);
  EXPECT_EQ(sample(metrics.render_text(), "llmserve_num_requests_waiting" + kLabels), 9);
}

}  // namespace
}  // namespace llmserve
