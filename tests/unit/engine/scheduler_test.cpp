// Scheduler tests in the style of TensorRT-LLM's capacity-scheduler test: a GPU-free simulation
// where a fake model appends one token per step, and a table of expected states per iteration
// (the simulation and the trace format: tests/unit/testing/scheduler_sim.h).
#include "engine/scheduler.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testing/scheduler_sim.h"

namespace llmserve {
namespace {

using ::testing::HasSubstr;
using namespace llmserve::testing;

TEST_F(SchedulerTest, TokenBudget) {
  SchedulerConfig config = small_config(64, 8, 8, 8);
  config.enable_chunked_prefill = false;
  start(config).add({{1, 5, 2}, {2, 3, 2}, {3, 7, 1}, {4, 2, 1}});
  EXPECT_EQ(sim_->run(), Trace({
                             "1:p5! 2:p3!",
                             "1:d 2:d | finish 1 2",  // 3 (7) > 6 left; 4 waits behind
                             "3:p7! | finish 3",      // 4 (2) > 1 left
                             "4:p2! | finish 4",
                         }));
  config.enable_chunked_prefill = true;
  start(config).add({{1, 5, 2}, {2, 3, 2}, {3, 7, 1}, {4, 2, 1}});
  EXPECT_EQ(sim_->run(), Trace({
                             "1:p5! 2:p3!",
                             "1:d 2:d 3:p6 | finish 1 2",  // 3 takes the 6 left
                             "3:p1! 4:p2! | finish 3 4",
                         }));
}

TEST_F(SchedulerTest, BatchLimitCapsRunningSequences) {
  Sim& sim = start(small_config(64, 8, 2, 64));
  sim.add({{1, 2, 3}, {2, 2, 3}, {3, 2, 3}});
  EXPECT_EQ(sim.run(), Trace({
                           "1:p2! 2:p2!",  // budget left, but 2 running is the limit
                           "1:d 2:d",
                           "1:d 2:d | finish 1 2",
                           "3:p2!",
                           "3:d",
                           "3:d | finish 3",
                       }));
}

TEST_F(SchedulerTest, ChunkedPrefillInterleavesWithDecodes) {
  Sim& sim = start(small_config(64, 8, 4, 64));
  sim.add({{1, 3, 5}, {2, 20, 2}});
  EXPECT_EQ(sim.step(), "1:p3! 2:p5");
  const SchedulerStats stats = sim.scheduler().stats();
  EXPECT_EQ(stats.num_batched_tokens, 8);
  EXPECT_EQ(stats.num_running, 2);
  EXPECT_EQ(stats.num_used_blocks, 1 + 2);
  EXPECT_EQ(sim.run(), Trace({
                           "1:d 2:p7",
                           "1:d 2:p7",
                           "1:d 2:p1!",
                           "1:d 2:d | finish 1 2",
                       }));
  EXPECT_EQ(sim.finished().at(2).completion, expected_completion(prompt_of(2, 20), 2));
}

TEST_F(SchedulerTest, PrefillChunkTakesTheBlocksThereAreThenWaits) {
  SchedulerConfig config = small_config(6, 8, 4, 16);
  config.enable_prefix_caching = false;
  Sim& sim = start(config);
  sim.add({{1, 12, 3}, {2, 12, 2}});
  EXPECT_EQ(sim.run(), Trace({
                           "1:p8",
                           "1:p4! 2:p4",
                           "1:d 2:p4",        // budget for 7, blocks for 4
                           "1:d | finish 1",  // no free block: 2 waits, unharmed
                           "2:p4!",
                           "2:d | finish 2",
                       }));
  EXPECT_EQ(sim.scheduler().stats().num_preemptions, 0);
}

TEST_F(SchedulerTest, PreemptsLatestAndRecomputesToTheSameOutput) {
  SchedulerConfig config = small_config(64, 16, 4, 16);
  config.enable_prefix_caching = false;
  Sim& roomy = start(config);
  roomy.add({{1, 6, 8}, {2, 6, 8}});
  roomy.run();
  const std::map<uint64_t, FinishedSequence> reference = roomy.finished();

  config.num_blocks = 6;  // 2 x 4 blocks needed at the end: one must give way
  Sim& sim = start(config);
  sim.add({{1, 6, 8}, {2, 6, 8}});
  EXPECT_EQ(sim.run(),
            Trace({
                "1:p6! 2:p6!", "1:d 2:d", "1:d 2:d", "1:d 2:d", "1:d 2:d", "1:d 2:d", "1:d 2:d",
                "1:d | preempt 2 | finish 1",  // 1 needs a 4th block
                "2:p13! | finish 2",           // 6 prompt + 7 sampled tokens recomputed
            }));
  EXPECT_EQ(sim.finished().at(1).completion, reference.at(1).completion);
  EXPECT_EQ(sim.finished().at(2).completion, reference.at(2).completion);
  EXPECT_EQ(sim.finished().at(2).completion, expected_completion(prompt_of(2, 6), 8));
  EXPECT_EQ(sim.finished().at(2).num_preemptions, 1);
  EXPECT_EQ(sim.scheduler().stats().num_preemptions, 1);
}

TEST_F(SchedulerTest, PreemptedSequenceReturnsToTheFrontAfterOneStep) {
  SchedulerConfig config = small_config(6, 8, 4, 16);
  config.enable_prefix_caching = false;
  Sim& sim = start(config);
  sim.add({{1, 6, 8}, {2, 6, 8}});
  Trace trace;
  for (int32_t i = 0; i < 7; ++i) trace.push_back(sim.step());
  EXPECT_EQ(trace, Trace({
                       "1:p6! 2:p2",
                       "1:d 2:p4!",
                       "1:d 2:d",
                       "1:d 2:d",
                       "1:d 2:d",
                       "1:d 2:d",
                       "1:d 2:d",
                   }));
  sim.add(3, prompt_of(3, 1), 1);
  // 2's first chunk (7 tokens, 2 blocks) would fit the blocks it just freed, but a step that
  // preempts admits nobody; next step 2 comes back ahead of 3.
  EXPECT_EQ(sim.run(), Trace({
                           "1:d | preempt 2 | finish 1",
                           "2:p8",
                           "2:p4! 3:p1! | finish 3",
                           "2:d | finish 2",
                       }));
  EXPECT_EQ(sim.finished().at(2).completion, expected_completion(prompt_of(2, 6), 8));
}

TEST_F(SchedulerTest, SequenceNeedingTheBlockPreemptsItselfWhenLatest) {
  for (bool enable_prefix_caching : {false, true}) {
    SchedulerConfig config = small_config(5, 16, 4, 16);
    config.enable_prefix_caching = enable_prefix_caching;
    start(config).add({{1, 6, 6}, {2, 4, 6}});
    EXPECT_EQ(sim_->run(), Trace({
                               "1:p6! 2:p4!",
                               "1:d 2:d",
                               "1:d 2:d",
                               "1:d 2:d",
                               "1:d 2:d",
                               "1:d | preempt 2 | finish 1",  // 2 needs its 3rd block
                               // Recompute 4 prompt + 5 sampled tokens, or reuse 2 full blocks.
                               enable_prefix_caching ? "2:c8+d | finish 2" : "2:p9! | finish 2",
                           }));
    EXPECT_EQ(sim_->finished().at(2).num_cached_tokens, enable_prefix_caching ? 8 : 0);
    EXPECT_EQ(sim_->finished().at(2).completion, expected_completion(prompt_of(2, 4), 6));
  }
}

TEST_F(SchedulerTest, LowerPriorityValuesAreAdmittedFirstThenArrivalOrder) {
  Sim& sim = start(small_config(64, 16, 1, 16));
  // {id, priority}: 1 and 3 default, 2 and 4 urgent, 5 least urgent.
  for (const auto& [id, priority] :
       std::vector<std::pair<int32_t, int32_t>>{{1, 0}, {2, -1}, {3, 0}, {4, -1}, {5, 3}}) {
    sim.add(static_cast<uint64_t>(id), prompt_of(static_cast<uint64_t>(id), 2), 1, priority);
  }
  EXPECT_EQ(sim.run(), Trace({
                           "2:p2! | finish 2",
                           "4:p2! | finish 4",
                           "1:p2! | finish 1",
                           "3:p2! | finish 3",
                           "5:p2! | finish 5",
                       }));
  // 2 and 4 went ahead of 1 (and 4 ahead of 3); 1 and 3 and 5 were admitted in their turn.
  EXPECT_EQ(sim.scheduler().stats().num_priority_admissions, 2);
}

TEST_F(SchedulerTest, OnePriorityIsFirstComeFirstServed) {
  Sim& sim = start(small_config(64, 16, 1, 16));
  for (uint64_t id : {1, 2, 3}) sim.add(id, prompt_of(id, 2), 1, 7);
  EXPECT_EQ(sim.run(), Trace({"1:p2! | finish 1", "2:p2! | finish 2", "3:p2! | finish 3"}));
  EXPECT_EQ(sim.scheduler().stats().num_priority_admissions, 0);
}

TEST_F(SchedulerTest, DecodeNeedingABlockPreemptsTheLowestPriorityNotTheLatest) {
  SchedulerConfig config = small_config(6, 16, 4, 16);
  config.enable_prefix_caching = false;
  Sim& sim = start(config);
  // 1 is the least urgent but admitted first; 2 is admitted later. The pool (6 blocks) holds
  // both until 1 needs its 4th: the victim is 1 itself (lowest priority), not 2 (the latest).
  sim.add(1, prompt_of(1, 6), 8, 5);
  sim.add(2, prompt_of(2, 6), 8, 0);
  const Trace trace = sim.run();
  ASSERT_GE(trace.size(), 2u);
  EXPECT_EQ(trace[0], "2:p6! 1:p6!");  // 2 is admitted first: lower value
  EXPECT_THAT(trace, ::testing::Contains(HasSubstr("| preempt 1")));
  EXPECT_THAT(trace, ::testing::Not(::testing::Contains(HasSubstr("preempt 2"))));
  EXPECT_EQ(sim.finished().at(1).num_preemptions, 1);
  EXPECT_EQ(sim.finished().at(2).num_preemptions, 0);
  EXPECT_EQ(sim.finished().at(1).completion, expected_completion(prompt_of(1, 6), 8));
  EXPECT_EQ(sim.finished().at(2).completion, expected_completion(prompt_of(2, 6), 8));
}

TEST_F(SchedulerTest, PrefixHitsSkipCachedTokens) {
  Sim& sim = start(SchedulerConfig{.block_size = 16,
                                   .num_blocks = 32,
                                   .max_num_tokens = 64,
                                   .max_batch_size = 4,
                                   .max_model_len = 128,
                                   .speculative = {}});
  sim.add(1, tokens_from(0, 40), 3);
  EXPECT_EQ(sim.step(), "1:p40!");
  std::vector<int32_t> shared = tokens_from(0, 32);
  shared.insert(shared.end(), {500, 501, 502, 503, 504, 505, 506, 507, 508, 509});
  sim.add(2, shared, 2);
  EXPECT_EQ(sim.step(), "1:d 2:c32+p10!");  // 2 blocks of 16 reused from a running sequence
  const Sequence* one = sim.scheduler().find(1);
  const Sequence* two = sim.scheduler().find(2);
  EXPECT_EQ(two->block_table[1], one->block_table[1]);
  EXPECT_NE(two->block_table[2], one->block_table[2]);
  EXPECT_EQ(sim.scheduler().block_pool().ref_count(one->block_table[0]), 2);
  EXPECT_EQ(sim.step(), "1:d 2:d | finish 1 2");
  EXPECT_EQ(sim.finished().at(2).num_cached_tokens, 32);
  EXPECT_EQ(sim.finished().at(2).completion, expected_completion(shared, 2));

  sim.add(3, tokens_from(0, 32), 1);  // the whole prompt cached: its last block is recomputed
  EXPECT_EQ(sim.step(), "3:c16+p16! | finish 3");
  sim.add(4, tokens_from(600, 20), 1);  // twins admitted in one step share nothing...
  sim.add(5, tokens_from(600, 20), 1);
  EXPECT_EQ(sim.step(), "4:p20! 5:p20! | finish 4 5");
  sim.add(6, tokens_from(600, 20), 1);  // ...but a later one reuses the first twin's block
  EXPECT_EQ(sim.step(), "6:c16+p4! | finish 6");

  const PrefixCacheStats& stats = sim.scheduler().block_pool().prefix_cache_stats();
  EXPECT_EQ(stats.num_queries, 6);
  EXPECT_EQ(stats.num_query_tokens, 40 + 42 + 32 + 3 * 20);
  EXPECT_EQ(stats.num_hit_blocks, 2 + 1 + 1);
  EXPECT_EQ(stats.num_hit_tokens, 32 + 16 + 16);
}

TEST_F(SchedulerTest, PromptLogprobsSkipPrefixReuseAndCutChunksToTheirRows) {
  SchedulerConfig config{.block_size = 16,
                         .num_blocks = 32,
                         .max_num_tokens = 64,
                         .max_batch_size = 4,
                         .max_model_len = 128,
                         .max_prompt_logprob_rows = 8,
                         .speculative = {}};
  Sim& sim = start(config);
  sim.add(1, tokens_from(0, 40), 1);
  EXPECT_EQ(sim.step(), "1:p40! | finish 1");  // its 2 full blocks are cached
  // The same prompt with prompt logprobs reuses nothing (a cached position has no logits) and
  // takes 8 rows a step, each cut chunk ending the step's admissions; the last chunk's final
  // position samples, so it scores 7 tokens. Then the step has room for 3.
  sim.add(2, tokens_from(0, 40), 1, 0, 2);
  sim.add(3, prompt_of(3, 10), 1);
  EXPECT_EQ(sim.run(),
            (Trace{"2:p8r8", "2:p8r8", "2:p8r8", "2:p8r8", "2:p8r7! 3:p10! | finish 2 3"}));
  EXPECT_EQ(sim.finished().at(2).num_cached_tokens, 0);
  EXPECT_EQ(sim.finished().at(2).completion, expected_completion(tokens_from(0, 40), 1));
  // Rows are shared by the step: a second such prompt waits for what the first leaves.
  sim.add(4, prompt_of(4, 6), 1, 0, 0);
  sim.add(5, prompt_of(5, 6), 1, 0, 0);
  EXPECT_EQ(sim.run(), (Trace{"4:p6r5! 5:p3r3 | finish 4", "5:p3r2! | finish 5"}));
}

TEST_F(SchedulerTest, PromptLogprobsChunkWithoutChunkedPrefill) {
  SchedulerConfig config = small_config(64, 32, 4, 32);
  config.enable_chunked_prefill = false;
  config.max_prompt_logprob_rows = 5;
  Sim& sim = start(config);
  sim.add(1, prompt_of(1, 12), 1, 0, 1);
  // A one-token prompt has nothing to score.
  sim.add(2, prompt_of(2, 1), 1, 0, 1);
  EXPECT_EQ(sim.run(), (Trace{"1:p5r5", "1:p5r5", "1:p2r1! 2:p1! | finish 1 2"}));
}

TEST_F(SchedulerTest, EvictsCachedBlocksLeastRecentlyReleasedFirst) {
  Sim& sim = start(small_config(4, 16, 4, 16));  // room for exactly 2 finished prompts
  sim.add(1, tokens_from(10, 8), 1);
  EXPECT_EQ(sim.step(), "1:p8! | finish 1");
  sim.add(2, tokens_from(20, 8), 1);
  EXPECT_EQ(sim.step(), "2:p8! | finish 2");
  sim.add(3, tokens_from(30, 8), 1);
  EXPECT_EQ(sim.step(), "3:p8! | finish 3");  // evicts 1's blocks (released first)
  EXPECT_EQ(sim.scheduler().stats().num_cached_blocks, 4);
  std::vector<int32_t> after_two = tokens_from(20, 8), after_one = tokens_from(10, 8);
  after_two.push_back(99);
  after_one.push_back(99);
  sim.add(4, after_two, 1);
  EXPECT_EQ(sim.step(), "4:c8+p1! | finish 4");  // 2's prefix survived
  sim.add(5, after_one, 1);
  EXPECT_EQ(sim.step(), "5:p9! | finish 5");  // 1's did not
}

TEST_F(SchedulerTest, AbortFreesBlocksMidPrefillMidDecodeAndWhileWaiting) {
  Sim& sim = start(small_config(16, 8, 4, 64));
  sim.add({{1, 20, 4}, {2, 3, 10}});
  EXPECT_EQ(sim.step(), "1:p8");
  EXPECT_EQ(sim.step(), "1:p8");
  std::unique_ptr<Sequence> aborted = sim.scheduler().finish(1);  // mid-prefill
  ASSERT_NE(aborted, nullptr);
  EXPECT_EQ(aborted->status, SequenceStatus::kFinished);
  EXPECT_TRUE(aborted->block_table.empty());
  EXPECT_EQ(sim.scheduler().block_pool().num_used_blocks(), 0);
  EXPECT_EQ(sim.step(), "2:p3!");
  EXPECT_EQ(sim.step(), "2:d");
  EXPECT_NE(sim.scheduler().finish(2), nullptr);  // mid-decode
  EXPECT_EQ(sim.scheduler().block_pool().num_used_blocks(), 0);
  sim.add(3, prompt_of(3, 4), 1);
  EXPECT_EQ(sim.scheduler().num_waiting(), 1);
  EXPECT_NE(sim.scheduler().finish(3), nullptr);  // while waiting
  EXPECT_EQ(sim.scheduler().num_waiting(), 0);
  EXPECT_EQ(sim.scheduler().finish(42), nullptr);
  EXPECT_EQ(sim.step(), "idle");
}

TEST_F(SchedulerTest, AbortBetweenScheduleAndUpdateKeepsSamplesAligned) {
  Sim& sim = start(small_config(16, 8, 4, 64));
  sim.add({{1, 2, 5}, {2, 2, 3}});
  EXPECT_EQ(sim.step(), "1:p2! 2:p2!");
  Scheduler& scheduler = sim.scheduler();
  const SchedulerOutput out = scheduler.schedule();
  const StepResult sampled = sim.runner().execute(out, scheduler.block_pool());
  ASSERT_EQ(sampled.samples.size(), 2u);
  EXPECT_NE(scheduler.finish(1), nullptr);
  StepResult misaligned = sampled;
  misaligned.samples.pop_back();
  EXPECT_THROW(scheduler.update(out, misaligned), Error);
  scheduler.update(out, sampled);
  EXPECT_EQ(sim.run(), Trace({
                           "2:d | finish 2",
                       }));
  EXPECT_EQ(sim.finished().at(2).completion, expected_completion(prompt_of(2, 2), 3));
}

TEST_F(SchedulerTest, HeadOfWaitingBlocksTheQueue) {
  SchedulerConfig config = small_config(8, 32, 4, 32);
  config.enable_chunked_prefill = false;  // 2 must come in whole
  Sim& sim = start(config);
  // 2 needs 4 blocks, only 3 are free while 1 runs; 3 would fit but does not overtake 2.
  sim.add({{1, 20, 4}, {2, 16, 4}, {3, 2, 2}});
  EXPECT_EQ(sim.run(), Trace({
                           "1:p20!",
                           "1:d",
                           "1:d",
                           "1:d | finish 1",
                           "2:p16! 3:p2!",
                           "2:d 3:d | finish 3",
                           "2:d",
                           "2:d | finish 2",
                       }));
}

TEST_F(SchedulerTest, CheckAdmissibleNamesTheLimit) {
  Scheduler scheduler(small_config(4, 32, 4, 32));
  const auto expect_error = [&](int32_t num_prompt, int32_t max_tokens, StatusCode code,
                                const std::string& text) {
    const Status status = scheduler.check_admissible(num_prompt, max_tokens);
    EXPECT_EQ(status.code(), code) << status.to_string();
    EXPECT_THAT(status.message(), HasSubstr(text));
  };
  expect_error(0, 5, StatusCode::kInvalidArgument, "prompt is empty");
  expect_error(5, 0, StatusCode::kInvalidArgument, "max_tokens must be >= 1, got 0");
  expect_error(30, 3, StatusCode::kOutOfRange, "= 33 exceeds max_model_len (32)");
  expect_error(10, 10, StatusCode::kOutOfRange, "needs 5 KV blocks of 4 tokens");
  expect_error(10, 10, StatusCode::kOutOfRange, "num_blocks = 4");
  EXPECT_TRUE(scheduler.check_admissible(10, 6).is_ok());

  EXPECT_FALSE(scheduler.add(std::make_unique<Sequence>(1, prompt_of(1, 30), 3)).is_ok());
  EXPECT_TRUE(scheduler.add(std::make_unique<Sequence>(1, prompt_of(1, 3), 3)).is_ok());
  EXPECT_THAT(scheduler.add(std::make_unique<Sequence>(1, prompt_of(1, 3), 3)).message(),
              HasSubstr("sequence id 1 is live"));
  EXPECT_EQ(scheduler.num_waiting(), 1);
  EXPECT_NE(scheduler.finish(1), nullptr);
}

TEST_F(SchedulerTest, ConfigValidationNamesTheField) {
  const SchedulerConfig valid{.num_blocks = 1024, .max_model_len = 4096, .speculative = {}};
  using Edit = void (*)(SchedulerConfig&);
  const std::pair<Edit, std::string> cases[] = {
      {[](SchedulerConfig& c) { c.block_size = 0; }, "block_size must be > 0, got 0"},
      {[](SchedulerConfig& c) { c.num_blocks = -3; }, "num_blocks must be > 0, got -3"},
      {[](SchedulerConfig& c) { c.max_num_tokens = 0; }, "max_num_tokens must be > 0"},
      {[](SchedulerConfig& c) { c.max_batch_size = 0; }, "max_batch_size must be > 0"},
      {[](SchedulerConfig& c) { c.max_model_len = 0; }, "max_model_len must be > 0"},
      {[](SchedulerConfig& c) { c.max_num_tokens = 100; },
       "max_num_tokens (100) must be >= max_batch_size (256)"},
      {[](SchedulerConfig& c) {
         c.enable_chunked_prefill = false;
         c.max_model_len = 16384;
       },
       "max_num_tokens (8192) must be >= max_model_len (16384) without chunked prefill"},
      {[](SchedulerConfig& c) { c.num_blocks = 1 << 28; }, "fit int32"},
  };
  EXPECT_TRUE(Scheduler::validate(valid).is_ok());
  for (const auto& [edit, message] : cases) {
    SchedulerConfig config = valid;
    edit(config);
    const Status status = Scheduler::validate(config);
    EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << message;
    EXPECT_THAT(status.message(), HasSubstr(message));
    EXPECT_THROW(Scheduler{config}, Error);
  }
  SchedulerConfig whole_prompts = valid;
  whole_prompts.enable_chunked_prefill = false;
  whole_prompts.max_model_len = 8192;
  EXPECT_TRUE(Scheduler::validate(whole_prompts).is_ok());
}

// Sliding window (every layer): a running sequence holds only the blocks its next query can see,
// so sequences far longer than the pool run, and to the tokens of an unpressured run.
TEST_F(SchedulerTest, SlidingWindowRunsSequencesLongerThanThePool) {
  SchedulerConfig config = small_config(8, 8, 2, 64);
  EXPECT_EQ(Scheduler(config).check_admissible(30, 30).code(), StatusCode::kOutOfRange);
  config.kv_window = 5;
  // 60 tokens would take 15 blocks; under the window, 4 + 8 new positions (3 blocks, plus one a
  // boundary may split).
  EXPECT_EQ(Scheduler::max_blocks_per_sequence(config, 60), 4);
  EXPECT_EQ(Scheduler::max_blocks_per_sequence(config, 9), 3);  // short: all its blocks
  Sim& sim = start(config);
  EXPECT_TRUE(sim.scheduler().check_admissible(30, 30).is_ok());
  sim.add({{1, 30, 30}, {2, 25, 35}, {3, 3, 40}});
  const Trace trace = sim.run();
  for (const auto& [id, finished] : sim.finished()) {
    EXPECT_EQ(finished.completion.size(), id == 1 ? 30u : id == 2 ? 35u : 40u);
  }
  EXPECT_EQ(sim.finished().at(1).completion, expected_completion(prompt_of(1, 30), 30));
  EXPECT_EQ(sim.finished().at(2).completion, expected_completion(prompt_of(2, 25), 35));
  EXPECT_EQ(sim.finished().at(3).completion, expected_completion(prompt_of(3, 3), 40));
  EXPECT_GT(sim.scheduler().stats().num_window_released_blocks, 30);
}

TEST_F(SchedulerTest, KvWindowMustNotBeNegative) {
  SchedulerConfig config = small_config(8, 8, 2, 64);
  config.kv_window = -1;
  EXPECT_THAT(Scheduler::validate(config).message(), HasSubstr("kv_window must be >= 0, got -1"));
}

}  // namespace
}  // namespace llmserve
