// The decode kernels of CpuBackend::matmul_q8 (int8 weight-only, one fp32 scale per output row):
// integer dot products of the int8 weights with the input rounded to int8.
//
// Widening every int8 weight to fp32 before its FMA (dot_q8 in cpu_matmul.cpp) costs about three
// instructions per 8 weights, so that path reads int8 weights slower than the 16-bit kernels read
// twice the bytes. Here each row of x is rounded to int8 in blocks of 32 values with one fp32
// scale each (symmetric: scale = max |x| / 127 over the block, so |error| <= scale / 2 per value),
// and a block's 32 products are summed exactly in int32 by the CPU's byte dot-product
// instructions, then scaled in fp32:
//   out[r, c] = wscale[c] * sum_b xscale[r, b] * sum_{i in b} xq[r, i] * w[c, i].
// The unsigned-by-signed byte products of those instructions take |w| and x carrying w's sign
// (vpsignb), so their sum is sum w * xq. AVX-VNNI (vpdpbusd, VEX or the EVEX form of AVX512-VNNI
// + VL) does a block in one instruction; plain AVX2 does it in two (vpmaddubsw's pairs, at most
// 2 * 128 * 127, do not saturate, then vpmaddwd with ones). Chosen at run time; x's rows share
// each weight load, and the threads split the weight rows.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include <omp.h>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_internal.h"

namespace llmserve {

namespace {

using cpu_detail::Int8DotIsa;

// LLMSERVE_CPU_INT8_DOT=0 starts with them off (x unrounded, weights widened): for comparisons.
std::atomic<bool> q8_kernels_enabled{[] {
  const char* e = std::getenv("LLMSERVE_CPU_INT8_DOT");
  return e == nullptr || std::string_view(e) != "0";
}()};
std::atomic<bool> q8_vnni_enabled{true};

constexpr int64_t kBlock = 32;        // inputs per activation scale: one 32-byte vector
constexpr int64_t kRowsPerTask = 32;  // weight rows per OpenMP task
constexpr int kMaxRowsPerPass = 8;    // rows of x per pass over a weight row

#ifdef LLMSERVE_CPU_X86
// AVX-VNNI: cpuid leaf 7 subleaf 1, EAX bit 4; AVX512-VNNI (ECX bit 11 of subleaf 0) with AVX512VL
// (EBX bit 31) provides the same 256-bit instruction in its EVEX form. Read with cpuid: some
// compilers' __builtin_cpu_supports does not detect AVX-VNNI.
Int8DotIsa detect_dot_isa() {
  if (!cpu_detail::cpu_has_avx2_f16c()) return Int8DotIsa::kNone;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d) != 0 && (a & (1u << 4)) != 0)
    return Int8DotIsa::kAvxVnni;
  // The EVEX form needs the OS to save the AVX-512 state (XCR0 bits 5-7) as well as AVX's.
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d) != 0 && (c & (1u << 11)) != 0 &&
      (b & (1u << 31)) != 0 && (b & (1u << 16)) != 0) {
    unsigned lo = 0, hi = 0;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0xE6u) == 0xE6u) return Int8DotIsa::kAvxVnni;
  }
  return Int8DotIsa::kAvx2;
}
#else
Int8DotIsa detect_dot_isa() {
  return Int8DotIsa::kNone;
}
#endif

Int8DotIsa dot_isa() {
  static const Int8DotIsa isa = detect_dot_isa();
  return isa;
}

#ifdef LLMSERVE_CPU_X86

LLMSERVE_INT8_DOT_AVX2 inline float hsum8_q8(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 h = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)));
}

LLMSERVE_INT8_DOT_AVX2 inline __m256i dot32_avx2(__m256i abs_w, __m256i signed_x) {
  return cpu_detail::dot4_avx2(_mm256_setzero_si256(), abs_w, signed_x);
}
LLMSERVE_INT8_DOT_VNNI inline __m256i dot32_vnni(__m256i abs_w, __m256i signed_x) {
  return cpu_detail::dot4_vnni(_mm256_setzero_si256(), abs_w, signed_x);
}

// Weight rows [c0, c0 + rows) against M rows of x (xq, xscale), out[r, c] for each.
#define LLMSERVE_Q8_KERNEL(NAME, ATTR, DOT)                                                       \
  template <int M>                                                                                \
  ATTR void NAME(const int8_t* xq, const float* xscale, int64_t k, const int8_t* w,               \
                 const float* wscale, const float* bias, int64_t n, int64_t c0, int64_t rows,     \
                 float* out) {                                                                    \
    const int64_t blocks = k / kBlock;                                                            \
    for (int64_t c = c0; c < c0 + rows; ++c) {                                                    \
      const int8_t* wr = w + c * k;                                                               \
      __m256 acc[M];                                                                              \
      for (int r = 0; r < M; ++r) acc[r] = _mm256_setzero_ps();                                   \
      for (int64_t b = 0; b < blocks; ++b) {                                                      \
        const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wr + b * kBlock)); \
        const __m256i aw = _mm256_sign_epi8(wv, wv);                                              \
        for (int r = 0; r < M; ++r) {                                                             \
          const __m256i xv =                                                                      \
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + r * k + b * kBlock));      \
          const __m256 p = _mm256_cvtepi32_ps(DOT(aw, _mm256_sign_epi8(xv, wv)));                 \
          acc[r] = _mm256_fmadd_ps(p, _mm256_set1_ps(xscale[r * blocks + b]), acc[r]);            \
        }                                                                                         \
      }                                                                                           \
      for (int r = 0; r < M; ++r)                                                                 \
        out[r * n + c] = hsum8_q8(acc[r]) * wscale[c] + (bias != nullptr ? bias[c] : 0.0f);       \
    }                                                                                             \
  }

LLMSERVE_Q8_KERNEL(q8_block_avx2, LLMSERVE_INT8_DOT_AVX2, dot32_avx2)
LLMSERVE_Q8_KERNEL(q8_block_vnni, LLMSERVE_INT8_DOT_VNNI, dot32_vnni)
#undef LLMSERVE_Q8_KERNEL

using Kernel = void (*)(const int8_t*, const float*, int64_t, const int8_t*, const float*,
                        const float*, int64_t, int64_t, int64_t, float*);

Kernel kernel_for(Int8DotIsa isa, int m) {
  static constexpr Kernel avx2[kMaxRowsPerPass] = {
      q8_block_avx2<1>, q8_block_avx2<2>, q8_block_avx2<3>, q8_block_avx2<4>,
      q8_block_avx2<5>, q8_block_avx2<6>, q8_block_avx2<7>, q8_block_avx2<8>};
  static constexpr Kernel vnni[kMaxRowsPerPass] = {
      q8_block_vnni<1>, q8_block_vnni<2>, q8_block_vnni<3>, q8_block_vnni<4>,
      q8_block_vnni<5>, q8_block_vnni<6>, q8_block_vnni<7>, q8_block_vnni<8>};
  return isa == Int8DotIsa::kAvxVnni ? vnni[m - 1] : avx2[m - 1];
}

#endif

}  // namespace

bool set_cpu_int8_dot_kernels(bool enabled) {
  return q8_kernels_enabled.exchange(enabled);
}

bool cpu_int8_dot_available() {
  return dot_isa() != Int8DotIsa::kNone;
}

bool set_cpu_int8_dot_vnni(bool enabled) {
  return q8_vnni_enabled.exchange(enabled);
}

bool cpu_int8_dot_vnni_available() {
  return dot_isa() == Int8DotIsa::kAvxVnni;
}

namespace cpu_detail {

Int8DotIsa int8_dot_isa() {
  if (!q8_kernels_enabled.load(std::memory_order_relaxed)) return Int8DotIsa::kNone;
  const Int8DotIsa isa = dot_isa();
  if (isa == Int8DotIsa::kAvxVnni && !q8_vnni_enabled.load(std::memory_order_relaxed))
    return Int8DotIsa::kAvx2;
  return isa;
}

void round_rows_int8(const float* x, int64_t m, int64_t k, int8_t* xq, float* xscale) {
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t b = 0; b < k / kBlock; ++b) {
      const float* v = x + r * k + b * kBlock;
      float amax = 0.0f;
      for (int64_t i = 0; i < kBlock; ++i) amax = std::max(amax, std::abs(v[i]));
      const float inv = amax > 0.0f ? 127.0f / amax : 0.0f;
      int8_t* q = xq + r * k + b * kBlock;
      for (int64_t i = 0; i < kBlock; ++i)
        q[i] = static_cast<int8_t>(std::clamp(std::nearbyint(v[i] * inv), -127.0f, 127.0f));
      xscale[r * (k / kBlock) + b] = amax / 127.0f;
    }
  }
}

bool matmul_q8_int8_dot(const float* x, int64_t m, int64_t k, const int8_t* w, const float* wscale,
                        const float* bias, int64_t n, std::vector<int8_t>& scratch, float* out) {
#ifdef LLMSERVE_CPU_X86
  const Int8DotIsa isa = int8_dot_isa();
  if (isa == Int8DotIsa::kNone || k % kBlock != 0 || m < 1) return false;
  const int64_t blocks = k / kBlock;
  // xq [m, k] bytes, then xscale [m, blocks] floats (aligned: k is a multiple of 32).
  scratch.resize(static_cast<size_t>(m * k + 4 * m * blocks));
  int8_t* xq = scratch.data();
  float* xscale = reinterpret_cast<float*>(scratch.data() + m * k);
  round_rows_int8(x, m, k, xq, xscale);
  const int64_t tasks = (n + kRowsPerTask - 1) / kRowsPerTask;
#pragma omp parallel for schedule(static) if (n * k > (1 << 16))
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t c0 = t * kRowsPerTask, rows = std::min(kRowsPerTask, n - c0);
    // Chunks of x's rows pass over the task's weight rows while they are in cache.
    for (int64_t r0 = 0; r0 < m; r0 += kMaxRowsPerPass) {
      const int mr = static_cast<int>(std::min<int64_t>(kMaxRowsPerPass, m - r0));
      kernel_for(isa, mr)(xq + r0 * k, xscale + r0 * blocks, k, w, wscale, bias, n, c0, rows,
                          out + r0 * n);
    }
  }
  return true;
#else
  (void)x, (void)m, (void)k, (void)w, (void)wscale, (void)bias, (void)n, (void)scratch, (void)out;
  return false;
#endif
}

}  // namespace cpu_detail

}  // namespace llmserve
