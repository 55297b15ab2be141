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
__global__ void argmax_rows_kernel(const float* __restrict__ logits, int32_t vocab, int32_t* __restrict__ out) {
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
