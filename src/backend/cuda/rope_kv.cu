// Rotary position embedding (in place on the fused QKV activation) and the paged KV-cache write.
// Grid mapping: one block per token; threads stride over (head, pair) for RoPE and over the
// Hk*d key/value elements for the cache write.
#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/kernels.h"

namespace llmserve::cuda {
namespace {

constexpr int kThreads = 256;

// grid (T), block (256): for each of the Hq + Hk rotated heads and each pair i < d/2:
//   (x_i, x_{i+d/2}) <- (x_i cos - x_{i+d/2} sin, x_{i+d/2} cos + x_i sin).
template <typename T>
__global__ void rope_kernel(T* __restrict__ qkv, const float* __restrict__ table, const int32_t* __restrict__ positions,
                            int32_t rotated_heads, int32_t row_heads, int32_t head_dim) {
  pdl_wait();
  pdl_trigger();
  const int64_t t = blockIdx.x;
  const int32_t half = head_dim / 2;
  const float* cs = table + static_cast<int64_t>(positions[t]) * head_dim;
  T* row = qkv + t * row_heads * head_dim;
  for (int32_t k = threadIdx.x; k < rotated_heads * half; k += blockDim.x) {
    const int32_t h = k / half, i = k % half;
    T* x = row + h * head_dim;
    const float c = cs[i], s = cs[half + i];
    const float a = to_float(x[i]), b = to_float(x[i + half]);
    x[i] = from_float<T>(a * c - b * s);
    x[i + half] = from_float<T>(b * c + a * s);
  }
}

// grid (T), block (256): k_cache[slot] = qkv[t, Hq:Hq+Hk], v_cache[slot] = qkv[t, Hq+Hk:].
template <typename T>
__global__ void write_kv_kernel(const T* __restrict__ qkv, const int32_t* __restrict__ slot_mapping, int32_t num_q_heads,
                                int32_t num_kv_heads, int32_t head_dim, T* __restrict__ k_cache, T* __restrict__ v_cache) {
  pdl_wait();
  pdl_trigger();
  const int64_t t = blockIdx.x;
  const int64_t kv = static_cast<int64_t>(num_kv_heads) * head_dim;
  const T* k = qkv + t * (num_q_heads + 2 * num_kv_heads) * head_dim + num_q_heads * head_dim;
  const T* v = k + kv;
  const int64_t slot = slot_mapping[t];
  for (int64_t i = threadIdx.x; i < kv; i += blockDim.x) {
    k_cache[slot * kv + i] = k[i];
    v_cache[slot * kv + i] = v[i];
  }
}

}  // namespace

cudaError_t launch_rope(DType dtype, void* qkv, const float* rope_table, const int32_t* positions,
                        int32_t num_tokens, int32_t num_q_heads, int32_t num_kv_heads, int32_t head_dim,
                        cudaStream_t stream) {
  if (num_tokens == 0) return cudaSuccess;
  cudaError_t e = dispatch_dtype(dtype, [&]<typename T>() {
    launch(rope_kernel<T>, num_tokens, kThreads, 0, stream, static_cast<T*>(qkv), rope_table, positions,
                                                       num_q_heads + num_kv_heads, num_q_heads + 2 * num_kv_heads,
                                                       head_dim);
  });
  return e != cudaSuccess ? e : cudaGetLastError();
}

cudaError_t launch_write_kv(DType dtype, const void* qkv, const int32_t* slot_mapping, int32_t num_tokens,
                            int32_t num_q_heads, int32_t num_kv_heads, int32_t head_dim, void* k_cache,
                            void* v_cache, cudaStream_t stream) {
  if (num_tokens == 0) return cudaSuccess;
  cudaError_t e = dispatch_dtype(dtype, [&]<typename T>() {
    launch(write_kv_kernel<T>, num_tokens, kThreads, 0, stream, static_cast<const T*>(qkv), slot_mapping, num_q_heads,
                                                           num_kv_heads, head_dim, static_cast<T*>(k_cache),
                                                           static_cast<T*>(v_cache));
  });
  return e != cudaSuccess ? e : cudaGetLastError();
}

}  // namespace llmserve::cuda
