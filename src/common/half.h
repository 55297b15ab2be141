// fp16 / bf16 / fp8 (e4m3) <-> fp32 conversion on the host. Widening is exact for every finite
// value, NaN and infinity; narrowing rounds to nearest even. Used by the weight loader, the
// quantizer and the CPU backend.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>

namespace llmserve {

// mant / 2^shift rounded to the nearest integer, ties to even (1 <= shift <= 31): the subnormal
// cases of the narrowing conversions below.
inline uint32_t shift_right_to_nearest_even(uint32_t mant, uint32_t shift) {
  uint32_t q = mant >> shift;
  const uint32_t rem = mant & ((1u << shift) - 1);
  const uint32_t halfway = 1u << (shift - 1);
  if (rem > halfway || (rem == halfway && (q & 1u))) ++q;
  return q;
}

inline float bf16_to_float(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

inline uint16_t float_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);  // NaN
  uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

inline float fp16_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      bits = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (mant & 0x3ffu) << 13;
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | mant << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

inline uint16_t float_to_fp16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  uint32_t sign = (bits >> 16) & 0x8000u;
  uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);   // NaN
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
  if (abs < 0x38800000u) {  // subnormal or zero in fp16
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);
    // value * 2^24 = mant * 2^(exp - 126): round that to the nearest even integer.
    const uint32_t exp = abs >> 23;
    const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    return static_cast<uint16_t>(sign |
                                 shift_right_to_nearest_even(mant, 126 - exp));  // shift 14..24
  }
  uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
  return static_cast<uint16_t>(sign | ((rounded - 0x38000000u) >> 13));
}

// OCP FP8 E4M3 ("e4m3fn", what Hopper's fp8 tensor cores read): 1 sign, 4 exponent bits (bias 7),
// 3 mantissa bits; no infinities, NaN = S.1111.111; largest finite 448 (0x7e), smallest normal
// 2^-6 (0x08), subnormals m * 2^-9.
constexpr float kE4m3Max = 448.0f;

inline float e4m3_to_float(uint8_t v) {
  const uint32_t exp = (v >> 3) & 0xfu;
  const uint32_t mant = v & 0x7u;
  float magnitude;
  if (exp == 0xf && mant == 0x7) {
    magnitude = std::numeric_limits<float>::quiet_NaN();
  } else if (exp == 0) {
    magnitude = static_cast<float>(mant) * 0x1p-9f;  // subnormal (or zero): exact
  } else {
    const uint32_t bits = (exp + 127 - 7) << 23 | mant << 20;
    std::memcpy(&magnitude, &bits, sizeof magnitude);
  }
  return (v & 0x80u) != 0 ? -magnitude : magnitude;
}

// Round to nearest even, saturating: |f| beyond 448 (infinity included) becomes +-448, as the
// GPU's cvt.rn.satfinite does; NaN stays NaN (0x7f with f's sign).
inline uint8_t float_to_e4m3(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  const auto sign = static_cast<uint8_t>((bits >> 24) & 0x80u);
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7fu;   // NaN
  if (abs >= 0x43e00000u) return sign | 0x7eu;  // >= 448: saturate
  if (abs < 0x3c800000u) {                      // below 2^-6: a subnormal code (or zero)
    if (abs <= 0x3a800000u) return sign;        // <= 2^-10, half the smallest subnormal: ties to 0
    // value * 2^9 = mant * 2^(exp - 127 - 23 + 9), rounded to the nearest even integer; 8 is the
    // smallest normal's code, which is what the carry gives.
    const uint32_t exp = abs >> 23;
    const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    return static_cast<uint8_t>(sign |
                                shift_right_to_nearest_even(mant, 141 - exp));  // shift 21..24
  }
  // Normal: keep 3 of 23 mantissa bits, round to nearest even (a carry into the exponent is right),
  // then rebias the exponent from 127 to 7.
  const uint32_t rounded = abs + 0x7ffffu + ((abs >> 20) & 1u);
  return static_cast<uint8_t>(sign | ((rounded >> 20) - ((127 - 7) << 3)));
}

}  // namespace llmserve
