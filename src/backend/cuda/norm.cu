// LayerNorm and RMSNorm, each fused with the residual add that precedes it in a pre-norm decoder:
//   residual += x (when x is given); out = norm(residual) * w (+ b).
// Grid mapping: one block of 256 threads per token row; statistics in fp32 over the row, which is
// read from global memory once per pass (the second pass hits L1/L2).
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/kernels.h"

namespace llmserve::cuda {
namespace {

constexpr int kThreads = 256;

// grid (T), block (256).
template <typename T>
__global__ void add_layer_norm_kernel(T* __restrict__ residual, const T* __restrict__ x, const T* __restrict__ w,
                                      const T* __restrict__ b, float eps, int32_t dim, T* __restrict__ out) {
  pdl_wait();
  pdl_trigger();
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  T* r = residual + row * dim;
  float sum = 0.0f;
  for (int32_t i = threadIdx.x; i < dim; i += blockDim.x) {
    float v = to_float(r[i]);
    if (x != nullptr) {
      v += to_float(x[row * dim + i]);
      r[i] = from_float<T>(v);
      v = to_float(r[i]);  // normalise what was stored, as the unfused add then norm would
    }
    sum += v;
  }
  const float mean = block_sum(sum, scratch) / static_cast<float>(dim);
  float var = 0.0f;
  for (int32_t i = threadIdx.x; i < dim; i += blockDim.x) {
    const float c = to_float(r[i]) - mean;
    var += c * c;
  }
  const float inv = rsqrtf(block_sum(var, scratch) / static_cast<float>(dim) + eps);
  for (int32_t i = threadIdx.x; i < dim; i += blockDim.x) {
    float v = (to_float(r[i]) - mean) * inv * to_float(w[i]);
    if (b != nullptr) v += to_float(b[i]);
    out[row * dim + i] = from_float<T>(v);
  }
}

// grid (T), block (256).
template <typename T>
__global__ void add_rms_norm_kernel(T* __restrict__ residual, const T* __restrict__ x, const T* __restrict__ w,
                                    float eps, int32_t dim, T* __restrict__ out) {
  pdl_wait();
  pdl_trigger();
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  T* r = residual + row * dim;
  float sq = 0.0f;
  for (int32_t i = threadIdx.x; i < dim; i += blockDim.x) {
    float v = to_float(r[i]);
    if (x != nullptr) {
      v += to_float(x[row * dim + i]);
      r[i] = from_float<T>(v);
      v = to_float(r[i]);
    }
    sq += v * v;
  }
  const float inv = rsqrtf(block_sum(sq, scratch) / static_cast<float>(dim) + eps);
  for (int32_t i = threadIdx.x; i < dim; i += blockDim.x) {
    out[row * dim + i] = from_float<T>(to_float(r[i]) * inv * to_float(w[i]));
  }
}

}  // namespace

cudaError_t launch_add_layer_norm(DType dtype, void* residual, const void* x, const void* w, const void* b,
                                  float eps, int32_t num_tokens, int32_t dim, void* out, cudaStream_t stream) {
  if (num_tokens == 0) return cudaSuccess;
  cudaError_t e = dispatch_dtype(dtype, [&]<typename T>() {
    launch(add_layer_norm_kernel<T>, num_tokens, kThreads, 0, stream, 
        static_cast<T*>(residual), static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(b),
        eps, dim, static_cast<T*>(out));
  });
  return e != cudaSuccess ? e : cudaGetLastError();
}

cudaError_t launch_add_rms_norm(DType dtype, void* residual, const void* x, const void* w, float eps,
                                int32_t num_tokens, int32_t dim, void* out, cudaStream_t stream) {
  if (num_tokens == 0) return cudaSuccess;
  cudaError_t e = dispatch_dtype(dtype, [&]<typename T>() {
    launch(add_rms_norm_kernel<T>, num_tokens, kThreads, 0, stream, static_cast<T*>(residual),
                                                              static_cast<const T*>(x), static_cast<const T*>(w),
                                                              eps, dim, static_cast<T*>(out));
  });
  return e != cudaSuccess ? e : cudaGetLastError();
}

}  // namespace llmserve::cuda
