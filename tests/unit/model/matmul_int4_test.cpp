// Backend::matmul_int4 (int4 weight-only) on the CPU: the op equals Backend::matmul over the
// dequantized weights ((q - zero) * scale per group, from model/quantize.h's reference), with the
// (scale, zero) pairs held in fp32, fp16 or bf16, for decode- and prefill-sized inputs, rows with
// and without a whole 128-column block, groups of 32 to 256 columns, with and without a bias; and
// a weight or scales of the wrong shape or dtype is refused. (In model_tests: the reference is
// model/quantize.h's.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "backend/backend.h"
#include "common/half.h"
#include "common/status.h"
#include "model/quantize.h"

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

class MatmulInt4Cpu : public ::testing::TestWithParam<Int4Case> {};

TEST_P(MatmulInt4Cpu, EqualsMatmulOfDequantizedWeights) {
  const auto [m, k, n, group, scale_dtype, has_bias] = GetParam();
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
  backend->upload(q.words.data(), tq);
  backend->upload(q.stored.data(), ts);
  backend->upload(deq.data(), tw);
  if (has_bias) backend->upload(bias.data(), tb);
  backend->matmul_int4(tx, tq, ts, tb, got);
  backend->matmul(tx, tw, tb, want);
  const float* g = got.as<float>();
  const float* w = want.as<float>();
  for (int64_t i = 0; i < m * n; ++i)
    ASSERT_NEAR(g[i], w[i], 1e-5f + 1e-5f * std::abs(w[i])) << "element " << i;
}

INSTANTIATE_TEST_SUITE_P(Shapes, MatmulInt4Cpu,
                         ::testing::Values(Int4Case{1, 64, 24, 32, DType::kF32, true},
                                           Int4Case{1, 160, 40, 32, DType::kF16, false},
                                           Int4Case{3, 256, 64, 128, DType::kBF16, true},
                                           Int4Case{4, 384, 33, 64, DType::kF32, false},
                                           Int4Case{9, 4096, 16, 128, DType::kBF16, false},
                                           Int4Case{70, 192, 129, 64, DType::kF16, true},
                                           Int4Case{2, 512, 8, 256, DType::kF32, true}));

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
