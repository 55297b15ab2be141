// The host arithmetic of --quantization (model/quantize.h): the int8 and fp8 per-row and the int4
// per-group round trips stay within half a step, the int4 packing is the documented layout
// (src/common/int4.h), the int4 group size fits the row, and quantize_weight dispatches each
// scheme to its codes and scales. Whole models quantized at load: quantization_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "common/half.h"
#include "common/int4.h"
#include "common/status.h"
#include "model/quantize.h"

namespace llmserve {
namespace {

TEST(Int8Quantization, RoundTripWithinHalfAStep) {
  constexpr int64_t kRows = 6, kCols = 77;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> w(static_cast<size_t>(kRows * kCols));
  for (int64_t r = 0; r < kRows; ++r) {
    const float range = std::pow(10.0f, static_cast<float>(r) - 3.0f);  // 1e-3 .. 1e2 per row
    for (int64_t c = 0; c < kCols; ++c) w[static_cast<size_t>(r * kCols + c)] = range * normal(rng);
  }
  for (int64_t c = 0; c < kCols; ++c)
    w[static_cast<size_t>(5 * kCols + c)] = 0.0f;  // an all-zero row
  std::vector<int8_t> q(w.size());
  std::vector<float> scales(kRows);
  quantize_rows_int8(w, kRows, kCols, q, scales);
  const std::vector<float> back = dequantize_rows_int8(q, scales, kRows, kCols);
  for (int64_t r = 0; r < kRows; ++r) {
    float amax = 0;
    int extreme = 0;
    for (int64_t c = 0; c < kCols; ++c)
      amax = std::max(amax, std::abs(w[static_cast<size_t>(r * kCols + c)]));
    EXPECT_FLOAT_EQ(scales[static_cast<size_t>(r)], amax / 127.0f) << "row " << r;
    for (int64_t c = 0; c < kCols; ++c) {
      const auto i = static_cast<size_t>(r * kCols + c);
      EXPECT_GE(q[i], -127);
      EXPECT_LE(std::abs(back[i] - w[i]), 0.5f * scales[static_cast<size_t>(r)] * (1.0f + 1e-5f))
          << r << "," << c;
      extreme += std::abs(q[i]) == 127 ? 1 : 0;
    }
    if (amax > 0) {
      EXPECT_GE(extreme, 1) << "the largest |w| of a row must map to +-127";
    }
  }
  for (int64_t c = 0; c < kCols; ++c) EXPECT_EQ(q[static_cast<size_t>(5 * kCols + c)], 0);
}

// Per row: each row's largest |w| maps to +-448; every value is within half an e4m3 step of its
// original (2^-4 relative for normal codes, half the subnormal step 2^-10 * scale below them).
TEST(Fp8Quantization, RoundTripWithinHalfAStep) {
  constexpr int64_t kRows = 5, kCols = 800;
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> w(static_cast<size_t>(kRows * kCols));
  for (size_t i = 0; i < w.size(); ++i) {
    // 1e-3 .. 10 within a row, and rows a decade apart: per-row scales must follow them.
    w[i] = std::pow(10.0f, static_cast<float>(i % 5) - 3.0f + static_cast<float>(i / kCols)) *
           normal(rng);
  }
  w[17] = 0.0f;
  for (int64_t c = 0; c < kCols; ++c)
    w[static_cast<size_t>(3 * kCols + c)] = 0.0f;  // an all-zero row
  std::vector<uint8_t> q(w.size());
  std::vector<float> scales(kRows);
  quantize_rows_fp8(w, kRows, kCols, q, scales);
  const std::vector<float> back = dequantize_rows_fp8(q, scales, kRows, kCols);
  for (int64_t r = 0; r < kRows; ++r) {
    const float scale = scales[static_cast<size_t>(r)];
    float amax = 0;
    int extreme = 0;
    for (int64_t c = 0; c < kCols; ++c)
      amax = std::max(amax, std::abs(w[static_cast<size_t>(r * kCols + c)]));
    EXPECT_FLOAT_EQ(scale, amax / 448.0f) << "row " << r;
    for (int64_t c = 0; c < kCols; ++c) {
      const auto i = static_cast<size_t>(r * kCols + c);
      const float normal_min = std::ldexp(1.0f, -6) * scale;
      const float bound =
          std::abs(w[i]) >= normal_min ? std::abs(w[i]) * 0x1p-4f : 0x1p-10f * scale;
      EXPECT_LE(std::abs(back[i] - w[i]), bound * (1.0f + 1e-5f)) << r << "," << c << ": " << w[i];
      extreme += (q[i] & 0x7f) == 0x7e ? 1 : 0;
    }
    if (amax > 0) {
      EXPECT_GE(extreme, 1) << "row " << r << ": its largest |w| must map to +-448";
    } else {
      for (int64_t c = 0; c < kCols; ++c) EXPECT_EQ(q[static_cast<size_t>(r * kCols + c)], 0);
    }
  }
  EXPECT_EQ(q[17], 0);
}

// Per group: the range [min(w, 0), max(w, 0)] maps onto codes 0..15 (the zero exactly), every
// value lands within half a step of its original, and an all-zero group is all zero.
TEST(Int4Quantization, RoundTripWithinHalfAStep) {
  constexpr int64_t kRows = 5, kCols = 160;
  constexpr int32_t kGroup = 32;
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> w(static_cast<size_t>(kRows * kCols));
  for (int64_t r = 0; r < kRows; ++r) {
    const float range = std::pow(10.0f, static_cast<float>(r) - 2.0f);
    for (int64_t c = 0; c < kCols; ++c) w[static_cast<size_t>(r * kCols + c)] = range * normal(rng);
  }
  for (int64_t c = 0; c < kGroup; ++c) w[static_cast<size_t>(2 * kCols + 64 + c)] = 0.0f;
  for (int64_t c = 0; c < kGroup; ++c)  // a group of positive values only: zero point 0
    w[static_cast<size_t>(3 * kCols + c)] = 1.0f + static_cast<float>(c);
  std::vector<uint8_t> codes(w.size());
  std::vector<float> sz(static_cast<size_t>(kRows * 2 * (kCols / kGroup)));
  quantize_groups_int4(w, kRows, kCols, kGroup, codes, sz);
  const std::vector<uint32_t> words = pack_int4(codes, kRows, kCols);
  ASSERT_EQ(words.size(), static_cast<size_t>(kRows * kCols / 8));
  EXPECT_EQ(unpack_int4(words, kRows, kCols), codes);
  const std::vector<float> back = dequantize_int4(words, sz, kRows, kCols);
  for (int64_t r = 0; r < kRows; ++r) {
    for (int64_t g = 0; g < kCols / kGroup; ++g) {
      const float scale = sz[static_cast<size_t>(r * 2 * (kCols / kGroup) + 2 * g)];
      const float zero = sz[static_cast<size_t>(r * 2 * (kCols / kGroup) + 2 * g + 1)];
      float lo = 0, hi = 0;
      bool has0 = false, has15 = false;
      for (int64_t c = g * kGroup; c < (g + 1) * kGroup; ++c) {
        const auto i = static_cast<size_t>(r * kCols + c);
        lo = std::min(lo, w[i]);
        hi = std::max(hi, w[i]);
        EXPECT_LE(std::abs(back[i] - w[i]), 0.5f * scale * (1.0f + 1e-5f) + 1e-7f) << r << "," << c;
        has0 |= codes[i] == 0;
        has15 |= codes[i] == 15;
      }
      EXPECT_FLOAT_EQ(scale, (hi - lo) / 15.0f) << r << "," << g;
      EXPECT_EQ(zero, std::nearbyint(zero));
      if (hi > lo) {
        EXPECT_TRUE(has0 && has15) << "the group's extremes map to codes 0 and 15";
      } else {
        EXPECT_EQ(scale, 0.0f);
      }
    }
  }
  EXPECT_EQ(sz[static_cast<size_t>(3 * 2 * 5 + 1)], 0.0f);  // the positive group's zero point
  for (int64_t c = 0; c < kGroup; ++c) EXPECT_EQ(back[static_cast<size_t>(2 * kCols + 64 + c)], 0);
}

// The packed layout, word by word: column c of an 8-column word in nibble kInt4Nibble[c], and in a
// whole 128-column block word 4t + i holding step i's word t; the steps after the last whole block
// in order.
TEST(Int4Quantization, PackedLayout) {
  constexpr int64_t kCols = 128 + 64;  // one whole block, then two steps
  std::vector<uint8_t> codes(kCols);
  for (int64_t c = 0; c < kCols; ++c) codes[static_cast<size_t>(c)] = static_cast<uint8_t>(c % 16);
  codes[8] = 15;  // word 1 (step 0, word 1), column 0
  const std::vector<uint32_t> words = pack_int4(codes, 1, kCols);
  // Word 0: columns 0..7 = 0..7: nibble order 0 2 4 6 1 3 5 7 reads 0x75316420.
  EXPECT_EQ(words[0], 0x75316420u);
  // Word 1 (columns 8..15) is step 0's word 1: stored at 4 * 1 + 0 = 4.
  EXPECT_EQ(words[4] & 15u, 15u);
  // Word 4 (columns 32..39, step 1's word 0) is stored at 4 * 0 + 1 = 1.
  EXPECT_EQ(words[1], 0x75316420u);
  for (int64_t j = 0; j < kCols / 8; ++j) {
    const int64_t at = int4_word_position(j, kCols);
    if (j >= 16) {
      EXPECT_EQ(at, j) << "the tail is in order";
    }
  }
  EXPECT_EQ(int4_word_position(5, kCols), 4 * 1 + 1);  // step 1, word 1
  EXPECT_EQ(int4_word_position(15, kCols), 4 * 3 + 3);
  EXPECT_EQ(int4_word_position(15, 96), 15);  // no whole block: in order
}

TEST(Int4Quantization, GroupSizeFitsTheRow) {
  EXPECT_EQ(int4_group_for(4096, 128), 128);
  EXPECT_EQ(int4_group_for(14336, 128), 128);
  EXPECT_EQ(int4_group_for(160, 128), 32);
  EXPECT_EQ(int4_group_for(192, 128), 64);
  EXPECT_EQ(int4_group_for(4096, 1 << 30), 4096);  // GPTQ's one group a row
  EXPECT_EQ(int4_group_for(160, 32), 32);
  for (int32_t bad : {0, 16, 48, 100}) {
    try {
      int4_group_for(4096, bad);
      ADD_FAILURE() << "group " << bad << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), StatusCode::kInvalidArgument);
    }
  }
  try {
    int4_group_for(100, 128);
    ADD_FAILURE() << "100 columns accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("in_features divisible by 32"), std::string::npos)
        << e.what();
  }
}

// The loader's dispatch: int8-wo keeps one scale per row and I8 codes, fp8 one scale per row and
// e4m3 codes, int4-wo packed words and (scale, zero) pairs per group.
TEST(QuantizeWeight, CodesAndScalesPerScheme) {
  const std::vector<float> w = {1.0f, -2.0f, 0.5f, 0.25f, 4.0f, -8.0f};
  const QuantizedWeight i8 = quantize_weight(w, 2, 3, Quantization::kInt8WeightOnly);
  EXPECT_EQ(i8.dtype, DType::kI8);
  ASSERT_EQ(i8.scales.size(), 2u);
  EXPECT_FLOAT_EQ(i8.scales[1], 8.0f / 127.0f);
  EXPECT_EQ(static_cast<int8_t>(i8.codes[1]), -127);
  const QuantizedWeight f8 = quantize_weight(w, 2, 3, Quantization::kFp8);
  EXPECT_EQ(f8.dtype, DType::kF8E4M3);
  ASSERT_EQ(f8.scales.size(), 2u);
  EXPECT_FLOAT_EQ(f8.scales[0], 2.0f / 448.0f);
  EXPECT_FLOAT_EQ(f8.scales[1], 8.0f / 448.0f);
  EXPECT_EQ(f8.codes[1], 0xfe);                                      // -2 -> -448 in row 0
  EXPECT_EQ(f8.codes[5], 0xfe);                                      // -8 -> -448 in row 1
  EXPECT_FLOAT_EQ(e4m3_to_float(f8.codes[0]) * f8.scales[0], 1.0f);  // 224 in e4m3 is exact
  std::vector<float> wide(2 * 96);
  for (size_t i = 0; i < wide.size(); ++i) wide[i] = static_cast<float>(i % 7) - 3.0f;
  const QuantizedWeight i4 = quantize_weight(wide, 2, 96, Quantization::kInt4WeightOnly);
  EXPECT_EQ(i4.dtype, DType::kI32);
  EXPECT_EQ(i4.group_size, 32);  // 96 columns: 128 halved to 32
  EXPECT_EQ(i4.codes.size(), 2u * 96 / 2);
  EXPECT_EQ(i4.scales.size(), 2u * 2 * 3);
}

}  // namespace
}  // namespace llmserve
