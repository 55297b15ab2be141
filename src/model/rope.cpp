#include "model/rope.h"

#include <cmath>
#include <numbers>

namespace llmserve {

std::vector<double> rope_inverse_frequencies(const RopeConfig& rope, int32_t head_dim) {
  const int32_t half = head_dim / 2;
  std::vector<double> inv(static_cast<size_t>(half));
  for (int32_t i = 0; i < half; ++i) {
    // HF computes the base frequencies in fp32; match that rounding.
    inv[static_cast<size_t>(i)] =
        static_cast<float>(1.0 / std::pow(rope.theta, 2.0 * i / head_dim));
  }
  if (rope.type == RopeConfig::Type::kLlama3) {
    const double old_len = rope.original_max_position_embeddings;
    const double low_wavelen = old_len / rope.low_freq_factor;
    const double high_wavelen = old_len / rope.high_freq_factor;
    for (double& f : inv) {
      const double wavelen = 2.0 * std::numbers::pi / f;
      if (wavelen < high_wavelen) continue;  // high frequency: unchanged
      if (wavelen > low_wavelen) {
        f /= rope.factor;  // low frequency: scaled fully
      } else {
        const double smooth = (old_len / wavelen - rope.low_freq_factor) /
                              (rope.high_freq_factor - rope.low_freq_factor);
        f = (1.0 - smooth) * f / rope.factor + smooth * f;
      }
    }
  }
  return inv;
}

std::vector<float> build_rope_table(const RopeConfig& rope, int32_t head_dim,
                                    int32_t max_positions) {
  const auto inv = rope_inverse_frequencies(rope, head_dim);
  const int32_t half = head_dim / 2;
  std::vector<float> table(static_cast<size_t>(max_positions) * static_cast<size_t>(head_dim));
  for (int32_t p = 0; p < max_positions; ++p) {
    const double pos = rope.type == RopeConfig::Type::kLinear ? p / rope.factor : p;
    for (int32_t i = 0; i < half; ++i) {
      // HF multiplies in fp32 (position * inv_freq), then takes cos/sin.
      const float angle = static_cast<float>(pos) * static_cast<float>(inv[static_cast<size_t>(i)]);
      table[static_cast<size_t>(p) * head_dim + i] = std::cos(angle);
      table[static_cast<size_t>(p) * head_dim + half + i] = std::sin(angle);
    }
  }
  return table;
}

}  // namespace llmserve
