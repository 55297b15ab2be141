// fp8 e4m3 <-> fp32 (common/half.h) against references derived here from the OCP FP8 definition
// (1 sign, 4 exponent bits with bias 7, 3 mantissa bits; exponent 0 subnormal; S.1111.111 NaN; no
// infinities): every one of the 256 codes decodes to its defined value and encodes back to itself,
// every midpoint between neighbouring codes rounds to the even one (and one float either side to
// the nearer), out-of-range values saturate to +-448, and random floats over the whole range agree
// with a brute-force nearest-code search.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "common/half.h"

namespace llmserve {
namespace {

// The value code c stands for, straight from the format's definition (NaN for the two NaN codes).
double reference_value(int c) {
  const int sign = (c >> 7) & 1, exp = (c >> 3) & 0xf, mant = c & 0x7;
  if (exp == 0xf && mant == 0x7) return std::numeric_limits<double>::quiet_NaN();
  const double magnitude =
      exp == 0 ? std::ldexp(mant / 8.0, -6) : std::ldexp(1.0 + mant / 8.0, exp - 7);
  return sign != 0 ? -magnitude : magnitude;
}

// The code nearest to f among the finite codes of f's sign, ties to the even code (the one whose
// mantissa's last bit is 0), |f| above the largest finite value saturating to it.
int reference_code(float f) {
  const int sign = std::signbit(f) ? 0x80 : 0;
  if (std::isnan(f)) return sign | 0x7f;
  const double a = std::abs(static_cast<double>(f));
  int best = 0;
  double best_err = std::numeric_limits<double>::infinity();
  for (int c = 0; c <= 0x7e; ++c) {
    const double err = std::abs(reference_value(c) - a);
    if (err < best_err || (err == best_err && (c & 1) == 0)) {
      best = c;
      best_err = err;
    }
  }
  return sign | best;
}

bool is_nan_code(int c) {
  return (c & 0x7f) == 0x7f;
}

TEST(E4m3, DecodesEveryCode) {
  for (int c = 0; c < 256; ++c) {
    const float got = e4m3_to_float(static_cast<uint8_t>(c));
    if (is_nan_code(c)) {
      EXPECT_TRUE(std::isnan(got)) << "code " << c;
      continue;
    }
    EXPECT_EQ(static_cast<double>(got), reference_value(c)) << "code " << c;
    EXPECT_EQ(std::signbit(got), (c & 0x80) != 0) << "code " << c;  // -0 included
  }
  EXPECT_EQ(e4m3_to_float(0x7e), kE4m3Max);
  EXPECT_EQ(e4m3_to_float(0x08), std::ldexp(1.0f, -6));
  EXPECT_EQ(e4m3_to_float(0x01), std::ldexp(1.0f, -9));
}

TEST(E4m3, EncodesEveryCodeToItself) {
  for (int c = 0; c < 256; ++c) {
    if (is_nan_code(c)) continue;
    EXPECT_EQ(float_to_e4m3(e4m3_to_float(static_cast<uint8_t>(c))), c) << "code " << c;
  }
}

TEST(E4m3, MidpointsRoundToEven) {
  for (int sign : {0, 0x80}) {
    for (int c = 0; c < 0x7e; ++c) {
      const float lo = e4m3_to_float(static_cast<uint8_t>(sign | c));
      const float hi = e4m3_to_float(static_cast<uint8_t>(sign | (c + 1)));
      const float mid = (lo + hi) / 2;  // exact: both have at most 4 significant bits
      const int even = (c & 1) == 0 ? c : c + 1;
      EXPECT_EQ(float_to_e4m3(mid), sign | even) << "between codes " << c << " and " << c + 1;
      EXPECT_EQ(float_to_e4m3(std::nextafter(mid, lo)), sign | c)
          << "just below the midpoint after " << c;
      EXPECT_EQ(float_to_e4m3(std::nextafter(mid, hi)), sign | (c + 1))
          << "just above the midpoint after " << c;
      EXPECT_EQ(float_to_e4m3(mid), reference_code(mid));
    }
  }
}

TEST(E4m3, SaturatesAndKeepsNan) {
  for (float f :
       {448.0f, 449.0f, 464.0f, 480.0f, 1e6f, 3e38f, std::numeric_limits<float>::infinity()}) {
    EXPECT_EQ(float_to_e4m3(f), 0x7e) << f;
    EXPECT_EQ(float_to_e4m3(-f), 0xfe) << -f;
  }
  EXPECT_EQ(float_to_e4m3(std::numeric_limits<float>::quiet_NaN()), 0x7f);
  EXPECT_EQ(float_to_e4m3(-std::numeric_limits<float>::quiet_NaN()), 0xff);
  // Below half the smallest subnormal (2^-10, itself a tie that goes to the even 0): zero.
  EXPECT_EQ(float_to_e4m3(std::ldexp(1.0f, -10)), 0x00);
  EXPECT_EQ(float_to_e4m3(std::nextafter(std::ldexp(1.0f, -10), 1.0f)), 0x01);
  EXPECT_EQ(float_to_e4m3(-std::ldexp(1.0f, -12)), 0x80);
  EXPECT_EQ(float_to_e4m3(std::numeric_limits<float>::denorm_min()), 0x00);
  EXPECT_EQ(float_to_e4m3(0.0f), 0x00);
  EXPECT_EQ(float_to_e4m3(-0.0f), 0x80);
}

TEST(E4m3, RandomFloatsMatchTheNearestCode) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> mantissa(1.0f, 2.0f);
  std::uniform_int_distribution<int> exponent(-13, 10);  // past both ends of e4m3's range
  for (int i = 0; i < 50000; ++i) {
    const float f = std::ldexp(mantissa(rng), exponent(rng)) * (i % 2 == 0 ? 1.0f : -1.0f);
    ASSERT_EQ(float_to_e4m3(f), reference_code(f)) << f;
  }
}

}  // namespace
}  // namespace llmserve
