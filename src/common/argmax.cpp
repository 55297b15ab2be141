#include "common/argmax.h"

#include <cmath>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define LLMSERVE_ARGMAX_AVX2 1
#endif

namespace llmserve {
namespace {

int64_t argmax_scalar(const float* x, int64_t n, int64_t from, int64_t best) {
  for (int64_t i = from; i < n; ++i) {
    if (best < 0 ? !std::isnan(x[i]) : x[i] > x[best]) best = i;
  }
  return best;
}

#ifdef LLMSERVE_ARGMAX_AVX2
// Two passes over whole vectors: the maximum (four independent max chains; _mm256_max_ps returns
// its second operand when either is NaN, so a NaN value never wins), then the first position
// equal to it. The tail and an all-NaN row go through argmax_scalar.
__attribute__((target("avx2"))) int64_t argmax_avx2(const float* x, int64_t n) {
  const int64_t whole = n / 32 * 32;
  if (whole == 0) return argmax_scalar(x, n, 0, -1);
  __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
  for (int64_t i = 0; i < whole; i += 32) {
    m0 = _mm256_max_ps(_mm256_loadu_ps(x + i), m0);
    m1 = _mm256_max_ps(_mm256_loadu_ps(x + i + 8), m1);
    m2 = _mm256_max_ps(_mm256_loadu_ps(x + i + 16), m2);
    m3 = _mm256_max_ps(_mm256_loadu_ps(x + i + 24), m3);
  }
  __m256 m = _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3));
  m = _mm256_max_ps(m, _mm256_permute2f128_ps(m, m, 1));
  m = _mm256_max_ps(m, _mm256_shuffle_ps(m, m, 0x4E));
  m = _mm256_max_ps(m, _mm256_shuffle_ps(m, m, 0xB1));
  const float max = _mm256_cvtss_f32(m);
  int64_t best = -1;
  if (max != -INFINITY) {
    for (int64_t i = 0; i < whole; i += 8) {
      const int mask = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), m, _CMP_EQ_OQ));
      if (mask != 0) {
        best = i + __builtin_ctz(static_cast<unsigned>(mask));
        break;
      }
    }
  }
  // The tail may hold a larger value; an all -inf (or NaN) head leaves the choice to the scalar
  // rules over the whole row.
  if (best < 0) return argmax_scalar(x, n, 0, -1);
  return argmax_scalar(x, n, whole, best);
}
#endif

}  // namespace

int64_t argmax_first(const float* x, int64_t n) {
  if (n <= 0) return -1;
#ifdef LLMSERVE_ARGMAX_AVX2
  static const bool has_avx2 = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  if (has_avx2) return argmax_avx2(x, n);
#endif
  return argmax_scalar(x, n, 0, -1);
}

}  // namespace llmserve
