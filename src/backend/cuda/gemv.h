// Small-batch GEMM for decode steps (see gemv.cu): out[M, N] = act(x[M, K] @ w[N, K]^T + bias).
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "common/dtype.h"

namespace llmserve::cuda {

constexpr int32_t kGemvMaxRows = 4;

struct GemvArgs {
  DType dtype = DType::kF16;      // of x, w and bias: kF16 or kBF16
  DType out_dtype = DType::kF16;  // dtype or kF32 (logits)
  const void* x = nullptr;        // [M, K]
  const void* w = nullptr;        // [N, K]
  const void* bias = nullptr;     // [N] or null
  void* out = nullptr;            // [M, N]
  int32_t m = 0, n = 0, k = 0;
  bool gelu = false;              // apply gelu_tanh after the bias
};

// Whether launch_gemv handles these arguments (M <= kGemvMaxRows, K % 8 == 0, 16-byte aligned
// x and w, 16-bit inputs).
bool gemv_supports(const GemvArgs& a);
cudaError_t launch_gemv(const GemvArgs& a, cudaStream_t stream);

}  // namespace llmserve::cuda
