// Backend::matmul_fp8 (e4m3 weights with one scale per tensor, inputs quantized to e4m3 per call):
// the CPU op equals a direct double-precision sum over the same quantized values, computed here
// from the definition (sx = max|x| / 448, x -> e4m3(x / sx), out = sx * sw * sum q(x) q(w) + b),
// for decode- and prefill-sized inputs with and without a bias, an all-zero input, and weights
// drawn over every finite code. (Wrong weight dtypes and backends without the op: matmul_q8_test.)
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "backend/backend.h"
#include "common/half.h"
#include "common/status.h"

namespace llmserve {
namespace {

struct Fp8Case {
  int64_t m, k, n;
  bool has_bias;
  float x_range;  // x ~ U(-x_range, x_range); 0: all zero
};

class MatmulFp8Cpu : public ::testing::TestWithParam<Fp8Case> {};

TEST_P(MatmulFp8Cpu, EqualsTheSumOverQuantizedValues) {
  const auto [m, k, n, has_bias, x_range] = GetParam();
  auto backend = create_backend(DeviceKind::kCpu);
  std::mt19937 rng(static_cast<uint32_t>(m * 1000 + k + n));
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::uniform_int_distribution<int> code(0, 255);
  std::vector<float> x(static_cast<size_t>(m * k)), bias(static_cast<size_t>(n));
  for (float& v : x) v = x_range * u(rng);
  for (float& v : bias) v = u(rng);
  std::vector<uint8_t> q(static_cast<size_t>(n * k));
  for (uint8_t& c : q) {
    do {
      c = static_cast<uint8_t>(code(rng));
    } while ((c & 0x7f) == 0x7f);  // every finite code, both signs
  }
  const float w_scale = 3e-3f;

  // The reference, from the definition.
  float amax = 0;
  for (float v : x) amax = std::max(amax, std::abs(v));
  const float sx = amax / 448.0f;
  std::vector<double> want(static_cast<size_t>(m * n)), magnitude(want.size());
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t c = 0; c < n; ++c) {
      double acc = 0, mag = 0;
      for (int64_t i = 0; i < k; ++i) {
        const double xq = sx > 0 ? e4m3_to_float(float_to_e4m3(x[static_cast<size_t>(r * k + i)] / sx)) : 0.0;
        const double p = xq * e4m3_to_float(q[static_cast<size_t>(c * k + i)]);
        acc += p;
        mag += std::abs(p);
      }
      const auto o = static_cast<size_t>(r * n + c);
      want[o] = acc * sx * w_scale + (has_bias ? bias[static_cast<size_t>(c)] : 0.0);
      magnitude[o] = mag * sx * w_scale;
    }
  }

  std::vector<Buffer> owner;
  Tensor tx = backend->allocate_tensor(owner, DType::kF32, {m, k});
  Tensor tq = backend->allocate_tensor(owner, DType::kF8E4M3, {n, k});
  Tensor ts = backend->allocate_tensor(owner, DType::kF32, {1});
  Tensor tb = has_bias ? backend->allocate_tensor(owner, DType::kF32, {n}) : Tensor();
  Tensor got = backend->allocate_tensor(owner, DType::kF32, {m, n});
  backend->upload(x.data(), tx);
  backend->upload(q.data(), tq);
  backend->upload(&w_scale, ts);
  if (has_bias) backend->upload(bias.data(), tb);
  backend->matmul_fp8(tx, tq, ts, tb, got);
  const float* g = got.as<float>();
  for (size_t i = 0; i < want.size(); ++i) {
    // e4m3 x e4m3 products are exact in fp32; only the fp32 sums round (relative to the sum of
    // |products|, ~k * 2^-24 at worst, far less in practice).
    ASSERT_NEAR(g[i], want[i], 1e-6 + 1e-5 * magnitude[i]) << "element " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, MatmulFp8Cpu,
                         ::testing::Values(Fp8Case{1, 70, 130, true, 1.0f}, Fp8Case{1, 768, 2304, false, 30.0f},
                                           Fp8Case{3, 33, 65, true, 1e-3f}, Fp8Case{4, 128, 64, false, 1.0f},
                                           Fp8Case{5, 70, 130, true, 5.0f}, Fp8Case{17, 96, 200, false, 1.0f},
                                           Fp8Case{64, 256, 129, true, 1.0f}, Fp8Case{2, 64, 48, true, 0.0f}));

}  // namespace
}  // namespace llmserve
