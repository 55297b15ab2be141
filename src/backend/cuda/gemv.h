// Small-batch GEMMs for decode steps: out[M, N] = act(x[M, K] @ w[N, K]^T + bias) with 16-bit
// weights (gemv.cu), with int8 weights scaled per output row (gemv_q8.cu), and fp8 W8A8 on the
// tensor cores (gemv_fp8.cu).
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "common/dtype.h"

namespace llmserve::cuda {

constexpr int32_t kGemvMaxRows = 4;
constexpr int kGemvWarps = 8;  // warps per block of both kernels

struct GemvArgs {
  DType dtype = DType::kF16;      // of x, w and bias: kF16 or kBF16
  DType out_dtype = DType::kF16;  // dtype or kF32 (logits)
  const void* x = nullptr;        // [M, K]
  const void* w = nullptr;        // [N, K]
  const void* bias = nullptr;     // [N] or null
  void* out = nullptr;            // [M, N]
  int32_t m = 0, n = 0, k = 0;
  bool gelu = false;  // apply gelu_tanh after the bias
};

// Whether launch_gemv handles these arguments (M <= kGemvMaxRows, K % 8 == 0, 16-byte aligned
// x and w, 16-bit inputs).
bool gemv_supports(const GemvArgs& a);
cudaError_t launch_gemv(const GemvArgs& a, cudaStream_t stream);

// Warps per output column for N columns of `chunks_per_row` 16-byte chunks: the smallest power
// of two up to kGemvWarps giving ~64 resident warps per SM (LLMSERVE_GEMV_SPLIT overrides).
int gemv_warps_per_column(int32_t n, int32_t chunks_per_row);

// int8 weight-only: out[M, N] = (x[M, K] @ q[N, K]^T) * scales[N] (+ bias[N]).
struct GemvQ8Args {
  DType dtype = DType::kF16;      // of x and bias: kF16 or kBF16
  DType out_dtype = DType::kF16;  // dtype or kF32
  const void* x = nullptr;        // [M, K]
  const int8_t* w = nullptr;      // [N, K]
  const float* scales = nullptr;  // [N]
  const void* bias = nullptr;     // [N] or null
  void* out = nullptr;            // [M, N]
  int32_t m = 0, n = 0, k = 0;
};

// Whether launch_gemv_q8 handles these arguments (M <= kGemvMaxRows, K % 16 == 0, 16-byte
// aligned x and w, 16-bit x).
bool gemv_q8_supports(const GemvQ8Args& a);
cudaError_t launch_gemv_q8(const GemvQ8Args& a, cudaStream_t stream);

// fp8 W8A8 (Backend::matmul_fp8): out[M, N] = (q(x)[M, K] @ q(w)[N, K]^T) * x_scales[M] *
// w_scales[N] (+ bias[N]), e4m3 codes, fp32 scales.
constexpr int32_t kGemvFp8MaxRows = 8;
struct GemvFp8Args {
  DType dtype = DType::kBF16;       // of bias and out: kF16 or kBF16
  const void* x = nullptr;          // [M, K] e4m3
  const float* x_scales = nullptr;  // [M]
  const void* w = nullptr;          // [N, K] e4m3
  const float* w_scales = nullptr;  // [N]
  const void* bias = nullptr;       // [N] or null
  void* out = nullptr;              // [M, N]
  int32_t m = 0, n = 0, k = 0;
};

// Whether launch_gemv_fp8 handles these arguments (M <= kGemvFp8MaxRows, K % 32 == 0,
// N % 16 == 0, 16-byte aligned x and w).
bool gemv_fp8_supports(const GemvFp8Args& a);
cudaError_t launch_gemv_fp8(const GemvFp8Args& a, cudaStream_t stream);

}  // namespace llmserve::cuda
