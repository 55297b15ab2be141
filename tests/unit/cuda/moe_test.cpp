// The CUDA mixture-of-experts ops (src/backend/cuda/moe.cu) against the CPU backend's
// (src/backend/cpu/cpu_moe.cpp): routing of fp32 logits (ids exactly, weights to fp32 rounding,
// with and without renormalisation, a router wider than its experts), the experts on both paths —
// decode (<= kMoeGemvMaxRows routed rows: GEMV, no sort) and prefill (sort + grouped tensor-core
// GEMM), with experts nobody chose, shapes that are not multiples of the 64 x 64 tile, and
// Qwen3-30B-A3B's expert shape; 16-bit, int8-wo and int4-wo experts — and the sigmoid-gated add
// of Qwen2-MoE's shared expert. Other weight types are refused.
#include <algorithm>
#include <numeric>
#include <tuple>

#include "backend/cuda/moe.h"
#include "common/status.h"
#include "gpu_test_util.h"
#include "model/model.h"
#include "model/quantize.h"

namespace llmserve {
namespace {

using namespace testing_gpu;

class CudaMoe : public CudaVsCpu {};

TEST_P(CudaMoe, RouteMatchesCpu) {
  for (const bool renormalize : {false, true}) {
    for (const auto& [t, e, k, cols] : {std::tuple{1, 8, 2, 8}, std::tuple{37, 60, 4, 61},
                                        std::tuple{130, 128, 8, 128}, std::tuple{5, 256, 8, 256}}) {
      const auto logits = random_vector(static_cast<size_t>(t * cols), rng_, 2.0f);
      auto [cl, gl] = both_bytes(logits.data(), DType::kF32, {t, cols});
      Tensor ci = cpu_.allocate_tensor(cpu_mem_, DType::kI32, {t, k});
      Tensor gi = gpu_->allocate_tensor(gpu_mem_, DType::kI32, {t, k});
      auto [cw, gw] = both_empty({t, k}, DType::kF32);
      const MoeRouting routing{.num_experts = e, .top_k = k, .renormalize = renormalize};
      cpu_.moe_route(cl, routing, ci, cw);
      gpu_->moe_route(gl, routing, gi, gw);
      std::vector<int32_t> want_ids(static_cast<size_t>(t * k)), got_ids(want_ids.size());
      cpu_.download(ci, want_ids.data());
      gpu_->download(gi, got_ids.data());
      const std::string what = "route t " + std::to_string(t) + " e " + std::to_string(e);
      EXPECT_EQ(got_ids, want_ids) << what;
      EXPECT_CLOSE_REL(read_tensor(*gpu_, gw), read_tensor(cpu_, cw), 1e-5, what);
    }
  }
}

struct ExpertsShape {
  int64_t tokens, experts, top_k, hidden, ffn;
};

// Weights [rows, cols] quantized per row as int8-wo (scale max|row| / 127, round to nearest).
std::pair<std::vector<int8_t>, std::vector<float>> quantize_rows(const std::vector<float>& w,
                                                                 int64_t rows, int64_t cols) {
  std::vector<int8_t> q(w.size());
  std::vector<float> scales(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    float top = 0;
    for (int64_t c = 0; c < cols; ++c) top = std::max(top, std::abs(w[r * cols + c]));
    scales[r] = top > 0 ? top / 127.0f : 1.0f;
    for (int64_t c = 0; c < cols; ++c)
      q[r * cols + c] = static_cast<int8_t>(std::lround(w[r * cols + c] / scales[r]));
  }
  return {q, scales};
}

// 16-bit experts (the same dt()-rounded values on both), int8-wo and int4-wo experts (the same
// codes on both, int4's (scale, zero) pairs in fp32 on the CPU and dt() on the GPU, as each backend
// holds them; the CPU's matmul_q8 / matmul_int4 is the reference, the GPU dequantizes to dt()).
TEST_P(CudaMoe, ExpertsMatchCpuOnBothPaths) {
  const ExpertsShape shapes[] = {{1, 8, 2, 64, 32},          // decode
                                 {8, 128, 8, 256, 96},       // decode, 64 routed rows
                                 {9, 128, 8, 256, 96},       // prefill, 72 rows
                                 {100, 6, 2, 72, 40},        // tiles cut at both edges
                                 {300, 128, 8, 2048, 768}};  // Qwen3-30B-A3B's experts
  for (const Quantization q :
       {Quantization::kNone, Quantization::kInt8WeightOnly, Quantization::kInt4WeightOnly}) {
    for (const ExpertsShape& s : shapes) {
      const bool int8 = q == Quantization::kInt8WeightOnly,
                 int4 = q == Quantization::kInt4WeightOnly;
      if (int4 && (s.hidden % 32 != 0 || s.ffn % 32 != 0)) continue;  // int4-wo's 32-column steps
      const int64_t t = s.tokens, e = s.experts, k = s.top_k, d = s.hidden, f = s.ffn, p = t * k;
      auto [cx, gx] = both(random_vector(static_cast<size_t>(t * d), rng_), {t, d});
      const auto gate_up = random_vector(static_cast<size_t>(e * 2 * f * d), rng_, 0.05f);
      const auto down = random_vector(static_cast<size_t>(e * d * f), rng_, 0.05f);
      MoeExperts cpu_experts{.num_experts = static_cast<int32_t>(e)};
      MoeExperts gpu_experts{.num_experts = static_cast<int32_t>(e)};
      if (int4) {
        // model/quantize.h's int4-wo: packed words [rows, K / 8] and (scale, zero) pairs.
        const auto stack = [&](const std::vector<float>& w, int64_t rows, int64_t cols,
                               Tensor& cpu_w, Tensor& gpu_w, Tensor& cpu_s, Tensor& gpu_s) {
          const QuantizedWeight qw = quantize_weight(w, rows, cols, q);
          const auto pairs = static_cast<int64_t>(qw.scales.size()) / rows;
          std::tie(cpu_w, gpu_w) = both_bytes(qw.codes.data(), DType::kI32, {rows, cols / 8});
          cpu_s = make_tensor(cpu_, cpu_mem_, qw.scales, DType::kF32, {rows, pairs});
          gpu_s = make_tensor(*gpu_, gpu_mem_, qw.scales, dt(), {rows, pairs});
        };
        stack(gate_up, e * 2 * f, d, cpu_experts.gate_up, gpu_experts.gate_up,
              cpu_experts.gate_up_scales, gpu_experts.gate_up_scales);
        stack(down, e * d, f, cpu_experts.down, gpu_experts.down, cpu_experts.down_scales,
              gpu_experts.down_scales);
      } else if (int8) {
        const auto [qgu, sgu] = quantize_rows(gate_up, e * 2 * f, d);
        const auto [qdn, sdn] = quantize_rows(down, e * d, f);
        std::tie(cpu_experts.gate_up, gpu_experts.gate_up) =
            both_bytes(qgu.data(), DType::kI8, {e * 2 * f, d});
        std::tie(cpu_experts.gate_up_scales, gpu_experts.gate_up_scales) =
            both_bytes(sgu.data(), DType::kF32, {e * 2 * f});
        std::tie(cpu_experts.down, gpu_experts.down) =
            both_bytes(qdn.data(), DType::kI8, {e * d, f});
        std::tie(cpu_experts.down_scales, gpu_experts.down_scales) =
            both_bytes(sdn.data(), DType::kF32, {e * d});
      } else {
        std::tie(cpu_experts.gate_up, gpu_experts.gate_up) = both(gate_up, {e * 2 * f, d});
        std::tie(cpu_experts.down, gpu_experts.down) = both(down, {e * d, f});
      }
      // Distinct experts per token from the first half of the experts only: the rest idle.
      std::vector<int32_t> ids(static_cast<size_t>(p));
      std::vector<float> weights(static_cast<size_t>(p));
      std::vector<int32_t> pool(static_cast<size_t>(std::max<int64_t>(e / 2, k)));
      std::iota(pool.begin(), pool.end(), 0);
      std::uniform_real_distribution<float> u(0.05f, 1.0f);
      for (int64_t i = 0; i < t; ++i) {
        std::shuffle(pool.begin(), pool.end(), rng_);
        for (int64_t j = 0; j < k; ++j) {
          ids[static_cast<size_t>(i * k + j)] = pool[static_cast<size_t>(j)];
          weights[static_cast<size_t>(i * k + j)] = u(rng_);
        }
      }
      auto [ci, gi] = both_bytes(ids.data(), DType::kI32, {t, k});
      auto [cw, gw] = both_bytes(weights.data(), DType::kF32, {t, k});
      MoeScratch scratch{
          .index = gpu_->allocate_tensor(gpu_mem_, DType::kI32, {2 * p + 2 * (e + 1)}),
          .up = gpu_->allocate_tensor(gpu_mem_, dt(), {p, 2 * f}),
          .act = gpu_->allocate_tensor(gpu_mem_, dt(), {p, f}),
          .down = gpu_->allocate_tensor(gpu_mem_, dt(), {p, d})};
      auto [co, go] = both_empty({t, d});
      cpu_.moe_experts(cx, ci, cw, cpu_experts, MoeScratch{}, co);
      gpu_->moe_experts(gx, gi, gw, gpu_experts, scratch, go);
      const std::string what = std::string(quantization_name(q)) + " experts t " +
                               std::to_string(t) + " e " + std::to_string(e) +
                               (p <= cuda::kMoeGemvMaxRows ? " (decode)" : " (prefill)");
      // gate/up, the activation and each expert's output are rounded to the dtype on the GPU.
      EXPECT_CLOSE_REL(read_tensor(*gpu_, go), read_tensor(cpu_, co), 2 * tol(), what);
      // The same inputs again give the same bytes (no dependence on the atomics' order).
      const std::vector<float> first = read_tensor(*gpu_, go);
      gpu_->moe_experts(gx, gi, gw, gpu_experts, scratch, go);
      EXPECT_EQ(read_tensor(*gpu_, go), first) << what;
    }
  }
}

TEST_P(CudaMoe, SigmoidGatedAddMatchesCpu) {
  const int64_t t = 19, d = 136, cols = 61;
  auto [ca, ga] = both(random_vector(static_cast<size_t>(t * d), rng_), {t, d});
  auto [cx, gx] = both(random_vector(static_cast<size_t>(t * d), rng_), {t, d});
  const auto gate = random_vector(static_cast<size_t>(t * cols), rng_, 3.0f);
  auto [cg, gg] = both_bytes(gate.data(), DType::kF32, {t, cols});
  cpu_.add_sigmoid_gated(ca, cx, cg);
  gpu_->add_sigmoid_gated(ga, gx, gg);
  EXPECT_CLOSE_REL(read_tensor(*gpu_, ga), read_tensor(cpu_, ca), tol(), "add_sigmoid_gated");
}

TEST_P(CudaMoe, OtherExpertWeightsAreRefused) {
  std::vector<Buffer> mem;
  MoeExperts experts{.num_experts = 2,
                     .gate_up = gpu_->allocate_tensor(mem, DType::kF8E4M3, {2 * 16, 32}),
                     .down = gpu_->allocate_tensor(mem, DType::kF8E4M3, {2 * 32, 8})};
  Tensor x = gpu_->allocate_tensor(mem, dt(), {1, 32});
  Tensor ids = gpu_->allocate_tensor(mem, DType::kI32, {1, 1});
  Tensor w = gpu_->allocate_tensor(mem, DType::kF32, {1, 1});
  try {
    gpu_->moe_experts(x, ids, w, experts, MoeScratch{}, x);
    ADD_FAILURE() << "fp8 experts accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kUnimplemented);
    EXPECT_NE(std::string(e.what()).find("mixture-of-experts weights in"), std::string::npos)
        << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaMoe, ::testing::Values(DType::kF16, DType::kBF16),
                         [](const auto& info) { return std::string(dtype_label(info.param)); });

}  // namespace
}  // namespace llmserve
