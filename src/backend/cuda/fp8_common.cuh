// Device helpers for fp8 e4m3 codes (Backend::quantize_fp8_rows semantics): the per-token
// quantization that quantize.cu, norm.cu and elementwise.cu write, so every producer of fp8
// activations picks the codes CpuBackend::quantize_fp8_rows would; and the unscaled codes of the
// fp8 KV cache (--kv-cache-dtype fp8), which rope_kv.cu writes and the attention kernels read.
#pragma once

#include <cuda_fp8.h>

#include "backend/cuda/cuda_common.cuh"

namespace llmserve::cuda {

// e4m3(v / scale), round to nearest even, saturating at +-448. Division rather than a multiply by
// 1 / scale: the host's arithmetic, so both backends pick the same codes. scale > 0.
__device__ __forceinline__ uint32_t e4m3_code(float v, float scale) {
  return __nv_cvt_float_to_fp8(v / scale, __NV_SATFINITE, __NV_E4M3);
}

// The 8 codes of v[0..7] / scale packed little-endian into 8 bytes (element j in byte j).
__device__ __forceinline__ uint2 e4m3x8(const float (&v)[8], float scale) {
  uint32_t packed[2] = {0, 0};
#pragma unroll
  for (int j = 0; j < 8; ++j) packed[j / 4] |= e4m3_code(v[j], scale) << (8 * (j % 4));
  return make_uint2(packed[0], packed[1]);
}

template <typename T>
__device__ __forceinline__ uint2 e4m3x8(const Vec8<T>& x, float scale) {
  float v[8];
#pragma unroll
  for (int j = 0; j < 8; ++j) v[j] = to_float(x.v[j]);
  return e4m3x8(v, scale);
}

// The KV cache's codes (--kv-cache-dtype fp8): scale 1, round to nearest even, saturating, as
// CpuBackend::write_kv's float_to_e4m3.
template <typename T>
__device__ __forceinline__ uint2 e4m3x8_unscaled(const Vec8<T>& x) {
  uint32_t packed[2] = {0, 0};
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const uint32_t code = __nv_cvt_float_to_fp8(to_float(x.v[j]), __NV_SATFINITE, __NV_E4M3);
    packed[j / 4] |= code << (8 * (j % 4));
  }
  return make_uint2(packed[0], packed[1]);
}

// The values of 8 codes packed as e4m3x8 packs them (element j in byte j); exact, since every
// e4m3 value is an fp16 value (cvt.rn.f16x2.e4m3x2, two codes an instruction).
__device__ __forceinline__ void e4m3x8_to_float(const uint2& raw, float (&f)[8]) {
  const uint32_t words[2] = {raw.x, raw.y};
#pragma unroll
  for (int w = 0; w < 2; ++w) {
#pragma unroll
    for (int p = 0; p < 2; ++p) {
      const auto pair = static_cast<__nv_fp8x2_storage_t>(words[w] >> (16 * p));
      const __half2 h(__nv_cvt_fp8x2_to_halfraw2(pair, __NV_E4M3));
      const float2 v = __half22float2(h);
      f[4 * w + 2 * p] = v.x;
      f[4 * w + 2 * p + 1] = v.y;
    }
  }
}

}  // namespace llmserve::cuda
