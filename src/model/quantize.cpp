#include "model/quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/half.h"
#include "common/status.h"

namespace llmserve {

namespace {

// Symmetric per-row quantization: scales[r] = max_k |w[r, k]| / code_max, and each row's values
// written by encode(row, scale, out, cols). Rows are independent: quantizing an 8B model at load is
// seconds across cores, not a minute.
template <typename Code, typename Encode>
void quantize_rows(const char* what, std::span<const float> w, int64_t rows, int64_t cols,
                   float code_max, std::span<Code> q, std::span<float> scales, Encode&& encode) {
  if (w.size() != static_cast<size_t>(rows * cols) || q.size() != w.size() ||
      scales.size() != static_cast<size_t>(rows)) {
    fail(StatusCode::kInternal, "{}: {} values, {} codes, {} scales for [{}, {}]", what, w.size(),
         q.size(), scales.size(), rows, cols);
  }
#pragma omp parallel for if (rows * cols > (1 << 16))
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = w.data() + r * cols;
    float amax = 0.0f;
    for (int64_t k = 0; k < cols; ++k) amax = std::max(amax, std::abs(row[k]));
    const float scale = amax / code_max;
    scales[static_cast<size_t>(r)] = scale;
    encode(row, scale, q.data() + r * cols, cols);
  }
}

}  // namespace

void quantize_rows_int8(std::span<const float> w, int64_t rows, int64_t cols, std::span<int8_t> q,
                        std::span<float> scales) {
  quantize_rows(
      "quantize_rows_int8", w, rows, cols, 127.0f, q, scales,
      [](const float* row, float scale, int8_t* out, int64_t n) {
        const float inv = scale > 0.0f ? 1.0f / scale : 0.0f;
        for (int64_t k = 0; k < n; ++k) {
          // |row[k] * inv| <= 127 up to rounding of inv; the clamp keeps the cast defined.
          out[k] = static_cast<int8_t>(std::clamp(std::nearbyint(row[k] * inv), -127.0f, 127.0f));
        }
      });
}

std::vector<float> dequantize_rows_int8(std::span<const int8_t> q, std::span<const float> scales,
                                        int64_t rows, int64_t cols) {
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t k = 0; k < cols; ++k) {
      const auto i = static_cast<size_t>(r * cols + k);
      w[i] = static_cast<float>(q[i]) * scales[static_cast<size_t>(r)];
    }
  }
  return w;
}

void quantize_rows_fp8(std::span<const float> w, int64_t rows, int64_t cols, std::span<uint8_t> q,
                       std::span<float> scales) {
  quantize_rows("quantize_rows_fp8", w, rows, cols, kE4m3Max, q, scales,
                [](const float* row, float scale, uint8_t* out, int64_t n) {
                  // Divide rather than multiply by 1/scale: the GPU quantizes activations the same
                  // way, and the largest |w| then lands on 448 (or just above, which saturates).
                  for (int64_t k = 0; k < n; ++k)
                    out[k] = scale > 0.0f ? float_to_e4m3(row[k] / scale) : 0;
                });
}

std::vector<float> dequantize_rows_fp8(std::span<const uint8_t> q, std::span<const float> scales,
                                       int64_t rows, int64_t cols) {
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t k = 0; k < cols; ++k) {
      const auto i = static_cast<size_t>(r * cols + k);
      w[i] = e4m3_to_float(q[i]) * scales[static_cast<size_t>(r)];
    }
  }
  return w;
}

int32_t int4_group_for(int64_t cols, int32_t group) {
  if (group < 32 || (group & (group - 1)) != 0) {
    fail(StatusCode::kInvalidArgument, "int4 group size {} must be a power of two >= 32", group);
  }
  if (cols % 32 != 0) {
    fail(StatusCode::kInvalidArgument,
         "--quantization int4-wo needs in_features divisible by 32; a linear layer has {}", cols);
  }
  while (cols % group != 0) group /= 2;
  return group;
}

std::vector<uint32_t> pack_int4(std::span<const uint8_t> codes, int64_t rows, int64_t cols) {
  if (cols % 32 != 0 || codes.size() != static_cast<size_t>(rows * cols))
    fail(StatusCode::kInternal, "pack_int4: {} codes for [{}, {}]", codes.size(), rows, cols);
  const int64_t words = cols / 8;
  std::vector<uint32_t> out(static_cast<size_t>(rows * words));
#pragma omp parallel for if (rows * cols > (1 << 16))
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < words; ++j) {
      uint32_t word = 0;
      for (int c = 0; c < 8; ++c) {
        word |= static_cast<uint32_t>(codes[static_cast<size_t>(r * cols + 8 * j + c)] & 15u)
                << (4 * kInt4Nibble[c]);
      }
      out[static_cast<size_t>(r * words + int4_word_position(j, cols))] = word;
    }
  }
  return out;
}

std::vector<uint8_t> unpack_int4(std::span<const uint32_t> words, int64_t rows, int64_t cols) {
  if (cols % 32 != 0 || words.size() != static_cast<size_t>(rows * cols / 8))
    fail(StatusCode::kInternal, "unpack_int4: {} words for [{}, {}]", words.size(), rows, cols);
  const int64_t per_row = cols / 8;
  std::vector<uint8_t> codes(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t j = 0; j < per_row; ++j) {
      const uint32_t word = words[static_cast<size_t>(r * per_row + int4_word_position(j, cols))];
      for (int c = 0; c < 8; ++c) {
        codes[static_cast<size_t>(r * cols + 8 * j + c)] =
            static_cast<uint8_t>((word >> (4 * kInt4Nibble[c])) & 15u);
      }
    }
  }
  return codes;
}

namespace {

// The scale and zero of a group whose n values already lie on a 4-bit grid, v = (q - zero) *
// scale with codes q of 0..15 (a pre-quantized AWQ/GPTQ checkpoint dequantized exactly in fp32),
// so that requantizing finds the same values again, bit for bit. The coarsest grid through the
// smallest and largest value that holds every value is taken: any grid that holds them gives the
// same values. False for anything else; ordinary weights leave at their first or second value.
bool find_int4_grid(const float* v, int32_t n, float& scale, float& zero) {
  float lo = v[0], hi = v[0];
  for (int32_t i = 1; i < n; ++i) {
    lo = std::min(lo, v[i]);
    hi = std::max(hi, v[i]);
  }
  if (!(hi > lo)) return false;
  const auto integral = [](float k) { return std::abs(k - std::nearbyint(k)) <= 1e-4f; };
  for (int d = 1; d <= 15; ++d) {
    const float s = (hi - lo) / static_cast<float>(d);
    if (!integral(lo / s)) continue;  // lo = (q_lo - zero) * s
    bool on = true;
    for (int32_t i = 0; i < n && on; ++i) on = integral((v[i] - lo) / s);
    if (!on) continue;
    // The smallest value takes code 0 when it is <= 0; a group above 0 keeps zero 0.
    const float z = std::max(0.0f, std::nearbyint(-lo / s));
    if (z > 15.0f || std::nearbyint(hi / s) + z > 15.0f) continue;
    scale = s;
    zero = z;
    return true;
  }
  return false;
}

}  // namespace

void quantize_groups_int4(std::span<const float> w, int64_t rows, int64_t cols, int32_t group,
                          std::span<uint8_t> codes, std::span<float> scale_zero) {
  const int64_t groups = cols / group;
  if (group <= 0 || cols % group != 0 || w.size() != static_cast<size_t>(rows * cols) ||
      codes.size() != w.size() || scale_zero.size() != static_cast<size_t>(rows * 2 * groups)) {
    fail(StatusCode::kInternal, "quantize_groups_int4: {} values, {} codes, {} scales for [{}, {}]",
         w.size(), codes.size(), scale_zero.size(), rows, cols);
  }
#pragma omp parallel for if (rows * cols > (1 << 16))
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < groups; ++g) {
      const float* v = w.data() + r * cols + g * group;
      float scale = 0.0f, zero = 0.0f;
      if (!find_int4_grid(v, group, scale, zero)) {
        // The range always holds 0, so a zero weight stays exactly 0 and nothing clamps.
        float lo = 0.0f, hi = 0.0f;
        for (int32_t i = 0; i < group; ++i) {
          lo = std::min(lo, v[i]);
          hi = std::max(hi, v[i]);
        }
        scale = (hi - lo) / 15.0f;
        zero = scale > 0.0f ? std::clamp(std::nearbyint(-lo / scale), 0.0f, 15.0f) : 0.0f;
      }
      uint8_t* q = codes.data() + r * cols + g * group;
      for (int32_t i = 0; i < group; ++i) {
        q[i] =
            scale > 0.0f
                ? static_cast<uint8_t>(std::clamp(std::nearbyint(v[i] / scale) + zero, 0.0f, 15.0f))
                : 0;
      }
      scale_zero[static_cast<size_t>(r * 2 * groups + 2 * g)] = scale;
      scale_zero[static_cast<size_t>(r * 2 * groups + 2 * g + 1)] = zero;
    }
  }
}

std::vector<float> dequantize_int4(std::span<const uint32_t> words,
                                   std::span<const float> scale_zero, int64_t rows, int64_t cols) {
  const std::vector<uint8_t> codes = unpack_int4(words, rows, cols);
  const auto pairs = static_cast<int64_t>(scale_zero.size()) / rows;  // 2 * groups
  if (pairs < 2 || pairs % 2 != 0 || pairs * rows != static_cast<int64_t>(scale_zero.size()) ||
      cols % (pairs / 2) != 0) {
    fail(StatusCode::kInternal, "dequantize_int4: {} scales for [{}, {}]", scale_zero.size(), rows,
         cols);
  }
  const int64_t group = cols / (pairs / 2);
  std::vector<float> w(codes.size());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t k = 0; k < cols; ++k) {
      const float* sz = scale_zero.data() + r * pairs + 2 * (k / group);
      const auto i = static_cast<size_t>(r * cols + k);
      w[i] = (static_cast<float>(codes[i]) - sz[1]) * sz[0];
    }
  }
  return w;
}

QuantizedWeight quantize_weight(std::span<const float> w, int64_t rows, int64_t cols,
                                Quantization quantization, int32_t int4_group) {
  QuantizedWeight out;
  if (quantization == Quantization::kInt4WeightOnly) {
    out.dtype = DType::kI32;
    out.group_size = int4_group_for(cols, int4_group);
    std::vector<uint8_t> codes(w.size());
    out.scales.resize(static_cast<size_t>(rows * 2 * (cols / out.group_size)));
    quantize_groups_int4(w, rows, cols, out.group_size, codes, out.scales);
    const std::vector<uint32_t> words = pack_int4(codes, rows, cols);
    out.codes.resize(words.size() * sizeof(uint32_t));
    std::memcpy(out.codes.data(), words.data(), out.codes.size());
    return out;
  }
  out.codes.resize(w.size());
  switch (quantization) {
    case Quantization::kNone:
    case Quantization::kInt4WeightOnly:
      fail(StatusCode::kInternal, "quantize_weight without a quantization");
    case Quantization::kInt8WeightOnly:
      out.dtype = DType::kI8;
      out.scales.resize(static_cast<size_t>(rows));
      quantize_rows_int8(w, rows, cols,
                         {reinterpret_cast<int8_t*>(out.codes.data()), out.codes.size()},
                         out.scales);
      break;
    case Quantization::kFp8:
      out.dtype = DType::kF8E4M3;
      out.scales.resize(static_cast<size_t>(rows));
      quantize_rows_fp8(w, rows, cols, out.codes, out.scales);
      break;
  }
  return out;
}

}  // namespace llmserve
