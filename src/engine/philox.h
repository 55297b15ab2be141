// Philox-4x32-10: the counter-based random number generator behind sampling.
//
// Salmon et al., "Parallel random numbers: as easy as 1, 2, 3" (SC'11), as in Random123 and
// cuRAND. A counter-based generator is a pure function of (key, counter), so the random number a
// sequence uses at step n is a function of (seed, n) alone: it does not depend on which other
// sequences share the batch, which thread samples, or in which order. Everything here is
// constexpr, allocation-free and uses only 32-bit multiplies, so the same code can be compiled for
// a GPU later and give bit-identical draws.
//
// Thread-safety: pure functions, safe from any thread.
#pragma once

#include <array>
#include <cstdint>

namespace llmserve {

using PhiloxCounter = std::array<uint32_t, 4>;
using PhiloxKey = std::array<uint32_t, 2>;

inline constexpr uint32_t kPhiloxM0 = 0xD2511F53u;  // round multipliers
inline constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
inline constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;  // Weyl key increments (golden ratio, sqrt 3)
inline constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;
inline constexpr int kPhiloxNumRounds = 10;

// One Philox round: two 32x32->64 multiplies, mixed with the key.
constexpr PhiloxCounter philox_round(const PhiloxCounter& c, const PhiloxKey& k) {
  const uint64_t p0 = uint64_t{kPhiloxM0} * c[0];
  const uint64_t p1 = uint64_t{kPhiloxM1} * c[2];
  const auto hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
  const auto hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
  return {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
}

// Philox-4x32-10 block: four independent uniform 32-bit words for (counter, key).
// Matches Random123's philox4x32_R(10, ctr, key) word for word.
constexpr PhiloxCounter philox4x32_10(PhiloxCounter counter, PhiloxKey key) {
  for (int round = 0; round < kPhiloxNumRounds; ++round) {
    if (round > 0) key = {key[0] + kPhiloxW0, key[1] + kPhiloxW1};
    counter = philox_round(counter, key);
  }
  return counter;
}

// The sampling uniform for (seed, step): u in [0, 1) with 53 random bits.
// key = seed (low word first), counter = (step low, step high, 0, 0); words 0 and 1 of the
// output form the mantissa. Words 2-3 stay free for a second draw per step if one is ever needed.
constexpr double philox_uniform(uint64_t seed, uint64_t step) {
  const PhiloxKey key = {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
  const PhiloxCounter counter = {static_cast<uint32_t>(step), static_cast<uint32_t>(step >> 32), 0u,
                                 0u};
  const PhiloxCounter out = philox4x32_10(counter, key);
  const uint64_t bits = (uint64_t{out[0]} | (uint64_t{out[1]} << 32)) >> 11;
  return static_cast<double>(bits) * 0x1.0p-53;
}

}  // namespace llmserve
