// fp8 W8A8 on the CPU backend, against the definition computed here in double precision:
// Backend::quantize_fp8_rows (per-token scale sx[t] = max|x[t]| / 448, codes e4m3(x / sx), an
// all-zero row -> scale 0 and zero codes) and Backend::matmul_fp8 (out = sum q(x) q(w) * sx[m] *
// sw[n] + b, per-row weight scales) for decode- and prefill-sized inputs with and without a bias,
// rows whose ranges differ by decades (a per-tensor scale would flush the small ones), an
// all-zero row, and weights drawn over every finite code. The fused defaults (add_rms_norm_fp8,
// silu_mul_fp8) equal their compositions. (Wrong weight dtypes and backends without the op:
// matmul_q8_test.)
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
  float x_range;  // x[t] ~ U(-1, 1) * x_range * 10^(t % 4 - 2); 0: all zero
};

class MatmulFp8Cpu : public ::testing::TestWithParam<Fp8Case> {};

TEST_P(MatmulFp8Cpu, EqualsTheSumOverQuantizedValues) {
  const auto [m, k, n, has_bias, x_range] = GetParam();
  auto backend = create_backend(DeviceKind::kCpu);
  std::mt19937 rng(static_cast<uint32_t>(m * 1000 + k + n));
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::uniform_int_distribution<int> code(0, 255);
  std::vector<float> x(static_cast<size_t>(m * k)), bias(static_cast<size_t>(n)),
      w_scales(static_cast<size_t>(n));
  for (int64_t t = 0; t < m; ++t) {
    const float range = x_range * std::pow(10.0f, static_cast<float>(t % 4) - 2.0f);
    for (int64_t i = 0; i < k; ++i) x[static_cast<size_t>(t * k + i)] = range * u(rng);
  }
  if (m > 2) std::fill(x.begin() + 2 * k, x.begin() + 3 * k, 0.0f);  // row 2 all zero
  for (float& v : bias) v = u(rng);
  for (float& v : w_scales) v = 1e-3f * (1.5f + u(rng));
  std::vector<uint8_t> q(static_cast<size_t>(n * k));
  for (uint8_t& c : q) {
    do {
      c = static_cast<uint8_t>(code(rng));
    } while ((c & 0x7f) == 0x7f);  // every finite code, both signs
  }

  // The reference, from the definition.
  std::vector<float> sx(static_cast<size_t>(m));
  std::vector<uint8_t> xq(x.size());
  for (int64_t t = 0; t < m; ++t) {
    float amax = 0;
    for (int64_t i = 0; i < k; ++i)
      amax = std::max(amax, std::abs(x[static_cast<size_t>(t * k + i)]));
    sx[static_cast<size_t>(t)] = amax / 448.0f;
    for (int64_t i = 0; i < k; ++i) {
      const auto at = static_cast<size_t>(t * k + i);
      xq[at] = amax > 0 ? float_to_e4m3(x[at] / sx[static_cast<size_t>(t)]) : 0;
    }
  }
  std::vector<double> want(static_cast<size_t>(m * n)), magnitude(want.size());
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t c = 0; c < n; ++c) {
      double acc = 0, mag = 0;
      for (int64_t i = 0; i < k; ++i) {
        const double p = static_cast<double>(e4m3_to_float(xq[static_cast<size_t>(r * k + i)])) *
                         e4m3_to_float(q[static_cast<size_t>(c * k + i)]);
        acc += p;
        mag += std::abs(p);
      }
      const auto o = static_cast<size_t>(r * n + c);
      const double s =
          static_cast<double>(sx[static_cast<size_t>(r)]) * w_scales[static_cast<size_t>(c)];
      want[o] = acc * s + (has_bias ? bias[static_cast<size_t>(c)] : 0.0);
      magnitude[o] = mag * s;
    }
  }

  std::vector<Buffer> owner;
  Tensor tx = backend->allocate_tensor(owner, DType::kF32, {m, k});
  Fp8Rows codes{backend->allocate_tensor(owner, DType::kF8E4M3, {m, k}),
                backend->allocate_tensor(owner, DType::kF32, {m})};
  Tensor tq = backend->allocate_tensor(owner, DType::kF8E4M3, {n, k});
  Tensor ts = backend->allocate_tensor(owner, DType::kF32, {n});
  Tensor tb = has_bias ? backend->allocate_tensor(owner, DType::kF32, {n}) : Tensor();
  Tensor got = backend->allocate_tensor(owner, DType::kF32, {m, n});
  backend->upload(x.data(), tx);
  backend->upload(q.data(), tq);
  backend->upload(w_scales.data(), ts);
  if (has_bias) backend->upload(bias.data(), tb);
  backend->quantize_fp8_rows(tx, codes);
  const auto* got_codes = codes.q.as<uint8_t>();
  for (int64_t t = 0; t < m; ++t) {
    ASSERT_EQ(codes.scales.as<float>()[t], sx[static_cast<size_t>(t)]) << "row " << t;
  }
  ASSERT_TRUE(std::equal(xq.begin(), xq.end(), got_codes)) << "quantize_fp8_rows codes differ";
  backend->matmul_fp8(codes, tq, ts, tb, got);
  const float* g = got.as<float>();
  for (size_t i = 0; i < want.size(); ++i) {
    // e4m3 x e4m3 products are exact in fp32; only the fp32 sums round (relative to the sum of
    // |products|, ~k * 2^-24 at worst, far less in practice).
    ASSERT_NEAR(g[i], want[i], 1e-6 + 1e-5 * magnitude[i]) << "element " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, MatmulFp8Cpu,
    ::testing::Values(Fp8Case{1, 70, 130, true, 1.0f}, Fp8Case{1, 768, 2304, false, 30.0f},
                      Fp8Case{3, 33, 65, true, 1e-3f}, Fp8Case{4, 128, 64, false, 1.0f},
                      Fp8Case{5, 70, 130, true, 5.0f}, Fp8Case{17, 96, 200, false, 1.0f},
                      Fp8Case{64, 256, 129, true, 1.0f}, Fp8Case{2, 64, 48, true, 0.0f}));

// The fused producers' default compositions: add_rms_norm_fp8 updates the residual as add_rms_norm
// does and writes the codes of its output; silu_mul_fp8 likewise.
TEST(Fp8Producers, EqualTheirCompositions) {
  auto backend = create_backend(DeviceKind::kCpu);
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t t = 5, d = 48, f = 40;
  std::vector<Buffer> owner;
  const auto random = [&](std::initializer_list<int64_t> dims) {
    Tensor x = backend->allocate_tensor(owner, DType::kF32, dims);
    for (int64_t i = 0; i < x.numel(); ++i) x.as<float>()[i] = normal(rng);
    return x;
  };
  const auto copy = [&](Tensor x) {
    Tensor y = backend->allocate_tensor(owner, DType::kF32, {x.dim(0), x.dim(1)});
    std::copy_n(x.as<float>(), x.numel(), y.as<float>());
    return y;
  };
  const auto rows = [&](int64_t n, int64_t k) {
    return Fp8Rows{backend->allocate_tensor(owner, DType::kF8E4M3, {n, k}),
                   backend->allocate_tensor(owner, DType::kF32, {n})};
  };
  const auto same = [](const Fp8Rows& a, const Fp8Rows& b) {
    return std::equal(a.q.as<uint8_t>(), a.q.as<uint8_t>() + a.q.numel(), b.q.as<uint8_t>()) &&
           std::equal(a.scales.as<float>(), a.scales.as<float>() + a.scales.numel(),
                      b.scales.as<float>());
  };
  Tensor residual = random({t, d}), x = random({t, d}), w = random({d});
  Tensor residual2 = copy(residual), out = random({t, d}), out2 = random({t, d});
  const Fp8Rows fused = rows(t, d), plain = rows(t, d);
  backend->add_rms_norm_fp8(residual, x, w, 1e-5f, out, fused);
  backend->add_rms_norm(residual2, x, w, 1e-5f, out2);
  backend->quantize_fp8_rows(out2, plain);
  EXPECT_TRUE(
      std::equal(residual.as<float>(), residual.as<float>() + t * d, residual2.as<float>()));
  EXPECT_TRUE(same(fused, plain));
  Tensor gate_up = random({t, 2 * f}), act = random({t, f}), act2 = random({t, f});
  const Fp8Rows fused_act = rows(t, f), plain_act = rows(t, f);
  backend->silu_mul_fp8(gate_up, act, fused_act);
  backend->silu_mul(gate_up, act2);
  backend->quantize_fp8_rows(act2, plain_act);
  EXPECT_TRUE(same(fused_act, plain_act));
}

TEST(GpuArch, Fp8TensorCoresFromSm89) {
  for (const char* yes : {"sm_89", "sm_90", "sm_90a", "sm_100", "sm_120"})
    EXPECT_TRUE(gpu_arch_has_fp8(yes)) << yes;
  for (const char* no : {"sm_80", "sm_86", "sm_75", "", "sm_", "hopper", "90"})
    EXPECT_FALSE(gpu_arch_has_fp8(no)) << no;
}

}  // namespace
}  // namespace llmserve
