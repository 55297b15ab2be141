// SchedulerOutput: the whole contract between the scheduler and the model runner for one step.
//
// `scheduled` lists the sequences that run this step in a flat order: decodes first, then the
// chunks of prefills already running, then newly admitted sequences. The runner packs them into
// one padding-free batch in that order and builds everything else from it:
//   token ids   seq->token_ids[num_computed_tokens, num_computed_tokens + num_new_tokens)
//   positions   num_computed_tokens ... num_computed_tokens + num_new_tokens - 1
//   slots       slot_of(seq->block_table, block_size, position)  (backend/forward_batch.h)
//   attention   each query attends to positions [0, its own] through seq->block_table, which
//               covers every position above; positions below num_computed_tokens are cached KV
//   logits      one row per entry with needs_sample, for its last token, in `scheduled` order;
//               the runner's StepResult holds their samples in that order, and
//               Scheduler::update takes it as it is.
// Invariants: num_batched_tokens == sum of num_new_tokens; every num_new_tokens >= 1; a sequence
// appears at most once; preempted sequences do not appear in `scheduled`.
//
// Lifetime: seq stays valid until Scheduler::finish/abort of that id; the struct is read on the
// engine thread between Scheduler::schedule() and Scheduler::update().
#pragma once

#include <cstdint>
#include <vector>

#include "engine/sampler.h"
#include "engine/sequence.h"

namespace llmserve {

struct ScheduledSequence {
  Sequence* seq = nullptr;
  uint64_t seq_id = 0;              // seq->id, kept so update() survives an abort in between
  int32_t num_computed_tokens = 0;  // before this step: tokens whose KV is already cached
  int32_t num_new_tokens = 0;       // this step's tokens: a prompt chunk or 1 decode token
  bool is_prefill_chunk = false;    // false only for a decode (Sequence::is_decoding)
  bool needs_sample = false;        // after this step all its tokens are computed: sample one
};

struct SchedulerOutput {
  std::vector<ScheduledSequence> scheduled;  // batch order
  std::vector<uint64_t> admitted_seq_ids;    // first scheduled this step (again, if preempted)
  std::vector<uint64_t> preempted_seq_ids;   // blocks freed this step; back to waiting
  int32_t num_batched_tokens = 0;            // sum of num_new_tokens
  int32_t block_size = 0;                    // for slot_of

  bool is_empty() const { return scheduled.empty(); }
  int32_t num_sampled() const {
    int32_t n = 0;
    for (const ScheduledSequence& s : scheduled) n += s.needs_sample ? 1 : 0;
    return n;
  }
};

// What one step produced (ModelRunner::step): for each entry of the SchedulerOutput with
// needs_sample, in batch order, its next token, with its logprobs filled in when its sequence
// asked for them.
struct StepResult {
  std::vector<SampleResult> samples;
};

}  // namespace llmserve
