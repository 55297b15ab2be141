// Greedy sampling on the GPU: the index of the largest logit of each row, so a greedy decode
// step copies L token ids to the host instead of L x vocab floats. Ties go to the lowest index,
// as the host sampler's argmax does.
//
// Grid mapping: one block of 512 threads per row; each thread scans a strided slice with
// 16-byte loads, then a shared-memory tree reduction of (value, index) pairs.
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/kernels.h"

namespace llmserve::cuda {
namespace {

constexpr int kThreads = 512;

__device__ __forceinline__ void better(float& best, int32_t& at, float v, int32_t i) {
  if (v > best || (v == best && i < at)) {
    best = v;
    at = i;
  }
}

// grid (L), block (512).
__global__ void argmax_rows_kernel(const float* __restrict__ logits, int32_t vocab,
                                   int32_t* __restrict__ out) {
  pdl_wait();
  pdl_trigger();
  __shared__ float s_val[kThreads];
  __shared__ int32_t s_idx[kThreads];
  const float* row = logits + static_cast<int64_t>(blockIdx.x) * vocab;
  float best = -INFINITY;
  int32_t at = INT32_MAX;
  // Vector part: rows start 16-byte aligned only when vocab % 4 == 0.
  const bool vec = (vocab % 4 == 0);
  const int32_t vec_end = vec ? vocab : 0;
  for (int32_t i = threadIdx.x * 4; i < vec_end; i += kThreads * 4) {
    const float4 v = *reinterpret_cast<const float4*>(row + i);
    better(best, at, v.x, i);
    better(best, at, v.y, i + 1);
    better(best, at, v.z, i + 2);
    better(best, at, v.w, i + 3);
  }
  for (int32_t i = vec_end + threadIdx.x; i < vocab; i += kThreads) better(best, at, row[i], i);
  s_val[threadIdx.x] = best;
  s_idx[threadIdx.x] = at;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      float b = s_val[threadIdx.x];
      int32_t a = s_idx[threadIdx.x];
      better(b, a, s_val[threadIdx.x + s], s_idx[threadIdx.x + s]);
      s_val[threadIdx.x] = b;
      s_idx[threadIdx.x] = a;
    }
    __syncthreads();
  }
  // A row of NaN / -inf only: token 0, like no candidate at all; the host path reports that
  // case, the engine never sends such rows here (masks are host-side).
  if (threadIdx.x == 0) out[blockIdx.x] = s_idx[0] == INT32_MAX ? 0 : s_idx[0];
}

}  // namespace

cudaError_t launch_argmax_rows(const float* logits, int32_t num_rows, int32_t vocab, int32_t* out,
                               cudaStream_t stream) {
  if (num_rows == 0) return cudaSuccess;
  launch(argmax_rows_kernel, num_rows, kThreads, 0, stream, logits, vocab, out);
  return cudaGetLastError();
}

}  // namespace llmserve::cuda

// ---------------------------------------------------------------------------------------------
// Random sampling on the GPU, the host sampler's rules (src/engine/sampler.cpp): token
// adjustments (min-token masks, repetition / frequency / presence penalties), then rule 5 as
// thresholds: s = logits / T; top-k keeps s >= the k-th largest s; weights e = exp(s - max s);
// top-p keeps the heaviest e whose mass reaches top_p of the top-k mass; min-p keeps e >= min_p;
// then the token where the running sum of kept weights, in id order, first exceeds u * total.
// Thresholds are found by radix selection over the bit patterns of s (order-preserving key) and of
// e (positive floats order as their bits), one counting pass per bit; ties at a threshold keep
// every tied token (the host keeps the lowest ids), the only place the two may differ besides
// rounding at the draw's boundary.
//
// Grid mapping: one block of 1024 threads per row; the row is rewritten in place (s, then e).
namespace llmserve::cuda {
namespace {

constexpr int kSampleThreads = 1024;

__device__ __forceinline__ uint32_t order_key(float f) {  // monotone float -> uint
  const uint32_t b = __float_as_uint(f);
  return (b & 0x80000000u) != 0 ? ~b : (b | 0x80000000u);
}
__device__ __forceinline__ float from_order_key(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) != 0 ? (k & 0x7fffffffu) : ~k);
}

template <typename V>
__device__ V block_reduce_sum(V v, V* scratch) {
  __syncthreads();
  scratch[threadIdx.x] = v;
  __syncthreads();
  for (int s = kSampleThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) scratch[threadIdx.x] += scratch[threadIdx.x + s];
    __syncthreads();
  }
  return scratch[0];
}

__device__ float block_reduce_max(float v, float* scratch) {
  __syncthreads();
  scratch[threadIdx.x] = v;
  __syncthreads();
  for (int s = kSampleThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s)
      scratch[threadIdx.x] = fmaxf(scratch[threadIdx.x], scratch[threadIdx.x + s]);
    __syncthreads();
  }
  return scratch[0];
}

// grid (L), block (1024).
__global__ void sample_rows_kernel(float* __restrict__ logits, int32_t vocab,
                                   const RowSampling* __restrict__ rows,
                                   const TokenAdjustment* __restrict__ adjustments,
                                   int32_t* __restrict__ out) {
  pdl_wait();
  pdl_trigger();
  __shared__ double dscratch[kSampleThreads];
  float* fscratch = reinterpret_cast<float*>(dscratch);
  float* x = logits + static_cast<int64_t>(blockIdx.x) * vocab;
  const RowSampling p = rows[blockIdx.x];
  const int tid = threadIdx.x;

  // Token adjustments first (the host's rules 2 and 3): masks, then the penalties; each token
  // appears once per row, so threads never touch the same logit.
  for (int32_t j = tid; j < p.num_adjustments; j += kSampleThreads) {
    const TokenAdjustment a = adjustments[p.first_adjustment + j];
    if (a.token < 0 || a.token >= vocab) continue;
    float l = x[a.token] + a.bias;
    if ((a.flags & TokenAdjustment::kMasked) != 0) {
      l = -INFINITY;
    } else {
      const bool seen = (a.flags & TokenAdjustment::kInPrompt) != 0 || a.output_count > 0;
      if (p.repetition_penalty != 1.0f && seen)
        l = l > 0.0f ? l / p.repetition_penalty : l * p.repetition_penalty;
      l -= static_cast<float>(a.output_count) * p.frequency_penalty;
      if (a.output_count > 0) l -= p.presence_penalty;
    }
    x[a.token] = l;
  }
  __syncthreads();

  if (p.temperature == 0.0f) {  // greedy row: the lowest id among the largest logits
    float best = -INFINITY;
    int32_t at = INT32_MAX;
    for (int32_t i = tid; i < vocab; i += kSampleThreads) {
      if (x[i] > best) {
        best = x[i];
        at = i;
      }
    }
    const float m = block_reduce_max(best, fscratch);
    __syncthreads();
    auto* iscratch = reinterpret_cast<int32_t*>(dscratch);
    iscratch[tid] = best == m ? at : INT32_MAX;
    __syncthreads();
    for (int s = kSampleThreads / 2; s > 0; s >>= 1) {
      if (tid < s) iscratch[tid] = min(iscratch[tid], iscratch[tid + s]);
      __syncthreads();
    }
    if (tid == 0) out[blockIdx.x] = iscratch[0] == INT32_MAX ? 0 : iscratch[0];
    return;
  }

  // s = logits / T, and its maximum.
  const float inv_t = 1.0f / p.temperature;
  float local_max = -INFINITY;
  for (int32_t i = tid; i < vocab; i += kSampleThreads) {
    const float s = x[i] * inv_t;
    x[i] = s;
    local_max = fmaxf(local_max, s);
  }
  const float smax = block_reduce_max(local_max, fscratch);

  // Top-k: the largest key t with count(key(s) >= t) >= k, built from the most significant bit.
  uint32_t tk = 0;  // key 0: keeps everything
  if (p.top_k > 0 && p.top_k < vocab) {
    for (int bit = 31; bit >= 0; --bit) {
      const uint32_t candidate = tk | (1u << bit);
      int32_t count = 0;
      for (int32_t i = tid; i < vocab; i += kSampleThreads) count += order_key(x[i]) >= candidate;
      const int32_t total =
          static_cast<int32_t>(block_reduce_sum(static_cast<double>(count), dscratch));
      if (total >= p.top_k) tk = candidate;
    }
  }
  // Weights of the top-k survivors, in place.
  double mass = 0.0;
  for (int32_t i = tid; i < vocab; i += kSampleThreads) {
    const float e = order_key(x[i]) >= tk ? __expf(x[i] - smax) : 0.0f;
    x[i] = e;
    mass += e;
  }
  const double total = block_reduce_sum(mass, dscratch);

  // Top-p: the largest weight w with mass(e >= w) >= top_p * total (positive floats order as
  // their bits). Min-p: e >= min_p (the largest weight is 1).
  uint32_t tw = 0;
  if (p.top_p < 1.0f) {
    const double target = static_cast<double>(p.top_p) * total;
    for (int bit = 30; bit >= 0; --bit) {
      const uint32_t candidate = tw | (1u << bit);
      const float w = __uint_as_float(candidate);
      double m = 0.0;
      for (int32_t i = tid; i < vocab; i += kSampleThreads) m += x[i] >= w ? x[i] : 0.0f;
      if (block_reduce_sum(m, dscratch) >= target) tw = candidate;
    }
  }
  float keep = __uint_as_float(tw);
  if (p.min_p > 0.0f) keep = fmaxf(keep, p.min_p);

  // The draw, in id order: each thread owns a contiguous chunk; an exclusive scan of the chunk
  // sums finds the chunk holding u * total, whose thread walks it.
  const int32_t chunk = (vocab + kSampleThreads - 1) / kSampleThreads;
  const int32_t begin = min(vocab, tid * chunk), end = min(vocab, begin + chunk);
  double sum = 0.0;
  int32_t last_positive = -1;
  for (int32_t i = begin; i < end; ++i) {
    if (x[i] >= keep && x[i] > 0.0f) {
      sum += x[i];
      last_positive = i;
    }
  }
  __syncthreads();
  dscratch[tid] = sum;
  __syncthreads();
  for (int offset = 1; offset < kSampleThreads; offset <<= 1) {  // inclusive Hillis-Steele scan
    const double add = tid >= offset ? dscratch[tid - offset] : 0.0;
    __syncthreads();
    dscratch[tid] += add;
    __syncthreads();
  }
  const double kept_total = dscratch[kSampleThreads - 1];
  const double target = p.uniform * kept_total;
  const double before = dscratch[tid] - sum;
  __shared__ int32_t chosen;
  __shared__ int32_t last_any;
  if (tid == 0) {
    chosen = -1;
    last_any = -1;
  }
  __syncthreads();
  if (last_positive >= 0) atomicMax(&last_any, last_positive);
  if (sum > 0.0 && before <= target && target < before + sum) {
    double cumulative = before;
    for (int32_t i = begin; i < end; ++i) {
      if (x[i] >= keep && x[i] > 0.0f) {
        cumulative += x[i];
        if (cumulative > target) {
          chosen = i;
          break;
        }
      }
    }
  }
  __syncthreads();
  // u * total can round up to the whole sum: the last token with weight takes the draw.
  if (tid == 0) out[blockIdx.x] = chosen >= 0 ? chosen : max(last_any, 0);
}

}  // namespace

cudaError_t launch_sample_rows(float* logits, int32_t num_rows, int32_t vocab,
                               const RowSampling* rows, const TokenAdjustment* adjustments,
                               int32_t* out, cudaStream_t stream) {
  if (num_rows == 0) return cudaSuccess;
  launch(sample_rows_kernel, dim3(num_rows), dim3(kSampleThreads), 0, stream, logits, vocab, rows,
         adjustments, out);
  return cudaGetLastError();
}

}  // namespace llmserve::cuda
