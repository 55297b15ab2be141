// Quantization kernels of the CUDA backend: int8 weight rows dequantized to the activation dtype
// (matmul_q8 above kGemvMaxRows rows, ahead of a cuBLASLt GEMM), and a matmul input quantized to
// fp8 e4m3 with one scale per call (matmul_fp8: max |x| in two kernels, then the codes, ahead of
// an fp8 cuBLASLt GEMM). The fp8 scale never leaves the device, and nothing here allocates or
// synchronises, so a step using them can be captured in a CUDA graph. The arithmetic is the host's
// (model/quantize.h, CpuBackend::matmul_fp8): scale = max|x| / 448, code = e4m3(x / scale) rounded
// to nearest even and saturated (cvt.rn.satfinite), 0 when the scale is 0.
#include <cuda_fp8.h>

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

// Max |x| over one part of x per block: grid absmax_num_partials(n) blocks of kThreads, 8 elements
// (one 16-byte load) per thread and step of a grid-stride loop; partials[block] = the part's max.
// NaN is ignored (fmaxf). Block maxima meet through an atomicMax on float bits: for values >= 0
// the integers order as the floats do.
template <typename T>
__global__ void absmax_kernel(const T* __restrict__ x, int64_t n, float* __restrict__ partials) {
  pdl_wait();
  pdl_trigger();
  __shared__ unsigned int block_max;
  if (threadIdx.x == 0) block_max = 0;
  __syncthreads();
  const auto* xs = reinterpret_cast<const Vec8<T>*>(x);
  float m = 0.0f;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n / 8;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const Vec8<T> v = xs[i];
#pragma unroll
    for (int j = 0; j < 8; ++j) m = fmaxf(m, fabsf(to_float(v.v[j])));
  }
  m = warp_max(m);
  if ((threadIdx.x & 31) == 0) atomicMax(&block_max, __float_as_uint(m));
  __syncthreads();
  if (threadIdx.x == 0) partials[blockIdx.x] = __uint_as_float(block_max);
}

// Every block first reduces the partials to max |x| and derives the scale (block 0 stores it for
// the GEMM), then writes 8 codes per thread and step of its grid-stride loop (one 16-byte load,
// one 8-byte store). x [n] T, q [n] e4m3.
template <typename T>
__global__ void quantize_fp8_kernel(const T* __restrict__ x, int64_t n, const float* __restrict__ partials,
                                    int32_t num_partials, float* __restrict__ scale_out, uint8_t* __restrict__ q) {
  pdl_wait();
  pdl_trigger();
  __shared__ unsigned int amax_bits;
  if (threadIdx.x == 0) amax_bits = 0;
  __syncthreads();
  float m = 0.0f;
  for (int i = threadIdx.x; i < num_partials; i += blockDim.x) m = fmaxf(m, partials[i]);
  m = warp_max(m);
  if ((threadIdx.x & 31) == 0) atomicMax(&amax_bits, __float_as_uint(m));
  __syncthreads();
  const float scale = __uint_as_float(amax_bits) / 448.0f;
  if (blockIdx.x == 0 && threadIdx.x == 0) *scale_out = scale;
  const auto* xs = reinterpret_cast<const Vec8<T>*>(x);
  auto* qs = reinterpret_cast<uint2*>(q);
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n / 8;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const Vec8<T> v = xs[i];
    uint32_t packed[2] = {0, 0};
    if (scale > 0.0f) {
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        // x / scale, not x * (1 / scale): the host's rounding, so both backends pick the same codes.
        const uint32_t code = __nv_cvt_float_to_fp8(to_float(v.v[j]) / scale, __NV_SATFINITE, __NV_E4M3);
        packed[j / 4] |= code << (8 * (j % 4));
      }
    }
    qs[i] = make_uint2(packed[0], packed[1]);
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

int32_t absmax_num_partials(int64_t n) {
  return static_cast<int32_t>(std::min<int64_t>(kAbsmaxMaxPartials, blocks_for(n / 8)));
}

cudaError_t launch_absmax(DType dtype, const void* x, int64_t n, float* partials, cudaStream_t stream) {
  if (n % 8 != 0 || reinterpret_cast<uintptr_t>(x) % 16 != 0) return cudaErrorInvalidValue;
  cudaError_t launched = cudaSuccess;
  const cudaError_t e = dispatch_dtype(dtype, [&]<typename T>() {
    launched = launch(absmax_kernel<T>, dim3(static_cast<unsigned>(absmax_num_partials(n))), dim3(kThreads), 0,
                      stream, static_cast<const T*>(x), n, partials);
  });
  return e != cudaSuccess ? e : launched;
}

cudaError_t launch_quantize_fp8(DType dtype, const void* x, int64_t n, const float* partials, int32_t num_partials,
                                float* scale, void* q, cudaStream_t stream) {
  const auto aligned = [](const void* p, uintptr_t to) { return reinterpret_cast<uintptr_t>(p) % to == 0; };
  if (n % 8 != 0 || !aligned(x, 16) || !aligned(q, 8)) return cudaErrorInvalidValue;
  // Enough blocks to cover the SMs several times over; each loops over the rest.
  const unsigned blocks = std::min(blocks_for(n / 8), 4096u);
  cudaError_t launched = cudaSuccess;
  const cudaError_t e = dispatch_dtype(dtype, [&]<typename T>() {
    launched = launch(quantize_fp8_kernel<T>, dim3(blocks), dim3(kThreads), 0, stream, static_cast<const T*>(x), n,
                      partials, num_partials, scale, static_cast<uint8_t*>(q));
  });
  return e != cudaSuccess ? e : launched;
}

}  // namespace llmserve::cuda
