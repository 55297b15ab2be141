// CpuBackend::matmul over F16 / BF16 weights, widened to fp32 as they are read: equal to the fp32
// matmul of the same weights widened beforehand, for decode-sized (1-8 rows: the streamed GEMV
// kernels) and prefill-sized inputs (widened tiles into OpenBLAS), odd K and N, with and without a
// bias; every finite 16-bit value widens bit-exactly in every kernel; the embedding and transpose
// ops take 16-bit tables too. Each check runs on the AVX2 + F16C kernels (where the CPU has them)
// and on the portable fallback.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/forward_batch.h"
#include "common/half.h"
#include "common/status.h"
#include "testing/kernel_choice.h"

namespace llmserve {
namespace {

uint16_t narrow(float v, DType dtype) {
  return dtype == DType::kBF16 ? float_to_bf16(v) : float_to_fp16(v);
}

float widen(uint16_t h, DType dtype) {
  return dtype == DType::kBF16 ? bf16_to_float(h) : fp16_to_float(h);
}

// Which 16-bit kernels run while it lives: the AVX2 + F16C ones (skipped where the CPU lacks
// them) or the fallback.
using KernelChoice = testing::ScopedCpuKernels<set_cpu_f16c_kernels>;

struct Case {
  int64_t m, k, n;
  bool has_bias;
};

struct Param {
  Case shape;
  DType dtype;
  bool fast;
};

std::string param_name(const ::testing::TestParamInfo<Param>& info) {
  const Param& p = info.param;
  return std::string(p.dtype == DType::kBF16 ? "bf16" : "f16") + "_m" + std::to_string(p.shape.m) +
         "_k" + std::to_string(p.shape.k) + "_n" + std::to_string(p.shape.n) +
         (p.shape.has_bias ? "_bias" : "") + (p.fast ? "_avx2" : "_fallback");
}

void PrintTo(const Param& p, std::ostream* os) {
  *os << dtype_name(p.dtype) << " m " << p.shape.m << " k " << p.shape.k << " n " << p.shape.n
      << (p.shape.has_bias ? " bias" : "") << (p.fast ? " avx2" : " fallback");
}

class Matmul16Cpu : public ::testing::TestWithParam<Param> {};

TEST_P(Matmul16Cpu, EqualsFp32MatmulOfTheWidenedWeights) {
  const auto [shape, dtype, fast] = GetParam();
  const auto [m, k, n, has_bias] = shape;
  if (fast && !cpu_f16c_kernels_available()) GTEST_SKIP() << "no AVX2 + F16C on this CPU";
  KernelChoice kernels(fast);
  auto backend = create_backend(DeviceKind::kCpu, dtype);
  ASSERT_EQ(backend->weight_dtype(), dtype);
  std::mt19937 rng(static_cast<uint32_t>(m * 1000003 + k * 1009 + n));
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(m * k)), bias(static_cast<size_t>(n));
  std::vector<uint16_t> w16(static_cast<size_t>(n * k));
  std::vector<float> w32(w16.size());
  for (float& v : x) v = u(rng);
  for (float& v : bias) v = u(rng);
  for (size_t i = 0; i < w16.size(); ++i) {
    // Rows of different magnitudes, so that every exponent the weights use is widened.
    const float scale = std::ldexp(1.0f, static_cast<int>(i / static_cast<size_t>(k) % 9) - 6);
    w16[i] = narrow(u(rng) * scale, dtype);
    w32[i] = widen(w16[i], dtype);
  }
  std::vector<Buffer> owner;
  Tensor tx = backend->allocate_tensor(owner, DType::kF32, {m, k});
  Tensor th = backend->allocate_tensor(owner, dtype, {n, k});
  Tensor tw = backend->allocate_tensor(owner, DType::kF32, {n, k});
  Tensor tb = has_bias ? backend->allocate_tensor(owner, DType::kF32, {n}) : Tensor();
  Tensor got = backend->allocate_tensor(owner, DType::kF32, {m, n});
  Tensor want = backend->allocate_tensor(owner, DType::kF32, {m, n});
  backend->upload(x.data(), tx);
  backend->upload(w16.data(), th);
  backend->upload(w32.data(), tw);
  if (has_bias) backend->upload(bias.data(), tb);
  backend->matmul(tx, th, tb, got);
  backend->matmul(tx, tw, tb, want);
  const float* g = got.as<float>();
  const float* f = want.as<float>();
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t c = 0; c < n; ++c) {
      // Both sum the same exact fp32 products (a 16-bit value times an fp32 one), in different
      // orders: they differ by a few roundings of the partial sums, a bound of 64 ulps of the sum
      // of |products|. Reading a weight wrong by its last mantissa bit (2^-11 of it in fp16, 2^-8
      // in bf16) moves the sum by far more.
      double magnitude = has_bias ? std::abs(bias[static_cast<size_t>(c)]) : 0.0;
      for (int64_t i = 0; i < k; ++i)
        magnitude += std::abs(static_cast<double>(x[static_cast<size_t>(r * k + i)]) *
                              w32[static_cast<size_t>(c * k + i)]);
      const double tol = 64.0 * std::ldexp(magnitude, -24) + 1e-30;
      ASSERT_NEAR(g[r * n + c], f[r * n + c], tol) << "row " << r << " column " << c;
    }
  }
}

std::vector<Param> params() {
  const Case shapes[] = {
      {1, 768, 2304, false}, {1, 7, 5, true},      {1, 37, 131, true},  {2, 33, 65, false},
      {3, 70, 130, true},    {4, 128, 64, false},  {5, 9, 17, true},    {6, 100, 33, false},
      {7, 255, 40, true},    {8, 64, 300, true},   {9, 71, 129, false}, {9, 768, 96, true},
      {17, 96, 200, false},  {64, 256, 129, true}, {65, 50, 77, true},  {300, 77, 521, true},
  };
  std::vector<Param> out;
  for (const DType dtype : {DType::kF16, DType::kBF16}) {
    for (const bool fast : {true, false}) {
      for (const Case& c : shapes) out.push_back({c, dtype, fast});
    }
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Shapes, Matmul16Cpu, ::testing::ValuesIn(params()), param_name);

// Every finite 16-bit value, read through one-hot rows of x: out[r, c] = w[c, j] exactly (the
// other products are zeros), so each kernel must widen each value bit for bit. Decode sizes
// (1-8 rows), a small batch (streamed in chunks of 8) and a prefill (widened tiles).
class Widening16Cpu : public ::testing::TestWithParam<std::tuple<DType, bool>> {};

TEST_P(Widening16Cpu, EveryFiniteValueWidensExactly) {
  const auto [dtype, fast] = GetParam();
  if (fast && !cpu_f16c_kernels_available()) GTEST_SKIP() << "no AVX2 + F16C on this CPU";
  KernelChoice kernels(fast);
  auto backend = create_backend(DeviceKind::kCpu, dtype);
  std::vector<uint16_t> values;
  for (uint32_t h = 0; h < 65536; ++h) {
    if (std::isfinite(widen(static_cast<uint16_t>(h), dtype)))
      values.push_back(static_cast<uint16_t>(h));
  }
  constexpr int64_t k = 27;  // odd: a 16-lane body, an 8-lane step and a tail
  const int64_t n = (static_cast<int64_t>(values.size()) + k - 1) / k;
  values.resize(static_cast<size_t>(n * k), 0);
  std::vector<Buffer> owner;
  Tensor tw = backend->allocate_tensor(owner, dtype, {n, k});
  backend->upload(values.data(), tw);
  for (const int64_t m : {1, 2, 3, 4, 5, 6, 7, 8, 19, 100}) {
    Tensor tx = backend->allocate_tensor(owner, DType::kF32, {m, k});
    Tensor out = backend->allocate_tensor(owner, DType::kF32, {m, n});
    for (int64_t first = 0; first < k; first += m) {  // row r picks column first + r
      std::vector<float> x(static_cast<size_t>(m * k), 0.0f);
      for (int64_t r = 0; r < m; ++r) x[static_cast<size_t>(r * k + (first + r) % k)] = 1.0f;
      backend->upload(x.data(), tx);
      backend->matmul(tx, tw, Tensor(), out);
      const float* o = out.as<float>();
      for (int64_t r = 0; r < m; ++r) {
        const int64_t j = (first + r) % k;
        for (int64_t c = 0; c < n; ++c) {
          const uint16_t h = values[static_cast<size_t>(c * k + j)];
          ASSERT_EQ(o[r * n + c], widen(h, dtype))
              << "m " << m << " value 0x" << std::hex << h << std::dec;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, Widening16Cpu,
                         ::testing::Combine(::testing::Values(DType::kF16, DType::kBF16),
                                            ::testing::Bool()),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) == DType::kBF16 ? "bf16"
                                                                                      : "f16") +
                                  (std::get<1>(info.param) ? "_avx2" : "_fallback");
                         });

// Token and position rows of 16-bit tables (GPT-2's wte and wpe) widened into fp32 activations.
TEST(Embedding16Cpu, RowsOfA16BitTableAreWidened) {
  for (const DType dtype : {DType::kF16, DType::kBF16}) {
    auto backend = create_backend(DeviceKind::kCpu, dtype);
    constexpr int64_t vocab = 11, positions = 5, dim = 13;
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-2.0f, 2.0f);
    std::vector<uint16_t> table(vocab * dim), pos(positions * dim);
    for (uint16_t& h : table) h = narrow(u(rng), dtype);
    for (uint16_t& h : pos) h = narrow(u(rng), dtype);
    std::vector<Buffer> owner;
    Tensor tt = backend->allocate_tensor(owner, dtype, {vocab, dim});
    Tensor tp = backend->allocate_tensor(owner, dtype, {positions, dim});
    backend->upload(table.data(), tt);
    backend->upload(pos.data(), tp);
    ForwardBatch b;
    b.token_ids = {3, 10, 0};
    b.positions = {0, 4, 2};
    b.query_start = {0, 3};
    b.context_lens = {3};
    b.slot_mapping = {0, 1, 2};
    b.block_tables = {0};
    b.max_blocks_per_seq = 1;
    b.logits_indices = {2};
    const BatchTensors batch = backend->upload_batch(b);
    Tensor out = backend->allocate_tensor(owner, DType::kF32, {3, dim});
    backend->embedding(batch, tt, tp, out);
    for (int64_t t = 0; t < 3; ++t) {
      for (int64_t i = 0; i < dim; ++i) {
        const float want =
            widen(table[static_cast<size_t>(b.token_ids[static_cast<size_t>(t)] * dim + i)],
                  dtype) +
            widen(pos[static_cast<size_t>(b.positions[static_cast<size_t>(t)] * dim + i)], dtype);
        ASSERT_EQ(out.as<float>()[t * dim + i], want) << dtype_name(dtype) << " token " << t;
      }
    }
  }
}

TEST(Transpose16Cpu, MovesTheBits) {
  auto backend = create_backend(DeviceKind::kCpu, DType::kF16);
  constexpr int64_t rows = 70, cols = 131;  // more than one 64 x 64 tile each way
  std::vector<uint16_t> src(rows * cols);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint16_t>(i * 2654435761u >> 16);
  std::vector<Buffer> owner;
  Tensor ts = backend->allocate_tensor(owner, DType::kF16, {rows, cols});
  Tensor td = backend->allocate_tensor(owner, DType::kF16, {cols, rows});
  backend->upload(src.data(), ts);
  backend->transpose(ts, td);
  const auto* d = td.as<uint16_t>();
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) ASSERT_EQ(d[c * rows + r], src[r * cols + c]) << r << c;
  }
  Tensor other = backend->allocate_tensor(owner, DType::kBF16, {cols, rows});
  EXPECT_THROW(backend->transpose(ts, other), Error);
}

TEST(Matmul16Cpu, WeightsOfOtherDtypesAreRefused) {
  EXPECT_THROW(create_backend(DeviceKind::kCpu, DType::kI8), Error);
  auto backend = create_backend(DeviceKind::kCpu, DType::kF16);
  std::vector<Buffer> owner;
  Tensor x = backend->allocate_tensor(owner, DType::kF32, {1, 8});
  Tensor out = backend->allocate_tensor(owner, DType::kF32, {1, 4});
  for (const DType dtype : {DType::kI8, DType::kF8E4M3}) {
    Tensor w = backend->allocate_tensor(owner, dtype, {4, 8});
    EXPECT_THROW(backend->matmul(x, w, Tensor(), out), Error) << dtype_name(dtype);
  }
}

}  // namespace
}  // namespace llmserve
