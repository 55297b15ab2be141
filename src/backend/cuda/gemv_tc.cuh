// The tensor-core GEMV of decode steps (gemv.h, GemvTcArgs), one kernel template for three weight
// formats, instantiated per format in gemv_tc_{16bit,int8,fp8}.cu so nvcc compiles them apart:
//   out[m, n] = act((sum_k x[m, k] * w[n, k]) * x_scales[m] * w_scales[n] + bias[n]), M <= 8,
//   k16Bit: w fp16/bf16 (x's dtype), mma.m16n8k16, no scales;
//   kInt8:  w int8 scaled per row, x fp16/bf16: each weight pair converted to x's dtype in
//           registers (exact: an int8 has 8 significant bits), mma.m16n8k16;
//   kFp8:   w and x e4m3 codes scaled per row and per token, mma.m16n8k32 (sm_89+).
//
// At batch 1-8 a decode step is one pass over the weights. The weights are the mma's 16-row A
// operand and the tokens its 8-column B operand, so M = 1..8 costs the same pass and the tensor
// cores, not the FMA pipes, do the arithmetic; x is read by the lanes that hold a token (no
// shared-memory staging, no barrier before the first weight load).
//
// Grid mapping: one block of kWarps warps per 16 output rows (rows past N re-read row N - 1 and
// are not stored). The warps split K into chunks: in a chunk the 4 lanes (t = lane % 4) of row
// group g = lane / 4 each load kVec adjacent 16-byte vectors of weight rows g and g + 8 (so a
// row's chunk is 64 * kVec contiguous bytes) and the x values of the same columns for token g.
// Warp w takes chunks w, w + kWarps, ..., with kUnroll chunks' loads in flight before any mma;
// with kPreload the first round of weight loads is issued before pdl_wait(), overlapping the
// previous kernel's tail (weights never depend on it). Columns past the last whole chunk go one
// mma step at a time (16 columns, 32 for fp8) to warps in turn.
//
// An mma sums over its k-slots in any order, so any assignment of physical columns to slots
// works when A and B use the same one. Under PTX's fragment layouts lane (g, t) supplies, for
// each of row g, row g + 8 and token g, the slots {2t, 2t + 1} and {2t + 8, 2t + 9} (16-bit,
// registers a0/a1 and a2/a3, b0 and b1) or {4t..4t + 3} and {16 + 4t..} (e4m3): the lane's
// consecutive physical columns fill them in order, which is what the 32-bit words of its 16-byte
// vectors hold. Accumulator d[0..3] of lane (g, t) is D[row g, g, g + 8, g + 8][token 2t, 2t + 1,
// 2t, 2t + 1]. The warps' partial tiles are summed in shared memory; warp 0 scales, adds the bias,
// applies GELU and stores. fp32 accumulation throughout.
#pragma once

#include "backend/cuda/gemv_common.cuh"

#include <cstdint>
#include <type_traits>

namespace llmserve::cuda {

// D += A(16x16, row) * B(16x8, col) in T (__half or __nv_bfloat16), fp32 accumulators.
template <typename T>
__device__ __forceinline__ void mma_k16(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                        uint32_t a3, uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same_v<T, __half>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
        "{%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  }
}

// D += A(16x32 e4m3, row) * B(32x8 e4m3, col), fp32 accumulators.
__device__ __forceinline__ void mma_e4m3(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                         uint32_t a3, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// Bytes 2h and 2h + 1 of an int8 word, whose bytes were xor-ed with 0x80 (so byte b reads as
// b + 128 unsigned), as a pair of T. fp16: 0x64XX is 1024 + XX exactly, minus 1152. bf16 has too
// few mantissa bits for that, so via fp32: 0x4b0000XX is 2^23 + XX, minus 2^23 + 128, and an
// integer of |v| <= 128 keeps all its bits in the upper half of the fp32 word.
template <typename T>
__device__ __forceinline__ uint32_t int8_pair(uint32_t biased, int h) {
  if constexpr (std::is_same_v<T, __half>) {
    const uint32_t v = __byte_perm(biased, 0x64646464u, h == 0 ? 0x4140u : 0x4342u);
    const __half2 r = __hsub2(*reinterpret_cast<const __half2*>(&v),
                              __halves2half2(__ushort_as_half(0x6480), __ushort_as_half(0x6480)));
    return *reinterpret_cast<const uint32_t*>(&r);
  } else {
    const float lo =
        __uint_as_float(__byte_perm(biased, 0x4b000000u, 0x7540u | (2 * h))) - 8388736.0f;
    const float hi =
        __uint_as_float(__byte_perm(biased, 0x4b000000u, 0x7540u | (2 * h + 1))) - 8388736.0f;
    return __byte_perm(__float_as_uint(lo), __float_as_uint(hi), 0x7632u);
  }
}

// The mmas of one 32-bit word of int8 weights (4 columns) of rows g (lo) and g + 8 (hi) with the
// x pair words b0 (columns 0-1) and b1 (2-3).
template <typename T>
__device__ __forceinline__ void mma_int8_word(float (&d)[4], uint32_t lo, uint32_t hi, uint32_t b0,
                                              uint32_t b1) {
  lo ^= 0x80808080u;
  hi ^= 0x80808080u;
  mma_k16<T>(d, int8_pair<T>(lo, 0), int8_pair<T>(hi, 0), int8_pair<T>(lo, 1), int8_pair<T>(hi, 1),
             b0, b1);
}

template <GemvWeights W>
struct GemvTcFormat {
  static constexpr int kWBytes = W == GemvWeights::k16Bit ? 2 : 1;    // bytes of one weight
  static constexpr int kXPerW = W == GemvWeights::kInt8 ? 2 : 1;      // x vectors per w vector
  static constexpr int kXBytes = W == GemvWeights::kFp8 ? 1 : 2;      // bytes of one x value
  static constexpr int kStepCols = W == GemvWeights::kFp8 ? 32 : 16;  // columns of one mma
};

// The mmas of one 16-byte weight vector of rows g (lo) and g + 8 (hi) against the x values of the
// same columns (xv[0..kXPerW)).
template <GemvWeights W, typename T>
__device__ __forceinline__ void mma_vector(float (&d)[4], const int4& lo, const int4& hi,
                                           const int4* xv) {
  if constexpr (W == GemvWeights::k16Bit) {
    mma_k16<T>(d, lo.x, hi.x, lo.y, hi.y, xv[0].x, xv[0].y);
    mma_k16<T>(d, lo.z, hi.z, lo.w, hi.w, xv[0].z, xv[0].w);
  } else if constexpr (W == GemvWeights::kInt8) {
    mma_int8_word<T>(d, lo.x, hi.x, xv[0].x, xv[0].y);
    mma_int8_word<T>(d, lo.y, hi.y, xv[0].z, xv[0].w);
    mma_int8_word<T>(d, lo.z, hi.z, xv[1].x, xv[1].y);
    mma_int8_word<T>(d, lo.w, hi.w, xv[1].z, xv[1].w);
  } else {
    mma_e4m3(d, lo.x, hi.x, lo.y, hi.y, xv[0].x, xv[0].y);
    mma_e4m3(d, lo.z, hi.z, lo.w, hi.w, xv[0].z, xv[0].w);
  }
}

// One mma step (kStepCols columns) starting at column `col`, for the K tail.
template <GemvWeights W, typename T, GemvPrologue P>
__device__ __forceinline__ void mma_step(const GemvTcArgs& a, float (&d)[4], const uint8_t* w_lo,
                                         const uint8_t* w_hi, const uint8_t* x_row, bool has_token,
                                         int64_t col, int t, float rstd) {
  using F = GemvTcFormat<W>;
  // x at columns c..c + 3 (16-bit x; 8 e4m3 codes for fp8)
  const auto x4 = [&](int64_t c) {
    if (!has_token) return make_uint2(0u, 0u);
    if constexpr (P == GemvPrologue::kNone) {
      return *reinterpret_cast<const uint2*>(x_row + c * F::kXBytes);
    } else {
      return prologue_x<P, T, uint2>(a, reinterpret_cast<const T*>(x_row), c, rstd);
    }
  };
  if constexpr (W == GemvWeights::kInt8) {  // 4 weights a lane: one word, 8 bytes of x
    const int64_t c = col + 4 * t;
    const uint32_t lo = *reinterpret_cast<const uint32_t*>(w_lo + c);
    const uint32_t hi = *reinterpret_cast<const uint32_t*>(w_hi + c);
    const uint2 b = x4(c);
    mma_int8_word<T>(d, lo, hi, b.x, b.y);
  } else {  // 8 bytes a lane: 4 16-bit weights or 8 e4m3 codes
    const int64_t c = col + (8 / F::kWBytes) * t;
    const uint2 lo = *reinterpret_cast<const uint2*>(w_lo + c * F::kWBytes);
    const uint2 hi = *reinterpret_cast<const uint2*>(w_hi + c * F::kWBytes);
    const uint2 b = x4(c);
    if constexpr (W == GemvWeights::k16Bit) {
      mma_k16<T>(d, lo.x, hi.x, lo.y, hi.y, b.x, b.y);
    } else {
      mma_e4m3(d, lo.x, hi.x, lo.y, hi.y, b.x, b.y);
    }
  }
}

// kN values of x from element e of token row x_row (kN = 4 or 8: a uint2 or an int4 of T) through
// prologue P, each rounded to T as the unfused op (rms_norm, silu_mul) would store it. x_row is a
// row of K values (kRmsNorm, with the token's 1 / rms in rstd) or of 2K (kSiluMul: gate | up).
template <GemvPrologue P, typename T, typename V>
__device__ __forceinline__ V prologue_x(const GemvTcArgs& a, const T* x_row, int64_t e,
                                        float rstd) {
  constexpr int kN = sizeof(V) / sizeof(T);
  V out;
  T* o = reinterpret_cast<T*>(&out);
  const V xv = __ldg(reinterpret_cast<const V*>(x_row + e));
  const T* xs = reinterpret_cast<const T*>(&xv);
  if constexpr (P == GemvPrologue::kRmsNorm) {
    const V wv = __ldg(reinterpret_cast<const V*>(static_cast<const T*>(a.norm_w) + e));
    const T* ws = reinterpret_cast<const T*>(&wv);
#pragma unroll
    for (int j = 0; j < kN; ++j) o[j] = from_float<T>(to_float(xs[j]) * rstd * to_float(ws[j]));
  } else {
    const V uv = __ldg(reinterpret_cast<const V*>(x_row + a.k + e));
    const T* us = reinterpret_cast<const T*>(&uv);
#pragma unroll
    for (int j = 0; j < kN; ++j) {
      const float g = to_float(xs[j]);
      o[j] = from_float<T>(g / (1.0f + __expf(-g)) * to_float(us[j]));
    }
  }
  return out;
}

// kRmsNorm: 1 / sqrt(mean(x^2) + eps) of token rows 0..M-1 into rstd[], computed by the whole
// block (each warp sums a K slice of every row; x is read from L2, K * M values a block).
template <typename T, int kWarps>
__device__ __forceinline__ void block_rstd(const GemvTcArgs& a, float (&partial)[kWarps][32][4],
                                           float* rstd) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int vecs = a.k / 8, per_warp = (vecs + kWarps - 1) / kWarps;
  const int first = warp * per_warp, last = min(first + per_warp, vecs);
  float* sums = &partial[0][0][0];  // [kWarps][kGemvTcMaxRows], before the tile sums use it
  for (int m = 0; m < a.m; ++m) {
    const auto* row = reinterpret_cast<const Vec8<T>*>(static_cast<const T*>(a.x) +
                                                       static_cast<int64_t>(m) * a.k);
    float s = 0.0f;
    for (int i = first + lane; i < last; i += 32) {
      const Vec8<T> v = row[i];
#pragma unroll
      for (int j = 0; j < 8; ++j) s += to_float(v.v[j]) * to_float(v.v[j]);
    }
    s = warp_sum(s);
    if (lane == 0) sums[warp * kGemvTcMaxRows + m] = s;
  }
  __syncthreads();
  if (threadIdx.x < a.m) {
    float s = 0.0f;
    for (int w = 0; w < kWarps; ++w) s += sums[w * kGemvTcMaxRows + threadIdx.x];
    rstd[threadIdx.x] = rsqrtf(s / static_cast<float>(a.k) + a.norm_eps);
  }
  __syncthreads();
}

// The warps' partial 16 x 8 tiles (d, the mma accumulator layout) summed through shared memory:
// warp 0 gets true with the block's sums in d, the other warps false (they are done). Every thread
// of the block calls it.
template <int kWarps>
__device__ __forceinline__ bool sum_warp_tiles(float (&d)[4], float (&partial)[kWarps][32][4]) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int i = 0; i < 4; ++i) partial[warp][lane][i] = d[i];
  __syncthreads();
  if (warp != 0) return false;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
#pragma unroll
    for (int p = 1; p < kWarps; ++p) d[i] += partial[p][lane][i];
  }
  return true;
}

// block (kWarps * 32); grid (ceil(N / 16)). T: x's dtype (16-bit, int8) or out's (fp8).
template <GemvWeights W, typename T, typename OutT, int kVec, int kUnroll, int kWarps,
          bool kPreload, GemvPrologue P = GemvPrologue::kNone>
__global__ void __launch_bounds__(kWarps * 32) gemv_tc_kernel(const GemvTcArgs a) {
  using F = GemvTcFormat<W>;
  static_assert(P == GemvPrologue::kNone || W != GemvWeights::kFp8, "fp8 x comes quantized");
  constexpr int kLaneBytes = 16 * kVec;                    // weight bytes of a lane-row a chunk
  constexpr int kChunkCols = 4 * kLaneBytes / F::kWBytes;  // columns of one chunk
  constexpr int kXVecs = kVec * F::kXPerW;                 // x vectors of a lane a chunk
  __shared__ float partial[kWarps][32][4];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int g = lane >> 2, t = lane & 3;
  const int32_t k = a.k, n = a.n;
  const int64_t n0 = static_cast<int64_t>(blockIdx.x) * 16;
  const int64_t row_lo = min(n0 + g, static_cast<int64_t>(n) - 1);
  const int64_t row_hi = min(n0 + g + 8, static_cast<int64_t>(n) - 1);
  const auto* w_lo = static_cast<const uint8_t*>(a.w) + row_lo * k * F::kWBytes;
  const auto* w_hi = static_cast<const uint8_t*>(a.w) + row_hi * k * F::kWBytes;
  const bool has_token = g < a.m;
  constexpr int64_t kXRowCols = P == GemvPrologue::kSiluMul ? 2 : 1;  // x row: K or 2K values
  const auto* x_row = static_cast<const uint8_t*>(a.x) +
                      static_cast<int64_t>(has_token ? g : 0) * kXRowCols * k * F::kXBytes;
  const T* x_row_t = reinterpret_cast<const T*>(x_row);
  const int chunks = k / kChunkCols;
  constexpr int kStride = kWarps * kUnroll;
  int4 lo[kUnroll][kVec], hi[kUnroll][kVec], xv[kUnroll][kXVecs];
  const auto load_weights = [&](int c0) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + u * kWarps;
      if (c < chunks) {
        const int64_t at = static_cast<int64_t>(c) * 4 * kLaneBytes + t * kLaneBytes;
#pragma unroll
        for (int v = 0; v < kVec; ++v) {
          lo[u][v] = __ldcs(reinterpret_cast<const int4*>(w_lo + at + 16 * v));
          hi[u][v] = __ldcs(reinterpret_cast<const int4*>(w_hi + at + 16 * v));
        }
      }
    }
  };
  if constexpr (kPreload) load_weights(warp);
  pdl_wait();
  pdl_trigger();
  float rstd = 0.0f;
  if constexpr (P == GemvPrologue::kRmsNorm) {
    __shared__ float rstd_s[kGemvTcMaxRows];
    block_rstd<T, kWarps>(a, partial, rstd_s);
    rstd = rstd_s[has_token ? g : 0];
  }
  float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int c0 = warp; c0 < chunks; c0 += kStride) {
    if (!kPreload || c0 != warp) load_weights(c0);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int c = c0 + u * kWarps;
      if (c < chunks) {
        const int64_t col = static_cast<int64_t>(c) * kChunkCols + t * (kChunkCols / 4);
#pragma unroll
        for (int i = 0; i < kXVecs; ++i) {
          if constexpr (P == GemvPrologue::kNone) {
            xv[u][i] = has_token
                           ? __ldg(reinterpret_cast<const int4*>(x_row + col * F::kXBytes + 16 * i))
                           : make_int4(0, 0, 0, 0);
          } else {
            xv[u][i] = has_token ? prologue_x<P, T, int4>(a, x_row_t, col + 8 * i, rstd)
                                 : make_int4(0, 0, 0, 0);
          }
        }
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      if (c0 + u * kWarps < chunks) {
#pragma unroll
        for (int v = 0; v < kVec; ++v)
          mma_vector<W, T>(d, lo[u][v], hi[u][v], &xv[u][v * F::kXPerW]);
      }
    }
  }
  const int64_t tail = static_cast<int64_t>(chunks) * kChunkCols;
  const int tail_steps = static_cast<int>((k - tail) / F::kStepCols);
  for (int s = warp; s < tail_steps; s += kWarps)
    mma_step<W, T, P>(a, d, w_lo, w_hi, x_row, has_token,
                      tail + static_cast<int64_t>(s) * F::kStepCols, t, rstd);
  if (!sum_warp_tiles<kWarps>(d, partial)) return;
  const T* bias = static_cast<const T*>(a.bias);
  OutT* out = static_cast<OutT*>(a.out);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int token = 2 * t + (i & 1);
    const int64_t row = n0 + g + (i >= 2 ? 8 : 0);
    if (token < a.m && row < n) {
      float v = d[i];
      if constexpr (W == GemvWeights::kFp8) v *= a.x_scales[token];
      if constexpr (W != GemvWeights::k16Bit) v *= a.w_scales[row];
      if (bias != nullptr) v += to_float(bias[row]);
      if (a.gelu) v = gelu_tanh(v);
      OutT& o = out[static_cast<int64_t>(token) * n + row];
      if constexpr (std::is_same_v<OutT, T>) {
        if (a.accumulate) v = to_float(o) + to_float(from_float<T>(v));  // as a separate add would
      }
      o = from_float<OutT>(v);
    }
  }
}

// The variants measured by tests/kernel_bench/gemv_bench.cpp (docs/performance.md): loads per
// lane-row a chunk, chunks in flight, warps a block, weights loaded before pdl_wait().
struct GemvTcShape {
  int vec, unroll, warps;
  bool preload;
};
inline constexpr GemvTcShape kGemvTcShapes[kGemvTcVariants] = {
    {1, 4, 8, false}, {1, 8, 8, false}, {2, 4, 8, false}, {2, 2, 8, false},
    {1, 4, 4, false}, {2, 4, 4, false}, {1, 4, 8, true},  {2, 4, 8, true}};

template <GemvWeights W, typename T, typename OutT, int V = 0>
cudaError_t launch_gemv_tc_variant(const GemvTcArgs& a, int variant, cudaStream_t stream) {
  if constexpr (V < kGemvTcVariants) {
    if (variant != V) return launch_gemv_tc_variant<W, T, OutT, V + 1>(a, variant, stream);
    constexpr GemvTcShape s = kGemvTcShapes[V];
    return launch(gemv_tc_kernel<W, T, OutT, s.vec, s.unroll, s.warps, s.preload>,
                  dim3(static_cast<unsigned>((a.n + 15) / 16)), dim3(s.warps * 32), 0, stream, a);
  } else {
    return cudaErrorInvalidValue;
  }
}

// With a prologue (out in T): the default variants only, so the fusions cost 12 kernels a format.
template <GemvWeights W, typename T, GemvPrologue P>
cudaError_t launch_gemv_tc_prologue(const GemvTcArgs& a, int variant, cudaStream_t stream) {
  const auto go = [&]<int V>() {
    constexpr GemvTcShape s = kGemvTcShapes[V];
    return launch(gemv_tc_kernel<W, T, T, s.vec, s.unroll, s.warps, s.preload, P>,
                  dim3(static_cast<unsigned>((a.n + 15) / 16)), dim3(s.warps * 32), 0, stream, a);
  };
  switch (variant) {
    case 0:
      return go.template operator()<0>();
    case 6:
      return go.template operator()<6>();
    case 7:
      return go.template operator()<7>();
    default:
      return cudaErrorInvalidValue;
  }
}

// Launches format W's kernel for a's dtypes (16-bit T, out T or fp32).
template <GemvWeights W>
cudaError_t launch_gemv_tc_format(const GemvTcArgs& a, int variant, cudaStream_t stream) {
  cudaError_t launched = cudaSuccess;
  const cudaError_t e = dispatch_dtype(a.dtype, [&]<typename T>() {
    if constexpr (std::is_same_v<T, float>) {
      launched = cudaErrorInvalidValue;
    } else {
      if constexpr (W != GemvWeights::kFp8) {
        if (a.prologue == GemvPrologue::kRmsNorm) {
          launched = launch_gemv_tc_prologue<W, T, GemvPrologue::kRmsNorm>(a, variant, stream);
          return;
        }
        if (a.prologue == GemvPrologue::kSiluMul) {
          launched = launch_gemv_tc_prologue<W, T, GemvPrologue::kSiluMul>(a, variant, stream);
          return;
        }
        if (a.out_dtype == DType::kF32) {
          launched = launch_gemv_tc_variant<W, T, float>(a, variant, stream);
          return;
        }
      }
      launched = launch_gemv_tc_variant<W, T, T>(a, variant, stream);
    }
  });
  return e != cudaSuccess ? e : launched;
}

// One per format, in gemv_tc_{16bit,int8,fp8}.cu.
cudaError_t launch_gemv_tc_16bit(const GemvTcArgs& a, int variant, cudaStream_t stream);
cudaError_t launch_gemv_tc_int8(const GemvTcArgs& a, int variant, cudaStream_t stream);
cudaError_t launch_gemv_tc_fp8(const GemvTcArgs& a, int variant, cudaStream_t stream);

}  // namespace llmserve::cuda
