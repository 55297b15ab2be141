// Backend::matmul_q8 (int8 weight-only): with the integer dot-product kernels off (or where k is
// not a multiple of 32, which they do not take), the CPU op equals Backend::matmul over the
// dequantized weights (q * scale per output row) for decode-sized and prefill-sized inputs, with
// and without a bias. With them on (cpu_matmul_q8.cpp, up to 64 rows of x), it equals an exact
// double-precision sum over x rounded to int8 in blocks of 32 (a reference computed here), and
// stays within that rounding's bound of the unrounded product. Both quantized matmuls refuse a
// weight of the wrong dtype, and backends without them refuse with kUnimplemented naming the flag.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "common/status.h"
#include "testing/int8_rounding.h"
#include "testing/kernel_choice.h"

namespace llmserve {
namespace {

struct Q8Case {
  int64_t m, k, n;
  bool has_bias;
};

// Switches matmul_q8's integer dot-product kernels for one scope.
using Q8KernelChoice = testing::ScopedCpuKernels<set_cpu_int8_dot_kernels>;

// One matmul_q8 problem with random inputs, its int8 codes and their dequantized fp32 weights.
struct Q8Problem {
  Q8Problem(const Q8Case& c) : m(c.m), k(c.k), n(c.n) {
    std::mt19937 rng(static_cast<uint32_t>(m * 1000 + k + n));
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::uniform_int_distribution<int> code(-127, 127);
    x.resize(static_cast<size_t>(m * k));
    scales.resize(static_cast<size_t>(n));
    bias.resize(c.has_bias ? static_cast<size_t>(n) : 0);
    q.resize(static_cast<size_t>(n * k));
    deq.resize(q.size());
    for (float& v : x) v = u(rng);
    // A few outliers, as activations have: a block's scale follows its largest value.
    for (size_t i = 0; i < x.size(); i += 37) x[i] *= 8.0f;
    for (float& v : bias) v = u(rng);
    for (int64_t r = 0; r < n; ++r) {
      scales[static_cast<size_t>(r)] =
          1e-3f * (1.0f + 9.0f * (u(rng) + 1.0f));  // rows of different ranges
      for (int64_t c2 = 0; c2 < k; ++c2) {
        const auto i = static_cast<size_t>(r * k + c2);
        q[i] = static_cast<int8_t>(code(rng));
        deq[i] = static_cast<float>(q[i]) * scales[static_cast<size_t>(r)];
      }
    }
  }

  // Backend::matmul_q8 (int8 codes) or Backend::matmul (dequantized fp32 weights) on the CPU.
  std::vector<float> run(bool quantized) const {
    auto backend = create_backend(DeviceKind::kCpu);
    std::vector<Buffer> owner;
    Tensor tx = backend->allocate_tensor(owner, DType::kF32, {m, k});
    Tensor tb = bias.empty() ? Tensor() : backend->allocate_tensor(owner, DType::kF32, {n});
    Tensor out = backend->allocate_tensor(owner, DType::kF32, {m, n});
    backend->upload(x.data(), tx);
    if (!bias.empty()) backend->upload(bias.data(), tb);
    if (quantized) {
      Tensor tq = backend->allocate_tensor(owner, DType::kI8, {n, k});
      Tensor ts = backend->allocate_tensor(owner, DType::kF32, {n});
      backend->upload(q.data(), tq);
      backend->upload(scales.data(), ts);
      backend->matmul_q8(tx, tq, ts, tb, out);
    } else {
      Tensor tw = backend->allocate_tensor(owner, DType::kF32, {n, k});
      backend->upload(deq.data(), tw);
      backend->matmul(tx, tw, tb, out);
    }
    std::vector<float> result(static_cast<size_t>(m * n));
    backend->download(out, result.data());
    return result;
  }

  int64_t m, k, n;
  std::vector<float> x, scales, bias, deq;
  std::vector<int8_t> q;
};

class MatmulQ8Cpu : public ::testing::TestWithParam<Q8Case> {};

TEST_P(MatmulQ8Cpu, EqualsMatmulOfDequantizedWeights) {
  const Q8Problem p(GetParam());
  const Q8KernelChoice widened(false);
  const std::vector<float> got = p.run(true), want = p.run(false);
  for (int64_t r = 0; r < p.m; ++r) {
    for (int64_t c = 0; c < p.n; ++c) {
      // Both sum the same fp32 products, in different orders: their rounding grows with the sum of
      // the products' sizes (the inputs' outliers make it large beside the result).
      double l1 = 0.0;
      for (int64_t i = 0; i < p.k; ++i) {
        l1 += std::abs(static_cast<double>(p.x[static_cast<size_t>(r * p.k + i)]) *
                       p.deq[static_cast<size_t>(c * p.k + i)]);
      }
      const auto at = static_cast<size_t>(r * p.n + c);
      ASSERT_NEAR(got[at], want[at], 1e-5 + 1e-5 * std::abs(want[at]) + 3e-7 * l1)
          << "row " << r << " col " << c;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, MatmulQ8Cpu,
                         ::testing::Values(Q8Case{1, 70, 130, true}, Q8Case{1, 768, 2304, false},
                                           Q8Case{3, 33, 65, true}, Q8Case{4, 128, 64, false},
                                           Q8Case{5, 70, 130, true}, Q8Case{17, 96, 200, false},
                                           Q8Case{64, 256, 129, true}));

// A shape, and whether AVX-VNNI may be used (false: AVX2's instructions on any AVX2 CPU).
class MatmulQ8DotCpu : public ::testing::TestWithParam<std::tuple<Q8Case, bool>> {};

// x rounded as the kernels round it, then every sum exact (double): the reference of the integer
// path. Also the bound on how far rounding x may move each output from the unrounded product:
// sum_i |w_i| * (block scale of i) / 2.
TEST_P(MatmulQ8DotCpu, EqualsTheSumOverXRoundedInBlocksOf32) {
  const auto [shape, vnni] = GetParam();
  if (!cpu_int8_dot_available()) GTEST_SKIP() << "this CPU has no AVX2";
  if (vnni && !cpu_int8_dot_vnni_available()) GTEST_SKIP() << "this CPU has no AVX-VNNI";
  const Q8Problem p(shape);
  const Q8KernelChoice fast(true);
  const testing::ScopedCpuKernels<set_cpu_int8_dot_vnni> vnni_choice(vnni);
  const std::vector<float> got = p.run(true), unrounded = p.run(false);
  const int64_t m = p.m, k = p.k, n = p.n;
  ASSERT_EQ(k % 32, 0);
  const testing::RoundedInt8 rounded = testing::round_in_blocks_of_32(p.x, m, k);
  int64_t moved = 0;
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t c = 0; c < n; ++c) {
      double want = p.bias.empty() ? 0.0 : p.bias[static_cast<size_t>(c)], bound = 0.0;
      for (int64_t i = 0; i < k; ++i) {
        const auto xi = static_cast<size_t>(r * k + i), wi = static_cast<size_t>(c * k + i);
        want += static_cast<double>(rounded.values[xi]) * static_cast<double>(p.deq[wi]);
        bound += rounded.half_step[xi] * std::abs(static_cast<double>(p.deq[wi]));
      }
      const auto at = static_cast<size_t>(r * n + c);
      ASSERT_NEAR(got[at], want, 1e-5 + 1e-5 * std::abs(want)) << "row " << r << " col " << c;
      ASSERT_LE(std::abs(got[at] - unrounded[at]), bound + 1e-5) << "row " << r << " col " << c;
      moved += got[at] != unrounded[at];
    }
  }
  EXPECT_GT(moved, 0) << "the integer kernels did not run: every output is the unrounded one";
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, MatmulQ8DotCpu,
    ::testing::Combine(::testing::Values(Q8Case{1, 768, 2304, false}, Q8Case{1, 32, 7, true},
                                         Q8Case{2, 96, 65, true}, Q8Case{4, 128, 64, false},
                                         Q8Case{8, 3072, 40, true}, Q8Case{9, 64, 33, false},
                                         Q8Case{16, 256, 129, true}, Q8Case{64, 160, 31, false}),
                       ::testing::Bool()));

// k not a multiple of 32 takes the widened path even with the kernels on: exact as before.
TEST(MatmulQ8DotCpu, OddWidthsStayExact) {
  const Q8Problem p(Q8Case{2, 70, 130, true});
  const Q8KernelChoice fast(true);
  const std::vector<float> got = p.run(true), want = p.run(false);
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], 1e-5f + 1e-5f * std::abs(want[i])) << "element " << i;
}

// Both quantized matmuls refuse a weight of the other's (or no quantized) dtype.
TEST(QuantizedMatmul, RejectsAWeightOfTheWrongDtype) {
  auto backend = create_backend(DeviceKind::kCpu);
  std::vector<Buffer> owner;
  Tensor x = backend->allocate_tensor(owner, DType::kF32, {1, 8});
  Tensor f32 = backend->allocate_tensor(owner, DType::kF32, {4, 8});
  Tensor f8 = backend->allocate_tensor(owner, DType::kF8E4M3, {4, 8});
  Tensor i8 = backend->allocate_tensor(owner, DType::kI8, {4, 8});
  Tensor scales = backend->allocate_tensor(owner, DType::kF32, {4});
  Tensor out = backend->allocate_tensor(owner, DType::kF32, {1, 4});
  for (Tensor w : {f32, f8}) {
    EXPECT_THROW(backend->matmul_q8(x, w, scales, Tensor(), out), Error) << dtype_name(w.dtype);
  }
  const Fp8Rows xq{backend->allocate_tensor(owner, DType::kF8E4M3, {1, 8}),
                   backend->allocate_tensor(owner, DType::kF32, {1})};
  for (Tensor w : {f32, i8}) {
    EXPECT_THROW(backend->matmul_fp8(xq, w, scales, Tensor(), out), Error) << dtype_name(w.dtype);
  }
  EXPECT_THROW(backend->matmul_fp8(Fp8Rows{x, xq.scales}, f8, scales, Tensor(), out), Error)
      << "an F32 input";
}

TEST(QuantizedMatmul, BackendsWithoutItRefuse) {
  auto backend = create_backend(DeviceKind::kNull);
  const auto expect_refusal = [](const std::function<void()>& op, const std::string& flag) {
    try {
      op();
      ADD_FAILURE() << "the null backend has no " << flag << " matmul";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), StatusCode::kUnimplemented);
      EXPECT_NE(std::string(e.what()).find(flag), std::string::npos) << e.what();
    }
  };
  expect_refusal([&] { backend->matmul_q8(Tensor(), Tensor(), Tensor(), Tensor(), Tensor()); },
                 "--quantization int8-wo");
  expect_refusal([&] { backend->matmul_fp8(Fp8Rows{}, Tensor(), Tensor(), Tensor(), Tensor()); },
                 "--quantization fp8");
  expect_refusal([&] { backend->quantize_fp8_rows(Tensor(), Fp8Rows{}); }, "--quantization fp8");
}

}  // namespace
}  // namespace llmserve
