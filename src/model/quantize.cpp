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

QuantizedWeight quantize_weight(std::span<const float> w, int64_t rows, int64_t cols,
                                Quantization quantization) {
  QuantizedWeight out;
  out.codes.resize(w.size());
  switch (quantization) {
    case Quantization::kNone:
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

std::vector<float> to_float32(std::span<const uint8_t> bytes, DType dtype) {
  std::vector<float> out(bytes.size() / dtype_size(dtype));
  switch (dtype) {
    case DType::kF32:
      std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
      break;
    case DType::kF16:
    case DType::kBF16:
#pragma omp parallel for if (out.size() > (1 << 16))
      for (size_t i = 0; i < out.size(); ++i) {
        uint16_t h;
        std::memcpy(&h, bytes.data() + 2 * i, 2);
        out[i] = dtype == DType::kBF16 ? bf16_to_float(h) : fp16_to_float(h);
      }
      break;
    default:
      fail(StatusCode::kUnimplemented, "cannot quantize weights held in {}", dtype_name(dtype));
  }
  return out;
}

}  // namespace llmserve
