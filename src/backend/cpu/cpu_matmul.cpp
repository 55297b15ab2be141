// CpuBackend's matmuls: fp32 weights (OpenBLAS, or streamed for a few rows), 16-bit weights
// widened in registers, int8 weight-only and fp8 W8A8, each against the fp32 products.
#include <cblas.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include <omp.h>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_internal.h"
#include "common/half.h"
#include "common/status.h"

namespace llmserve {

using cpu_detail::cpu_has_avx2_f16c;
using cpu_detail::e4m3_values;
using cpu_detail::is_16bit;
using cpu_detail::require_f32;
using cpu_detail::require_weight;

namespace {

// sum_i x[i] * w[i] in fp32; the simd reduction lets the compiler vectorize the int8 -> fp32
// conversion and the sum (in a different order than a serial loop: fine for fp32 accumulation).
float dot_q8(const float* x, const int8_t* w, int64_t k) {
  float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < k; ++i) acc += x[i] * static_cast<float>(w[i]);
  return acc;
}

// Rows of x up to which matmul_q8 takes the integer dot products of cpu_matmul_q8.cpp where the
// CPU has them, or else reads the int8 weights directly; above, blocks of weight rows are
// dequantized to fp32 and multiplied by OpenBLAS (prefill).
constexpr int64_t kQ8DotMaxRows = 64;
constexpr int64_t kQ8DirectMaxRows = 4;
constexpr int64_t kDequantBlockRows = 64;

// out[M, N] = alpha * x[M, K] @ W[N, K]^T (+ bias[N]) for a weight held quantized (or in 16
// bits): blocks of `block_rows` rows of W are written as fp32 into `scratch` by
// dequantize(first_row, num_rows, dst) and multiplied by OpenBLAS.
template <typename Dequantize>
void gemm_dequantized(const float* x, int64_t m, int64_t k, int64_t n, float alpha,
                      const float* bias, float* out, std::vector<float>& scratch,
                      Dequantize&& dequantize, int64_t block_rows = kDequantBlockRows) {
  const int64_t block = std::min(block_rows, n);
  scratch.resize(static_cast<size_t>(block * k));
  for (int64_t c0 = 0; c0 < n; c0 += block) {
    const int64_t rows = std::min(block, n - c0);
    dequantize(c0, rows, scratch.data());
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m),
                static_cast<int>(rows), static_cast<int>(k), alpha, x, static_cast<int>(k),
                scratch.data(), static_cast<int>(k), 0.0f, out + c0, static_cast<int>(n));
  }
  if (bias != nullptr) {
    for (int64_t r = 0; r < m; ++r) {
      for (int64_t c = 0; c < n; ++c) out[r * n + c] += bias[c];
    }
  }
}

}  // namespace

namespace {

// Rows of x that matmul multiplies by streaming each weight row once (matmul_streamed).
constexpr int64_t kMaxStreamedRows = 8;
constexpr int64_t kStreamedBlock = 16;  // weight rows per call of streamed_block
// 16-bit weights: rows of x up to which matmul streams the weights (matmul16_streamed), and the
// fp32 bytes of one widened weight tile above that (prefill). Measured on GPT-2 124M's layers (2
// AVX2 cores): streaming beats widened tiles into sgemm up to 64 rows (72 against 86 ms for 12
// layers at 64 rows) and loses at 128 (171 against 148); tiles of 8 MB beat 256 rows (233 against
// 278 ms at 256 rows; fp32 weights: 226).
constexpr int64_t kStreamed16MaxRows = 64;
constexpr int64_t kWidenTileBytes = 8 << 20;
// int4 weight-only: rows of x up to which matmul_int4 streams the codes (matmul_int4_streamed);
// above, widened tiles of kWidenTileBytes into OpenBLAS, as for 16-bit weights. Measured on GPT-2
// 124M's layers (2 cores, shared): streaming beat 64-row dequantized blocks into sgemm at every
// row count up to 64 (64 rows: 357 against 581 ms for 12 layers; 32 rows: 222 against 324).
constexpr int64_t kInt4StreamedMaxRows = 64;

// Eight floats: one AVX2 register in the x86-64-v3 clone, two SSE registers in the baseline.
using Float8 = float __attribute__((vector_size(32)));
inline Float8 load8(const float* p) {
  Float8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// out[r, c] = x[r, :] · w[c, :] for the M rows of x and weight rows [c0, c0 + rows): eight partial
// sums per (r, c) in registers, each weight vector loaded once for all M rows (x stays in L1).
template <int M>
LLMSERVE_CPU_CLONES void streamed_block(const float* x, const float* w, int64_t c0, int64_t rows,
                                        int64_t n, int64_t k, float* out) {
  for (int64_t c = c0; c < c0 + rows; ++c) {
    const float* wr = w + c * k;
    Float8 acc[M] = {};
    int64_t i = 0;
    for (; i + 8 <= k; i += 8) {
      const Float8 wv = load8(wr + i);
      for (int r = 0; r < M; ++r) acc[r] += load8(x + r * k + i) * wv;
    }
    for (int r = 0; r < M; ++r) {
      const Float8& a = acc[r];
      float sum = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
      for (int64_t j = i; j < k; ++j) sum += x[r * k + j] * wr[j];
      out[r * n + c] = sum;
    }
  }
}

// out[m, n] = x[m, k] · w[n, k]^T for 2 <= m <= kMaxStreamedRows, reading the weights once.
// OpenBLAS's sgemm packs the weight matrix before multiplying, which at a few rows costs more than
// the product itself (GPT-2 124M: a 5-token step took 61 ms where a 1-token sgemv step takes 22):
// the few-row products are small decode batches and speculative decoding's verify steps, which
// are bound by the weight read like a decode.
template <int M>
void matmul_streamed_m(const float* x, const float* w, int64_t n, int64_t k, float* out) {
  const int64_t blocks = (n + kStreamedBlock - 1) / kStreamedBlock;
#pragma omp parallel for schedule(static) if (n * k > (1 << 16))
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t c0 = b * kStreamedBlock;
    streamed_block<M>(x, w, c0, std::min(kStreamedBlock, n - c0), n, k, out);
  }
}

// f(std::integral_constant<int, M>{}) for M = min(m, kMaxStreamedRows), m >= 1: a row count as
// the template argument of the streamed kernels, which keep one accumulator set per row.
template <int M = 1, typename F>
void with_row_count(int64_t m, F&& f) {
  if constexpr (M == kMaxStreamedRows) {
    f(std::integral_constant<int, M>{});
  } else if (m <= M) {
    f(std::integral_constant<int, M>{});
  } else {
    with_row_count<M + 1>(m, f);
  }
}

void matmul_streamed(const float* x, int64_t m, const float* w, int64_t n, int64_t k, float* out) {
  with_row_count(m, [&](auto rows) { matmul_streamed_m<rows()>(x, w, n, k, out); });
}

// --- 16-bit weights ---------------------------------------------------------------------------
// F16 / BF16 weight rows are widened to fp32 as they are read: F16C's vcvtph2ps for fp16, a 16-bit
// left shift for bf16 (whose bits are fp32's upper half); products and sums are fp32. The fast
// kernels are compiled for AVX2 + FMA + F16C alone and chosen at run time, not cloned like the
// loops above: F16C's conversion has no portable spelling for the compiler to vectorize into, so
// they are written in intrinsics. The fallback (older CPUs, other architectures) widens each
// weight row with common/half.h into a buffer first.

std::atomic<bool> f16c_kernels_enabled{true};

bool use_f16c_kernels() {
  return cpu_has_avx2_f16c() && f16c_kernels_enabled.load(std::memory_order_relaxed);
}

template <bool kBf16>
inline float widen1(uint16_t h) {
  return kBf16 ? bf16_to_float(h) : fp16_to_float(h);
}

#ifdef LLMSERVE_CPU_X86

template <bool kBf16>
LLMSERVE_AVX2_F16C inline __m256 widen8(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if constexpr (kBf16) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  } else {
    return _mm256_cvtph_ps(h);
  }
}

// ((a0 + a4) + (a1 + a5)) + ((a2 + a6) + (a3 + a7)), as the fp32 kernels add their lanes.
LLMSERVE_AVX2_F16C inline float sum8(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_shuffle_ps(s, s, _MM_SHUFFLE(2, 3, 0, 1)));  // s0+s1, s2+s3
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehl_ps(t, t)));
}

// streamed_block over 16-bit weights: each weight vector is loaded and widened once for all M
// rows of x. An FMA waits four cycles for the one before it on the same accumulator and two can
// start a cycle, so a core needs about eight independent sums in flight: each of the M rows keeps
// U accumulators (M x U >= 8 up to seven rows, within the 16 vector registers), summed at the end.
// At four rows, one accumulator a row ran at 48 GFLOP/s on one core of the build VM, two at 55.
template <int M, bool kBf16>
LLMSERVE_AVX2_F16C void streamed_block16_avx2(const float* x, const uint16_t* w, int64_t c0,
                                              int64_t rows, int64_t n, int64_t k, float* out) {
  constexpr int U = M == 1 ? 8 : M == 2 ? 4 : M <= 4 ? 2 + (M == 3) : M < 8 ? 2 : 1;
  for (int64_t c = c0; c < c0 + rows; ++c) {
    const uint16_t* wr = w + c * k;
    __m256 acc[M][U];
    for (int r = 0; r < M; ++r) {
      for (int u = 0; u < U; ++u) acc[r][u] = _mm256_setzero_ps();
    }
    int64_t i = 0;
    for (; i + 8 * U <= k; i += 8 * U) {
      for (int u = 0; u < U; ++u) {
        const __m256 wv = widen8<kBf16>(wr + i + 8 * u);
        for (int r = 0; r < M; ++r) {
          acc[r][u] = _mm256_fmadd_ps(_mm256_loadu_ps(x + r * k + i + 8 * u), wv, acc[r][u]);
        }
      }
    }
    for (; i + 8 <= k; i += 8) {
      const __m256 wv = widen8<kBf16>(wr + i);
      for (int r = 0; r < M; ++r)
        acc[r][0] = _mm256_fmadd_ps(_mm256_loadu_ps(x + r * k + i), wv, acc[r][0]);
    }
    for (int r = 0; r < M; ++r) {
      __m256 a = acc[r][0];
      for (int u = 1; u < U; ++u) a = _mm256_add_ps(a, acc[r][u]);
      float sum = sum8(a);
      for (int64_t j = i; j < k; ++j) sum += x[r * k + j] * widen1<kBf16>(wr[j]);
      out[r * n + c] = sum;
    }
  }
}

// dst[i] = the fp32 value of src[i], i < count.
template <bool kBf16>
LLMSERVE_AVX2_F16C void widen_avx2(const uint16_t* src, int64_t count, float* dst) {
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) _mm256_storeu_ps(dst + i, widen8<kBf16>(src + i));
  for (; i < count; ++i) dst[i] = widen1<kBf16>(src[i]);
}
#endif

template <bool kBf16>
void widen_scalar(const uint16_t* src, int64_t count, float* dst) {
  for (int64_t i = 0; i < count; ++i) dst[i] = widen1<kBf16>(src[i]);
}

// The fallback of streamed_block16_avx2, for mm rows of x: each weight row widened into a buffer,
// then plain fp32 dot products.
template <bool kBf16>
void streamed_block16_scalar(int64_t mm, const float* x, const uint16_t* w, int64_t c0,
                             int64_t rows, int64_t n, int64_t k, float* out) {
  std::vector<float> row(static_cast<size_t>(k));
  for (int64_t c = c0; c < c0 + rows; ++c) {
    widen_scalar<kBf16>(w + c * k, k, row.data());
    for (int64_t r = 0; r < mm; ++r) {
      float sum = 0.0f;
      for (int64_t i = 0; i < k; ++i) sum += x[r * k + i] * row[static_cast<size_t>(i)];
      out[r * n + c] = sum;
    }
  }
}

// Weight rows [c0, c0 + rows) against the mm <= kMaxStreamedRows rows of x: one call of the
// kernel for mm, fast or fallback.
template <bool kBf16>
void streamed_block16(int64_t mm, bool fast, const float* x, const uint16_t* w, int64_t c0,
                      int64_t rows, int64_t n, int64_t k, float* out) {
#ifdef LLMSERVE_CPU_X86
  if (fast) {
    return with_row_count(
        mm, [&](auto count) { streamed_block16_avx2<count(), kBf16>(x, w, c0, rows, n, k, out); });
  }
#endif
  (void)fast;
  streamed_block16_scalar<kBf16>(mm, x, w, c0, rows, n, k, out);
}

// out[m, n] = x[m, k] · w[n, k]^T for 16-bit w, reading the weights from memory once: the threads
// split the weight into blocks of kStreamedBlock rows, and each block (24 KB at K = 768), once
// read, stays in cache while every chunk of eight rows of x passes over it. Decode steps (m = 1
// included: OpenBLAS has no 16-bit sgemv) and small batches, up to kStreamed16MaxRows.
template <bool kBf16>
void matmul16_streamed(const float* x, int64_t m, const uint16_t* w, int64_t n, int64_t k,
                       float* out) {
  const int64_t blocks = (n + kStreamedBlock - 1) / kStreamedBlock;
  const bool fast = use_f16c_kernels();
#pragma omp parallel for schedule(static) if (n * k > (1 << 16))
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t c0 = b * kStreamedBlock, rows = std::min(kStreamedBlock, n - c0);
    for (int64_t r0 = 0; r0 < m; r0 += kMaxStreamedRows) {
      streamed_block16<kBf16>(std::min(kMaxStreamedRows, m - r0), fast, x + r0 * k, w, c0, rows, n,
                              k, out + r0 * n);
    }
  }
}

// The rows [c0, c0 + rows) of a 16-bit weight [N, K] as fp32, split over the threads.
template <bool kBf16>
void widen_rows(const uint16_t* w, int64_t c0, int64_t rows, int64_t k, float* dst) {
  const bool fast = use_f16c_kernels();
#pragma omp parallel for schedule(static) if (rows * k > (1 << 16))
  for (int64_t c = 0; c < rows; ++c) {
    const uint16_t* src = w + (c0 + c) * k;
#ifdef LLMSERVE_CPU_X86
    if (fast) {
      widen_avx2<kBf16>(src, k, dst + c * k);
      continue;
    }
#endif
    widen_scalar<kBf16>(src, k, dst + c * k);
  }
  (void)fast;
}

}  // namespace

bool set_cpu_f16c_kernels(bool enabled) {
  return f16c_kernels_enabled.exchange(enabled);
}

bool cpu_f16c_kernels_available() {
  return cpu_has_avx2_f16c();
}

void CpuBackend::matmul(Tensor x, Tensor w, Tensor bias, Tensor out) {
  require_weight(w, "matmul weight");
  const int64_t m = x.dim(0), k = x.dim(-1), n = w.dim(0);
  if (w.dim(1) != k || out.numel() != m * n) {
    fail(StatusCode::kInternal, "matmul shapes: x {} w {} out {}", x.shape_string(),
         w.shape_string(), out.shape_string());
  }
  float* o = out.as<float>();
  if (is_16bit(w.dtype)) {
    const bool bf16 = w.dtype == DType::kBF16;
    const auto* ws = w.as<uint16_t>();
    const float* bs = bias.data != nullptr ? bias.as<float>() : nullptr;
    if (m <= kStreamed16MaxRows) {
      // Decode and small batches: bound by the weight read, which 16 bits halve.
      bf16 ? matmul16_streamed<true>(x.as<float>(), m, ws, n, k, o)
           : matmul16_streamed<false>(x.as<float>(), m, ws, n, k, o);
    } else {
      // Prefill: compute-bound, so OpenBLAS's sgemm on widened tiles of the weight, each as large
      // as kWidenTileBytes of fp32 allows: sgemm packs x again for every call, and its threads
      // split a wide tile better.
      const int64_t tile = std::max<int64_t>(kStreamedBlock, kWidenTileBytes / (4 * k));
      gemm_dequantized(
          x.as<float>(), m, k, n, 1.0f, bs, o, q8_scratch_,
          [&](int64_t c0, int64_t rows, float* dst) {
            bf16 ? widen_rows<true>(ws, c0, rows, k, dst) : widen_rows<false>(ws, c0, rows, k, dst);
          },
          tile);
      return;  // gemm_dequantized added the bias
    }
    if (bs != nullptr) {
      for (int64_t r = 0; r < m; ++r) {
        for (int64_t c = 0; c < n; ++c) o[r * n + c] += bs[c];
      }
    }
    return;
  }
  if (m == 1) {
    cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(n), static_cast<int>(k), 1.0f,
                w.as<float>(), static_cast<int>(k), x.as<float>(), 1, 0.0f, o, 1);
  } else if (m <= kMaxStreamedRows) {
    matmul_streamed(x.as<float>(), m, w.as<float>(), n, k, o);
  } else {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(n),
                static_cast<int>(k), 1.0f, x.as<float>(), static_cast<int>(k), w.as<float>(),
                static_cast<int>(k), 0.0f, o, static_cast<int>(n));
  }
  if (bias.data != nullptr) {
    const float* bs = bias.as<float>();
    for (int64_t r = 0; r < m; ++r) {
      for (int64_t c = 0; c < n; ++c) o[r * n + c] += bs[c];
    }
  }
}

void CpuBackend::matmul_q8(Tensor x, Tensor w, Tensor scales, Tensor bias, Tensor out) {
  require_f32(x, "matmul_q8 input");
  require_f32(scales, "matmul_q8 scales");
  if (w.dtype != DType::kI8)
    fail(StatusCode::kInternal, "cpu backend: matmul_q8 weight must be I8, got {}",
         dtype_name(w.dtype));
  const int64_t m = x.dim(0), k = x.dim(-1), n = w.dim(0);
  if (w.dim(1) != k || out.numel() != m * n || scales.numel() != n ||
      (bias.data != nullptr && bias.numel() != n)) {
    fail(StatusCode::kInternal, "matmul_q8 shapes: x {} w {} scales {} out {}", x.shape_string(),
         w.shape_string(), scales.shape_string(), out.shape_string());
  }
  const float* xs = x.as<float>();
  const int8_t* ws = w.as<int8_t>();
  const float* ss = scales.as<float>();
  const float* bs = bias.data != nullptr ? bias.as<float>() : nullptr;
  float* o = out.as<float>();
  // Decode: memory-bound on the weights, which int8 makes 4x smaller than fp32. Integer dot
  // products with x rounded to int8 where the CPU has them (cpu_matmul_q8.cpp), else each weight
  // widened to fp32.
  if (m <= kQ8DotMaxRows &&
      cpu_detail::matmul_q8_int8_dot(xs, m, k, ws, ss, bs, n, q8_input_scratch_, o)) {
    return;
  }
  if (m <= kQ8DirectMaxRows) {
#pragma omp parallel for if (n * k > (1 << 16))
    for (int64_t c = 0; c < n; ++c) {
      const int8_t* row = ws + c * k;
      for (int64_t r = 0; r < m; ++r) {
        o[r * n + c] = dot_q8(xs + r * k, row, k) * ss[c] + (bs != nullptr ? bs[c] : 0.0f);
      }
    }
    return;
  }
  gemm_dequantized(
      xs, m, k, n, 1.0f, bs, o, q8_scratch_,
      [&](int64_t c0, int64_t rows, float* dst) {
#pragma omp parallel for if (rows * k > (1 << 16))
        for (int64_t c = 0; c < rows; ++c) {
          const int8_t* src = ws + (c0 + c) * k;
          const float s = ss[c0 + c];
          for (int64_t i = 0; i < k; ++i) dst[c * k + i] = static_cast<float>(src[i]) * s;
        }
      },
      std::max<int64_t>(kStreamedBlock, kWidenTileBytes / (4 * k)));
}

void CpuBackend::matmul_int4(Tensor x, Tensor w, Tensor scales, Tensor bias, Tensor out) {
  require_f32(x, "matmul_int4 input");
  require_weight(scales, "matmul_int4 scales");
  const int64_t m = x.dim(0), k = x.dim(-1), n = w.dim(0);
  const int64_t pairs = scales.ndim == 2 ? scales.dim(1) : 0;
  if (w.dtype != DType::kI32 || w.ndim != 2 || k % 32 != 0 || w.dim(1) != k / 8 ||
      scales.dim(0) != n || pairs < 2 || pairs % 2 != 0 || k % (pairs / 2) != 0 ||
      out.numel() != m * n || (bias.data != nullptr && bias.numel() != n)) {
    fail(StatusCode::kInternal, "matmul_int4 shapes: x {} w {} ({}) scales {} out {}",
         x.shape_string(), w.shape_string(), dtype_name(w.dtype), scales.shape_string(),
         out.shape_string());
  }
  const cpu_detail::Int4Weight weight{w.as<uint32_t>(), scales.data, scales.dtype, n, k,
                                      k / (pairs / 2)};
  const float* bs = bias.data != nullptr ? bias.as<float>() : nullptr;
  float* o = out.as<float>();
  if (m <= kInt4StreamedMaxRows && weight.group % 32 == 0) {
    // Decode: bound by the weight read, which 4-bit codes make a quarter of 16-bit weights.
    cpu_detail::matmul_int4_streamed(x.as<float>(), m, weight, int4_x_scratch_, o);
    if (bs != nullptr) {
      for (int64_t r = 0; r < m; ++r) {
        for (int64_t c = 0; c < n; ++c) o[r * n + c] += bs[c];
      }
    }
    return;
  }
  gemm_dequantized(
      x.as<float>(), m, k, n, 1.0f, bs, o, q8_scratch_,
      [&](int64_t c0, int64_t rows, float* dst) {
        cpu_detail::dequantize_int4_rows(weight, c0, rows, dst);
      },
      std::max<int64_t>(kStreamedBlock, kWidenTileBytes / (4 * k)));
}

void CpuBackend::quantize_fp8_rows(Tensor x, const Fp8Rows& out) {
  require_f32(x, "quantize_fp8_rows input");
  const int64_t m = x.dim(0), k = x.dim(-1);
  if (out.q.dtype != DType::kF8E4M3 || out.q.numel() != m * k || out.scales.dtype != DType::kF32 ||
      out.scales.numel() != m) {
    fail(StatusCode::kInternal, "quantize_fp8_rows: x {} codes {} ({}) scales {} ({})",
         x.shape_string(), out.q.shape_string(), dtype_name(out.q.dtype), out.scales.shape_string(),
         dtype_name(out.scales.dtype));
  }
  const float* xs = x.as<float>();
  auto* q = out.q.as<uint8_t>();
  float* scales = out.scales.as<float>();
#pragma omp parallel for if (m * k > (1 << 16))
  for (int64_t r = 0; r < m; ++r) {
    const float* row = xs + r * k;
    float amax = 0.0f;
    for (int64_t i = 0; i < k; ++i) amax = std::max(amax, std::abs(row[i]));
    const float scale = amax / kE4m3Max;
    scales[r] = scale;
    // x / scale, not x * (1 / scale): the CUDA kernels divide too, so both pick the same codes.
    for (int64_t i = 0; i < k; ++i) q[r * k + i] = scale > 0.0f ? float_to_e4m3(row[i] / scale) : 0;
  }
}

void CpuBackend::matmul_fp8(const Fp8Rows& x, Tensor w, Tensor w_scales, Tensor bias, Tensor out) {
  require_f32(x.scales, "matmul_fp8 input scales");
  require_f32(w_scales, "matmul_fp8 weight scales");
  require_f32(out, "matmul_fp8 output");
  if (w.dtype != DType::kF8E4M3 || x.q.dtype != DType::kF8E4M3) {
    fail(StatusCode::kInternal,
         "cpu backend: matmul_fp8 takes F8_E4M3 weights and inputs, got {} and {}",
         dtype_name(w.dtype), dtype_name(x.q.dtype));
  }
  const int64_t m = x.q.dim(0), k = x.q.dim(-1), n = w.dim(0);
  if (w.dim(1) != k || x.scales.numel() != m || out.numel() != m * n || w_scales.numel() != n ||
      (bias.data != nullptr && bias.numel() != n)) {
    fail(StatusCode::kInternal, "matmul_fp8 shapes: x {} x scales {} w {} w scales {} out {}",
         x.q.shape_string(), x.scales.shape_string(), w.shape_string(), w_scales.shape_string(),
         out.shape_string());
  }
  // The codes' values, unscaled: their products are the exact e4m3 x e4m3 products a tensor core
  // sums in fp32; the scales multiply each finished sum.
  const std::array<float, 256>& values = e4m3_values();
  const auto* xq = x.q.as<uint8_t>();
  fp8_x_scratch_.resize(static_cast<size_t>(m * k));
  float* xv = fp8_x_scratch_.data();
#pragma omp parallel for if (m * k > (1 << 16))
  for (int64_t i = 0; i < m * k; ++i) xv[i] = values[xq[i]];
  const auto* codes = w.as<uint8_t>();
  float* o = out.as<float>();
  gemm_dequantized(xv, m, k, n, 1.0f, nullptr, o, q8_scratch_,
                   [&](int64_t c0, int64_t rows, float* dst) {
                     const uint8_t* src = codes + c0 * k;
#pragma omp parallel for if (rows * k > (1 << 16))
                     for (int64_t i = 0; i < rows * k; ++i) dst[i] = values[src[i]];
                   });
  const float* sx = x.scales.as<float>();
  const float* sw = w_scales.as<float>();
  const float* bs = bias.data != nullptr ? bias.as<float>() : nullptr;
#pragma omp parallel for if (m * n > (1 << 16))
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t c = 0; c < n; ++c)
      o[r * n + c] = o[r * n + c] * sx[r] * sw[c] + (bs != nullptr ? bs[c] : 0.0f);
  }
}

}  // namespace llmserve
