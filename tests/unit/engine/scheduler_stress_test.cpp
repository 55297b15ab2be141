// The scheduler under random arrivals, shared prefixes, aborts and a pool small enough to preempt,
// with and without a sliding window (tests/unit/testing/scheduler_sim.h).
#include <algorithm>
#include <map>
#include <random>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "testing/scheduler_sim.h"

namespace llmserve {
namespace {

using namespace llmserve::testing;

// Random arrivals, shared prefixes and aborts on a pool small enough to preempt: every finished
// sequence must still produce exactly the tokens of an unpressured run.
// With a sliding window (kv_window 6) too: released blocks are reused while their sequences run.
class SchedulerStressTest
    : public SchedulerTest,
      public ::testing::WithParamInterface<std::tuple<bool, bool, uint32_t, int32_t>> {};

TEST_P(SchedulerStressTest, MatchesUnpressuredOutput) {
  const auto [enable_prefix_caching, enable_chunked_prefill, seed, kv_window] = GetParam();
  constexpr int32_t kMaxModelLen = 48;
  SchedulerConfig config =
      small_config(24, enable_chunked_prefill ? 16 : kMaxModelLen, 6, kMaxModelLen);
  config.enable_prefix_caching = enable_prefix_caching;
  config.enable_chunked_prefill = enable_chunked_prefill;
  config.kv_window = kv_window;
  // Under the window a sequence holds at most 7 blocks with 16-token chunks, 15 with whole
  // prompts (Scheduler::max_blocks_per_sequence): pools that still preempt.
  if (kv_window > 0) config.num_blocks = enable_chunked_prefill ? 9 : 15;
  Sim& sim = start(config);
  std::mt19937 rng(seed);
  const auto uniform = [&](int32_t lo, int32_t hi) {
    return std::uniform_int_distribution<int32_t>(lo, hi)(rng);
  };
  const std::vector<std::vector<int32_t>> system_prompts = {
      {}, tokens_from(900, 8), tokens_from(700, 13)};
  std::map<uint64_t, std::vector<int32_t>> prompts;
  std::map<uint64_t, int32_t> max_tokens;
  uint64_t next_id = 1;
  for (int32_t step = 0; step < 2000 && (next_id <= 40 || sim.scheduler().has_unfinished());
       ++step) {
    while (next_id <= 40 && uniform(0, 2) == 0) {
      std::vector<int32_t> prompt = system_prompts[uniform(0, 2)];
      const int32_t num_own = uniform(1, 30 - static_cast<int32_t>(prompt.size()) / 2);
      for (int32_t i = 0; i < num_own; ++i) prompt.push_back(uniform(0, 999));
      max_tokens[next_id] = uniform(1, std::min(16, kMaxModelLen - num_own - 13));
      prompts[next_id] = prompt;
      sim.add(next_id, prompt, max_tokens[next_id]);
      ++next_id;
    }
    if (uniform(0, 19) == 0) sim.scheduler().finish(uniform(1, static_cast<int32_t>(next_id)));
    sim.step();
  }
  EXPECT_FALSE(sim.scheduler().has_unfinished());
  EXPECT_GT(sim.finished().size(), 20u);
  for (const auto& [id, finished] : sim.finished()) {
    EXPECT_EQ(finished.completion, expected_completion(prompts[id], max_tokens[id])) << id;
  }
  // (Whole prompts under the window need a pool sized for a 48-token prompt that none of these
  // fill: no pressure there.)
  if (kv_window == 0 || enable_chunked_prefill) {
    EXPECT_GT(sim.scheduler().stats().num_preemptions, 0);
  }
  if (kv_window > 0) EXPECT_GT(sim.scheduler().stats().num_window_released_blocks, 0);
  if (enable_prefix_caching) {
    EXPECT_GT(sim.scheduler().stats().prefix_cache.num_hit_tokens, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Configs, SchedulerStressTest,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool(),
                                            ::testing::Values(1u, 2u, 3u),
                                            ::testing::Values(0, 6)));

}  // namespace
}  // namespace llmserve
