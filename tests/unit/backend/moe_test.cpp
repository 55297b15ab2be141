// The CPU backend's mixture-of-experts ops against a plain per-token loop: moe_route (softmax,
// top-k lowest index first on ties, renormalised or not, router columns past num_experts ignored),
// moe_experts (fp32, bf16 and int8-wo expert weights; decode-sized and prefill-sized batches;
// experts nobody chose) and add_sigmoid_gated. The CUDA kernels are held to these in
// tests/unit/cuda/moe_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "common/half.h"
#include "testing/kernel_choice.h"

namespace llmserve {
namespace {

float silu(float a) {
  return a / (1.0f + std::exp(-a));
}

TEST(MoeRoute, SoftmaxTopKWithAndWithoutRenormalisation) {
  auto backend = create_backend(DeviceKind::kCpu);
  // Two tokens, 5 experts, a sixth column (a shared expert's gate) that routing must ignore.
  const std::vector<float> logits = {0.1f, 2.0f,  -1.0f, 2.0f, 0.5f, 9.0f,  //
                                     3.0f, -2.0f, 1.0f,  0.0f, 1.5f, 9.0f};
  std::vector<Buffer> owner;
  Tensor tl = backend->allocate_tensor(owner, DType::kF32, {2, 6});
  Tensor ids = backend->allocate_tensor(owner, DType::kI32, {2, 3});
  Tensor weights = backend->allocate_tensor(owner, DType::kF32, {2, 3});
  backend->upload(logits.data(), tl);
  for (const bool renormalize : {false, true}) {
    backend->moe_route(tl, {.num_experts = 5, .top_k = 3, .renormalize = renormalize}, ids,
                       weights);
    std::vector<int32_t> got_ids(6);
    std::vector<float> got_w(6);
    backend->download(ids, got_ids.data());
    backend->download(weights, got_w.data());
    // Token 0: experts 1 and 3 tie (the lower index first), then 4.
    EXPECT_EQ(got_ids, (std::vector<int32_t>{1, 3, 4, 0, 4, 2}));
    for (int t = 0; t < 2; ++t) {
      const float* row = logits.data() + t * 6;
      float sum = 0;
      for (int e = 0; e < 5; ++e) sum += std::exp(row[e]);
      float chosen = 0;
      for (int j = 0; j < 3; ++j) chosen += std::exp(row[got_ids[t * 3 + j]]) / sum;
      for (int j = 0; j < 3; ++j) {
        const float p = std::exp(row[got_ids[t * 3 + j]]) / sum;
        EXPECT_NEAR(got_w[t * 3 + j], renormalize ? p / chosen : p, 1e-6) << t << " " << j;
      }
    }
  }
}

struct ExpertsCase {
  int64_t tokens;
  DType weights;  // F32, BF16 or I8 (int8-wo)
};

class MoeExpertsCpu : public ::testing::TestWithParam<ExpertsCase> {};

// moe_experts equals each token's weighted sum over its experts, computed one token at a time
// from the dequantized weights.
TEST_P(MoeExpertsCpu, EqualsPerTokenLoop) {
  const auto [num_tokens, wdtype] = GetParam();
  constexpr int64_t kE = 6, kK = 2, kD = 32, kF = 24;
  // The loop below multiplies the unrounded input: int8-wo experts go through the widened
  // weights, not the integer kernels that round x (tests/unit/backend/matmul_q8_test.cpp).
  const testing::ScopedCpuKernels<set_cpu_int8_dot_kernels> widened(false);
  auto backend =
      create_backend(DeviceKind::kCpu, wdtype == DType::kBF16 ? DType::kBF16 : DType::kF32);
  std::mt19937 rng(static_cast<uint32_t>(num_tokens));
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const auto random = [&](size_t n) {
    std::vector<float> v(n);
    for (float& f : v) f = u(rng);
    return v;
  };
  std::vector<float> x = random(num_tokens * kD), gate_up = random(kE * 2 * kF * kD),
                     down = random(kE * kD * kF);
  std::vector<int32_t> ids(static_cast<size_t>(num_tokens * kK));
  std::vector<float> weights = random(ids.size());
  // Experts 0..3 only: 4 and 5 are chosen by nobody.
  for (int64_t t = 0; t < num_tokens; ++t) {
    ids[t * kK] = static_cast<int32_t>(t % 4);
    ids[t * kK + 1] = static_cast<int32_t>((t + 1 + t / 4) % 4);
  }
  std::vector<Buffer> owner;
  MoeExperts experts{.num_experts = kE};
  // Rows stored as the op reads them; `values` becomes what they stand for.
  const auto stacked = [&](std::vector<float>& values, int64_t rows, int64_t cols, Tensor& w,
                           Tensor& scales) {
    if (wdtype == DType::kI8) {
      std::vector<int8_t> q(values.size());
      std::vector<float> s(static_cast<size_t>(rows));
      for (int64_t r = 0; r < rows; ++r) {
        float top = 0;
        for (int64_t c = 0; c < cols; ++c) top = std::max(top, std::abs(values[r * cols + c]));
        s[r] = top / 127.0f;
        for (int64_t c = 0; c < cols; ++c) {
          q[r * cols + c] = static_cast<int8_t>(std::lround(values[r * cols + c] / s[r]));
          values[r * cols + c] = q[r * cols + c] * s[r];
        }
      }
      w = backend->allocate_tensor(owner, DType::kI8, {rows, cols});
      scales = backend->allocate_tensor(owner, DType::kF32, {rows});
      backend->upload(q.data(), w);
      backend->upload(s.data(), scales);
    } else if (wdtype == DType::kBF16) {
      std::vector<uint16_t> h(values.size());
      for (size_t i = 0; i < h.size(); ++i) {
        h[i] = float_to_bf16(values[i]);
        values[i] = bf16_to_float(h[i]);
      }
      w = backend->allocate_tensor(owner, DType::kBF16, {rows, cols});
      backend->upload(h.data(), w);
    } else {
      w = backend->allocate_tensor(owner, DType::kF32, {rows, cols});
      backend->upload(values.data(), w);
    }
  };
  stacked(gate_up, kE * 2 * kF, kD, experts.gate_up, experts.gate_up_scales);
  stacked(down, kE * kD, kF, experts.down, experts.down_scales);
  Tensor tx = backend->allocate_tensor(owner, DType::kF32, {num_tokens, kD});
  Tensor tids = backend->allocate_tensor(owner, DType::kI32, {num_tokens, kK});
  Tensor tw = backend->allocate_tensor(owner, DType::kF32, {num_tokens, kK});
  Tensor out = backend->allocate_tensor(owner, DType::kF32, {num_tokens, kD});
  backend->upload(x.data(), tx);
  backend->upload(ids.data(), tids);
  backend->upload(weights.data(), tw);
  backend->moe_experts(tx, tids, tw, experts, MoeScratch{}, out);
  std::vector<float> got(static_cast<size_t>(num_tokens * kD));
  backend->download(out, got.data());
  for (int64_t t = 0; t < num_tokens; ++t) {
    std::vector<double> want(kD, 0.0);
    for (int64_t j = 0; j < kK; ++j) {
      const int64_t e = ids[t * kK + j];
      std::vector<double> act(kF);
      for (int64_t n = 0; n < kF; ++n) {
        double g = 0, v = 0;
        for (int64_t c = 0; c < kD; ++c) {
          g += double{x[t * kD + c]} * gate_up[(e * 2 * kF + n) * kD + c];
          v += double{x[t * kD + c]} * gate_up[(e * 2 * kF + kF + n) * kD + c];
        }
        act[n] = silu(static_cast<float>(g)) * v;
      }
      for (int64_t c = 0; c < kD; ++c) {
        double y = 0;
        for (int64_t n = 0; n < kF; ++n) y += act[n] * down[(e * kD + c) * kF + n];
        want[c] += weights[t * kK + j] * y;
      }
    }
    for (int64_t c = 0; c < kD; ++c) {
      EXPECT_NEAR(got[t * kD + c], want[c], 1e-3 * (1.0 + std::abs(want[c])))
          << "token " << t << " column " << c;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, MoeExpertsCpu,
                         ::testing::Values(ExpertsCase{1, DType::kF32}, ExpertsCase{3, DType::kF32},
                                           ExpertsCase{37, DType::kF32},
                                           ExpertsCase{2, DType::kBF16},
                                           ExpertsCase{37, DType::kBF16},
                                           ExpertsCase{2, DType::kI8}, ExpertsCase{37, DType::kI8}),
                         [](const auto& info) {
                           return std::to_string(info.param.tokens) + "_" +
                                  std::string(dtype_name(info.param.weights));
                         });

TEST(AddSigmoidGated, AddsXTimesSigmoidOfTheLastColumn) {
  auto backend = create_backend(DeviceKind::kCpu);
  std::vector<Buffer> owner;
  const std::vector<float> a = {1, 2, 3, 4}, x = {10, 20, 30, 40}, gate = {5, 0, 7, -1};
  Tensor ta = backend->allocate_tensor(owner, DType::kF32, {2, 2});
  Tensor tx = backend->allocate_tensor(owner, DType::kF32, {2, 2});
  Tensor tg = backend->allocate_tensor(owner, DType::kF32, {2, 2});
  backend->upload(a.data(), ta);
  backend->upload(x.data(), tx);
  backend->upload(gate.data(), tg);
  backend->add_sigmoid_gated(ta, tx, tg);
  std::vector<float> got(4);
  backend->download(ta, got.data());
  const float s0 = 1.0f / (1.0f + std::exp(-0.0f)), s1 = 1.0f / (1.0f + std::exp(1.0f));
  EXPECT_FLOAT_EQ(got[0], 1 + 10 * s0);
  EXPECT_FLOAT_EQ(got[1], 2 + 20 * s0);
  EXPECT_FLOAT_EQ(got[2], 3 + 30 * s1);
  EXPECT_FLOAT_EQ(got[3], 4 + 40 * s1);
}

}  // namespace
}  // namespace llmserve
