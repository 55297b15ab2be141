#include "backend/forward_batch.h"

#include <algorithm>

#include "common/status.h"

namespace llmserve {

void ForwardBatch::add_sequence(const int32_t* tokens, int32_t num_new_tokens,
                                int32_t num_computed_tokens,
                                const std::vector<int32_t>& block_table, int32_t block_size,
                                LogitRows logits, int32_t rope_offset,
                                int32_t num_extra_logit_rows) {
  if (query_start.empty()) query_start.push_back(0);
  int32_t context_len = num_computed_tokens + num_new_tokens;
  if (static_cast<int64_t>(block_table.size()) * block_size < context_len) {
    fail(StatusCode::kInternal, "block table of {} blocks cannot hold {} tokens",
         block_table.size(), context_len);
  }
  const int32_t num_rows =
      logits == LogitRows::kAll
          ? num_new_tokens
          : (logits == LogitRows::kLast && num_new_tokens > 0 ? 1 : 0) + num_extra_logit_rows;
  if (num_rows > num_new_tokens || (logits == LogitRows::kAll && num_extra_logit_rows != 0)) {
    fail(StatusCode::kInternal, "{} extra logit rows for {} new tokens ({})", num_extra_logit_rows,
         num_new_tokens, logits == LogitRows::kAll ? "all have rows" : "too many");
  }
  for (int32_t i = 0; i < num_new_tokens; ++i) {
    int32_t pos = num_computed_tokens + i;
    if (i >= num_new_tokens - num_rows) logits_indices.push_back(num_tokens());
    token_ids.push_back(tokens[i]);
    positions.push_back(pos);
    rope_positions.push_back(pos + rope_offset);
    const int32_t slot = slot_of(block_table, block_size, pos);
    if (slot < 0) fail(StatusCode::kInternal, "position {} falls in a released block", pos);
    slot_mapping.push_back(slot);
  }
  query_start.push_back(num_tokens());
  context_lens.push_back(context_len);
  int32_t num_blocks = (context_len + block_size - 1) / block_size;
  auto& table = pending_tables_.emplace_back(block_table.begin(), block_table.begin() + num_blocks);
  // Entries released below a sliding window (negative, engine/sequence.h) are never read (the
  // attention kernels start at the window): any valid id stands in for them.
  for (int32_t& block : table) block = std::max(block, 0);
}

void ForwardBatch::finalize(int32_t min_blocks_per_seq) {
  max_blocks_per_seq = min_blocks_per_seq;
  for (const auto& t : pending_tables_)
    max_blocks_per_seq = std::max<int32_t>(max_blocks_per_seq, static_cast<int32_t>(t.size()));
  block_tables.assign(pending_tables_.size() * static_cast<size_t>(max_blocks_per_seq), 0);
  for (size_t s = 0; s < pending_tables_.size(); ++s) {
    std::copy(pending_tables_[s].begin(), pending_tables_[s].end(),
              block_tables.begin() +
                  static_cast<std::ptrdiff_t>(s * static_cast<size_t>(max_blocks_per_seq)));
  }
  pending_tables_.clear();
}

void ForwardBatch::clear() {
  token_ids.clear();
  positions.clear();
  rope_positions.clear();
  query_start.clear();
  context_lens.clear();
  slot_mapping.clear();
  block_tables.clear();
  logits_indices.clear();
  pending_tables_.clear();
  max_blocks_per_seq = 0;
}

}  // namespace llmserve
