// Quantization kernels of the CUDA backend: int8 and int4 weight rows dequantized to the activation
// dtype (matmul_q8 / matmul_int4 above the GEMVs, ahead of a cuBLASLt GEMM); activations quantized
// to fp8 e4m3 per row (per token) for matmul_fp8; and the epilogue of the fp8 GEMM when cuBLASLt
// cannot apply per-row/per-column scales itself. Nothing here allocates or synchronises, so a step
// using them can be captured in a CUDA graph. The arithmetic is the host's (model/quantize.h,
// CpuBackend::quantize_fp8_rows): scale = max|x[t]| / 448, code = e4m3(x / scale) rounded to
// nearest even and saturated (cvt.rn.satfinite), 0 when the scale is 0.
#include "backend/cuda/fp8_common.cuh"
#include "backend/cuda/kernels.h"

#include <algorithm>
#include <cstdint>
#include <type_traits>

namespace llmserve::cuda {
namespace {

constexpr int kThreads = 256;

// One thread per group of 16 weights of a row, rows * ceil(K / 16) threads in blocks of kThreads:
// q [rows, K] int8, scales fp32 [rows], out [rows, K] T, out = q * scale rounded to T once.
// kVector (K % 16 == 0, q and out 16-byte aligned): one 16-byte load, two 16-byte stores;
// otherwise element by element.
// Thread per 8-column word j of a row: its codes (stored where src/common/int4.h puts word j)
// as (q - zero) * scale in T, 16 bytes written.
template <typename T>
__global__ void dequantize_int4_kernel(const uint32_t* __restrict__ words,
                                       const T* __restrict__ scales, int32_t rows, int32_t k,
                                       int32_t group, T* __restrict__ out) {
  pdl_wait();
  pdl_trigger();
  const int64_t per_row = k / 8;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * per_row) return;
  const int64_t row = i / per_row, j = i % per_row;
  const int64_t block = j / 16, within = j % 16;
  const int64_t at = block < k / 128 ? block * 16 + 4 * (within % 4) + within / 4 : j;
  const uint32_t word = __ldcs(words + row * per_row + at);
  const T* sz = scales + row * 2 * (k / group) + 2 * (8 * j / group);
  const float s = to_float(sz[0]), z = to_float(sz[1]);
  constexpr int kNibble[8] = {0, 4, 1, 5, 2, 6, 3, 7};
  Vec8<T> v;
#pragma unroll
  for (int c = 0; c < 8; ++c)
    v.v[c] = from_float<T>((static_cast<float>((word >> (4 * kNibble[c])) & 15u) - z) * s);
  reinterpret_cast<Vec8<T>*>(out + row * k)[j] = v;
}

template <typename T, bool kVector>
__global__ void dequantize_rows_int8_kernel(const int8_t* __restrict__ q,
                                            const float* __restrict__ scales, int32_t rows,
                                            int32_t k, T* __restrict__ out) {
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
    for (int64_t j = 0; j < count; ++j)
      out[at + j] = from_float<T>(static_cast<float>(q[at + j]) * s);
  }
}

// grid (T), block (kThreads): one row of x [T, K] per block, read twice (max |x| over the row, then
// its codes: the second read hits L1/L2, the row was just read). kVector (K % 8 == 0, 16-byte
// aligned x, 8-byte aligned q): 8 elements per 16-byte load and one 8-byte store of codes;
// otherwise element by element. NaN is ignored by the max (fmaxf).
template <typename T, bool kVector>
__global__ void quantize_fp8_rows_kernel(const T* __restrict__ x, int32_t k,
                                         uint8_t* __restrict__ q, float* __restrict__ scales) {
  pdl_wait();
  pdl_trigger();
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const T* xr = x + row * k;
  uint8_t* qr = q + row * k;
  float m = 0.0f;
  if constexpr (kVector) {
    const auto* xs = reinterpret_cast<const Vec8<T>*>(xr);
    for (int32_t i = threadIdx.x; i < k / 8; i += blockDim.x) {
      const Vec8<T> v = xs[i];
#pragma unroll
      for (int j = 0; j < 8; ++j) m = fmaxf(m, fabsf(to_float(v.v[j])));
    }
  } else {
    for (int32_t i = threadIdx.x; i < k; i += blockDim.x) m = fmaxf(m, fabsf(to_float(xr[i])));
  }
  const float scale = block_max(m, scratch) / 448.0f;
  if (threadIdx.x == 0) scales[row] = scale;
  if constexpr (kVector) {
    const auto* xs = reinterpret_cast<const Vec8<T>*>(xr);
    auto* qs = reinterpret_cast<uint2*>(qr);
    for (int32_t i = threadIdx.x; i < k / 8; i += blockDim.x) {
      const Vec8<T> v = xs[i];
      qs[i] = scale > 0.0f ? e4m3x8(v, scale) : make_uint2(0, 0);
    }
  } else {
    for (int32_t i = threadIdx.x; i < k; i += blockDim.x) {
      // x / scale, not x * (1 / scale): the host's rounding, so both backends pick the same codes.
      qr[i] = scale > 0.0f
                  ? __nv_cvt_float_to_fp8(to_float(xr[i]) / scale, __NV_SATFINITE, __NV_E4M3)
                  : 0;
    }
  }
}

// grid-stride over M * N / 8: out[m, n] = out[m, n] * pre * x_scales[m] * w_scales[n] (+ bias[n]),
// in place, 8 elements (one 16-byte vector) per thread and step; out [M, N] in T (N % 8 == 0,
// 16-byte aligned), the unscaled fp8 GEMM's products as cuBLASLt stored them (times `pre`, the
// inverse of the alpha it ran with).
template <typename T>
__global__ void scale_fp8_output_kernel(T* __restrict__ out, const float* __restrict__ x_scales,
                                        const float* __restrict__ w_scales,
                                        const T* __restrict__ bias, float pre, int64_t m,
                                        int32_t n) {
  pdl_wait();
  pdl_trigger();
  const int32_t vecs_per_row = n / 8;
  auto* o = reinterpret_cast<Vec8<T>*>(out);
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
       i < m * vecs_per_row; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / vecs_per_row;
    const int32_t c0 = static_cast<int32_t>(i % vecs_per_row) * 8;
    const float sx = pre * x_scales[r];
    Vec8<T> v = o[i];
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      float f = to_float(v.v[j]) * sx * w_scales[c0 + j];
      if (bias != nullptr) f += to_float(bias[c0 + j]);
      v.v[j] = from_float<T>(f);
    }
    o[i] = v;
  }
}

unsigned blocks_for(int64_t threads) {
  return static_cast<unsigned>(std::max<int64_t>(1, (threads + kThreads - 1) / kThreads));
}

}  // namespace

cudaError_t launch_dequantize_rows_int8(DType dtype, const int8_t* q, const float* scales,
                                        int32_t rows, int32_t k, void* out, cudaStream_t stream) {
  if (rows == 0 || k == 0) return cudaSuccess;
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  const bool vector = k % 16 == 0 && aligned(q) && aligned(out);
  const int64_t groups = static_cast<int64_t>(rows) * ((k + 15) / 16);
  cudaError_t launched = cudaSuccess;
  const cudaError_t e = dispatch_dtype(dtype, [&]<typename T>() {
    auto* kernel =
        vector ? dequantize_rows_int8_kernel<T, true> : dequantize_rows_int8_kernel<T, false>;
    launched = launch(kernel, dim3(blocks_for(groups)), dim3(kThreads), 0, stream, q, scales, rows,
                      k, static_cast<T*>(out));
  });
  return e != cudaSuccess ? e : launched;
}

cudaError_t launch_dequantize_int4(DType dtype, const uint32_t* words, const void* scales,
                                   int32_t rows, int32_t k, int32_t group, void* out,
                                   cudaStream_t stream) {
  if (rows == 0 || k == 0) return cudaSuccess;
  if (k % 32 != 0 || group < 32 || k % group != 0) return cudaErrorInvalidValue;
  const int64_t total = static_cast<int64_t>(rows) * (k / 8);
  cudaError_t launched = cudaSuccess;
  const cudaError_t e = dispatch_dtype(dtype, [&]<typename T>() {
    if constexpr (std::is_same_v<T, float>) {
      launched = cudaErrorInvalidValue;
    } else {
      launched =
          launch(dequantize_int4_kernel<T>, dim3(blocks_for(total)), dim3(kThreads), 0, stream,
                 words, static_cast<const T*>(scales), rows, k, group, static_cast<T*>(out));
    }
  });
  return e != cudaSuccess ? e : launched;
}

cudaError_t launch_quantize_fp8_rows(DType dtype, const void* x, int32_t num_rows, int32_t k,
                                     void* q, float* scales, cudaStream_t stream) {
  if (num_rows == 0 || k == 0) return cudaSuccess;
  const auto aligned = [](const void* p, uintptr_t to) {
    return reinterpret_cast<uintptr_t>(p) % to == 0;
  };
  const bool vector = k % 8 == 0 && aligned(x, 16) && aligned(q, 8);
  // Enough threads for one pass of 16-byte loads over the row, at most kThreads.
  const int threads = std::min(kThreads, std::max(32, ((vector ? k / 8 : k) + 31) / 32 * 32));
  cudaError_t launched = cudaSuccess;
  const cudaError_t e = dispatch_dtype(dtype, [&]<typename T>() {
    auto* kernel = vector ? quantize_fp8_rows_kernel<T, true> : quantize_fp8_rows_kernel<T, false>;
    launched = launch(kernel, dim3(static_cast<unsigned>(num_rows)), dim3(threads), 0, stream,
                      static_cast<const T*>(x), k, static_cast<uint8_t*>(q), scales);
  });
  return e != cudaSuccess ? e : launched;
}

cudaError_t launch_scale_fp8_output(DType dtype, void* out, const float* x_scales,
                                    const float* w_scales, const void* bias, float pre, int64_t m,
                                    int32_t n, cudaStream_t stream) {
  if (m == 0 || n == 0) return cudaSuccess;
  if (n % 8 != 0 || reinterpret_cast<uintptr_t>(out) % 16 != 0) return cudaErrorInvalidValue;
  const unsigned blocks = std::min(blocks_for(m * n / 8), 8192u);
  cudaError_t launched = cudaSuccess;
  const cudaError_t e = dispatch_dtype(dtype, [&]<typename T>() {
    launched =
        launch(scale_fp8_output_kernel<T>, dim3(blocks), dim3(kThreads), 0, stream,
               static_cast<T*>(out), x_scales, w_scales, static_cast<const T*>(bias), pre, m, n);
  });
  return e != cudaSuccess ? e : launched;
}

}  // namespace llmserve::cuda
