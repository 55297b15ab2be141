// Device helpers of the GEMV kernels. The two on the CUDA cores (gemv.cu: 16-bit weights,
// gemv_q8.cu: int8 weights) share their grid mapping: x staged in shared memory once per block,
// and the sums of a column's `split` warps (one per part of the row) met in shared memory.
#pragma once

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/gemv.h"

namespace llmserve::cuda {

__device__ __forceinline__ float gelu_tanh(float x) {
  const float k0 = 0.7978845608028654f, k1 = 0.044715f;
  return 0.5f * x * (1.0f + tanhf(k0 * (x + k1 * x * x * x)));
}

constexpr int kGemvSmemXBytes = 48 * 1024;  // x is staged in shared memory up to this size

// x [rows, k] (k % 8 == 0) as 16-byte vectors: copied into the block's dynamic shared memory
// `smem` (rows * k * sizeof(T) bytes) when `stage`, else read where it is. Every thread calls it.
template <typename T>
__device__ __forceinline__ const Vec8<T>* stage_gemv_x(const T* x, int rows, int k, bool stage,
                                                       unsigned char* smem) {
  const auto* xs = reinterpret_cast<const Vec8<T>*>(x);
  if (!stage) return xs;
  auto* sx = reinterpret_cast<Vec8<T>*>(smem);
  for (int i = threadIdx.x; i < rows * (k / 8); i += blockDim.x) sx[i] = xs[i];
  __syncthreads();
  return sx;
}

// acc[m]: this lane's share of the column's sum for row m. Afterwards part 0's warp holds the
// column's totals (every lane). partial: shared [kGemvWarps][M]. Every thread of the block calls
// it (it has barriers when split > 1, the second one before partial is reused).
template <int M>
__device__ __forceinline__ void sum_gemv_parts(float (&acc)[M], float (*partial)[M], int warp,
                                               int lane, int part, int split) {
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = warp_sum(acc[m]);
  if (split > 1) {
    if (lane == 0) {
#pragma unroll
      for (int m = 0; m < M; ++m) partial[warp][m] = acc[m];
    }
    __syncthreads();
    if (part == 0) {
#pragma unroll
      for (int m = 0; m < M; ++m) {
        for (int p = 1; p < split; ++p) acc[m] += partial[warp + p][m];
      }
    }
    __syncthreads();
  }
}

}  // namespace llmserve::cuda
