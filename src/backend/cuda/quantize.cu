// Quantization kernels of the CUDA backend: int8 weight rows dequantized to the activation dtype
// (matmul_q8 above kGemvMaxRows rows, ahead of a cuBLASLt GEMM). Nothing here allocates or
// synchronises, so a step using them can be captured in a CUDA graph.
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/kernels.h"

#include <algorithm>
#include <cstdint>

namespace llmserve::cuda {
namespace {

constexpr int kThreads = 256;

// One thread per group of 16 weights of a row, rows * ceil(K / 16) threads in blocks of kThreads:
// q [rows, K] int8, scales fp32 [rows], out [rows, K] T, out = q * scale rounded to T once.
// kVector (K % 16 == 0, q and out 16-byte aligned): one 16-byte load, two 16-byte stores;
// otherwise element by element.
template <typename T, bool kVector>
__global__ void dequantize_rows_int8_kernel(const int8_t* __restrict__ q, const float* __restrict__ scales,
                                            int32_t rows, int32_t k, T* __restrict__ out) {
  pdl_wait();
  pdl_trigger();
  const int64_t groups_per_row = (k + 15) / 16;
  const int64_t g = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (g >= rows * groups_per_row) return;
  const int64_t row = g / groups_per_row;
  const int64_t k0 = (g % groups_per_row) * 16;
  const float s = scales[row];
  const int64_t at = row * k + k0;
  if constexpr (kVector) {
    const int4 packed = __ldcs(reinterpret_cast<const int4*>(q + at));
    const auto* bytes = reinterpret_cast<const int8_t*>(&packed);
    Vec8<T> lo, hi;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      lo.v[j] = from_float<T>(static_cast<float>(bytes[j]) * s);
      hi.v[j] = from_float<T>(static_cast<float>(bytes[8 + j]) * s);
    }
    auto* dst = reinterpret_cast<Vec8<T>*>(out + at);
    dst[0] = lo;
    dst[1] = hi;
  } else {
    const int64_t count = k - k0 < 16 ? k - k0 : 16;
    for (int64_t j = 0; j < count; ++j) out[at + j] = from_float<T>(static_cast<float>(q[at + j]) * s);
  }
}

unsigned blocks_for(int64_t threads) { return static_cast<unsigned>(std::max<int64_t>(1, (threads + kThreads - 1) / kThreads)); }

}  // namespace

cudaError_t launch_dequantize_rows_int8(DType dtype, const int8_t* q, const float* scales, int32_t rows, int32_t k,
                                        void* out, cudaStream_t stream) {
  if (rows == 0 || k == 0) return cudaSuccess;
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  const bool vector = k % 16 == 0 && aligned(q) && aligned(out);
  const int64_t groups = static_cast<int64_t>(rows) * ((k + 15) / 16);
  cudaError_t launched = cudaSuccess;
  const cudaError_t e = dispatch_dtype(dtype, [&]<typename T>() {
    auto* kernel = vector ? dequantize_rows_int8_kernel<T, true> : dequantize_rows_int8_kernel<T, false>;
    launched = launch(kernel, dim3(blocks_for(groups)), dim3(kThreads), 0, stream, q, scales, rows, k,
                      static_cast<T*>(out));
  });
  return e != cudaSuccess ? e : launched;
}

}  // namespace llmserve::cuda
