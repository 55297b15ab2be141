// Scheduler: in-flight batching over a paged KV cache. Each step it decides which sequences run
// and how many tokens each (SchedulerOutput); after the model ran, update() records the results.
//
// One step (schedule()):
//   1. decodes: every running sequence that is decoding gets 1 token — with speculation on and
//      at most speculative.max_batch_size sequences decoding, 1 + its drafts (speculative.h),
//      when the token budget left after the other decodes and the free blocks allow them (drafts
//      never preempt: without room a sequence decodes plainly). If it needs a block and
//      none is free, a running sequence not yet scheduled this step is preempted (blocks freed,
//      computed tokens forgotten, back into waiting; its sampled tokens are kept and are
//      recomputed like prompt): the one with the lowest priority (highest `priority` value),
//      the latest admitted of equals — with one priority, the latest admitted; if that is the
//      one needing the block, it is the one preempted.
//   2. prefill chunk: the running sequence still prefilling (with chunked prefill there is at
//      most one) gets what remains of the token budget, cut to the free blocks; with none free
//      it waits a step (decodes hold the blocks and progress).
//      A sequence that wants prompt logprobs needs a logit row per prompt position: its chunk is
//      also cut to the step's max_prompt_logprob_rows, and a chunk cut so ends the step's
//      prefill work (as one that took the whole budget would). Such a sequence is admitted
//      without prefix reuse, since a reused block's positions would have no logits.
//   3. admission (skipped in a step that preempted): waiting sequences in (priority, arrival)
//      order — first come, first served within a priority, a preempted sequence back at the front
//      of its priority — each after prefix reuse, while the token budget (max_num_tokens), the
//      batch limit (max_batch_size running sequences) and free blocks for its first chunk allow.
//      With chunked prefill the chunk is what remains of the budget; without it a prompt larger
//      than the remaining budget waits. If the head of waiting cannot be admitted, the ones
//      behind it wait too: no skipping, so a long prompt is never starved by short ones of its
//      priority (lower priorities can wait as long as higher ones keep arriving, by design).
// The earliest-admitted sequence of the highest priority is never preempted by another, so it
// always progresses; check_admissible() guarantees any admitted sequence fits the pool and the
// context alone.
//
// Ownership: add() takes the Sequence; finish() hands it back with its blocks freed. Raw Sequence
// pointers (in SchedulerOutput) are valid until then.
// Thread-safety: none. The engine thread calls everything, finish() included, and
// calls update() once after each schedule() with the same output.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "engine/block_pool.h"
#include "engine/scheduler_output.h"
#include "engine/sequence.h"
#include "engine/speculative.h"

namespace llmserve {

struct SchedulerConfig {
  int32_t block_size = 16;        // tokens per KV block
  int32_t num_blocks = 0;         // KV blocks in the pool (sized from device memory)
  int32_t max_num_tokens = 8192;  // token budget per step
  int32_t max_batch_size = 256;   // running sequences (so also sequences per step)
  int32_t max_model_len = 0;      // prompt + max_tokens limit per sequence
  bool enable_prefix_caching = true;
  bool enable_chunked_prefill = true;
  // Logit rows one step may spend on prompt logprobs (Sequence::wants_prompt_logprobs): a chunk
  // of such a sequence is cut to them (so, without chunked prefill too, its prompt may take
  // several steps), which bounds the logits a step downloads to this many rows of the vocabulary.
  int32_t max_prompt_logprob_rows = 128;
  SpeculativeConfig speculative;  // drafts for decodes (speculative.h); off by default
  // > 0 when every layer (of the draft model too) attends within a sliding window of this many
  // positions: a running sequence's blocks below it go back to the pool after each step
  // (BlockPool::release_out_of_window), so a sequence holds at most kv_window - 1 + its chunk
  // positions and check_admissible bounds its blocks by that, not by its length.
  int32_t kv_window = 0;
};

// Live view for metrics and logs.
struct SchedulerStats {
  int32_t num_waiting = 0;
  int32_t num_running = 0;
  int32_t num_free_blocks = 0;    // free + evictable cached
  int32_t num_used_blocks = 0;    // referenced by a block table
  int32_t num_cached_blocks = 0;  // in the prefix cache (in use or evictable)
  PrefixCacheStats prefix_cache;  // cumulative
  int64_t num_preemptions = 0;    // cumulative
  // Cumulative speculative-decoding counts: decodes that carried drafts, drafts proposed, drafts
  // accepted (tokens gained over plain decoding).
  int64_t num_spec_decodes = 0;
  int64_t num_draft_tokens = 0;
  int64_t num_accepted_tokens = 0;
  // Cumulative: admissions ahead of a sequence that arrived earlier and was still waiting (a
  // lower `priority` value jumped the queue).
  int64_t num_priority_admissions = 0;
  // Cumulative: blocks that went back to the pool below a sliding window (kv_window).
  int64_t num_window_released_blocks = 0;
  int32_t num_batched_tokens = 0;  // last step's
};

class Scheduler {
 public:
  // Names the offending field, e.g. "max_num_tokens (128) must be >= max_batch_size (256)".
  static Status validate(const SchedulerConfig& config);
  // Throws Error(kInvalidArgument) if validate() fails.
  explicit Scheduler(const SchedulerConfig& config);

  // Whether a request could ever run: prompt non-empty, max_tokens >= 1, prompt + max_tokens
  // within max_model_len and its blocks (max_blocks_per_sequence) within the whole pool.
  // kInvalidArgument / kOutOfRange otherwise.
  Status check_admissible(int32_t num_prompt_tokens, int32_t max_tokens) const;
  // Queues seq (by priority, then arrival) after check_admissible; also rejects a live
  // duplicate id.
  Status add(std::unique_ptr<Sequence> seq);
  // Removes a waiting or running sequence, however it ended (eos, stop, max_tokens, cancelled,
  // failed: the engine decides), frees its blocks and hands it back marked kFinished. nullptr if
  // unknown. A step scheduled before keeps working: update() skips it.
  std::unique_ptr<Sequence> finish(uint64_t seq_id);

  SchedulerOutput schedule();
  // Advances num_computed_tokens by each entry's num_new_tokens, appends result.samples[i] to the
  // i-th entry with needs_sample, and caches newly full blocks. A speculative decode advances by
  // 1 + its accepted drafts instead, appends its 1 + accepted samples and gives back the blocks
  // its rejected drafts held. Entries whose sequence was aborted or finished since schedule() are
  // skipped (their samples too). Throws Error(kInternal) if the samples do not match the output.
  void update(const SchedulerOutput& output, const StepResult& result);
  // The most blocks a sequence of num_tokens tokens holds at once under `config`: all of them,
  // or under a sliding window (kv_window) those of kv_window - 1 positions and a step's chunk,
  // plus one block each end may share with positions outside.
  static int32_t max_blocks_per_sequence(const SchedulerConfig& config, int64_t num_tokens);

  int32_t num_waiting() const { return static_cast<int32_t>(waiting_.size()); }
  int32_t num_running() const { return static_cast<int32_t>(running_.size()); }
  // Waiting sequences never admitted yet (preempted ones are waiting too, but ran before).
  int32_t num_waiting_new() const;
  bool has_unfinished() const { return !sequences_.empty(); }
  const Sequence* find(uint64_t seq_id) const;
  Sequence* find(uint64_t seq_id);
  // Every live sequence (waiting and running), in no particular order. `fn` must not add or finish.
  template <typename Fn>
  void for_each(Fn&& fn) {
    for (auto& [id, seq] : sequences_) fn(*seq);
  }
  const SchedulerConfig& config() const { return config_; }
  const BlockPool& block_pool() const { return block_pool_; }
  SchedulerStats stats() const;
  // Queues, statuses and the block pool against every live block table; kInternal if broken.
  // Call between steps (after update()).
  Status check_invariants() const;

 private:
  // What is left of this step's limits while schedule() fills it.
  struct StepBudget {
    int32_t num_tokens;
    int32_t num_prompt_logprob_rows;
    bool has_preempted = false;
  };
  // The most tokens a chunk of `seq` may take with `num_rows` prompt-logprob rows left this step
  // (INT32_MAX when it wants none): the positions that need no row, then `num_rows`.
  static int32_t prompt_logprob_chunk_limit(const Sequence& seq, int32_t num_rows);

  void schedule_decodes(SchedulerOutput& out, StepBudget& budget);
  void schedule_prefill_chunks(SchedulerOutput& out, StepBudget& budget);
  void admit_waiting(SchedulerOutput& out, StepBudget& budget);
  void add_to_output(SchedulerOutput& out, Sequence& seq, int32_t num_new_tokens);
  // Drafts for a decoding seq (prompt lookup, or placeholders for the draft model), cut to what
  // its completion limit, `max_drafts` and the free blocks allow; empty when it does not
  // speculate this step (also while it backs off after rejections).
  void propose_drafts(Sequence& seq, int32_t max_drafts, std::vector<int32_t>& drafts) const;
  // The running sequence a decode at running_[first] preempts when it needs a block: the lowest
  // priority among running_[first..] (those not yet scheduled this step), the latest admitted of
  // equals — so with one priority, always the latest admitted.
  Sequence* preemption_victim(size_t first) const;
  // Frees `victim`'s blocks and queues it (waiting_ order) to be recomputed.
  void preempt(SchedulerOutput& out, StepBudget& budget, Sequence* victim);
  // Inserts into waiting_ by (priority, arrival_index).
  void enqueue_waiting(Sequence* seq);

  SchedulerConfig config_;
  BlockPool block_pool_;
  std::unordered_map<uint64_t, std::unique_ptr<Sequence>> sequences_;  // all live, by id
  // By (priority, arrival_index): FCFS within a priority, so a preempted sequence (which arrived
  // before anything still waiting at its priority) goes back to the front of its priority.
  std::deque<Sequence*> waiting_;
  std::vector<Sequence*> running_;  // admission order
  int64_t num_priority_admissions_ = 0;
  int32_t num_waiting_new_ = 0;  // waiting_ entries never admitted (num_preemptions == 0)
  uint64_t next_arrival_index_ = 0;
  int64_t num_preemptions_ = 0;
  int64_t num_spec_decodes_ = 0;
  int64_t num_draft_tokens_ = 0;
  int64_t num_accepted_tokens_ = 0;
  int64_t num_window_released_blocks_ = 0;
  int32_t last_num_batched_tokens_ = 0;
  std::vector<int32_t> drafts_;  // propose_drafts' scratch
};

}  // namespace llmserve
