// The arithmetic of --quantization on the host: how the weight loader turns a linear layer's fp32
// weight into codes + scales (int8 and fp8 e4m3, both with one scale per output row), the inverse
// of each (for tests and reference computations), and reading F32/F16/BF16 bytes as fp32 (the
// loader quantizes from whatever dtype the backend staged the weight in). The matmuls that consume
// the codes are backend ops (Backend::matmul_q8, Backend::matmul_fp8).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/dtype.h"
#include "model/model.h"

namespace llmserve {

// Symmetric per-row int8: scales[r] = max_k |w[r, k]| / 127 (0 for an all-zero row),
// q[r, k] = round(w[r, k] / scales[r]) in [-127, 127]. w: rows*cols fp32, row-major.
void quantize_rows_int8(std::span<const float> w, int64_t rows, int64_t cols, std::span<int8_t> q,
                        std::span<float> scales);
// w[r, k] = q[r, k] * scales[r].
std::vector<float> dequantize_rows_int8(std::span<const int8_t> q, std::span<const float> scales,
                                        int64_t rows, int64_t cols);

// Per-row fp8 e4m3: scales[r] = max_k |w[r, k]| / 448 (0 for an all-zero row) and
// q[r, k] = float_to_e4m3(w[r, k] / scales[r]) (saturating, round to nearest even; 0 when the
// scale is 0). The same arithmetic as Backend::quantize_fp8_rows on activations.
void quantize_rows_fp8(std::span<const float> w, int64_t rows, int64_t cols, std::span<uint8_t> q,
                       std::span<float> scales);
// w[r, k] = e4m3_to_float(q[r, k]) * scales[r].
std::vector<float> dequantize_rows_fp8(std::span<const uint8_t> q, std::span<const float> scales,
                                       int64_t rows, int64_t cols);

// A quantized [rows, cols] weight as the backend stores it: codes (I8 or F8E4M3, row-major) and
// one F32 scale per row.
struct QuantizedWeight {
  DType dtype = DType::kI8;
  std::vector<uint8_t> codes;
  std::vector<float> scales;
};
// `w` quantized the way `quantization` (not kNone) says.
QuantizedWeight quantize_weight(std::span<const float> w, int64_t rows, int64_t cols,
                                Quantization quantization);

// The values of `bytes` holding F32, F16 or BF16 elements, as fp32. Throws Error(kUnimplemented)
// for other dtypes.
std::vector<float> to_float32(std::span<const uint8_t> bytes, DType dtype);

}  // namespace llmserve
