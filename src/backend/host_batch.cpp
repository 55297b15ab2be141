#include "backend/host_batch.h"

namespace llmserve {
namespace {

Tensor i32_view(const std::vector<int32_t>& v) {
  return Tensor(const_cast<int32_t*>(v.data()), DType::kI32, {static_cast<int64_t>(v.size())});
}

}  // namespace

BatchTensors host_batch_views(const ForwardBatch& b) {
  BatchTensors t;
  t.token_ids = i32_view(b.token_ids);
  t.positions = i32_view(b.positions);
  t.rope_positions = i32_view(b.rope_positions);
  t.query_start = i32_view(b.query_start);
  t.context_lens = i32_view(b.context_lens);
  t.slot_mapping = i32_view(b.slot_mapping);
  t.block_tables = i32_view(b.block_tables);
  t.logits_indices = i32_view(b.logits_indices);
  t.num_tokens = b.num_tokens();
  t.num_seqs = b.num_seqs();
  t.num_logits = b.num_logits();
  t.max_blocks_per_seq = b.max_blocks_per_seq;
  return t;
}

}  // namespace llmserve
