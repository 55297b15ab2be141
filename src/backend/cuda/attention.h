// Paged attention kernels of the CUDA backend: causal attention of every new token of a flat,
// padding-free batch over its sequence's paged KV cache (which already holds this step's keys
// and values). One entry point serves prefill chunks, decode steps and mixed batches.
//
// Layouts (all row-major, T = num_tokens, d = head_dim):
//   qkv        [T, (Hq + 2*Hk) * d]: query heads [0, Hq), key heads, value heads; only the query
//              heads are read here (keys/values were written to the cache by write_kv).
//   k/v cache  [num_blocks, block_size, Hk, d] per layer (dtype or e4m3); slot j of a sequence is
//   in
//              block block_tables[s * max_blocks_per_seq + j / block_size], offset j % block_size.
//   out        [T, Hq * d]
// Token t belongs to the sequence s with query_start[s] <= t < query_start[s + 1] and attends to
// the cached positions 0 .. positions[t] (inclusive), or with a sliding window W to
// positions[t] - W + 1 .. positions[t]. GQA: query head h reads KV head h / (Hq / Hk).
// Scores are scale * q.k, soft-capped to softcap * tanh(scale * q.k / softcap) when softcap > 0.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

#include "common/dtype.h"

namespace llmserve::cuda {

struct AttentionParams {
  DType dtype = DType::kF16;  // of qkv, caches and out: kF16 or kBF16
  // The caches hold e4m3 codes (--kv-cache-dtype fp8: scale 1, what rope_kv.cu writes) instead of
  // dtype; same layout, one byte an element. Keys and values are widened exactly on load.
  bool kv_fp8 = false;
  const void* qkv = nullptr;
  const void* k_cache = nullptr;
  const void* v_cache = nullptr;
  void* out = nullptr;
  const int32_t* positions = nullptr;     // [T]
  const int32_t* query_start = nullptr;   // [num_seqs + 1]
  const int32_t* context_lens = nullptr;  // [num_seqs] KV length after this step
  const int32_t* block_tables = nullptr;  // [num_seqs, max_blocks_per_seq]
  int32_t num_tokens = 0;
  int32_t num_seqs = 0;
  int32_t max_blocks_per_seq = 0;
  // Upper bounds (not necessarily exact) of the largest new-token count and context length of a
  // sequence in this batch. The launch configuration depends only on these host values and the
  // counts above, so a CUDA graph captured with bounds stays correct for any batch within them.
  int32_t max_query_len = 0;
  int32_t max_context_len = 0;
  // Sequences [0, n) have one new token each (token t = sequence t). In a mixed batch they go to
  // the decode kernel and only the rest to the prefill kernel, whose 64-row query tiles a lone
  // decode token would fill to 1/64 while re-reading its KV once per query head. 0 is always
  // correct (the prefill kernel serves every sequence).
  int32_t num_leading_decodes = 0;
  int32_t num_q_heads = 0;
  int32_t num_kv_heads = 0;
  // 16, 32, 64, 128 or 256 (256: every token on the decode kernel; others: launch returns
  // cudaErrorInvalidValue).
  int32_t head_dim = 0;
  int32_t block_size = 16;
  float scale = 1.0f;
  // Sliding window in positions (Mistral, Gemma 2/3); 0: the whole causal context.
  int32_t window = 0;
  // Soft-cap of the scores before the softmax (Gemma 2); 0: none.
  float softcap = 0.0f;
  // Scratch for split-K partial results; at least attention_workspace_bytes(...) bytes.
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};

// Scratch bytes launch_attention needs for these shapes and bounds.
size_t attention_workspace_bytes(int32_t num_tokens, int32_t num_seqs, int32_t num_q_heads,
                                 int32_t head_dim, int32_t max_context_len);

// Enqueues the attention on `stream`; never synchronises, never allocates. Returns the launch
// error (cudaSuccess when the kernels were enqueued).
cudaError_t launch_attention(const AttentionParams& p, cudaStream_t stream);

}  // namespace llmserve::cuda
