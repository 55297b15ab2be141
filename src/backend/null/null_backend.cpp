#include "backend/null/null_backend.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "common/status.h"

namespace llmserve {
namespace {

Tensor i32_view(const std::vector<int32_t>& v) {
  return Tensor(const_cast<int32_t*>(v.data()), DType::kI32, {static_cast<int64_t>(v.size())});
}

}  // namespace

Buffer NullBackend::allocate(size_t nbytes) {
  // calloc: large blocks come straight from mmap as untouched zero pages, so they cost no RSS.
  void* p = std::calloc(std::max<size_t>(nbytes, 1), 1);
  if (p == nullptr)
    fail(StatusCode::kResourceExhausted, "null backend: cannot allocate {} bytes", nbytes);
  return Buffer(p, nbytes, [](void* q) { std::free(q); });
}

void NullBackend::download(Tensor src, void* host) {
  if (src.nbytes() > 0) std::memcpy(host, src.data, src.nbytes());
}

size_t NullBackend::free_memory() const {
  long pages = sysconf(_SC_AVPHYS_PAGES);
  long page_size = sysconf(_SC_PAGESIZE);
  return pages > 0 && page_size > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page_size)
                                    : 0;
}

void NullBackend::argmax_rows(Tensor logits, Tensor ids) {
  if (ids.nbytes() > 0) std::memset(ids.data, 0, ids.nbytes());
}

BatchTensors NullBackend::upload_batch(const ForwardBatch& batch) {
  batch_copy_ = batch;
  const ForwardBatch& b = batch_copy_;
  BatchTensors t;
  t.token_ids = i32_view(b.token_ids);
  t.positions = i32_view(b.positions);
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
