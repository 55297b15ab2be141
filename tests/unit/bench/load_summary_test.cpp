#include "bench/load/load_summary.h"

#include <gtest/gtest.h>

namespace llmserve::bench::load {
namespace {

using std::chrono::milliseconds;

RequestTrace trace(Clock::time_point t0, int ttft_ms, int itl_ms, int num_tokens) {
  RequestTrace t;
  t.start = t0;
  t.max_tokens = num_tokens;
  t.expected_input_tokens = 10;
  for (int i = 0; i < num_tokens; ++i)
    t.piece_times.push_back(t0 + milliseconds(ttft_ms + i * itl_ms));
  t.num_piece_tokens = num_tokens;
  t.end = t.piece_times.back();
  t.is_complete = true;
  return t;
}

TEST(Percentiles, InterpolatesLikeNumpy) {
  auto p = percentiles({1, 2, 3, 4});
  EXPECT_DOUBLE_EQ(p.mean, 2.5);
  EXPECT_DOUBLE_EQ(p.p50, 2.5);
  EXPECT_DOUBLE_EQ(p.p90, 3.7);
  EXPECT_NEAR(p.p99, 3.97, 1e-12);
  EXPECT_EQ(p.count, 4);
  EXPECT_EQ(percentiles({}).count, 0);
}

TEST(Summarize, LatenciesThroughputAndErrors) {
  const auto t0 = Clock::now();
  std::vector<RequestTrace> traces = {trace(t0, 100, 10, 11), trace(t0, 200, 20, 6)};
  RequestTrace bad;
  bad.start = bad.end = t0;
  bad.fail("http_503", "overloaded");
  traces.push_back(bad);
  auto s = summarize(traces, 2.0, Slo{});
  EXPECT_EQ(s.num_requests, 3);
  EXPECT_EQ(s.num_ok, 2);
  EXPECT_EQ(s.num_errors(), 1);
  EXPECT_EQ(s.errors.at("http_503"), 1);
  EXPECT_EQ(s.num_output_tokens, 17);
  EXPECT_EQ(s.num_input_tokens, 20);
  EXPECT_DOUBLE_EQ(s.request_throughput, 1.0);
  EXPECT_DOUBLE_EQ(s.output_token_throughput, 8.5);
  EXPECT_NEAR(s.ttft.mean, 0.150, 1e-6);
  EXPECT_NEAR(s.tpot.p50, 0.015, 1e-6);  // (0.010 + 0.020) / 2
  EXPECT_EQ(s.itl.count, 10 + 5);
  EXPECT_LE(s.ttft.max, s.e2e.min + 0.2);
  EXPECT_FALSE(s.has_slo);
}

TEST(Summarize, GoodputCountsRequestsMeetingEverySlo) {
  const auto t0 = Clock::now();
  std::vector<RequestTrace> traces = {trace(t0, 100, 10, 11), trace(t0, 200, 20, 6),
                                      trace(t0, 50, 30, 3)};
  auto s = summarize(traces, 1.0, Slo{0.150, 0.025, 0});
  EXPECT_TRUE(s.has_slo);
  EXPECT_EQ(s.num_good, 1);  // the second misses TTFT, the third TPOT
  EXPECT_DOUBLE_EQ(s.goodput, 1.0);
}

TEST(Summarize, UsageMismatchesAreCounted) {
  const auto t0 = Clock::now();
  auto t = trace(t0, 10, 10, 4);
  t.usage_completion_tokens = 3;
  t.usage_prompt_tokens = 10;
  auto s = summarize({t}, 1.0, Slo{});
  EXPECT_EQ(s.num_output_tokens, 3);  // the server's usage wins
  EXPECT_EQ(s.num_output_len_mismatches, 1);
  EXPECT_EQ(s.num_input_len_mismatches, 0);
}

}  // namespace
}  // namespace llmserve::bench::load
