// argmax_first against std::max_element: random rows of every length around the vector widths,
// ties (the first wins), -inf rows, NaNs, and a maximum in the tail past the last whole vector.
#include "common/argmax.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace llmserve {
namespace {

TEST(Argmax, MatchesMaxElementOnRandomRows) {
  std::mt19937 rng(7);
  std::normal_distribution<float> value(0.0f, 3.0f);
  for (int64_t n : {1, 7, 8, 31, 32, 33, 63, 64, 65, 100, 1000, 50257}) {
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<float> x(static_cast<size_t>(n));
      for (float& v : x) v = value(rng);
      if (trial % 4 == 1) {  // ties: the same maximum at several places
        const float top = *std::max_element(x.begin(), x.end()) + 1.0f;
        for (int k = 0; k < 3; ++k) x[rng() % x.size()] = top;
      }
      if (trial % 4 == 2) x.back() = 100.0f;  // the maximum in the tail
      if (trial % 4 == 3) {                   // a masked row: mostly -inf
        for (size_t i = 0; i < x.size(); ++i) {
          if (rng() % 8 != 0) x[i] = -std::numeric_limits<float>::infinity();
        }
      }
      EXPECT_EQ(argmax_first(x.data(), n), std::max_element(x.begin(), x.end()) - x.begin())
          << "n " << n << " trial " << trial;
    }
  }
}

TEST(Argmax, EdgeRows) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(argmax_first(nullptr, 0), -1);
  std::vector<float> all_masked(100, -inf);
  EXPECT_EQ(argmax_first(all_masked.data(), 100), 0);
  all_masked[77] = -1e30f;
  EXPECT_EQ(argmax_first(all_masked.data(), 100), 77);
  std::vector<float> with_nan(64, 1.0f);
  with_nan[3] = nan;
  with_nan[40] = 2.0f;
  EXPECT_EQ(argmax_first(with_nan.data(), 64), 40);  // a NaN is never the maximum
  std::vector<float> plus_inf(64, 0.0f);
  plus_inf[63] = inf;
  plus_inf[10] = inf;
  EXPECT_EQ(argmax_first(plus_inf.data(), 64), 10);
}

}  // namespace
}  // namespace llmserve
