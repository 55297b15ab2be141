// The reference of the CPU's integer dot-product kernels' input rounding (backend/cpu/
// cpu_matmul_q8.cpp, round_rows_int8): each row of x [m, k] in blocks of 32 columns, symmetric,
// scale = the block's largest |x| / 127, values rounded to the nearest integer multiple of it.
// Written out here, independently, so the kernels are checked against the rule, not themselves.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace llmserve::testing {

struct RoundedInt8 {
  std::vector<float> values;      // x as the kernels see it: scale * code
  std::vector<double> half_step;  // half a step of each value's block: its rounding bound
};

inline RoundedInt8 round_in_blocks_of_32(const std::vector<float>& x, int64_t m, int64_t k) {
  RoundedInt8 out{std::vector<float>(x.size()), std::vector<double>(x.size())};
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t b = 0; b < k / 32; ++b) {
      const float* v = x.data() + r * k + b * 32;
      float amax = 0.0f;
      for (int i = 0; i < 32; ++i) amax = std::max(amax, std::abs(v[i]));
      const float scale = amax / 127.0f, inv = amax > 0.0f ? 127.0f / amax : 0.0f;
      for (int i = 0; i < 32; ++i) {
        const auto at = static_cast<size_t>(r * k + b * 32 + i);
        out.values[at] = scale * std::nearbyint(v[i] * inv);
        out.half_step[at] = 0.5 * static_cast<double>(scale);
      }
    }
  }
  return out;
}

}  // namespace llmserve::testing
