// Reading the server's speculative-decoding counters from a Prometheus text exposition: samples
// summed over label sets, exact names only (not a longer name they prefix), comments and
// timestamps skipped; an exposition without the counters gives nothing. The scrape itself (and the
// deltas bench serve reports) is tested against a real server in tests/e2e/bench_serve_test.sh.
#include <gtest/gtest.h>

#include "bench/load/server_metrics.h"

namespace llmserve::bench::load {
namespace {

constexpr const char* kExposition =
    "# HELP llmserve_spec_decode_num_drafts_total Decode steps with drafts\n"
    "# TYPE llmserve_spec_decode_num_drafts_total counter\n"
    "llmserve_spec_decode_num_drafts_total{model=\"a\"} 10\n"
    "llmserve_spec_decode_num_drafts_total{model=\"b\",version=\"1\"} 5 1700000000000\n"
    "llmserve_spec_decode_num_draft_tokens_total 60\n"
    "llmserve_spec_decode_num_draft_tokens_total_extra 1000\n"
    "llmserve_spec_decode_num_accepted_tokens_total{model=\"a\"} 3e1\n"
    "nv_inference_count{model=\"a\",version=\"1\"} 7\n";

TEST(ServerMetrics, SumsSamplesOfExactlyTheName) {
  EXPECT_EQ(prometheus_sum(kExposition, "llmserve_spec_decode_num_drafts_total"), 15.0);
  EXPECT_EQ(prometheus_sum(kExposition, "llmserve_spec_decode_num_draft_tokens_total"), 60.0);
  EXPECT_EQ(prometheus_sum(kExposition, "nv_inference_count"), 7.0);
  EXPECT_FALSE(prometheus_sum(kExposition, "nv_inference").has_value());
  EXPECT_FALSE(prometheus_sum("", "x").has_value());
  EXPECT_FALSE(prometheus_sum("x{a=\"1\" 5\n", "x").has_value()) << "unterminated labels";
  EXPECT_FALSE(prometheus_sum("x NaN\n", "x").has_value());
}

TEST(ServerMetrics, SpeculationCountersAndRates) {
  const auto c = parse_spec_counters(kExposition);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->drafts, 15);
  EXPECT_EQ(c->draft_tokens, 60);
  EXPECT_EQ(c->accepted_tokens, 30);
  EXPECT_DOUBLE_EQ(c->acceptance(), 0.5);
  EXPECT_DOUBLE_EQ(c->tokens_per_decode(), 3.0);
  const SpecCounters before{5, 20, 4};
  const SpecCounters d = *c - before;
  EXPECT_EQ(d.drafts, 10);
  EXPECT_EQ(d.draft_tokens, 40);
  EXPECT_EQ(d.accepted_tokens, 26);
  EXPECT_EQ(SpecCounters{}.acceptance(), 0.0);
  EXPECT_EQ(SpecCounters{}.tokens_per_decode(), 0.0);
  EXPECT_FALSE(parse_spec_counters("nv_inference_count 1\n").has_value());
}

TEST(ServerMetrics, NothingListeningGivesNothing) {
  EXPECT_FALSE(fetch_metrics("127.0.0.1", 1, std::chrono::milliseconds(500)).has_value());
}

}  // namespace
}  // namespace llmserve::bench::load
