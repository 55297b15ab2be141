// The packed layout of int4 weight-only codes (--quantization int4-wo), shared by the host
// quantizer (model/quantize.h) and the backends' matmul_int4.
//
// A row of `cols` columns (cols a multiple of 32) is cols / 8 32-bit words (an I32 tensor
// [rows, cols / 8]). A word holds 8 consecutive columns, column c (0..7) in bits
// 4 * kInt4Nibble[c] .. + 3, so shifting a word by 0, 4, 8, 12 and masking with 0x000F000F gives
// the column pairs (0, 1), (2, 3), (4, 5), (6, 7) as two 16-bit lanes (AWQ's order 0 2 4 6 1 3 5
// 7). Words come in steps of 32 columns (4 words). Inside each whole 128-column block of a row (16
// words) word 4t + i is step i's word t, so a GPU lane t loading 16 bytes of a block holds word t
// of all four steps (src/backend/cuda/gemv_tc.cuh); the steps of the last cols % 128 columns are
// stored in order.
#pragma once

#include <cstdint>

namespace llmserve {

inline constexpr int32_t kInt4Nibble[8] = {0, 4, 1, 5, 2, 6, 3, 7};

// Where word j (columns 8j .. 8j + 7) of a row of `cols` columns is stored among the row's words.
inline int64_t int4_word_position(int64_t j, int64_t cols) {
  const int64_t block = j / 16;
  if (block >= cols / 128) return j;  // the steps after the last whole block, in order
  const int64_t within = j % 16;      // step i = within / 4, word t = within % 4
  return block * 16 + 4 * (within % 4) + within / 4;
}

}  // namespace llmserve
