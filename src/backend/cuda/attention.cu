// Paged attention, entry point and decode path. launch_attention validates the parameters and
// picks a path from host values only: max_query_len == 1 runs the split-K decode kernels here,
// anything else runs the tiled tensor-core kernel of attention_prefill.cu -- for the sequences
// after the leading one-token ones (num_leading_decodes), which take the decode kernels.
//
// Decode (flash-decoding): the context of each token is cut into at most `num_splits` chunks;
// one CTA per (token, group of query heads sharing a KV head, chunk) reads that chunk's K/V rows
// once, with 16-byte loads, and keeps an online softmax per query head. With one split the CTA
// writes the output directly; otherwise it writes a normalised partial output and its log-sum-exp
// to the workspace and attention_reduce_kernel combines them.
//
// Invariants: the grid depends only on host values (num_tokens, num_q_heads, max_context_len,
// head_dim), so a CUDA graph captured with upper bounds stays correct; the real context length of
// token t is positions[t] + 1, read on the device, and chunks past it exit at once. Softmax and
// accumulation are fp32; scores are kept in the log2 domain (scale * log2(e) folded into q).
//
// Head dims: 16, 32, 64, 96 (Phi-3 mini) and 128 (both paths instantiate exactly these), and 256
// (Gemma 2 2B/9B, Gemma 3 1B-12B) on the decode kernel alone: every token of every sequence,
// prefill chunks included, takes it (one CTA per token and head group over the token's visible
// span). That is correct at any query length but reads the context once per query token, where the
// tensor-core kernel reads it once per 64; a prefill kernel for 256 needs ~66 KB of shared tiles
// (dynamic shared memory) and 128 fp32 accumulators a lane, so it is left for later.
// launch_attention rejects other head dims. The decode kernel's lane groups (lanes per key row) are
// a power of two dividing 32 (D = 256: a whole warp per key row); for D = 96 a group is rounded up
// to 16 lanes (8 with an fp8 cache) whose last 4 (2) own no dims and load nothing.
//
// Sliding window (p.window > 0): token t sees positions len - window .. len - 1 (len =
// positions[t] + 1); the decode kernel cuts that span, not the whole context, into its chunks,
// and the split count follows min(max_context_len, window). Soft-capping (p.softcap > 0) is a
// template parameter of the decode kernel, so the plain path's loop is unchanged: q is scaled by
// scale / softcap instead of scale * log2(e), and each score becomes softcap * log2(e) *
// tanh(q.k) once reduced across its lane group.
//
// fp8 KV cache (p.kv_fp8): the kernels take the cache element KV = uint8_t (e4m3 codes) instead
// of T. The decode kernel's lane then owns 16 dims of a row (still one 16-byte load, widened
// exactly: fp8_common.cuh), so a warp covers twice the keys a step and the cross-lane reductions
// per key halve; the arithmetic per element is the 16-bit cache's.
#include "backend/cuda/attention.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/fp8_common.cuh"

namespace llmserve::cuda {

// attention_prefill.cu
cudaError_t launch_attention_prefill(const AttentionParams& p, cudaStream_t stream);

namespace {

constexpr int kDecodeThreads = 128;  // 4 warps
constexpr int kDecodeWarps = kDecodeThreads / 32;
constexpr int kMinChunk = 128;   // fewest context positions worth a split of their own
constexpr int kChunkAlign = 64;  // chunks are whole multiples of this many positions
constexpr int kMaxSplits = 64;
constexpr int kTargetHeadSplits = 1024;  // aim for tokens * q_heads * splits >= this (132 SMs)
constexpr float kLog2e = 1.4426950408889634f;

// Splits per token for these host bounds; 1 means no workspace and no reduce kernel.
int decode_num_splits(int32_t num_tokens, int32_t num_q_heads, int32_t max_context_len) {
  const int64_t heads = std::max<int64_t>(1, static_cast<int64_t>(num_tokens) * num_q_heads);
  const int64_t by_fill = (kTargetHeadSplits + heads - 1) / heads;
  const int64_t by_len = (std::max<int64_t>(max_context_len, 1) + kMinChunk - 1) / kMinChunk;
  return static_cast<int>(std::clamp<int64_t>(std::min(by_fill, by_len), 1, kMaxSplits));
}

// Context positions per chunk for a token that sees `len` positions; ceil(len / chunk) chunks
// are used, never more than num_splits. Must agree between the decode and reduce kernels.
__device__ __forceinline__ int decode_chunk(int len, int num_splits) {
  const int c = (len + num_splits - 1) / num_splits;
  return (c + kChunkAlign - 1) / kChunkAlign * kChunkAlign;
}

// The first context position a token that sees `len` positions attends to: 0, or under a sliding
// window the first of its last `window` positions. Must agree between the decode and reduce
// kernels.
__device__ __forceinline__ int first_visible(int len, int window) {
  return window > 0 ? max(0, len - window) : 0;
}

// Sequence of token t: the s with query_start[s] <= t < query_start[s + 1].
// Decode batches (one token per sequence) take the first test, with loads that do not wait on
// each other; otherwise a binary search.
__device__ __forceinline__ int seq_of_token(const int32_t* query_start, int num_seqs, int t) {
  if (t < num_seqs && __ldg(query_start + t) == t && __ldg(query_start + t + 1) == t + 1) return t;
  int lo = 0, hi = num_seqs - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) >> 1;
    if (__ldg(query_start + mid) <= t)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

template <typename T>
__device__ __forceinline__ void unpack8(const uint4& raw, float (&f)[8]) {
  const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
  for (int i = 0; i < 8; ++i) f[i] = to_float(e[i]);
}

// kElems consecutive elements of a K/V cache row in one 16-byte load: 8 of T, or 16 e4m3 codes.
template <typename KV>
struct KvRaw {
  static constexpr int kElems = 8;
  template <typename T>
  __device__ static void unpack(const uint4& raw, float (&f)[kElems]) {
    unpack8<T>(raw, f);
  }
};
template <>
struct KvRaw<uint8_t> {
  static constexpr int kElems = 16;
  template <typename T>
  __device__ static void unpack(const uint4& raw, float (&f)[kElems]) {
    float lo[8], hi[8];
    e4m3x8_to_float(make_uint2(raw.x, raw.y), lo);
    e4m3x8_to_float(make_uint2(raw.z, raw.w), hi);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      f[i] = lo[i];
      f[8 + i] = hi[i];
    }
  }
};

// Merges online-softmax state (m, l, acc) with another one; m in the log2 domain, may be -inf.
template <int N>
__device__ __forceinline__ void merge_state(float& m, float& l, float (&acc)[N], float m2, float l2,
                                            const float (&acc2)[N]) {
  const float mn = fmaxf(m, m2);
  const float mu = mn == -INFINITY ? 0.0f : mn;
  const float c1 = exp2f(m - mu), c2 = exp2f(m2 - mu);
  l = l * c1 + l2 * c2;
#pragma unroll
  for (int i = 0; i < N; ++i) acc[i] = acc[i] * c1 + acc2[i] * c2;
  m = mn;
}

struct DecodeArgs {
  const void* qkv;
  const void* k_cache;
  const void* v_cache;
  void* out;
  float* partial_out;  // [T, Hq, num_splits, D], normalised per split
  float* partial_lse;  // [T, Hq, num_splits], log2 domain
  const int32_t* positions;
  const int32_t* query_start;
  const int32_t* block_tables;
  int num_seqs, max_blocks_per_seq, num_q_heads, num_kv_heads, block_size, num_splits;
  int window;          // sliding window; 0: none
  float scale_log2;    // q is multiplied by it: scale * log2(e), or scale / softcap (kSoftcap)
  float softcap_log2;  // kSoftcap: softcap * log2(e), the factor of tanh(q.k)
};

// Grid: x = token t, y = group of G query heads (h0 = y * G, all sharing KV head h0 / (Hq/Hk)),
// z = chunk of the context. Block: 128 threads; each warp is cut into lane groups of D/E lanes
// (E = 8 dims a lane for a 16-bit cache: 2, 4, 8, 16 lanes for D = 16, 32, 64, 128, i.e. 16, 8,
// 4, 2 keys per warp per step; E = 16 for e4m3, half the lanes), one key row per lane group per
// step, E dims (16 bytes) per lane. Lane group i of the CTA walks
// keys chunk_start + i*U .. +U-1, then strides by (lane groups per CTA) * U; each keeps its own
// online softmax for the G heads, merged across lanes, then warps, at the end.
// The positions walked are the token's visible span (first_visible .. len - 1), cut into chunks.
// q [T, (Hq+2Hk)*D]; k/v cache [blocks, block_size, Hk, D]; out [T, Hq*D].
// The smallest power of two >= v (v >= 1).
constexpr int pow2_ceil(int v) {
  int p = 1;
  while (p < v) p *= 2;
  return p;
}

template <typename T, typename KV, int D, int G, bool kSoftcap>
__global__ void __launch_bounds__(kDecodeThreads) attention_decode_kernel(const DecodeArgs a) {
  constexpr int kE = KvRaw<KV>::kElems;  // dims a lane owns
  // Lanes per key row: D / kE rounded up to a power of two, so the groups tile a warp and the
  // xor shuffles below stay inside a group; with D = 96 the lanes past D / kE idle (kPadded).
  constexpr int kLanesPerKey = pow2_ceil(D / kE);
  constexpr bool kPadded = kLanesPerKey * kE != D;
  static_assert(D % kE == 0 && kLanesPerKey <= 32, "a key row's dims in whole lanes of a warp");
  constexpr int kKeysPerWarp = 32 / kLanesPerKey;
  constexpr int kUnroll = G * kE >= 64 ? 2 : 4;  // keys in flight per lane group
  constexpr int kWarpStride = kKeysPerWarp * kUnroll;
  const int t = blockIdx.x, h0 = blockIdx.y * G, split = blockIdx.z;
  const int len = __ldg(a.positions + t) + 1;
  const int s = seq_of_token(a.query_start, a.num_seqs, t);
  const int begin = first_visible(len, a.window);
  const int chunk = decode_chunk(len - begin, a.num_splits);
  const int start = begin + split * chunk;
  if (start >= len) return;
  const int end = min(len, start + chunk);
  const int kvh = h0 / (a.num_q_heads / a.num_kv_heads);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int sub = lane % kLanesPerKey, key_in_warp = lane / kLanesPerKey;
  const bool owns_dims = !kPadded || sub * kE < D;  // a padding lane: zeros in, nothing out

  const T* q_row = static_cast<const T*>(a.qkv) +
                   static_cast<int64_t>(t) * (a.num_q_heads + 2 * a.num_kv_heads) * D;
  float q[G][kE];
#pragma unroll
  for (int g = 0; g < G; ++g) {
#pragma unroll
    for (int c = 0; c < kE / 8; ++c) {
      const uint4 raw =
          owns_dims ? __ldg(reinterpret_cast<const uint4*>(q_row + (h0 + g) * D + sub * kE + c * 8))
                    : make_uint4(0, 0, 0, 0);
      float part[8];
      unpack8<T>(raw, part);
#pragma unroll
      for (int i = 0; i < 8; ++i) q[g][c * 8 + i] = part[i] * a.scale_log2;
    }
  }
  float m[G], l[G], acc[G][kE];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.0f;
#pragma unroll
    for (int i = 0; i < kE; ++i) acc[g][i] = 0.0f;
  }

  const int32_t* table = a.block_tables + static_cast<int64_t>(s) * a.max_blocks_per_seq;
  const KV* kc = static_cast<const KV*>(a.k_cache);
  const KV* vc = static_cast<const KV*>(a.v_cache);
  const int64_t row_stride = static_cast<int64_t>(a.num_kv_heads) * D;
  const int64_t head_off = static_cast<int64_t>(kvh) * D + sub * kE;
  // One round: kUnroll keys per lane group, K and V rows of each in flight together.
  auto load_round = [&](int base, uint4(&kraw)[kUnroll], uint4(&vraw)[kUnroll]) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int j = base + key_in_warp * kUnroll + u;
      kraw[u] = vraw[u] = make_uint4(0, 0, 0, 0);
      if (j < end && owns_dims) {
        const int64_t slot =
            static_cast<int64_t>(__ldg(table + j / a.block_size)) * a.block_size + j % a.block_size;
        kraw[u] = __ldg(reinterpret_cast<const uint4*>(kc + slot * row_stride + head_off));
        vraw[u] = __ldg(reinterpret_cast<const uint4*>(vc + slot * row_stride + head_off));
      }
    }
  };
  constexpr int kCtaStride = kDecodeWarps * kWarpStride;
  uint4 kraw[kUnroll], vraw[kUnroll];
  load_round(start + warp * kWarpStride, kraw, vraw);
  // The loop bound is warp-uniform so the shuffles below see full warps. The next round's loads
  // are issued before this round's math (software pipelining across rounds).
  for (int base = start + warp * kWarpStride; base < end; base += kCtaStride) {
    uint4 kcur[kUnroll], vcur[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      kcur[u] = kraw[u];
      vcur[u] = vraw[u];
    }
    load_round(base + kCtaStride, kraw, vraw);
    float score[kUnroll][G];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      float kf[kE];
      KvRaw<KV>::template unpack<T>(kcur[u], kf);
#pragma unroll
      for (int g = 0; g < G; ++g) {
        float d = 0.0f;
#pragma unroll
        for (int i = 0; i < kE; ++i) d = fmaf(q[g][i], kf[i], d);
#pragma unroll
        for (int o = kLanesPerKey / 2; o > 0; o >>= 1) d += __shfl_xor_sync(0xffffffffu, d, o);
        if constexpr (kSoftcap) d = a.softcap_log2 * tanhf(d);
        score[u][g] = base + key_in_warp * kUnroll + u < end ? d : -INFINITY;
      }
    }
#pragma unroll
    for (int g = 0; g < G; ++g) {
      float mx = score[0][g];
#pragma unroll
      for (int u = 1; u < kUnroll; ++u) mx = fmaxf(mx, score[u][g]);
      const float mn = fmaxf(m[g], mx);
      const float mu = mn == -INFINITY ? 0.0f : mn;
      const float corr = exp2f(m[g] - mu);
      m[g] = mn;
      l[g] *= corr;
#pragma unroll
      for (int i = 0; i < kE; ++i) acc[g][i] *= corr;
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) score[u][g] = exp2f(score[u][g] - mu);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      float vf[kE];
      KvRaw<KV>::template unpack<T>(vcur[u], vf);
#pragma unroll
      for (int g = 0; g < G; ++g) {
        l[g] += score[u][g];
#pragma unroll
        for (int i = 0; i < kE; ++i) acc[g][i] = fmaf(score[u][g], vf[i], acc[g][i]);
      }
    }
  }

  // Lets the reduce kernel (launched with programmatic stream serialization) start its prologue;
  // its griddepcontrol.wait still waits for this whole grid and its writes.
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");

  // Merge the lane groups of each warp (lanes with equal `sub` hold the same dims).
#pragma unroll
  for (int o = kLanesPerKey; o < 32; o <<= 1) {
#pragma unroll
    for (int g = 0; g < G; ++g) {
      float acc2[kE];
#pragma unroll
      for (int i = 0; i < kE; ++i) acc2[i] = __shfl_xor_sync(0xffffffffu, acc[g][i], o);
      const float m2 = __shfl_xor_sync(0xffffffffu, m[g], o);
      const float l2 = __shfl_xor_sync(0xffffffffu, l[g], o);
      merge_state(m[g], l[g], acc[g], m2, l2, acc2);
    }
  }
  // Merge the warps through shared memory.
  __shared__ float sm_m[kDecodeWarps][G], sm_l[kDecodeWarps][G];
  __shared__ float sm_acc[kDecodeWarps][G][D];
  if (key_in_warp == 0) {
#pragma unroll
    for (int g = 0; g < G; ++g) {
      if (sub == 0) {
        sm_m[warp][g] = m[g];
        sm_l[warp][g] = l[g];
      }
      if (owns_dims) {
#pragma unroll
        for (int i = 0; i < kE; ++i) sm_acc[warp][g][sub * kE + i] = acc[g][i];
      }
    }
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < G * D; idx += kDecodeThreads) {
    const int g = idx / D, dim = idx % D;
    float mx = -INFINITY;
#pragma unroll
    for (int w = 0; w < kDecodeWarps; ++w) mx = fmaxf(mx, sm_m[w][g]);
    float sum = 0.0f, o = 0.0f;
#pragma unroll
    for (int w = 0; w < kDecodeWarps; ++w) {
      const float c = sm_m[w][g] == -INFINITY ? 0.0f : exp2f(sm_m[w][g] - mx);
      sum += sm_l[w][g] * c;
      o += sm_acc[w][g][dim] * c;
    }
    const int h = h0 + g;
    if (a.num_splits == 1) {
      static_cast<T*>(a.out)[(static_cast<int64_t>(t) * a.num_q_heads + h) * D + dim] =
          from_float<T>(o / sum);
    } else {
      const int64_t row = (static_cast<int64_t>(t) * a.num_q_heads + h) * a.num_splits + split;
      a.partial_out[row * D + dim] = o / sum;
      if (dim == 0) a.partial_lse[row] = mx + log2f(sum);
    }
  }
}

// Grid: x = token t, y = query head h. Block: D threads, one output dim each (for D = 16 a
// partial warp; no warp-level primitives are used). Combines the ceil(len / chunk) used splits of
// (t, h): out = sum_s 2^(lse_s - max) o_s / sum_s 2^(lse_s - max).
// The split weights go through shared memory so the partial loads are independent.
template <typename T, int D>
__global__ void __launch_bounds__(D) attention_reduce_kernel(const DecodeArgs a) {
  __shared__ float sm_w[kMaxSplits];
  const int t = blockIdx.x, h = blockIdx.y, dim = threadIdx.x;
  const int len = __ldg(a.positions + t) + 1;
  const int span = len - first_visible(len, a.window);
  const int chunk = decode_chunk(span, a.num_splits);
  const int used = (span + chunk - 1) / chunk;
  const int64_t row = (static_cast<int64_t>(t) * a.num_q_heads + h) * a.num_splits;
  asm volatile("griddepcontrol.wait;" ::: "memory");  // partials of the decode grid are visible
  if constexpr (D >= kMaxSplits) {
    // One thread per split loads the log-sum-exps.
    if (dim < kMaxSplits) sm_w[dim] = dim < used ? a.partial_lse[row + dim] : -INFINITY;
  } else {
    // Fewer threads than splits (D = 16, 32): each loads kMaxSplits / D of them.
    static_assert(kMaxSplits % D == 0);
#pragma unroll
    for (int i = dim; i < kMaxSplits; i += D)
      sm_w[i] = i < used ? a.partial_lse[row + i] : -INFINITY;
  }
  __syncthreads();
  float mx = -INFINITY;
  for (int i = 0; i < used; ++i) mx = fmaxf(mx, sm_w[i]);
  float sum = 0.0f, o = 0.0f;
#pragma unroll 8
  for (int i = 0; i < used; ++i) {
    const float w = exp2f(sm_w[i] - mx);
    sum += w;
    o += w * a.partial_out[(row + i) * D + dim];
  }
  static_cast<T*>(a.out)[(static_cast<int64_t>(t) * a.num_q_heads + h) * D + dim] =
      from_float<T>(o / sum);
}

template <typename T, typename KV, int D, int G, bool kSoftcap>
void launch_decode_group(const DecodeArgs& a, int num_tokens, cudaStream_t stream) {
  const dim3 grid(num_tokens, a.num_q_heads / G, a.num_splits);
  attention_decode_kernel<T, KV, D, G, kSoftcap><<<grid, kDecodeThreads, 0, stream>>>(a);
}

template <typename T, typename KV, int D, bool kSoftcap>
cudaError_t launch_decode(const DecodeArgs& a, int num_tokens, cudaStream_t stream) {
  // Largest supported head group dividing Hq/Hk, so each CTA's heads share one KV head.
  const int group = a.num_q_heads / a.num_kv_heads;
  if (group % 8 == 0)
    launch_decode_group<T, KV, D, 8, kSoftcap>(a, num_tokens, stream);
  else if (group % 4 == 0)
    launch_decode_group<T, KV, D, 4, kSoftcap>(a, num_tokens, stream);
  else if (group % 2 == 0)
    launch_decode_group<T, KV, D, 2, kSoftcap>(a, num_tokens, stream);
  else
    launch_decode_group<T, KV, D, 1, kSoftcap>(a, num_tokens, stream);
  if (a.num_splits == 1) return cudaGetLastError();
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(num_tokens, a.num_q_heads);
  config.blockDim = dim3(D);
  config.stream = stream;
  config.attrs = &attr;
  config.numAttrs = 1;
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  return cudaLaunchKernelEx(&config, attention_reduce_kernel<T, D>, a);
}

template <typename T, typename KV, bool kSoftcap>
cudaError_t launch_decode_dims(const DecodeArgs& a, int head_dim, int num_tokens,
                               cudaStream_t stream) {
  switch (head_dim) {
    case 16:
      return launch_decode<T, KV, 16, kSoftcap>(a, num_tokens, stream);
    case 32:
      return launch_decode<T, KV, 32, kSoftcap>(a, num_tokens, stream);
    case 64:
      return launch_decode<T, KV, 64, kSoftcap>(a, num_tokens, stream);
    case 96:
      return launch_decode<T, KV, 96, kSoftcap>(a, num_tokens, stream);
    case 128:
      return launch_decode<T, KV, 128, kSoftcap>(a, num_tokens, stream);
    case 256:
      return launch_decode<T, KV, 256, kSoftcap>(a, num_tokens, stream);
    default:
      return cudaErrorInvalidValue;
  }
}

template <typename T, typename KV>
cudaError_t launch_decode_variant(const DecodeArgs& a, bool softcap, int head_dim, int num_tokens,
                                  cudaStream_t stream) {
  return softcap ? launch_decode_dims<T, KV, true>(a, head_dim, num_tokens, stream)
                 : launch_decode_dims<T, KV, false>(a, head_dim, num_tokens, stream);
}

// Decode of tokens [0, p.num_tokens), split as a batch of `split_tokens` tokens would be (the
// whole batch's count when the decodes lead a mixed batch: never more splits than the workspace,
// sized for the whole batch, holds).
cudaError_t attention_decode(const AttentionParams& p, int32_t split_tokens, cudaStream_t stream) {
  // A window bounds the positions a token reads, so it bounds the useful splits too (never more
  // than attention_workspace_bytes sized from max_context_len).
  const int32_t span = p.window > 0 ? std::min(p.max_context_len, p.window) : p.max_context_len;
  const int splits = decode_num_splits(split_tokens, p.num_q_heads, span);
  const size_t needed = splits <= 1 ? 0
                                    : static_cast<size_t>(p.num_tokens) * p.num_q_heads * splits *
                                          (p.head_dim + 1) * sizeof(float);
  if (p.workspace_bytes < needed) return cudaErrorInvalidValue;
  DecodeArgs a{};
  a.qkv = p.qkv;
  a.k_cache = p.k_cache;
  a.v_cache = p.v_cache;
  a.out = p.out;
  a.partial_out = static_cast<float*>(p.workspace);
  a.partial_lse = splits > 1 ? a.partial_out + static_cast<int64_t>(p.num_tokens) * p.num_q_heads *
                                                   splits * p.head_dim
                             : nullptr;
  a.positions = p.positions;
  a.query_start = p.query_start;
  a.block_tables = p.block_tables;
  a.num_seqs = p.num_seqs;
  a.max_blocks_per_seq = p.max_blocks_per_seq;
  a.num_q_heads = p.num_q_heads;
  a.num_kv_heads = p.num_kv_heads;
  a.block_size = p.block_size;
  a.num_splits = splits;
  a.window = p.window;
  const bool softcap = p.softcap > 0;
  a.scale_log2 = softcap ? p.scale / p.softcap : p.scale * kLog2e;
  a.softcap_log2 = softcap ? p.softcap * kLog2e : 0.0f;
  cudaError_t err = cudaSuccess;
  const cudaError_t dtype_err = dispatch_dtype(p.dtype, [&]<typename T>() {
    if constexpr (std::is_same_v<T, float>) {
      err = cudaErrorInvalidValue;
    } else {
      err = p.kv_fp8
                ? launch_decode_variant<T, uint8_t>(a, softcap, p.head_dim, p.num_tokens, stream)
                : launch_decode_variant<T, T>(a, softcap, p.head_dim, p.num_tokens, stream);
    }
  });
  return dtype_err != cudaSuccess ? dtype_err : err;
}

}  // namespace

size_t attention_workspace_bytes(int32_t num_tokens, int32_t /*num_seqs*/, int32_t num_q_heads,
                                 int32_t head_dim, int32_t max_context_len) {
  const int splits = decode_num_splits(num_tokens, num_q_heads, max_context_len);
  if (splits <= 1) return 0;
  return static_cast<size_t>(num_tokens) * num_q_heads * splits * (head_dim + 1) * sizeof(float);
}

cudaError_t launch_attention(const AttentionParams& p, cudaStream_t stream) {
  if (p.head_dim != 16 && p.head_dim != 32 && p.head_dim != 64 && p.head_dim != 96 &&
      p.head_dim != 128 && p.head_dim != 256) {
    return cudaErrorInvalidValue;  // the only instantiated head dims (256: decode kernel only)
  }
  if (p.dtype != DType::kF16 && p.dtype != DType::kBF16) return cudaErrorInvalidValue;
  if (p.num_q_heads <= 0 || p.num_kv_heads <= 0 || p.num_q_heads % p.num_kv_heads != 0 ||
      p.block_size <= 0 || p.num_tokens < 0 || p.num_seqs < 0 || p.window < 0 ||
      !(p.softcap >= 0.0f)) {
    return cudaErrorInvalidValue;
  }
  if (p.num_tokens == 0 || p.num_seqs == 0) return cudaSuccess;
  if (p.max_query_len <= 1 || p.head_dim == 256) return attention_decode(p, p.num_tokens, stream);
  if (p.num_leading_decodes < 0 || p.num_leading_decodes > p.num_seqs ||
      p.num_leading_decodes > p.num_tokens) {
    return cudaErrorInvalidValue;
  }
  if (p.num_leading_decodes > 0) {  // mixed batch: decodes first, on the decode kernel
    AttentionParams d = p;
    d.num_tokens = p.num_leading_decodes;
    d.max_query_len = 1;
    const cudaError_t err = attention_decode(d, p.num_tokens, stream);
    if (err != cudaSuccess || p.num_leading_decodes == p.num_seqs) return err;
  }
  return launch_attention_prefill(p, stream);
}

}  // namespace llmserve::cuda
