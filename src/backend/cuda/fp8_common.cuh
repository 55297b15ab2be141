// Device helpers for fp8 e4m3 codes (Backend::quantize_fp8_rows semantics): the per-token
// quantization that quantize.cu, norm.cu and elementwise.cu write, so every producer of fp8
// activations picks the codes CpuBackend::quantize_fp8_rows would.
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

}  // namespace llmserve::cuda
