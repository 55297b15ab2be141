// Backend::matmul_q8 (int8 weight-only): the CPU op equals Backend::matmul over the dequantized
// weights (q * scale per output row) for decode-sized and prefill-sized inputs, with and without
// a bias; both quantized matmuls refuse a weight of the wrong dtype, and backends without them
// refuse with kUnimplemented naming the flag.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "common/status.h"

namespace llmserve {
namespace {

struct Q8Case {
  int64_t m, k, n;
  bool has_bias;
};

class MatmulQ8Cpu : public ::testing::TestWithParam<Q8Case> {};

TEST_P(MatmulQ8Cpu, EqualsMatmulOfDequantizedWeights) {
  const auto [m, k, n, has_bias] = GetParam();
  auto backend = create_backend(DeviceKind::kCpu);
  std::mt19937 rng(static_cast<uint32_t>(m * 1000 + k + n));
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::uniform_int_distribution<int> code(-127, 127);
  std::vector<float> x(static_cast<size_t>(m * k)), scales(static_cast<size_t>(n)),
      bias(static_cast<size_t>(n));
  std::vector<int8_t> q(static_cast<size_t>(n * k));
  std::vector<float> deq(q.size());
  for (float& v : x) v = u(rng);
  for (float& v : bias) v = u(rng);
  for (int64_t r = 0; r < n; ++r) {
    scales[static_cast<size_t>(r)] =
        1e-3f * (1.0f + 9.0f * (u(rng) + 1.0f));  // rows of different ranges
    for (int64_t c = 0; c < k; ++c) {
      const auto i = static_cast<size_t>(r * k + c);
      q[i] = static_cast<int8_t>(code(rng));
      deq[i] = static_cast<float>(q[i]) * scales[static_cast<size_t>(r)];
    }
  }
  std::vector<Buffer> owner;
  Tensor tx = backend->allocate_tensor(owner, DType::kF32, {m, k});
  Tensor tq = backend->allocate_tensor(owner, DType::kI8, {n, k});
  Tensor ts = backend->allocate_tensor(owner, DType::kF32, {n});
  Tensor tw = backend->allocate_tensor(owner, DType::kF32, {n, k});
  Tensor tb = has_bias ? backend->allocate_tensor(owner, DType::kF32, {n}) : Tensor();
  Tensor got = backend->allocate_tensor(owner, DType::kF32, {m, n});
  Tensor want = backend->allocate_tensor(owner, DType::kF32, {m, n});
  backend->upload(x.data(), tx);
  backend->upload(q.data(), tq);
  backend->upload(scales.data(), ts);
  backend->upload(deq.data(), tw);
  if (has_bias) backend->upload(bias.data(), tb);
  backend->matmul_q8(tx, tq, ts, tb, got);
  backend->matmul(tx, tw, tb, want);
  const float* g = got.as<float>();
  const float* w = want.as<float>();
  for (int64_t i = 0; i < m * n; ++i) {
    // Both sum the same fp32 products, in different orders.
    ASSERT_NEAR(g[i], w[i], 1e-5f + 1e-5f * std::abs(w[i])) << "element " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, MatmulQ8Cpu,
                         ::testing::Values(Q8Case{1, 70, 130, true}, Q8Case{1, 768, 2304, false},
                                           Q8Case{3, 33, 65, true}, Q8Case{4, 128, 64, false},
                                           Q8Case{5, 70, 130, true}, Q8Case{17, 96, 200, false},
                                           Q8Case{64, 256, 129, true}));

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
