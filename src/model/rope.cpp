#include "model/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace llmserve {

std::vector<double> rope_inverse_frequencies(const RopeConfig& rope, int32_t head_dim,
                                             bool long_factors) {
  const int32_t half = head_dim / 2;
  std::vector<double> inv(static_cast<size_t>(half));
  if (rope.type == RopeConfig::Type::kLongRope) {
    // transformers: 1 / (ext_factors * base ** (arange(0, dim, 2) / dim)), all in fp32.
    const std::vector<double>& ext = long_factors ? rope.long_factor : rope.short_factor;
    for (int32_t i = 0; i < half; ++i) {
      const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
      const float base = std::pow(static_cast<float>(rope.theta), exponent);
      inv[static_cast<size_t>(i)] =
          1.0f / (static_cast<float>(ext.at(static_cast<size_t>(i))) * base);
    }
    return inv;
  }
  if (rope.type == RopeConfig::Type::kYarn) {
    // transformers' _compute_yarn_parameters: the correction range in double, the blend in fp32.
    const auto correction_dim = [&](double rotations) {
      return head_dim *
             std::log(rope.original_max_position_embeddings / (rotations * 2 * std::numbers::pi)) /
             (2 * std::log(rope.theta));
    };
    double low = correction_dim(rope.beta_fast), high = correction_dim(rope.beta_slow);
    if (rope.truncate) {
      low = std::floor(low);
      high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, static_cast<double>(head_dim - 1));
    if (low == high) high += 0.001;  // as transformers does, against a zero-width ramp
    const auto low_f = static_cast<float>(low), high_f = static_cast<float>(high);
    const auto factor = static_cast<float>(rope.factor);
    for (int32_t i = 0; i < half; ++i) {
      const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
      const float pos_freq = std::pow(static_cast<float>(rope.theta), exponent);
      const float ramp = std::clamp((static_cast<float>(i) - low_f) / (high_f - low_f), 0.0f, 1.0f);
      const float extrapolate = 1.0f - ramp;
      inv[static_cast<size_t>(i)] =
          1.0f / (factor * pos_freq) * (1.0f - extrapolate) + 1.0f / pos_freq * extrapolate;
    }
    return inv;
  }
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
  const bool longrope = rope.type == RopeConfig::Type::kLongRope;
  const int32_t half = head_dim / 2;
  const float scale = longrope || rope.type == RopeConfig::Type::kYarn
                          ? static_cast<float>(rope.attention_factor)
                          : 1.0f;
  std::vector<float> table(static_cast<size_t>(longrope ? 2 : 1) * max_positions * head_dim);
  for (int32_t variant = 0; variant < (longrope ? 2 : 1); ++variant) {
    const auto inv = rope_inverse_frequencies(rope, head_dim, variant == 1);
    float* rows = table.data() + static_cast<size_t>(variant) * max_positions * head_dim;
    for (int32_t p = 0; p < max_positions; ++p) {
      const double pos = rope.type == RopeConfig::Type::kLinear ? p / rope.factor : p;
      for (int32_t i = 0; i < half; ++i) {
        // HF multiplies in fp32 (position * inv_freq), then takes cos/sin (times the factor).
        const float angle =
            static_cast<float>(pos) * static_cast<float>(inv[static_cast<size_t>(i)]);
        rows[static_cast<size_t>(p) * head_dim + i] = std::cos(angle) * scale;
        rows[static_cast<size_t>(p) * head_dim + half + i] = std::sin(angle) * scale;
      }
    }
  }
  return table;
}

int32_t rope_table_offset(const RopeConfig& rope, int32_t max_positions, int32_t length) {
  return rope.type == RopeConfig::Type::kLongRope && length > rope.original_max_position_embeddings
             ? max_positions
             : 0;
}

}  // namespace llmserve
