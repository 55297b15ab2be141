// Internals shared by the CPU backend's files (cpu_backend.cpp: the op set; cpu_attention.cpp:
// RoPE, the KV write and attention; cpu_matmul.cpp: the matmuls and their kernels;
// cpu_matmul_int4.cpp: the int4 weight-only kernels; cpu_matmul_q8.cpp: int8 weight-only decode
// kernels): the x86 clone attribute, a vector exp, the e4m3 value table, dtype checks and the
// quantized kernels' entry points.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "backend/tensor.h"
#include "common/half.h"
#include "common/status.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define LLMSERVE_CPU_X86 1
#include <cpuid.h>
#include <immintrin.h>
// The intrinsic kernels' instruction sets, chosen at run time by cpu_has_avx2_f16c.
#define LLMSERVE_AVX2_F16C __attribute__((target("avx2,fma,f16c")))
#endif

// x86-64: an AVX2 + FMA clone (x86-64-v3) of the hot loops below, picked at load time where the
// CPU has it, else the baseline; each cloned function does a whole unit of work (a query head's
// attention, a block of weight rows), so the dispatch is rare. Not under AddressSanitizer, whose
// ifunc resolvers run before its runtime is up.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_ADDRESS__)
#define LLMSERVE_CPU_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define LLMSERVE_CPU_CLONES
#endif

namespace llmserve::cpu_detail {

// Whether the CPU has AVX2, FMA and F16C, which the intrinsic kernels (16-bit weights in
// cpu_matmul.cpp, int4 in cpu_matmul_int4.cpp) are compiled for.
inline bool cpu_has_avx2_f16c() {
#ifdef LLMSERVE_CPU_X86
  static const bool has = [] {
    __builtin_cpu_init();
    unsigned a = 0, b = 0, c = 0, d = 0;
    // F16C by cpuid: older compilers' __builtin_cpu_supports does not know its name.
    const bool f16c = __get_cpuid(1, &a, &b, &c, &d) != 0 && (c & bit_F16C) != 0;
    return f16c && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }();
  return has;
#else
  return false;
#endif
}

#ifdef LLMSERVE_CPU_X86
// exp(x) of 8 floats for x <= 0 (Cephes' expf: x = n ln 2 + r, a degree-6 polynomial in r, times
// 2^n; within 2 ulp where the result is normal, flushed to 0 below -87).
LLMSERVE_AVX2_F16C inline __m256 exp_nonpositive8(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}
#endif

// The fp32 value of every e4m3 code (fp8 weights, inputs and KV cache entries).
inline const std::array<float, 256>& e4m3_values() {
  static const std::array<float, 256> values = [] {
    std::array<float, 256> v{};
    for (int c = 0; c < 256; ++c)
      v[static_cast<size_t>(c)] = e4m3_to_float(static_cast<uint8_t>(c));
    return v;
  }();
  return values;
}

inline void require_f32(const Tensor& t, const char* what) {
  if (t.dtype != DType::kF32) {
    fail(StatusCode::kInternal, "cpu backend: {} must be F32, got {}", what, dtype_name(t.dtype));
  }
}

inline bool is_16bit(DType dtype) {
  return dtype == DType::kF16 || dtype == DType::kBF16;
}

// A 2-D weight read by an op: the backend's weight dtypes, and nothing else.
inline void require_weight(const Tensor& t, const char* what) {
  if (t.dtype != DType::kF32 && !is_16bit(t.dtype)) {
    fail(StatusCode::kInternal, "cpu backend: {} must be F32, F16 or BF16, got {}", what,
         dtype_name(t.dtype));
  }
}

// An int4 weight-only weight as matmul_int4 reads it: packed codes [n, k / 8] (common/int4.h) and
// (scale, zero) pairs [n, 2 * k / group] of `scale_dtype` (F32, F16 or BF16).
struct Int4Weight {
  const uint32_t* codes = nullptr;
  const void* pairs = nullptr;
  DType scale_dtype = DType::kF32;
  int64_t n = 0, k = 0, group = 0;
};

// cpu_matmul_int4.cpp. out[m, n] = x[m, k] · w^T, w's codes read once (the threads split its rows)
// and each group's sum scaled once: decode-sized m. Needs w.group % 32 == 0. `scratch` holds
// what is derived from x.
void matmul_int4_streamed(const float* x, int64_t m, const Int4Weight& w,
                          std::vector<float>& scratch, float* out);
// Rows [c0, c0 + rows) of w as fp32, (q - zero) * scale: dst [rows, k]; split over the threads.
void dequantize_int4_rows(const Int4Weight& w, int64_t c0, int64_t rows, float* dst);

// cpu_matmul_q8.cpp: the instruction set of the integer dot-product kernels (x rounded to int8,
// products summed exactly in int32), after the tests' switches (set_cpu_int8_dot_kernels,
// set_cpu_int8_dot_vnni, LLMSERVE_CPU_INT8_DOT=0): kNone where they cannot or may not run.
enum class Int8DotIsa { kNone, kAvx2, kAvxVnni };
Int8DotIsa int8_dot_isa();

// x [m, k] (k a multiple of 32) rounded to int8 in blocks of 32 columns, symmetric with one fp32
// scale per block (its largest |x| / 127): xq [m, k] and xscale [m, k / 32].
void round_rows_int8(const float* x, int64_t m, int64_t k, int8_t* xq, float* xscale);

#ifdef LLMSERVE_CPU_X86
#define LLMSERVE_INT8_DOT_AVX2 __attribute__((target("avx2,fma,f16c")))
#define LLMSERVE_INT8_DOT_VNNI __attribute__((target("avx2,fma,f16c,avxvnni")))
// acc plus, in each int32 lane, the four products of its bytes u (unsigned) and s (signed). AVX2:
// vpmaddubsw's pairs (u <= 128, |s| <= 127: no saturation) widened by vpmaddwd; AVX-VNNI: one
// vpdpbusd (the EVEX form of AVX512-VNNI + VL where only that is present).
LLMSERVE_INT8_DOT_AVX2 inline __m256i dot4_avx2(__m256i acc, __m256i u, __m256i s) {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}
LLMSERVE_INT8_DOT_VNNI inline __m256i dot4_vnni(__m256i acc, __m256i u, __m256i s) {
  return _mm256_dpbusd_avx_epi32(acc, u, s);
}
#endif

// cpu_matmul_q8.cpp. out[m, n] = (x[m, k] rounded to int8 in blocks of 32) · (w[n, k] * wscale)^T
// (+ bias), by integer dot products; false (nothing written) where the kernels cannot run: no
// AVX2, switched off (set_cpu_int8_dot_kernels), or k not a multiple of 32. `scratch` holds x
// rounded.
bool matmul_q8_int8_dot(const float* x, int64_t m, int64_t k, const int8_t* w, const float* wscale,
                        const float* bias, int64_t n, std::vector<int8_t>& scratch, float* out);

}  // namespace llmserve::cpu_detail
