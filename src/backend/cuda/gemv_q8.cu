// int8 weight-only GEMV for decode steps (Backend::matmul_q8 at M <= kGemvMaxRows):
// out[m, n] = (sum_k x[m, k] * q[n, k]) * scales[n] (+ bias[n]), x and out in fp16/bf16 (out may be
// fp32), q int8 [N, K] row-major, scales fp32 [N]. At batch 1-4 a decode step is a pass over the
// weights, and int8 halves the bytes of fp16: each weight byte is read once, 16 per load.
//
// Grid mapping as in gemv.cu's flat grid: kGemvWarps warps per block, `split` warps per output
// column (gemv_warps_per_column), ceil(N * split / kGemvWarps) blocks. A chunk is 16 weights (one
// 16-byte load, streamed past L1) against 16 x values (two 16-byte loads of x, staged in shared
// memory once per block when M*K fits in 48 KB). Part p of a column's warps reads the chunks
// p*32 + lane, + 32*split, ... with kUnroll loads in flight before any math; the parts' sums meet
// in shared memory. int8 -> fp32 by byte permute: (b ^ 0x80) as the low byte of 2^23's bits is
// exactly 2^23 + 128 + b, so one PRMT and one FADD replace an I2F (16/clk/SM on Hopper, which
// would bound this loop below the H100's bandwidth). fp32 accumulation, warp-shuffle reduction;
// the row's scale multiplies the finished dot product once, then the bias is added.
// Needs K % 16 == 0 and 16-byte aligned x and q (gemv_q8_supports).
#include "backend/cuda/gemv_common.cuh"

#include <cstdint>
#include <type_traits>

namespace llmserve::cuda {
namespace {

__device__ __forceinline__ float int8_to_float(uint32_t biased_word, int byte) {
  return __uint_as_float(__byte_perm(biased_word, 0x4b000000u, 0x7540u | byte)) -
         8388736.0f;  // 2^23 + 128
}

// acc += sum_j w[j] * x[j] over the 16 int8 weights of `w` and x0 (weights 0-7), x1 (8-15).
template <typename T>
__device__ __forceinline__ void dot16(const int4& w, const Vec8<T>& x0, const Vec8<T>& x1,
                                      float& acc) {
  const uint32_t words[4] = {
      static_cast<uint32_t>(w.x) ^ 0x80808080u, static_cast<uint32_t>(w.y) ^ 0x80808080u,
      static_cast<uint32_t>(w.z) ^ 0x80808080u, static_cast<uint32_t>(w.w) ^ 0x80808080u};
#pragma unroll
  for (int j = 0; j < 8; ++j)
    acc = fmaf(int8_to_float(words[j / 4], j % 4), to_float(x0.v[j]), acc);
#pragma unroll
  for (int j = 0; j < 8; ++j)
    acc = fmaf(int8_to_float(words[2 + j / 4], j % 4), to_float(x1.v[j]), acc);
}

// block (kGemvWarps * 32); grid ceil(N * split / kGemvWarps).
template <typename T, typename OutT, int M, int kUnroll>
__global__ void __launch_bounds__(kGemvWarps * 32)
    gemv_q8_kernel(const T* __restrict__ x, const int8_t* __restrict__ w,
                   const float* __restrict__ scales, const T* __restrict__ bias, int32_t n_cols,
                   int32_t k, bool stage_x, int32_t split, OutT* __restrict__ out) {
  pdl_wait();
  pdl_trigger();
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __shared__ float partial[kGemvWarps][M];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int part = warp % split, cols_per_block = kGemvWarps / split;
  const int chunks = k / 16;         // 16 weights per chunk
  const int x_vecs_per_row = k / 8;  // Vec8<T> per x row
  const Vec8<T>* xs = stage_gemv_x(x, M, k, stage_x, smem_raw);
  const int step = 32 * split;
  const int64_t n = static_cast<int64_t>(blockIdx.x) * cols_per_block + warp / split;
  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.0f;
  if (n < n_cols) {
    const auto* wrow = reinterpret_cast<const int4*>(w + n * k);
    for (int c0 = part * 32 + lane; c0 < chunks; c0 += step * kUnroll) {
      int4 wv[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {  // all loads first, then the math
        if (c0 + step * u < chunks) wv[u] = __ldcs(wrow + c0 + step * u);
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int c = c0 + step * u;
        if (c < chunks) {
#pragma unroll
          for (int m = 0; m < M; ++m) {
            dot16(wv[u], xs[m * x_vecs_per_row + 2 * c], xs[m * x_vecs_per_row + 2 * c + 1],
                  acc[m]);
          }
        }
      }
    }
  }
  sum_gemv_parts(acc, partial, warp, lane, part, split);
  if (part == 0 && lane == 0 && n < n_cols) {
    const float s = scales[n];
    const float b = bias != nullptr ? to_float(bias[n]) : 0.0f;
#pragma unroll
    for (int m = 0; m < M; ++m)
      out[static_cast<int64_t>(m) * n_cols + n] = from_float<OutT>(acc[m] * s + b);
  }
}

template <typename T, typename OutT, int M>
cudaError_t launch_m(const GemvQ8Args& a, cudaStream_t stream) {
  const size_t x_bytes = static_cast<size_t>(M) * a.k * sizeof(T);
  const bool stage = x_bytes <= kGemvSmemXBytes;
  const int split = gemv_warps_per_column(a.n, a.k / 16);
  const int cols_per_block = kGemvWarps / split;
  const int64_t blocks = (a.n + cols_per_block - 1) / cols_per_block;
  return launch(gemv_q8_kernel<T, OutT, M, 4>, dim3(static_cast<unsigned>(blocks)),
                dim3(kGemvWarps * 32), stage ? x_bytes : 0, stream, static_cast<const T*>(a.x), a.w,
                a.scales, static_cast<const T*>(a.bias), a.n, a.k, stage, split,
                static_cast<OutT*>(a.out));
}

template <typename T, typename OutT>
cudaError_t launch_rows(const GemvQ8Args& a, cudaStream_t stream) {
  switch (a.m) {
    case 1:
      return launch_m<T, OutT, 1>(a, stream);
    case 2:
      return launch_m<T, OutT, 2>(a, stream);
    case 3:
      return launch_m<T, OutT, 3>(a, stream);
    default:
      return launch_m<T, OutT, 4>(a, stream);
  }
}

}  // namespace

bool gemv_q8_supports(const GemvQ8Args& a) {
  const bool types = (a.dtype == DType::kF16 || a.dtype == DType::kBF16) &&
                     (a.out_dtype == a.dtype || a.out_dtype == DType::kF32);
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  return types && a.m >= 1 && a.m <= kGemvMaxRows && a.k % 16 == 0 && aligned(a.x) && aligned(a.w);
}

cudaError_t launch_gemv_q8(const GemvQ8Args& a, cudaStream_t stream) {
  if (!gemv_q8_supports(a)) return cudaErrorInvalidValue;
  if (a.n == 0) return cudaSuccess;
  cudaError_t launched = cudaSuccess;
  const cudaError_t e = dispatch_dtype(a.dtype, [&]<typename T>() {
    if constexpr (!std::is_same_v<T, float>) {
      launched = a.out_dtype == DType::kF32 ? launch_rows<T, float>(a, stream)
                                            : launch_rows<T, T>(a, stream);
    }
  });
  return e != cudaSuccess ? e : launched;
}

}  // namespace llmserve::cuda
