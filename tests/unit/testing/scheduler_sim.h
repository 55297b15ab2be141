// The scheduler tests' simulation (tests/unit/engine/scheduler_test.cpp,
// scheduler_stress_test.cpp): a GPU-free engine loop where a fake model appends one token per step.
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
#pragma once

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <gtest/gtest.h>

#include "backend/forward_batch.h"
#include "engine/scheduler.h"

namespace llmserve::testing {

using Trace = std::vector<std::string>;

inline std::vector<int32_t> tokens_from(int32_t first, int32_t n) {
  std::vector<int32_t> tokens(n);
  std::iota(tokens.begin(), tokens.end(), first);
  return tokens;
}

// Distinct prompts per id (no accidental prefix hits): id * 100, id * 100 + 1, ...
inline std::vector<int32_t> prompt_of(uint64_t id, int32_t n) {
  return tokens_from(static_cast<int32_t>(id) * 100, n);
}

inline std::vector<int32_t> expected_completion(const std::vector<int32_t>& prompt, int32_t n) {
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
inline SchedulerConfig small_config(int32_t num_blocks, int32_t max_num_tokens,
                                    int32_t max_batch_size, int32_t max_model_len) {
  return SchedulerConfig{.block_size = 4,
                         .num_blocks = num_blocks,
                         .max_num_tokens = max_num_tokens,
                         .max_batch_size = max_batch_size,
                         .max_model_len = max_model_len,
                         .speculative = {}};
}

class SchedulerTest : public ::testing::Test {
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

}  // namespace llmserve::testing
