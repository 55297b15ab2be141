// Scheduler tests in the style of TensorRT-LLM's capacity-scheduler test: a GPU-free simulation
// where a fake model appends one token per step, and a table of expected states per iteration.
//
// Trace line of one step: scheduled entries in batch order, then preempted and finished ids:
//   "1:p8"       sequence 1 ran an 8-token prefill chunk (not its last)
//   "1:p8!"      ... its last chunk: it sampled a token
//   "1:d"        a decode (always samples)
//   "2:c32+p10!" admitted with 32 prompt tokens reused from the prefix cache, then a 10-token chunk
//   "1:d | preempt 2 | finish 1"
//   "3:p8r7!"    a chunk with 7 logit rows that score prompt tokens (prompt logprobs), then sampled
// The fake runner keeps a fake KV cache: each computed token is written to its slot, and a
// sequence that samples reads its whole context back through its block table (under a sliding
// window, kv_window, the positions its query sees), so a wrong block table, slot mapping, prefix
// reuse or released block fails the test. Its next token is (last read + 1) % 1000.
#include "engine/scheduler.h"

#include <algorithm>
#include <array>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include "backend/forward_batch.h"

namespace llmserve {
namespace {

using ::testing::HasSubstr;
using Trace = std::vector<std::string>;

std::vector<int32_t> tokens_from(int32_t first, int32_t n) {
  std::vector<int32_t> tokens(n);
  std::iota(tokens.begin(), tokens.end(), first);
  return tokens;
}

// Distinct prompts per id (no accidental prefix hits): id * 100, id * 100 + 1, ...
std::vector<int32_t> prompt_of(uint64_t id, int32_t n) {
  return tokens_from(static_cast<int32_t>(id) * 100, n);
}

std::vector<int32_t> expected_completion(const std::vector<int32_t>& prompt, int32_t n) {
  std::vector<int32_t> tokens(n);
  for (int32_t i = 0; i < n; ++i) tokens[i] = (prompt.back() + 1 + i) % 1000;
  return tokens;
}

class FakeRunner {
 public:
  FakeRunner(int32_t num_blocks, int32_t block_size, int32_t window = 0)
      : kv_(static_cast<size_t>(num_blocks) * block_size), window_(window) {}

  StepResult execute(const SchedulerOutput& out, const BlockPool& pool) {
    for (const ScheduledSequence& s : out.scheduled) {  // write this step's KV
      const Sequence& seq = *s.seq;
      for (int32_t pos = s.num_computed_tokens; pos < s.num_computed_tokens + s.num_new_tokens;
           ++pos) {
        const int32_t block_id = seq.block_table.at(pos / out.block_size);
        EXPECT_EQ(pool.ref_count(block_id), 1) << "seq " << seq.id << " writes a shared block";
        kv_[slot_of(seq.block_table, out.block_size, pos)] = {seq.token_ids[pos], pos};
      }
    }
    StepResult sampled;
    for (const ScheduledSequence& s : out.scheduled) {  // read each sampler's context back
      if (!s.needs_sample) continue;
      const Sequence& seq = *s.seq;
      EXPECT_EQ(s.num_computed_tokens + s.num_new_tokens, seq.num_tokens());
      const int32_t first = window_ > 0 ? std::max(0, seq.num_tokens() - window_) : 0;
      for (int32_t pos = first; pos < seq.num_tokens(); ++pos) {
        const int32_t slot = slot_of(seq.block_table, out.block_size, pos);
        if (slot < 0) {
          ADD_FAILURE() << "seq " << seq.id << " reads released position " << pos;
          break;
        }
        const Entry& e = kv_[static_cast<size_t>(slot)];
        if (e.token != seq.token_ids[pos] || e.position != pos) {
          ADD_FAILURE() << "seq " << seq.id << " reads a wrong KV at position " << pos;
          break;
        }
      }
      const int32_t last =
          kv_[slot_of(seq.block_table, out.block_size, seq.num_tokens() - 1)].token;
      sampled.samples.emplace_back().token_id = (last + 1) % 1000;
    }
    return sampled;
  }

 private:
  struct Entry {
    int32_t token = -1;
    int32_t position = -1;
  };
  std::vector<Entry> kv_;
  int32_t window_;
};

struct FinishedSequence {
  std::vector<int32_t> completion;
  int32_t num_cached_tokens = 0;
  int32_t num_preemptions = 0;
};

// The engine loop in miniature: schedule, run, update, finish at max_tokens, check invariants.
class Sim {
 public:
  explicit Sim(const SchedulerConfig& config)
      : scheduler_(config), runner_(config.num_blocks, config.block_size, config.kv_window) {}

  void add(uint64_t id, const std::vector<int32_t>& prompt, int32_t max_tokens,
           int32_t priority = 0, int32_t prompt_logprobs = -1) {
    auto seq = std::make_unique<Sequence>(id, prompt, max_tokens);
    seq->priority = priority;
    seq->sampling.prompt_logprobs = prompt_logprobs;
    const Status status = scheduler_.add(std::move(seq));
    ASSERT_TRUE(status.is_ok()) << status.to_string();
  }
  // {id, prompt length, max_tokens} each, with prompt_of(id, length).
  void add(std::initializer_list<std::array<int32_t, 3>> requests) {
    for (const auto& [id, num_prompt_tokens, max_tokens] : requests) {
      add(id, prompt_of(id, num_prompt_tokens), max_tokens);
    }
  }

  std::string step() {
    const SchedulerOutput out = scheduler_.schedule();
    scheduler_.update(out, runner_.execute(out, scheduler_.block_pool()));
    for (const ScheduledSequence& s : out.scheduled) {  // the engine's keep_prompt_logprobs
      EXPECT_EQ(s.num_prompt_logprob_rows,
                s.seq->num_prompt_logprob_rows(s.num_computed_tokens, s.num_new_tokens));
      s.seq->next_prompt_logprob += s.num_prompt_logprob_rows;
    }
    std::vector<std::string> entries;
    std::vector<uint64_t> finished;
    int32_t num_tokens = 0;
    for (const ScheduledSequence& s : out.scheduled) {
      num_tokens += s.num_new_tokens;
      std::string entry = fmt::format("{}:", s.seq_id);
      if (std::ranges::count(out.admitted_seq_ids, s.seq_id) && s.num_computed_tokens > 0) {
        entry += fmt::format("c{}+", s.num_computed_tokens);
      }
      if (s.is_prefill_chunk) {
        entry += fmt::format("p{}", s.num_new_tokens);
        if (s.num_prompt_logprob_rows > 0) entry += fmt::format("r{}", s.num_prompt_logprob_rows);
        if (s.needs_sample) entry += "!";
      } else {
        EXPECT_TRUE(s.num_new_tokens == 1 && s.needs_sample);
        entry += "d";
      }
      entries.push_back(entry);
      const Sequence* seq = scheduler_.find(s.seq_id);
      if (s.needs_sample && seq != nullptr && seq->has_reached_max_tokens()) {
        finished.push_back(s.seq_id);
      }
    }
    EXPECT_EQ(out.num_batched_tokens, num_tokens);
    EXPECT_LE(num_tokens, scheduler_.config().max_num_tokens);
    EXPECT_LE(static_cast<int32_t>(out.scheduled.size()), scheduler_.config().max_batch_size);
    for (uint64_t id : finished) {
      const std::unique_ptr<Sequence> seq = scheduler_.finish(id);
      finished_[id] = {std::vector<int32_t>(seq->completion_token_ids().begin(),
                                            seq->completion_token_ids().end()),
                       seq->num_cached_tokens, seq->num_preemptions};
    }
    const Status status = scheduler_.check_invariants();
    EXPECT_TRUE(status.is_ok()) << status.to_string();
    std::string line = entries.empty() ? "idle" : fmt::format("{}", fmt::join(entries, " "));
    if (!out.preempted_seq_ids.empty()) {
      line += fmt::format(" | preempt {}", fmt::join(out.preempted_seq_ids, " "));
    }
    if (!finished.empty()) line += fmt::format(" | finish {}", fmt::join(finished, " "));
    return line;
  }

  Trace run(int32_t max_steps = 1000) {
    Trace trace;
    while (scheduler_.has_unfinished() && static_cast<int32_t>(trace.size()) < max_steps) {
      trace.push_back(step());
    }
    EXPECT_FALSE(scheduler_.has_unfinished()) << "no progress after " << max_steps << " steps";
    return trace;
  }

  Scheduler& scheduler() { return scheduler_; }
  FakeRunner& runner() { return runner_; }
  const std::map<uint64_t, FinishedSequence>& finished() const { return finished_; }

 private:
  Scheduler scheduler_;
  FakeRunner runner_;
  std::map<uint64_t, FinishedSequence> finished_;
};

// block_size 4 keeps the tables short.
SchedulerConfig small_config(int32_t num_blocks, int32_t max_num_tokens, int32_t max_batch_size,
                             int32_t max_model_len) {
  return SchedulerConfig{.block_size = 4,
                         .num_blocks = num_blocks,
                         .max_num_tokens = max_num_tokens,
                         .max_batch_size = max_batch_size,
                         .max_model_len = max_model_len,
                         .speculative = {}};
}

class SchedulerTest : public testing::Test {
 protected:
  Sim& start(const SchedulerConfig& config) {
    expect_drained();
    sim_ = std::make_unique<Sim>(config);
    return *sim_;
  }

  void TearDown() override { expect_drained(); }

  // After every simulation: nothing left, every block free or cached-evictable, invariants hold.
  void expect_drained() {
    if (sim_ == nullptr) return;
    const Scheduler& scheduler = sim_->scheduler();
    EXPECT_FALSE(scheduler.has_unfinished());
    EXPECT_EQ(scheduler.block_pool().num_used_blocks(), 0);
    EXPECT_EQ(scheduler.block_pool().num_free_blocks(), scheduler.config().num_blocks);
    const Status status = scheduler.check_invariants();
    EXPECT_TRUE(status.is_ok()) << status.to_string();
  }

  std::unique_ptr<Sim> sim_;
};

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

// Random arrivals, shared prefixes and aborts on a pool small enough to preempt: every finished
// sequence must still produce exactly the tokens of an unpressured run.
// With a sliding window (kv_window 6) too: released blocks are reused while their sequences run.
class SchedulerStressTest
    : public SchedulerTest,
      public testing::WithParamInterface<std::tuple<bool, bool, uint32_t, int32_t>> {};

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
                         testing::Combine(testing::Bool(), testing::Bool(),
                                          testing::Values(1u, 2u, 3u), testing::Values(0, 6)));

}  // namespace
}  // namespace llmserve
