// The arithmetic of --quantization on the host: how the weight loader turns a linear layer's fp32
// weight into codes + scales (int8 and fp8 e4m3 with one scale per output row, int4 in groups of
// columns with a scale and a zero point each) and the inverse of each (for tests and reference
// computations). The matmuls that consume the codes are backend ops (Backend::matmul_q8,
// Backend::matmul_fp8, Backend::matmul_int4).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/dtype.h"
#include "common/int4.h"
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

// --- int4 weight-only (kInt4WeightOnly) --------------------------------------------------------
// Asymmetric 4-bit codes in groups of `group` consecutive input columns of a row (AWQ's
// arithmetic): per (row, group) scale = (max - min) / 15 over the group's values with min <= 0 <=
// max, zero = clamp(round(-min / scale), 0, 15), q = clamp(round(w / scale) + zero, 0, 15), and
// w ~ (q - zero) * scale. The scales of a [rows, cols] weight are [rows, 2 * cols / group] pairs
// (scale, zero), held in the backend's weight dtype (the zero, an integer of 0..15, exactly).
//
// Packed layout: common/int4.h.
inline constexpr int32_t kInt4DefaultGroup = 128;

// The group size used for a row of `cols` columns when `group` is asked: `group` halved until it
// divides cols. Throws Error(kInvalidArgument) when cols is not a multiple of 32 or `group` is not
// a power of two >= 32 (cols = in_features of the layer: the message names it).
int32_t int4_group_for(int64_t cols, int32_t group);

// codes [rows, cols] (values 0..15) packed into the layout above: rows * cols / 8 words.
std::vector<uint32_t> pack_int4(std::span<const uint8_t> codes, int64_t rows, int64_t cols);
// The inverse of pack_int4.
std::vector<uint8_t> unpack_int4(std::span<const uint32_t> words, int64_t rows, int64_t cols);
// Codes [rows, cols] and (scale, zero) pairs [rows, 2 * cols / group] of `w`. A group whose values
// already lie on a 4-bit grid (a pre-quantized AWQ/GPTQ checkpoint, dequantized exactly) keeps that
// grid, so its values come back bit for bit; other groups are quantized as above.
void quantize_groups_int4(std::span<const float> w, int64_t rows, int64_t cols, int32_t group,
                          std::span<uint8_t> codes, std::span<float> scale_zero);
// w[r, k] = (q[r, k] - zero) * scale of k's group, from packed words.
std::vector<float> dequantize_int4(std::span<const uint32_t> words,
                                   std::span<const float> scale_zero, int64_t rows, int64_t cols);

// A quantized [rows, cols] weight as the backend stores it: codes (I8 or F8E4M3, row-major) and
// one F32 scale per row; or, for int4, packed words (I32 [rows, cols / 8], the bytes in `codes`)
// and `scales` [rows, 2 * cols / group_size] (scale, zero) pairs.
struct QuantizedWeight {
  DType dtype = DType::kI8;
  std::vector<uint8_t> codes;
  std::vector<float> scales;
  int32_t group_size = 0;  // int4
};
// `w` quantized the way `quantization` (not kNone) says; `int4_group` is the group asked for int4
// (int4_group_for picks the one used).
QuantizedWeight quantize_weight(std::span<const float> w, int64_t rows, int64_t cols,
                                Quantization quantization, int32_t int4_group = kInt4DefaultGroup);

}  // namespace llmserve
