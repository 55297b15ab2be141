// Sequence: the engine's one object per request — its tokens and place in the paged KV cache (what
// the scheduler reads and writes), and the request's sampling parameters, sampling state, stop
// rules, deadline, timings and output stream (what the engine reads and writes).
//
// token_ids holds the prompt followed by every sampled token. num_computed_tokens of them have
// their KV in the cache (in the blocks of block_table, in order); the rest are this sequence's
// pending work: the whole prompt before the first step, one token (the last sampled) while it
// decodes, or everything again after a preemption (recompute).
//
// Invariants (Scheduler::check_invariants checks them):
//   0 <= num_cached_tokens <= num_computed_tokens <= num_tokens()
//   ceil(num_computed_tokens / block_size) <= block_table.size() <= ceil(num_tokens() / block_size)
//   status == kWaiting  =>  block_table empty and num_computed_tokens == 0
//   block_table[i] == kReleasedBlock  <=>  i < num_released_blocks
//
// Released blocks: when every layer attends within a sliding window, the blocks whose positions
// no later query can see (all below num_computed_tokens - window + 1) go back to the pool
// (BlockPool::release_out_of_window); their entries keep their place in block_table, marked
// kReleasedBlock, so position p still lives in entry p / block_size.
//
// Ownership and threads: Engine::submit creates the Sequence on the caller's thread; from then on
// the Scheduler owns it (std::unique_ptr) on the engine thread, hands out raw pointers that stay
// valid until finish() hands the object back, and is the only writer of the KV fields (with the
// BlockPool it owns, for block_table and the two counts). The engine writes the request fields;
// the model runner reads both.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "engine/request.h"

namespace llmserve {

// A block_table entry whose block went back to the pool: below every layer's sliding window.
inline constexpr int32_t kReleasedBlock = -1;

enum class SequenceStatus {
  kWaiting,   // queued: never admitted, or preempted and waiting to be recomputed
  kRunning,   // admitted: holds blocks and is scheduled every step it can be
  kFinished,  // handed back by Scheduler::finish(); holds no blocks
};

struct Sequence {
  // A request as the engine runs it; `default_seed` seeds its sampling when the request has none.
  Sequence(uint64_t id, Request request, std::shared_ptr<RequestStream> stream,
           uint64_t default_seed);
  // Tokens only (scheduler tests): default sampling but for the completion limit.
  Sequence(uint64_t id, std::vector<int32_t> prompt_token_ids, int32_t max_tokens);

  uint64_t id;
  std::vector<int32_t> token_ids;    // prompt, then sampled tokens
  int32_t num_prompt_tokens;         // fixed at creation; completion = token_ids past it
  SamplingParams sampling;           // sampling.max_tokens: the completion limit
  int32_t num_computed_tokens = 0;   // tokens whose KV is in the cache
  int32_t num_cached_tokens = 0;     // of those, how many came from prefix reuse at admission
  std::vector<int32_t> block_table;  // block ids; token at position p lives in block p / size
  int32_t num_released_blocks = 0;   // leading block_table entries that are kReleasedBlock
  uint64_t released_chain_hash = 0;  // the prefix-cache hash of the last released block
  SequenceStatus status = SequenceStatus::kWaiting;
  uint64_t arrival_index = 0;  // set by Scheduler::add; FCFS order within a priority
  int32_t priority = 0;        // lower first (Request::priority)
  int32_t num_preemptions = 0;
  bool allows_speculation = true;  // Request::speculative
  // Starts the chain of this sequence's block hashes (BlockPool's prefix cache): sequences with
  // different salts never share cached KV. Set where the KV of equal tokens differs, e.g. a
  // LongRoPE model's prompts longer than its original context (their keys rotated by the long
  // factors).
  uint64_t prefix_cache_salt = 0;
  // Speculative decoding with a draft model: positions [0, this) of the draft's KV cache are
  // valid (speculative.h). Reset with num_computed_tokens at a preemption.
  int32_t num_draft_computed_tokens = 0;
  // Speculation back-off (Scheduler): verify steps in a row that accepted no draft, and the
  // decodes still to run without drafts because of them.
  int32_t num_spec_misses = 0;
  int32_t num_spec_skips = 0;

  // The request's side, kept by the engine.
  SamplingState sampling_state;                     // rng step, penalties' counts
  std::optional<Clock::time_point> deadline;        // ended with kDeadlineExceeded when passed
  std::optional<Clock::time_point> queue_deadline;  // ended with kUnavailable if not yet admitted
  RequestTimes times;                               // arrival, first admission, first token, end
  int32_t num_prompt_cached_tokens = 0;             // num_cached_tokens at the first admission
  // Prompt logprobs (sampling.prompt_logprobs): the prompt token the next logit row scores (token
  // 0 has none, so it starts at 1; num_prompt_tokens once all are scored), and the scores of
  // tokens [1, next_prompt_logprob) not yet emitted: the first output with a token carries them.
  int32_t next_prompt_logprob = 1;
  std::vector<SampleResult> prompt_logprobs;
  std::shared_ptr<RequestStream> stream;  // where outputs go; null in scheduler tests

  int32_t num_tokens() const { return static_cast<int32_t>(token_ids.size()); }
  int32_t num_completion_tokens() const { return num_tokens() - num_prompt_tokens; }
  int32_t last_token() const { return token_ids.back(); }
  // Tokens whose KV is not in the cache yet: this sequence's pending work.
  int32_t num_uncomputed_tokens() const { return num_tokens() - num_computed_tokens; }
  // A decode feeds exactly one token past the prompt (the one sampled last step); every other
  // step of a sequence is a prefill chunk (prompt, or recompute after a preemption).
  bool is_decoding() const {
    return num_uncomputed_tokens() == 1 && num_computed_tokens >= num_prompt_tokens;
  }
  // Prompt logprobs still to compute: the scheduler keeps its prefix reuse away from them, so every
  // position whose logits score a prompt token runs through the model.
  bool wants_prompt_logprobs() const {
    return sampling.has_prompt_logprobs() && next_prompt_logprob < num_prompt_tokens;
  }
  // Of a chunk of positions [first, first + n): how many have logits that score a prompt token
  // still unscored (position p scores token p + 1). They are the chunk's last ones, or all but its
  // last when the chunk ends the prompt (whose last position samples): a suffix either way.
  int32_t num_prompt_logprob_rows(int32_t first, int32_t n) const {
    if (!wants_prompt_logprobs()) return 0;
    const int32_t begin = std::max(first, next_prompt_logprob - 1);
    const int32_t end = std::min(first + n, num_prompt_tokens - 1);
    return std::max(0, end - begin);
  }
  int32_t max_tokens() const { return sampling.max_tokens; }
  bool has_reached_max_tokens() const { return num_completion_tokens() >= max_tokens(); }
  bool was_admitted() const { return times.admitted.has_value(); }
  bool is_finished() const { return status == SequenceStatus::kFinished; }
  std::span<const int32_t> completion_token_ids() const {
    return std::span<const int32_t>(token_ids).subspan(num_prompt_tokens);
  }
};

}  // namespace llmserve
