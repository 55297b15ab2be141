// ForwardBatch: everything one forward step needs to know about its tokens, as plain host arrays.
// The engine fills it from a SchedulerOutput; the backend uploads it once per step
// (Backend::upload_batch) and ops read the uploaded views (BatchTensors). Nothing else about
// requests or queues reaches the backend.
//
// Tokens of all sequences are packed into one flat, padding-free batch: sequence s owns tokens
// [query_start[s], query_start[s+1]); after this step it has context_lens[s] tokens of KV, so its
// new tokens sit at positions context_lens[s] - n_s ... context_lens[s] - 1.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backend/tensor.h"

namespace llmserve {

// Which of a sequence's new tokens need logits: none (a middle prefill chunk), the last one (to
// sample the next token) or all of them (scoring, tests against reference logits). add_sequence's
// num_extra_logit_rows adds the tokens just before those (prompt logprobs): a suffix either way.
enum class LogitRows { kNone, kLast, kAll };

// The KV slot of the token at `position` of a sequence: the flat index its K/V are written to.
// The one place the formula lives (the KV cache layout: docs/architecture.md).
inline int32_t slot_of(std::span<const int32_t> block_table, int32_t block_size, int32_t position) {
  return block_table[static_cast<size_t>(position / block_size)] * block_size +
         position % block_size;
}

struct ForwardBatch {
  std::vector<int32_t> token_ids;  // [num_tokens]
  std::vector<int32_t> positions;  // [num_tokens] absolute position of each token
  // [num_tokens] the rope table row each token reads: its position plus its sequence's table
  // offset (model/rope.h rope_table_offset: LongRoPE's long rows); positions themselves mask
  // attention.
  std::vector<int32_t> rope_positions;
  std::vector<int32_t> query_start;     // [num_seqs + 1] prefix sums of new tokens per sequence
  std::vector<int32_t> context_lens;    // [num_seqs] KV length after this step
  std::vector<int32_t> slot_mapping;    // [num_tokens] cache slot = block * block_size + offset
  std::vector<int32_t> block_tables;    // [num_seqs, max_blocks_per_seq], unused entries 0
  std::vector<int32_t> logits_indices;  // token rows whose logits are wanted, in output order
  int32_t max_blocks_per_seq = 0;

  int32_t num_tokens() const { return static_cast<int32_t>(token_ids.size()); }
  int32_t num_seqs() const { return static_cast<int32_t>(context_lens.size()); }
  int32_t num_logits() const { return static_cast<int32_t>(logits_indices.size()); }

  // Appends one sequence's new tokens (`tokens` points at the first new one). `block_table`
  // covers at least num_computed_tokens + num_new_tokens tokens. With `logits` kNone or kLast,
  // num_extra_logit_rows more of the new tokens right before those get logit rows too.
  void add_sequence(const int32_t* tokens, int32_t num_new_tokens, int32_t num_computed_tokens,
                    const std::vector<int32_t>& block_table, int32_t block_size, LogitRows logits,
                    int32_t rope_offset = 0, int32_t num_extra_logit_rows = 0);
  // Pads block_tables to a rectangle at least `min_blocks_per_seq` wide; call once after the last
  // add_sequence. (A fixed width gives a fixed layout, which replayed graphs need.)
  void finalize(int32_t min_blocks_per_seq = 0);
  void clear();

 private:
  std::vector<std::vector<int32_t>> pending_tables_;
};

// Backend-side views of a ForwardBatch (int32 tensors in backend memory), valid until the next
// upload_batch on the same backend.
struct BatchTensors {
  Tensor token_ids, positions, rope_positions, query_start, context_lens, slot_mapping,
      block_tables, logits_indices;
  int32_t num_tokens = 0;
  int32_t num_seqs = 0;
  int32_t num_logits = 0;
  int32_t max_blocks_per_seq = 0;
  int32_t max_query_len = 0;
  int32_t max_context_len = 0;
  // Sequences [0, n) have one new token each (the scheduler puts running decodes first): the CUDA
  // attention runs them through its decode kernel even when later sequences are prefilling.
  int32_t num_leading_decodes = 0;
};

}  // namespace llmserve
