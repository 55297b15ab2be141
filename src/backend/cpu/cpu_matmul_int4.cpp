// The kernels of CpuBackend::matmul_int4 (int4 weight-only; cpu_matmul.cpp picks one by row
// count): a streamed GEMV for decode-sized inputs, which reads each packed code once, and weight
// rows dequantized to fp32 for OpenBLAS above that.
//
// The streamed GEMV sums per group before scaling: for output c and row r of x,
//   out[r, c] = sum_g scale[c, g] * (sum_{i in g} q[c, i] * x[r, i] - zero[c, g] * xsum[r, g]),
// with xsum[r, g] = sum_{i in g} x[r, i] computed once per call, so the codes are widened to fp32
// as they are (no zero subtracted) and each group's scale is one multiply. Products and sums are
// fp32. The AVX2 + FMA kernel (chosen at run time, like the 16-bit kernels in cpu_matmul.cpp) loads
// eight stored words, 64 codes, a vector: lane l holds word l, and nibble n of all eight lanes is
// one AND with 0xF << 4n (n = 7: a shift by 28) and one conversion, giving q * 16^n. x is arranged
// once per call to match (arrange_x: for each nibble a vector of the eight words' columns, times
// 16^-n, a power of two, so every product equals q * x), and one FMA per nibble does the rest.
// Inside a whole 128-column block, stored word 4t + i is word t of the 32-column step i
// (common/int4.h), so both of the block's vectors hold step l % 4 in lane l and a group (a multiple
// of 32 columns) is a fixed set of lanes: the block's partial sums are scaled lane by lane, once.
// The columns after the last whole block (stored in order) go through a broadcast-and-shift
// kernel. The portable fallback unpacks a row into fp32 codes and sums each group plainly.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include <omp.h>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_internal.h"
#include "common/half.h"
#include "common/int4.h"

namespace llmserve {

namespace {

std::atomic<bool> int4_kernels_enabled{true};

using cpu_detail::Int4Weight;

constexpr int64_t kBlockWords = 16;     // a whole 128-column block: 4 steps of 4 words
constexpr int64_t kRowsPerTask = 16;    // weight rows per OpenMP task
constexpr int64_t kMaxRowsPerPass = 8;  // rows of x per pass of a kernel over a weight row

// The (scale, zero) pairs of weight rows [c0, c0 + rows) as fp32: dst [rows, 2 * k / group].
void load_pairs(const Int4Weight& w, int64_t c0, int64_t rows, float* dst) {
  const int64_t per_row = 2 * (w.k / w.group), first = c0 * per_row, count = rows * per_row;
  for (int64_t i = 0; i < count; ++i) {
    switch (w.scale_dtype) {
      case DType::kF16:
        dst[i] = fp16_to_float(static_cast<const uint16_t*>(w.pairs)[first + i]);
        break;
      case DType::kBF16:
        dst[i] = bf16_to_float(static_cast<const uint16_t*>(w.pairs)[first + i]);
        break;
      default:
        dst[i] = static_cast<const float*>(w.pairs)[first + i];
        break;
    }
  }
}

// The codes of weight row c in column order, as fp32 (0..15): k values.
void unpack_row(const Int4Weight& w, int64_t c, float* q) {
  const uint32_t* row = w.codes + c * (w.k / 8);
  for (int64_t j = 0; j < w.k / 8; ++j) {
    const uint32_t word = row[int4_word_position(j, w.k)];
    for (int b = 0; b < 8; ++b)
      q[8 * j + b] = static_cast<float>((word >> (4 * kInt4Nibble[b])) & 15u);
  }
}

// What every kernel call reads besides the weight: x [m, k], its group sums xsum [m, k / group],
// and (AVX2) x arranged by arrange_x, xa [m, 128 * (k / 128)].
struct Int4Input {
  const float* x;
  const float* xsum;
  const float* xa;
  int64_t m;
};

// Per row of x, per whole 128-column block: for its two runs of eight stored words (h = 0, 1) and
// each nibble n, eight floats whose lane l is the column of nibble n of stored word 8h + l, times
// 16^-n for n < 7 (the kernel masks those in place) and 1 for n = 7 (shifted down).
void arrange_x(const float* x, int64_t m, int64_t k, float* xa) {
  const int64_t blocks = k / 128;
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t b = 0; b < blocks; ++b) {
      float* dst = xa + r * blocks * 128 + b * 128;
      for (int64_t p = 0; p < kBlockWords; ++p) {
        // Stored word p of the block is word 4 * (p % 4) + p / 4 (int4_word_position's inverse).
        const float* src = x + r * k + b * 128 + 8 * (4 * (p % 4) + p / 4);
        const int64_t h = p / 8, l = p % 8;
        for (int col = 0; col < 8; ++col) {
          const int n = kInt4Nibble[col];
          const float factor = n == 7 ? 1.0f : 1.0f / static_cast<float>(1 << (4 * n));
          dst[h * 64 + n * 8 + l] = src[col] * factor;
        }
      }
    }
  }
}

void sum_groups(const float* x, int64_t m, int64_t k, int64_t group, float* xsum) {
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t g = 0; g < k / group; ++g) {
      float s = 0.0f;
      for (int64_t i = 0; i < group; ++i) s += x[r * k + g * group + i];
      xsum[r * (k / group) + g] = s;
    }
  }
}

// sum_g scale[g] * zero[g] * xsum[g] over a row's (scale, zero) pairs: the zero points' share.
float zero_part(const float* pairs, const float* xsum, int64_t groups) {
  float s = 0.0f;
  for (int64_t g = 0; g < groups; ++g) s += pairs[2 * g] * pairs[2 * g + 1] * xsum[g];
  return s;
}

// The fallback of streamed_block_int4_avx2: weight rows [c0, c0 + rows), whose pairs (fp32) are
// `pairs`, against the in.m rows of x, each weight row unpacked to fp32 codes once.
void streamed_block_int4_scalar(const Int4Input& in, const Int4Weight& w, int64_t c0, int64_t rows,
                                const float* pairs, float* out) {
  const int64_t k = w.k, groups = k / w.group;
  std::vector<float> q(static_cast<size_t>(k));
  for (int64_t c = c0; c < c0 + rows; ++c) {
    const float* sz = pairs + (c - c0) * 2 * groups;
    unpack_row(w, c, q.data());
    for (int64_t r = 0; r < in.m; ++r) {
      const float* xr = in.x + r * k;
      float sum = 0.0f;
      for (int64_t g = 0; g < groups; ++g) {
        float acc = 0.0f;
        for (int64_t i = g * w.group; i < (g + 1) * w.group; ++i)
          acc += q[static_cast<size_t>(i)] * xr[i];
        sum += sz[2 * g] * acc;
      }
      out[r * w.n + c] = sum - zero_part(sz, in.xsum + r * groups, groups);
    }
  }
}

#ifdef LLMSERVE_CPU_X86
LLMSERVE_AVX2_F16C inline float hsum8(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

// load_pairs with F16C's conversion.
LLMSERVE_AVX2_F16C void load_pairs_avx2(const Int4Weight& w, int64_t c0, int64_t rows, float* dst) {
  const int64_t per_row = 2 * (w.k / w.group), first = c0 * per_row, count = rows * per_row;
  if (w.scale_dtype == DType::kF32) {
    std::memcpy(dst, static_cast<const float*>(w.pairs) + first, sizeof(float) * count);
    return;
  }
  const uint16_t* src = static_cast<const uint16_t*>(w.pairs) + first;
  const bool bf16 = w.scale_dtype == DType::kBF16;
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm256_storeu_ps(dst + i,
                     bf16 ? _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16))
                          : _mm256_cvtph_ps(h));
  }
  for (; i < count; ++i) dst[i] = bf16 ? bf16_to_float(src[i]) : fp16_to_float(src[i]);
}

// The scale of each lane of a whole block's vectors (lane l is step l % 4 of block b), from a
// row's (scale, zero) pairs.
LLMSERVE_AVX2_F16C inline __m256 block_scales(const float* pairs, int64_t group, int64_t b) {
  if (group % 128 == 0) return _mm256_set1_ps(pairs[2 * (b * 128 / group)]);
  const float s0 = pairs[2 * ((128 * b) / group)], s1 = pairs[2 * ((128 * b + 32) / group)],
              s2 = pairs[2 * ((128 * b + 64) / group)], s3 = pairs[2 * ((128 * b + 96) / group)];
  return _mm256_setr_ps(s0, s1, s2, s3, s0, s1, s2, s3);
}

// acc[r] += the products of nibble vector q (nibble n of run h) with the rows of x arranged.
template <int M, int U>
LLMSERVE_AVX2_F16C inline void fma_nibble(__m256 q, const float* xa, int64_t xa_stride, int at,
                                          __m256 (&part)[M][U], int u) {
  for (int r = 0; r < M; ++r)
    part[r][u] = _mm256_fmadd_ps(q, _mm256_loadu_ps(xa + r * xa_stride + at), part[r][u]);
}

// Weight rows [c0, c0 + rows) against M rows of x (in.m == M). Each row of x keeps U partial sums
// a block (an FMA waits four cycles for the last on its register: about eight in flight keep a
// core busy, as in cpu_matmul.cpp's 16-bit kernels), scaled into one total per row and block.
template <int M>
LLMSERVE_AVX2_F16C void streamed_block_int4_avx2(const Int4Input& in, const Int4Weight& w,
                                                 int64_t c0, int64_t rows, const float* pairs,
                                                 float* out) {
  constexpr int U = M == 1 ? 4 : M <= 4 ? 2 : 1;
  const int64_t k = w.k, words = k / 8, groups = k / w.group, blocks = k / 128;
  const int64_t xa_stride = blocks * 128;
  const __m256i low4 = _mm256_set1_epi32(15);
  // Lane c of a broadcast word: column c's nibble moved to the bottom (common/int4.h's order).
  const __m256i shifts = _mm256_setr_epi32(0, 16, 4, 20, 8, 24, 12, 28);
  for (int64_t c = c0; c < c0 + rows; ++c) {
    const uint32_t* row = w.codes + c * words;
    const float* sz = pairs + (c - c0) * 2 * groups;
    __m256 total[M];
    for (int r = 0; r < M; ++r) total[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < blocks; ++b) {
      __m256 part[M][U];
      for (int r = 0; r < M; ++r) {
        for (int u = 0; u < U; ++u) part[r][u] = _mm256_setzero_ps();
      }
      const float* xa = in.xa + b * 128;
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) {
        const __m256i v =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + b * kBlockWords + 8 * h));
#pragma GCC unroll 7
        for (int n = 0; n < 7; ++n) {
          const __m256 q =
              _mm256_cvtepi32_ps(_mm256_and_si256(v, _mm256_set1_epi32(15 << (4 * n))));
          fma_nibble<M, U>(q, xa, xa_stride, h * 64 + n * 8, part, (8 * h + n) % U);
        }
        const __m256 q7 = _mm256_cvtepi32_ps(_mm256_srli_epi32(v, 28));
        fma_nibble<M, U>(q7, xa, xa_stride, h * 64 + 56, part, (8 * h + 7) % U);
      }
      const __m256 s = block_scales(sz, w.group, b);
      for (int r = 0; r < M; ++r) {
        __m256 p = part[r][0];
        for (int u = 1; u < U; ++u) p = _mm256_add_ps(p, part[r][u]);
        total[r] = _mm256_fmadd_ps(p, s, total[r]);
      }
    }
    // The steps after the last whole block, their words in column order.
    for (int64_t j0 = blocks * kBlockWords; j0 < words; j0 += 4) {
      __m256 acc[M];
      for (int r = 0; r < M; ++r) acc[r] = _mm256_setzero_ps();
      for (int64_t j = j0; j < j0 + 4; ++j) {
        const __m256i v = _mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(row[j])), shifts);
        const __m256 q = _mm256_cvtepi32_ps(_mm256_and_si256(v, low4));
        for (int r = 0; r < M; ++r)
          acc[r] = _mm256_fmadd_ps(q, _mm256_loadu_ps(in.x + r * k + 8 * j), acc[r]);
      }
      const __m256 s = _mm256_set1_ps(sz[2 * (8 * j0 / w.group)]);
      for (int r = 0; r < M; ++r) total[r] = _mm256_fmadd_ps(acc[r], s, total[r]);
    }
    for (int r = 0; r < M; ++r) {
      out[r * w.n + c] = hsum8(total[r]) - zero_part(sz, in.xsum + r * groups, groups);
    }
  }
}
#endif

// Weight rows [c0, c0 + rows) (their pairs as fp32: `pairs`) against the in.m <= kMaxRowsPerPass
// rows of x: the kernel for in.m, fast or fallback.
void streamed_block_int4(const Int4Input& in, bool fast, const Int4Weight& w, int64_t c0,
                         int64_t rows, const float* pairs, float* out) {
#ifdef LLMSERVE_CPU_X86
  using Kernel =
      void (*)(const Int4Input&, const Int4Weight&, int64_t, int64_t, const float*, float*);
  static constexpr Kernel kernels[kMaxRowsPerPass] = {
      streamed_block_int4_avx2<1>, streamed_block_int4_avx2<2>, streamed_block_int4_avx2<3>,
      streamed_block_int4_avx2<4>, streamed_block_int4_avx2<5>, streamed_block_int4_avx2<6>,
      streamed_block_int4_avx2<7>, streamed_block_int4_avx2<8>};
  if (fast) return kernels[in.m - 1](in, w, c0, rows, pairs, out);
#endif
  (void)fast;
  streamed_block_int4_scalar(in, w, c0, rows, pairs, out);
}

// Splits w's rows into tasks of kRowsPerTask over the threads and hands each task's rows with
// their (scale, zero) pairs as fp32 to body(c0, rows, pairs).
template <typename Body>
void for_each_row_task(const Int4Weight& w, bool fast, Body&& body) {
  const int64_t groups = w.k / w.group, tasks = (w.n + kRowsPerTask - 1) / kRowsPerTask;
#pragma omp parallel if (w.n * w.k > (1 << 16))
  {
    std::vector<float> pairs(static_cast<size_t>(kRowsPerTask * 2 * groups));
#pragma omp for schedule(static)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t c0 = t * kRowsPerTask, rows = std::min(kRowsPerTask, w.n - c0);
#ifdef LLMSERVE_CPU_X86
      fast ? load_pairs_avx2(w, c0, rows, pairs.data()) : load_pairs(w, c0, rows, pairs.data());
#else
      (void)fast;
      load_pairs(w, c0, rows, pairs.data());
#endif
      body(c0, rows, pairs.data());
    }
  }
}

// --- Integer dot products (x rounded to int8) --------------------------------------------------
// Where the CPU has the byte dot-product instructions (cpu_matmul_q8.cpp) and a row is whole
// 128-column blocks, x is rounded to int8 in blocks of 32 columns (one 32-column step each) and the
// codes enter the dot products as they are: a stored vector's bytes masked with 0x0F give one code
// a byte (nibbles 0, 2, 4, 6 of its words), shifted down by 4 the others; vpdpbusd (or AVX2's pair
// of instructions) multiplies them, unsigned, by x's bytes arranged to match (arrange_xq) and sums
// each word's eight products into its int32 lane. Lane l of both of a block's vectors is step l % 4
// (common/int4.h), so one int32 sum per lane and block takes all four dot products, and is scaled
// by that step's x scale times its group scale in fp32. The zeros' share uses the group sums of the
// rounded x, so the result is exactly sum_g s_g * sum_i (q_i - z_g) * x^_i up to fp32 rounding.
#ifdef LLMSERVE_CPU_X86

// Per row of x, per whole block: 128 bytes, [run h = 0: low nibbles' x, high nibbles' x][h = 1:
// ...], byte 4l + i of a 32-byte vector being the column of byte i's low (high) nibble of stored
// word 8h + l; and the block's eight lane scales (lane l: step 4b + l % 4's scale).
void arrange_xq(const int8_t* xq, const float* xscale, int64_t m, int64_t k, int8_t* xa,
                float* lane_scales) {
  // The column (0..7 within its word) of nibble n: kInt4Nibble's inverse.
  int inv[8] = {};
  for (int c = 0; c < 8; ++c) inv[kInt4Nibble[c]] = c;
  const int64_t blocks = k / 128;
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t b = 0; b < blocks; ++b) {
      int8_t* dst = xa + (r * blocks + b) * 128;
      const int8_t* src = xq + r * k + b * 128;
      for (int64_t p = 0; p < kBlockWords; ++p) {
        const int64_t word = 4 * (p % 4) + p / 4, h = p / 8, l = p % 8;  // logical word of stored p
        for (int i = 0; i < 4; ++i) {
          dst[h * 64 + 4 * l + i] = src[8 * word + inv[2 * i]];
          dst[h * 64 + 32 + 4 * l + i] = src[8 * word + inv[2 * i + 1]];
        }
      }
      float* ls = lane_scales + (r * blocks + b) * 8;
      for (int l = 0; l < 8; ++l) ls[l] = xscale[r * (k / 32) + 4 * b + l % 4];
    }
  }
}

#define LLMSERVE_INT4_DOT_KERNEL(NAME, ATTR, DOT)                                                  \
  template <int M>                                                                                 \
  ATTR void NAME(const int8_t* xa, const float* lane_scales, const float* xsum,                    \
                 const Int4Weight& w, int64_t c0, int64_t rows, const float* pairs, float* out) {  \
    const int64_t k = w.k, words = k / 8, groups = k / w.group, blocks = k / 128;                  \
    const __m256i low4 = _mm256_set1_epi8(0x0F);                                                   \
    for (int64_t c = c0; c < c0 + rows; ++c) {                                                     \
      const uint32_t* row = w.codes + c * words;                                                   \
      const float* sz = pairs + (c - c0) * 2 * groups;                                             \
      __m256 total[M];                                                                             \
      for (int r = 0; r < M; ++r) total[r] = _mm256_setzero_ps();                                  \
      for (int64_t b = 0; b < blocks; ++b) {                                                       \
        const auto* v = reinterpret_cast<const __m256i*>(row + b * kBlockWords);                   \
        const __m256i v0 = _mm256_loadu_si256(v), v1 = _mm256_loadu_si256(v + 1);                  \
        const __m256i lo0 = _mm256_and_si256(v0, low4),                                            \
                      hi0 = _mm256_and_si256(_mm256_srli_epi16(v0, 4), low4),                      \
                      lo1 = _mm256_and_si256(v1, low4),                                            \
                      hi1 = _mm256_and_si256(_mm256_srli_epi16(v1, 4), low4);                      \
        const __m256 gs = block_scales(sz, w.group, b);                                            \
        for (int r = 0; r < M; ++r) {                                                              \
          const auto* xv = reinterpret_cast<const __m256i*>(xa + (r * blocks + b) * 128);          \
          const __m256i zero = _mm256_setzero_si256();                                             \
          const __m256i s0 =                                                                       \
              DOT(DOT(zero, lo0, _mm256_loadu_si256(xv)), hi0, _mm256_loadu_si256(xv + 1));        \
          const __m256i s1 =                                                                       \
              DOT(DOT(zero, lo1, _mm256_loadu_si256(xv + 2)), hi1, _mm256_loadu_si256(xv + 3));    \
          const __m256 f = _mm256_mul_ps(gs, _mm256_loadu_ps(lane_scales + (r * blocks + b) * 8)); \
          total[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(s0, s1)), f, total[r]);   \
        }                                                                                          \
      }                                                                                            \
      for (int r = 0; r < M; ++r)                                                                  \
        out[r * w.n + c] = hsum8(total[r]) - zero_part(sz, xsum + r * groups, groups);             \
    }                                                                                              \
  }

LLMSERVE_INT4_DOT_KERNEL(int4_dot_avx2, LLMSERVE_INT8_DOT_AVX2, cpu_detail::dot4_avx2)
LLMSERVE_INT4_DOT_KERNEL(int4_dot_vnni, LLMSERVE_INT8_DOT_VNNI, cpu_detail::dot4_vnni)
#undef LLMSERVE_INT4_DOT_KERNEL

using Int4DotKernel = void (*)(const int8_t*, const float*, const float*, const Int4Weight&,
                               int64_t, int64_t, const float*, float*);

Int4DotKernel int4_dot_kernel(cpu_detail::Int8DotIsa isa, int64_t m) {
  static constexpr Int4DotKernel avx2[kMaxRowsPerPass] = {
      int4_dot_avx2<1>, int4_dot_avx2<2>, int4_dot_avx2<3>, int4_dot_avx2<4>,
      int4_dot_avx2<5>, int4_dot_avx2<6>, int4_dot_avx2<7>, int4_dot_avx2<8>};
  static constexpr Int4DotKernel vnni[kMaxRowsPerPass] = {
      int4_dot_vnni<1>, int4_dot_vnni<2>, int4_dot_vnni<3>, int4_dot_vnni<4>,
      int4_dot_vnni<5>, int4_dot_vnni<6>, int4_dot_vnni<7>, int4_dot_vnni<8>};
  return isa == cpu_detail::Int8DotIsa::kAvxVnni ? vnni[m - 1] : avx2[m - 1];
}

// matmul_int4_streamed's integer path; false (nothing written) where it does not apply.
bool matmul_int4_int8_dot(const float* x, int64_t m, const Int4Weight& w,
                          std::vector<float>& scratch, float* out) {
  const cpu_detail::Int8DotIsa isa = cpu_detail::int8_dot_isa();
  if (isa == cpu_detail::Int8DotIsa::kNone || w.k % 128 != 0) return false;
  const int64_t k = w.k, groups = k / w.group, blocks = k / 128;
  // Floats: xscale [m, k / 32], lane scales [m, blocks, 8], xsum [m, groups]; then bytes: xq and
  // its arrangement, [m, k] each.
  const int64_t floats = m * (k / 32) + m * blocks * 8 + m * groups;
  scratch.resize(static_cast<size_t>(floats + (2 * m * k + 3) / 4));
  float* xscale = scratch.data();
  float* lane_scales = xscale + m * (k / 32);
  float* xsum = lane_scales + m * blocks * 8;
  auto* xq = reinterpret_cast<int8_t*>(scratch.data() + floats);
  int8_t* xa = xq + m * k;
  cpu_detail::round_rows_int8(x, m, k, xq, xscale);
  for (int64_t r = 0; r < m; ++r) {  // the rounded x's group sums, for the zeros' share
    for (int64_t g = 0; g < groups; ++g) {
      float s = 0.0f;
      for (int64_t i = g * w.group; i < (g + 1) * w.group; i += 32) {
        int32_t q = 0;
        for (int64_t j = i; j < i + 32; ++j) q += xq[r * k + j];
        s += static_cast<float>(q) * xscale[r * (k / 32) + i / 32];
      }
      xsum[r * groups + g] = s;
    }
  }
  arrange_xq(xq, xscale, m, k, xa, lane_scales);
  for_each_row_task(w, /*fast=*/true, [&](int64_t c0, int64_t rows, const float* pairs) {
    for (int64_t r0 = 0; r0 < m; r0 += kMaxRowsPerPass) {
      const int64_t mr = std::min(kMaxRowsPerPass, m - r0);
      int4_dot_kernel(isa, mr)(xa + r0 * k, lane_scales + r0 * blocks * 8, xsum + r0 * groups, w,
                               c0, rows, pairs, out + r0 * w.n);
    }
  });
  return true;
}
#endif

}  // namespace

bool set_cpu_int4_kernels(bool enabled) {
  return int4_kernels_enabled.exchange(enabled);
}

bool cpu_int4_kernels_available() {
  return cpu_detail::cpu_has_avx2_f16c();
}

namespace cpu_detail {

void matmul_int4_streamed(const float* x, int64_t m, const Int4Weight& w,
                          std::vector<float>& scratch, float* out) {
  const int64_t k = w.k, groups = k / w.group, arranged = 128 * (k / 128);
  const bool fast = cpu_has_avx2_f16c() && int4_kernels_enabled.load(std::memory_order_relaxed);
#ifdef LLMSERVE_CPU_X86
  if (fast && matmul_int4_int8_dot(x, m, w, scratch, out)) return;
#endif
  scratch.resize(static_cast<size_t>(m * (groups + (fast ? arranged : 0))));
  float* xsum = scratch.data();
  float* xa = xsum + m * groups;
  sum_groups(x, m, k, w.group, xsum);
  if (fast) arrange_x(x, m, k, xa);
  for_each_row_task(w, fast, [&](int64_t c0, int64_t rows, const float* pairs) {
    // Chunks of x's rows pass over the task's weight rows while they are in cache.
    for (int64_t r0 = 0; r0 < m; r0 += kMaxRowsPerPass) {
      const Int4Input in{x + r0 * k, xsum + r0 * groups, xa + r0 * arranged,
                         std::min(kMaxRowsPerPass, m - r0)};
      streamed_block_int4(in, fast, w, c0, rows, pairs, out + r0 * w.n);
    }
  });
}

void dequantize_int4_rows(const Int4Weight& w, int64_t c0, int64_t rows, float* dst) {
  const int64_t k = w.k, groups = k / w.group;
#pragma omp parallel if (rows * k > (1 << 16))
  {
    std::vector<float> sz(static_cast<size_t>(2 * groups));
#pragma omp for
    for (int64_t c = 0; c < rows; ++c) {
      float* d = dst + c * k;
      unpack_row(w, c0 + c, d);
      load_pairs(w, c0 + c, 1, sz.data());
      for (int64_t g = 0; g < groups; ++g) {
        const float s = sz[static_cast<size_t>(2 * g)], z = sz[static_cast<size_t>(2 * g + 1)];
        for (int64_t i = g * w.group; i < (g + 1) * w.group; ++i) d[i] = (d[i] - z) * s;
      }
    }
  }
}

}  // namespace cpu_detail

}  // namespace llmserve
