// fp8 W8A8 for decode steps on the tensor cores (Backend::matmul_fp8 at M <= kGemvFp8MaxRows):
// out[m, n] = (sum_k e4m3(x[m, k]) * e4m3(w[n, k])) * x_scales[m] * w_scales[n] (+ bias[n]),
// x [M, K] and w [N, K] e4m3 codes, row-major; scales fp32; bias and out fp16/bf16.
//
// At batch 1-8 the step is one pass over the weights, and fp8 halves the bytes of bf16. The
// product is done by mma.sync.m16n8k32 (e4m3 x e4m3 -> fp32, sm_89+) with the weights as the
// 16-row A operand and the tokens as the 8-column B operand, so M = 1..8 costs the same one pass
// and the tensor cores, not the FMA pipes, do the arithmetic (e4m3 -> fp32 conversions on the
// CUDA cores would bound an FMA loop below the bandwidth).
//
// Grid mapping: one block of kWarps warps per 16 output rows (N % 16 == 0); the block's warps
// split K: warp w takes the 64-column chunks w, w + kWarps, ... (kUnroll chunks' loads in flight
// before any mma), and warp 0 the last 32 columns when K % 64 == 32. Lane (g = lane / 4,
// t = lane % 4) loads 16 bytes of weight rows g and g + 8 and of token row g at column
// 64c + 16t: bytes 0-7 feed the chunk's first mma, bytes 8-15 its second. An mma sums over its 32
// k-slots in any order, so assigning physical columns to slots is free as long as A and B use
// the same assignment: slot 4t + j <- column 16t + j (+ 8 for the second mma), slot 16 + 4t + j
// <- column 16t + 4 + j (+ 8), j = 0..3, which is exactly what the 4-byte registers
// {a0 = row g bytes 0-3, a1 = row g + 8 bytes 0-3, a2 = row g bytes 4-7, a3 = row g + 8 bytes 4-7}
// and {b0 = token g bytes 0-3, b1 = token g bytes 4-7} hold under PTX's m16n8k32 8-bit fragment
// layout. Accumulator c0..c3 of lane (g, t) is D[row g or g + 8][token 2t or 2t + 1]. The warps'
// partial D tiles are summed in shared memory; warp 0 scales, adds the bias and stores.
// Tokens g >= M load zeros. Needs K % 32 == 0, N % 16 == 0, 16-byte aligned x and w
// (gemv_fp8_supports); fp32 accumulation throughout.
#include "backend/cuda/gemv_common.cuh"

#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace llmserve::cuda {
namespace {

constexpr int kWarps = 8;

// D += A(16x32 e4m3, row) * B(32x8 e4m3, col), fp32 accumulators.
__device__ __forceinline__ void mma_e4m3(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                         uint32_t a3, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// block (kWarps * 32); grid (N / 16). kUnroll chunks' loads (3 x 16 bytes a lane each) in flight.
template <typename T, int kUnroll>
__global__ void __launch_bounds__(kWarps * 32)
    gemv_fp8_kernel(const uint8_t* __restrict__ x, const float* __restrict__ x_scales,
                    const uint8_t* __restrict__ w, const float* __restrict__ w_scales,
                    const T* __restrict__ bias, int32_t m_rows, int32_t n_cols, int32_t k,
                    T* __restrict__ out) {
  pdl_wait();
  pdl_trigger();
  __shared__ float partial[kWarps][32][4];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * 16;
  const uint8_t* w_lo = w + (n0 + g) * k + 16 * t;      // row g
  const uint8_t* w_hi = w + (n0 + g + 8) * k + 16 * t;  // row g + 8
  const bool has_token = g < m_rows;
  const uint8_t* x_row = x + static_cast<int64_t>(has_token ? g : 0) * k + 16 * t;
  float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  const int chunks = k / 64;
  for (int c0 = warp; c0 < chunks; c0 += kWarps * kUnroll) {
    int4 lo[kUnroll], hi[kUnroll], xv[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {  // every load first, then the mmas
      const int c = c0 + u * kWarps;
      if (c < chunks) {
        lo[u] = __ldcs(reinterpret_cast<const int4*>(w_lo + 64 * c));
        hi[u] = __ldcs(reinterpret_cast<const int4*>(w_hi + 64 * c));
        xv[u] = has_token ? *reinterpret_cast<const int4*>(x_row + 64 * c) : make_int4(0, 0, 0, 0);
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      if (c0 + u * kWarps < chunks) {
        mma_e4m3(d, lo[u].x, hi[u].x, lo[u].y, hi[u].y, xv[u].x, xv[u].y);
        mma_e4m3(d, lo[u].z, hi[u].z, lo[u].w, hi[u].w, xv[u].z, xv[u].w);
      }
    }
  }
  if (k % 64 != 0 && warp == 0) {  // the last 32 columns: 8 bytes a lane, one mma
    const int64_t at = static_cast<int64_t>(chunks) * 64 - 8 * t;  // column 64 * chunks + 8t
    const uint2 a_lo = *reinterpret_cast<const uint2*>(w_lo + at),
                a_hi = *reinterpret_cast<const uint2*>(w_hi + at);
    const uint2 b = has_token ? *reinterpret_cast<const uint2*>(x_row + at) : make_uint2(0, 0);
    mma_e4m3(d, a_lo.x, a_hi.x, a_lo.y, a_hi.y, b.x, b.y);
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) partial[warp][lane][i] = d[i];
  __syncthreads();
  if (warp != 0) return;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    for (int p = 1; p < kWarps; ++p) d[i] += partial[p][lane][i];
  }
  // d[0], d[1]: row g, tokens 2t, 2t + 1; d[2], d[3]: row g + 8.
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int token = 2 * t + (i & 1);
    const int64_t n = n0 + g + (i >= 2 ? 8 : 0);
    if (token < m_rows) {
      float v = d[i] * x_scales[token] * w_scales[n];
      if (bias != nullptr) v += to_float(bias[n]);
      out[static_cast<int64_t>(token) * n_cols + n] = from_float<T>(v);
    }
  }
}

}  // namespace

bool gemv_fp8_supports(const GemvFp8Args& a) {
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  return (a.dtype == DType::kF16 || a.dtype == DType::kBF16) && a.m >= 1 &&
         a.m <= kGemvFp8MaxRows && a.k % 32 == 0 && a.n % 16 == 0 && aligned(a.x) && aligned(a.w);
}

cudaError_t launch_gemv_fp8(const GemvFp8Args& a, cudaStream_t stream) {
  if (!gemv_fp8_supports(a)) return cudaErrorInvalidValue;
  if (a.n == 0) return cudaSuccess;
  // LLMSERVE_GEMV_FP8_UNROLL=8 keeps twice the loads in flight (for measuring; 4 is the default).
  static const bool unroll8 = [] {
    const char* v = std::getenv("LLMSERVE_GEMV_FP8_UNROLL");
    return v != nullptr && std::string_view(v) == "8";
  }();
  cudaError_t launched = cudaSuccess;
  const cudaError_t e = dispatch_dtype(a.dtype, [&]<typename T>() {
    const auto go = [&](auto kernel) {
      launched = launch(kernel, dim3(static_cast<unsigned>(a.n / 16)), dim3(kWarps * 32), 0, stream,
                        a.x, a.x_scales, a.w, a.w_scales, static_cast<const T*>(a.bias), a.m, a.n,
                        a.k, static_cast<T*>(a.out));
    };
    if (unroll8) {
      go(gemv_fp8_kernel<T, 8>);
    } else {
      go(gemv_fp8_kernel<T, 4>);
    }
  });
  return e != cudaSuccess ? e : launched;
}

}  // namespace llmserve::cuda
