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
//               Scheduler::update takes it as it is. An entry with num_prompt_logprob_rows has
//               that many rows more, for the positions before (StepResult::prompt_logprobs).
// A speculative decode (speculative.h) feeds verify_tokens instead — the last sampled token then
// the drafts — at positions num_computed_tokens...; it has logits at every one of them and
// samples 1 to num_new_tokens tokens (StepResult::accepted).
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
  // Logit rows that score prompt tokens (Sequence::num_prompt_logprob_rows): this chunk's last
  // positions before the sampled one, whose logits give the next prompt tokens' logprobs.
  int32_t num_prompt_logprob_rows = 0;
  // A speculative decode only: the last sampled token, then the drafts (num_new_tokens of them in
  // all); empty otherwise, the tokens then being seq->token_ids from num_computed_tokens. With a
  // draft model the scheduler leaves placeholders that the engine fills before the step runs.
  std::vector<int32_t> verify_tokens{};

  int32_t num_drafts() const {
    return verify_tokens.empty() ? 0 : static_cast<int32_t>(verify_tokens.size()) - 1;
  }
};

struct SchedulerOutput {
  std::vector<ScheduledSequence> scheduled;  // batch order
  std::vector<uint64_t> admitted_seq_ids;    // first scheduled this step (again, if preempted)
  std::vector<uint64_t> preempted_seq_ids;   // blocks freed this step; back to waiting
  int32_t num_batched_tokens = 0;            // sum of num_new_tokens
  int32_t block_size = 0;                    // for slot_of

  bool is_empty() const { return scheduled.empty(); }
  int32_t num_drafts = 0;  // sum of the entries' num_drafts()

  int32_t num_sampled() const {
    int32_t n = 0;
    for (const ScheduledSequence& s : scheduled) n += s.needs_sample ? 1 : 0;
    return n;
  }
};

// What one step produced (ModelRunner::step): for each entry of the SchedulerOutput with
// needs_sample, in batch order, its next tokens, with their logprobs filled in when its sequence
// asked for them — one token, or for a speculative decode 1 + accepted[i] (the accepted drafts,
// then the token chosen after them), consecutive in `samples`.
struct StepResult {
  std::vector<SampleResult> samples;
  // Per entry with needs_sample: how many of its drafts were accepted. Empty when no entry of the
  // step speculated (every entry then has exactly one sample).
  std::vector<int32_t> accepted;
  // Per entry with num_prompt_logprob_rows, in batch order, that many consecutive scores: the
  // prompt tokens from seq->next_prompt_logprob on (score_token, sampler.h).
  std::vector<SampleResult> prompt_logprobs;

  int32_t num_accepted(size_t sampled_index) const {
    return accepted.empty() ? 0 : accepted[sampled_index];
  }
};

}  // namespace llmserve
