// One ModelStats, two renderings: HTTP's /stats JSON and gRPC's ModelStatistics carry the same
// numbers for the same records.
#include "server/model_stats.h"

#include <gtest/gtest.h>

#include "server/grpc/stats_proto.h"
#include "server/kserve/stats_json.h"

namespace llmserve {
namespace {

using std::chrono::milliseconds;

RequestRecord success_record(Clock::time_point t0) {
  RequestRecord r;
  r.is_success = true;
  r.arrival = t0;
  r.admitted = t0 + milliseconds(20);
  r.finished = t0 + milliseconds(400);
  r.completed = t0 + milliseconds(410);
  r.input_duration = milliseconds(2);
  r.output_duration = milliseconds(3);
  return r;
}

TEST(ModelStats, CountsSuccessesFailuresAndCancellations) {
  ModelStats stats;
  const Clock::time_point t0 = Clock::now();
  stats.on_request_done(success_record(t0));
  stats.on_request_done(success_record(t0));
  RequestRecord cancelled = success_record(t0);
  cancelled.is_success = false;
  cancelled.failure = FailureReason::kCancelled;
  stats.on_request_done(cancelled);
  RequestRecord rejected;
  rejected.failure = FailureReason::kRejected;
  rejected.arrival = t0;
  rejected.completed = t0 + milliseconds(1);
  stats.on_request_done(rejected);

  const ModelStats::Snapshot s = stats.snapshot();
  EXPECT_EQ(s.inference_count, 2u);
  EXPECT_EQ(s.execution_count, 2u);
  EXPECT_EQ(s.success.count, 2u);
  EXPECT_EQ(s.success.ns, 2 * 410'000'000u);
  EXPECT_EQ(s.queue.ns, 2 * 20'000'000u);
  EXPECT_EQ(s.compute_infer.ns, 2 * 380'000'000u);
  EXPECT_EQ(s.compute_input.ns, 2 * 2'000'000u);
  EXPECT_EQ(s.compute_output.ns, 2 * 3'000'000u);
  EXPECT_EQ(s.fail.count, 2u);
  EXPECT_EQ(s.fail.ns, 410'000'000u + 1'000'000u);
  EXPECT_EQ(s.num_cancelled, 1u);
  EXPECT_GT(s.last_inference_ms, 0u);
}

TEST(ModelStats, HttpAndGrpcRenderTheSameNumbers) {
  ModelStats stats;
  stats.on_request_done(success_record(Clock::now()));
  RequestRecord cancelled = success_record(Clock::now());
  cancelled.is_success = false;
  cancelled.failure = FailureReason::kCancelled;
  stats.on_request_done(cancelled);
  const ModelStats::Snapshot s = stats.snapshot();

  const nlohmann::json j = kserve::model_stats_json(s, "llama", "1");
  inference::ModelStatistics m;
  grpc_frontend::fill_model_statistics(s, m);

  EXPECT_EQ(j["name"], "llama");
  EXPECT_EQ(j["last_inference"].get<uint64_t>(), m.last_inference());
  EXPECT_EQ(j["inference_count"].get<uint64_t>(), m.inference_count());
  EXPECT_EQ(j["execution_count"].get<uint64_t>(), m.execution_count());
  const auto& st = m.inference_stats();
  const std::pair<const char*, const inference::StatisticDuration*> durations[] = {
      {"success", &st.success()},
      {"fail", &st.fail()},
      {"queue", &st.queue()},
      {"compute_input", &st.compute_input()},
      {"compute_infer", &st.compute_infer()},
      {"compute_output", &st.compute_output()}};
  for (const auto& [key, d] : durations) {
    EXPECT_EQ(j["inference_stats"][key]["count"].get<uint64_t>(), d->count()) << key;
    EXPECT_EQ(j["inference_stats"][key]["ns"].get<uint64_t>(), d->ns()) << key;
  }
  EXPECT_EQ(j["inference_stats"]["success"]["count"], 1);
  EXPECT_EQ(j["cancel_count"].get<uint64_t>(), 1u);
  EXPECT_EQ(m.response_stats().at("0").cancel().count(), 1u);
}

}  // namespace
}  // namespace llmserve
