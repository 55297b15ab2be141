// Rotary position embedding (in place on the fused QKV activation) and the paged KV-cache write.
// Grid mapping: one block per token; threads stride over (head, pair) for RoPE and over the
// Hk*d key/value elements for the cache write. rope_write_kv_kernel does both in one pass with
// 16-byte accesses: at batch 1 the two scalar kernels cost 6.4 + 4.0 us per Llama-3-8B layer
// (ncu, H200), most of it the dependent scalar loads.
//
// The cache holds either the activation type T or, with --kv-cache-dtype fp8, e4m3 codes (KV =
// uint8_t, scale 1, saturating: fp8_common.cuh): the kernels are templated on the cache element
// KV and convert on the store.
#include <type_traits>

#include "backend/cuda/cuda_common.cuh"
#include "backend/cuda/fp8_common.cuh"
#include "backend/cuda/kernels.h"

namespace llmserve::cuda {
namespace {

constexpr int kThreads = 256;

template <typename KV, typename T>
__device__ __forceinline__ KV to_kv(T x) {
  if constexpr (std::is_same_v<KV, T>) {
    return x;
  } else {
    static_assert(std::is_same_v<KV, uint8_t>, "KV is T or e4m3 codes");
    return static_cast<uint8_t>(__nv_cvt_float_to_fp8(to_float(x), __NV_SATFINITE, __NV_E4M3));
  }
}

// 8 consecutive cache elements from one 16-byte vector of T (16 or 8 bytes stored).
template <typename KV, typename T>
__device__ __forceinline__ void store_kv8(KV* dst, const Vec8<T>& x) {
  if constexpr (std::is_same_v<KV, T>) {
    *reinterpret_cast<Vec8<T>*>(dst) = x;
  } else {
    *reinterpret_cast<uint2*>(dst) = e4m3x8_unscaled(x);
  }
}

// Calls f.template operator()<T, KV>() for the activation dtype and the cache dtype (the same,
// or F8_E4M3). Returns cudaErrorInvalidValue for any other pair.
template <typename F>
cudaError_t dispatch_kv(DType dtype, DType kv_dtype, F&& f) {
  if (kv_dtype != dtype && kv_dtype != DType::kF8E4M3) return cudaErrorInvalidValue;
  return dispatch_dtype(dtype, [&]<typename T>() {
    if (kv_dtype == DType::kF8E4M3) {
      f.template operator()<T, uint8_t>();
    } else {
      f.template operator()<T, T>();
    }
  });
}

// grid (T), block (256): for each of the Hq + Hk rotated heads and each pair i < d/2:
//   (x_i, x_{i+d/2}) <- (x_i cos - x_{i+d/2} sin, x_{i+d/2} cos + x_i sin).
template <typename T>
__global__ void rope_kernel(T* __restrict__ qkv, const float* __restrict__ table,
                            const int32_t* __restrict__ positions, int32_t rotated_heads,
                            int32_t row_heads, int32_t head_dim) {
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
template <typename T, typename KV>
__global__ void write_kv_kernel(const T* __restrict__ qkv, const int32_t* __restrict__ slot_mapping,
                                int32_t num_q_heads, int32_t num_kv_heads, int32_t head_dim,
                                KV* __restrict__ k_cache, KV* __restrict__ v_cache) {
  pdl_wait();
  pdl_trigger();
  const int64_t t = blockIdx.x;
  const int64_t kv = static_cast<int64_t>(num_kv_heads) * head_dim;
  const T* k = qkv + t * (num_q_heads + 2 * num_kv_heads) * head_dim + num_q_heads * head_dim;
  const T* v = k + kv;
  const int64_t slot = slot_mapping[t];
  for (int64_t i = threadIdx.x; i < kv; i += blockDim.x) {
    k_cache[slot * kv + i] = to_kv<KV>(k[i]);
    v_cache[slot * kv + i] = to_kv<KV>(v[i]);
  }
}

// grid (T), block (128): work item k < (Hq + Hk) * d/16 rotates 8 pairs (i0..i0+7, i0+d/2..) of
// head k / (d/16) in place, in fp32 from the stored values, rounded once; key heads also go to
// k_cache[slot]. Items past that copy one 16-byte vector of the value heads to v_cache[slot].
// Needs d % 16 == 0 and 16-byte aligned qkv and caches (the launcher checks).
template <typename T, typename KV>
__global__ void rope_write_kv_kernel(T* __restrict__ qkv, const float* __restrict__ table,
                                     const int32_t* __restrict__ positions,
                                     const int32_t* __restrict__ slot_mapping, int32_t num_q_heads,
                                     int32_t num_kv_heads, int32_t head_dim,
                                     KV* __restrict__ k_cache, KV* __restrict__ v_cache) {
  pdl_wait();
  pdl_trigger();
  const int64_t t = blockIdx.x;
  const int32_t half = head_dim / 2, pairs = half / 8;
  const int32_t rotated = (num_q_heads + num_kv_heads) * pairs;
  const int32_t copies = num_kv_heads * head_dim / 8;
  const int64_t kv = static_cast<int64_t>(num_kv_heads) * head_dim;
  const int64_t slot = slot_mapping[t];
  const float* cs = table + static_cast<int64_t>(positions[t]) * head_dim;
  T* row = qkv + t * (num_q_heads + 2 * num_kv_heads) * head_dim;
  for (int32_t k = threadIdx.x; k < rotated + copies; k += blockDim.x) {
    if (k >= rotated) {
      const int32_t i = (k - rotated) * 8;
      store_kv8(v_cache + slot * kv + i, *reinterpret_cast<const Vec8<T>*>(
                                             row + (num_q_heads + num_kv_heads) * head_dim + i));
      continue;
    }
    const int32_t h = k / pairs, i0 = (k % pairs) * 8;
    T* x = row + h * head_dim;
    Vec8<T> a = *reinterpret_cast<const Vec8<T>*>(x + i0);
    Vec8<T> b = *reinterpret_cast<const Vec8<T>*>(x + half + i0);
    const float4 c0 = *reinterpret_cast<const float4*>(cs + i0),
                 c1 = *reinterpret_cast<const float4*>(cs + i0 + 4);
    const float4 s0 = *reinterpret_cast<const float4*>(cs + half + i0);
    const float4 s1 = *reinterpret_cast<const float4*>(cs + half + i0 + 4);
    const float c[8] = {c0.x, c0.y, c0.z, c0.w, c1.x, c1.y, c1.z, c1.w};
    const float s[8] = {s0.x, s0.y, s0.z, s0.w, s1.x, s1.y, s1.z, s1.w};
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const float av = to_float(a.v[j]), bv = to_float(b.v[j]);
      a.v[j] = from_float<T>(av * c[j] - bv * s[j]);
      b.v[j] = from_float<T>(bv * c[j] + av * s[j]);
    }
    *reinterpret_cast<Vec8<T>*>(x + i0) = a;
    *reinterpret_cast<Vec8<T>*>(x + half + i0) = b;
    if (h >= num_q_heads) {
      KV* dst = k_cache + slot * kv + (h - num_q_heads) * head_dim;
      store_kv8(dst + i0, a);
      store_kv8(dst + half + i0, b);
    }
  }
}

}  // namespace

cudaError_t launch_rope(DType dtype, void* qkv, const float* rope_table, const int32_t* positions,
                        int32_t num_tokens, int32_t num_q_heads, int32_t num_kv_heads,
                        int32_t head_dim, cudaStream_t stream) {
  if (num_tokens == 0) return cudaSuccess;
  cudaError_t e = dispatch_dtype(dtype, [&]<typename T>() {
    launch(rope_kernel<T>, num_tokens, kThreads, 0, stream, static_cast<T*>(qkv), rope_table,
           positions, num_q_heads + num_kv_heads, num_q_heads + 2 * num_kv_heads, head_dim);
  });
  return e != cudaSuccess ? e : cudaGetLastError();
}

cudaError_t launch_write_kv(DType dtype, DType kv_dtype, const void* qkv,
                            const int32_t* slot_mapping, int32_t num_tokens, int32_t num_q_heads,
                            int32_t num_kv_heads, int32_t head_dim, void* k_cache, void* v_cache,
                            cudaStream_t stream) {
  if (num_tokens == 0) return cudaSuccess;
  cudaError_t e = dispatch_kv(dtype, kv_dtype, [&]<typename T, typename KV>() {
    launch(write_kv_kernel<T, KV>, num_tokens, kThreads, 0, stream, static_cast<const T*>(qkv),
           slot_mapping, num_q_heads, num_kv_heads, head_dim, static_cast<KV*>(k_cache),
           static_cast<KV*>(v_cache));
  });
  return e != cudaSuccess ? e : cudaGetLastError();
}

cudaError_t launch_rope_write_kv(DType dtype, DType kv_dtype, void* qkv, const float* rope_table,
                                 const int32_t* positions, const int32_t* slot_mapping,
                                 int32_t num_tokens, int32_t num_q_heads, int32_t num_kv_heads,
                                 int32_t head_dim, void* k_cache, void* v_cache,
                                 cudaStream_t stream) {
  if (num_tokens == 0) return cudaSuccess;
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  if (head_dim % 16 != 0 || dtype == DType::kF32 || !aligned(qkv) || !aligned(rope_table) ||
      !aligned(k_cache) || !aligned(v_cache)) {
    cudaError_t e = launch_rope(dtype, qkv, rope_table, positions, num_tokens, num_q_heads,
                                num_kv_heads, head_dim, stream);
    if (e != cudaSuccess) return e;
    return launch_write_kv(dtype, kv_dtype, qkv, slot_mapping, num_tokens, num_q_heads,
                           num_kv_heads, head_dim, k_cache, v_cache, stream);
  }
  cudaError_t launched = cudaSuccess;
  cudaError_t e = dispatch_kv(dtype, kv_dtype, [&]<typename T, typename KV>() {
    launched = launch(rope_write_kv_kernel<T, KV>, num_tokens, 128, 0, stream, static_cast<T*>(qkv),
                      rope_table, positions, slot_mapping, num_q_heads, num_kv_heads, head_dim,
                      static_cast<KV*>(k_cache), static_cast<KV*>(v_cache));
  });
  return e != cudaSuccess ? e : launched;
}

}  // namespace llmserve::cuda
