// Backend::matmul_int4 (int4 weight-only) on the CPU: the op equals Backend::matmul over the
// dequantized weights ((q - zero) * scale per group, from model/quantize.h's reference), with the
// (scale, zero) pairs held in fp32, fp16 or bf16, at every row count from 1 to past the streamed
// GEMV's limit (the kernels for each count of rows of x, and the dequantized blocks into OpenBLAS
// above it) and prefill-sized inputs, rows with and without a whole 128-column block and with 1 to
// 3 steps after the last, groups of 32 to 256 columns (and 96, and 48, which only the dequantized
// path takes), with and without a bias; each on the integer dot products over x rounded to int8
// (against the product of the rounded x), the AVX2 float kernels (where the CPU has them) and the
// portable fallback; and a weight or scales of the wrong shape or dtype is refused. (In
// model_tests: the reference is model/quantize.h's.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <iterator>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "common/half.h"
#include "common/status.h"
#include "model/quantize.h"
#include "testing/int8_rounding.h"
#include "testing/kernel_choice.h"

namespace llmserve {
namespace {

struct Int4Case {
  int64_t m, k, n;
  int32_t group;
  DType scale_dtype;
  bool has_bias;
};

// Random codes and (scale, zero) pairs, the pairs rounded to `dtype` as the loader stores them.
struct Int4Weight {
  std::vector<uint32_t> words;
  std::vector<float> pairs;  // the values after rounding to the storage dtype
  std::vector<uint8_t> stored;
};

Int4Weight random_int4(int64_t n, int64_t k, int32_t group, DType dtype, std::mt19937& rng) {
  std::uniform_int_distribution<int> code(0, 15);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<uint8_t> codes(static_cast<size_t>(n * k));
  for (uint8_t& c : codes) c = static_cast<uint8_t>(code(rng));
  Int4Weight w;
  w.words = pack_int4(codes, n, k);
  const size_t pairs = static_cast<size_t>(n * 2 * (k / group));
  w.pairs.resize(pairs);
  w.stored.resize(pairs * dtype_size(dtype));
  for (size_t i = 0; i < pairs; ++i) {
    float v = i % 2 == 0 ? 1e-3f * (1.0f + 30.0f * u(rng)) : static_cast<float>(code(rng));
    if (dtype == DType::kF32) {
      std::memcpy(w.stored.data() + 4 * i, &v, 4);
    } else {
      const uint16_t h = dtype == DType::kBF16 ? float_to_bf16(v) : float_to_fp16(v);
      v = dtype == DType::kBF16 ? bf16_to_float(h) : fp16_to_float(h);
      std::memcpy(w.stored.data() + 2 * i, &h, 2);
    }
    w.pairs[i] = v;
  }
  return w;
}

// Which int4 kernels run while it lives: the AVX2 + FMA ones (skipped where the CPU lacks them) or
// the fallback.
using Int4KernelChoice = testing::ScopedCpuKernels<set_cpu_int4_kernels>;

// Which kernels a case runs: the portable fallback, the AVX2 + FMA float kernels, or (where the
// CPU has byte dot products and a row is whole 128-column blocks) x rounded to int8 and integer
// dot products, whose reference then takes the rounded x.
enum class Int4Kernels { kFallback, kAvx2, kInt8Dot };

struct Int4Param {
  Int4Case shape;
  Int4Kernels kernels;
};

const char* kernels_name(Int4Kernels k) {
  return k == Int4Kernels::kFallback ? "fallback" : k == Int4Kernels::kAvx2 ? "avx2" : "int8dot";
}

std::string int4_param_name(const ::testing::TestParamInfo<Int4Param>& info) {
  const auto& [shape, kernels] = info.param;
  return "m" + std::to_string(shape.m) + "_k" + std::to_string(shape.k) + "_n" +
         std::to_string(shape.n) + "_g" + std::to_string(shape.group) + "_" +
         std::string(dtype_name(shape.scale_dtype)) + (shape.has_bias ? "_bias" : "") + "_" +
         kernels_name(kernels);
}

void PrintTo(const Int4Param& p, std::ostream* os) {
  *os << "m " << p.shape.m << " k " << p.shape.k << " n " << p.shape.n << " group " << p.shape.group
      << " " << dtype_name(p.shape.scale_dtype) << (p.shape.has_bias ? " bias" : "") << " "
      << kernels_name(p.kernels);
}

class MatmulInt4Cpu : public ::testing::TestWithParam<Int4Param> {};

TEST_P(MatmulInt4Cpu, EqualsMatmulOfDequantizedWeights) {
  const auto [shape, kernels] = GetParam();
  const auto [m, k, n, group, scale_dtype, has_bias] = shape;
  const bool fast = kernels != Int4Kernels::kFallback;
  if (fast && !cpu_int4_kernels_available()) GTEST_SKIP() << "no AVX2 + FMA on this CPU";
  if (kernels == Int4Kernels::kInt8Dot && !cpu_int8_dot_available())
    GTEST_SKIP() << "no byte dot products on this CPU";
  Int4KernelChoice int4_kernels(fast);
  const testing::ScopedCpuKernels<set_cpu_int8_dot_kernels> int8_dot(kernels ==
                                                                     Int4Kernels::kInt8Dot);
  // The integer path runs for the streamed GEMV's row counts (<= 64) over whole blocks.
  const bool rounds = kernels == Int4Kernels::kInt8Dot && k % 128 == 0 && m <= 64;
  auto backend = create_backend(DeviceKind::kCpu);
  std::mt19937 rng(static_cast<uint32_t>(m * 1000 + k + n + group));
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const Int4Weight q = random_int4(n, k, group, scale_dtype, rng);
  const std::vector<float> deq = dequantize_int4(q.words, q.pairs, n, k);
  std::vector<float> x(static_cast<size_t>(m * k)), bias(static_cast<size_t>(n));
  for (float& v : x) v = u(rng);
  for (float& v : bias) v = u(rng);
  std::vector<Buffer> owner;
  Tensor tx = backend->allocate_tensor(owner, DType::kF32, {m, k});
  Tensor tq = backend->allocate_tensor(owner, DType::kI32, {n, k / 8});
  Tensor ts = backend->allocate_tensor(owner, scale_dtype, {n, 2 * (k / group)});
  Tensor tw = backend->allocate_tensor(owner, DType::kF32, {n, k});
  Tensor tb = has_bias ? backend->allocate_tensor(owner, DType::kF32, {n}) : Tensor();
  Tensor got = backend->allocate_tensor(owner, DType::kF32, {m, n});
  Tensor want = backend->allocate_tensor(owner, DType::kF32, {m, n});
  backend->upload(x.data(), tx);
  Tensor tx_ref = tx;
  if (rounds) {
    tx_ref = backend->allocate_tensor(owner, DType::kF32, {m, k});
    backend->upload(testing::round_in_blocks_of_32(x, m, k).values.data(), tx_ref);
  }
  backend->upload(q.words.data(), tq);
  backend->upload(q.stored.data(), ts);
  backend->upload(deq.data(), tw);
  if (has_bias) backend->upload(bias.data(), tb);
  backend->matmul_int4(tx, tq, ts, tb, got);
  backend->matmul(tx_ref, tw, tb, want);
  const float* g = got.as<float>();
  const float* w = want.as<float>();
  for (int64_t i = 0; i < m * n; ++i)
    ASSERT_NEAR(g[i], w[i], 1e-5f + 1e-5f * std::abs(w[i])) << "element " << i;
  if (rounds) {  // and it was the integer path: the unrounded product differs
    backend->matmul(tx, tw, tb, want);
    int64_t moved = 0;
    for (int64_t i = 0; i < m * n; ++i) moved += std::abs(g[i] - w[i]) > 1e-4f * std::abs(w[i]);
    EXPECT_GT(moved, 0) << "the integer kernels did not run";
  }
}

// Row counts 1 .. 12 (the kernel for each count of rows of x, then chunks of 8) and 60 .. 68
// around the streamed GEMV's limit (kInt4StreamedMaxRows = 64 in src/backend/cpu/cpu_matmul.cpp),
// on rows of whole blocks and with 1, 2 or 3 steps after them; then decode- and prefill-sized
// cases.
constexpr int64_t kSweepRows[] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                  12, 60, 61, 62, 63, 64, 65, 66, 67, 68};

std::vector<Int4Param> int4_params() {
  struct Row {
    int64_t k, n;
    int32_t group;
  };
  const Row rows[] = {{384, 40, 128}, {416, 33, 32}, {448, 16, 64},
                      {512, 17, 256}, {480, 24, 32}, {384, 20, 96}};
  const DType dtypes[] = {DType::kF32, DType::kF16, DType::kBF16};
  std::vector<Int4Case> shapes;
  for (const int64_t m : kSweepRows) {
    const Row& r = rows[static_cast<size_t>(m) % std::size(rows)];
    shapes.push_back({m, r.k, r.n, r.group, dtypes[static_cast<size_t>(m) % 3], m % 2 == 1});
  }
  const Int4Case more[] = {
      {1, 64, 24, 32, DType::kF32, true},      {1, 160, 40, 32, DType::kF16, false},
      {3, 256, 64, 128, DType::kBF16, true},   {4, 384, 33, 64, DType::kF32, false},
      {9, 4096, 16, 128, DType::kBF16, false}, {70, 192, 129, 64, DType::kF16, true},
      {2, 512, 8, 256, DType::kF32, true},     {1, 768, 300, 128, DType::kF16, true},
      {2, 96, 16, 48, DType::kF32, false},     {33, 640, 65, 32, DType::kBF16, true}};
  shapes.insert(shapes.end(), std::begin(more), std::end(more));
  std::vector<Int4Param> out;
  for (const Int4Kernels kernels :
       {Int4Kernels::kInt8Dot, Int4Kernels::kAvx2, Int4Kernels::kFallback}) {
    for (const Int4Case& c : shapes) out.push_back({c, kernels});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Shapes, MatmulInt4Cpu, ::testing::ValuesIn(int4_params()),
                         int4_param_name);

TEST(MatmulInt4Cpu, RejectsWrongShapesAndDtypes) {
  auto backend = create_backend(DeviceKind::kCpu);
  std::vector<Buffer> owner;
  Tensor x = backend->allocate_tensor(owner, DType::kF32, {1, 64});
  Tensor words = backend->allocate_tensor(owner, DType::kI32, {4, 8});
  Tensor scales = backend->allocate_tensor(owner, DType::kF32, {4, 4});  // 2 groups of 32
  Tensor out = backend->allocate_tensor(owner, DType::kF32, {1, 4});
  EXPECT_NO_THROW(backend->matmul_int4(x, words, scales, Tensor(), out));
  Tensor i8 = backend->allocate_tensor(owner, DType::kI8, {4, 64});
  EXPECT_THROW(backend->matmul_int4(x, i8, scales, Tensor(), out), Error) << "I8 codes";
  Tensor narrow = backend->allocate_tensor(owner, DType::kI32, {4, 4});
  EXPECT_THROW(backend->matmul_int4(x, narrow, scales, Tensor(), out), Error) << "K / 16 words";
  Tensor odd = backend->allocate_tensor(owner, DType::kF32, {4, 3});
  EXPECT_THROW(backend->matmul_int4(x, words, odd, Tensor(), out), Error) << "3 scale values";
  Tensor codes_as_scales = backend->allocate_tensor(owner, DType::kI32, {4, 4});
  EXPECT_THROW(backend->matmul_int4(x, words, codes_as_scales, Tensor(), out), Error);
  try {
    create_backend(DeviceKind::kNull)->matmul_int4(x, words, scales, Tensor(), out);
    ADD_FAILURE() << "the null backend has no int4 matmul";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kUnimplemented);
    EXPECT_NE(std::string(e.what()).find("--quantization int4-wo"), std::string::npos);
  }
}

}  // namespace
}  // namespace llmserve
