// The CUDA mixture-of-experts ops (src/backend/cuda/moe.cu) against the CPU backend's
// (src/backend/cpu/cpu_moe.cpp): routing of fp32 logits (ids exactly, weights to fp32 rounding,
// with and without renormalisation, a router wider than its experts), the experts on both paths —
// decode (<= kMoeGemvMaxRows routed rows: GEMV, no sort) and prefill (sort + grouped tensor-core
// GEMM), with experts nobody chose, shapes that are not multiples of the 64 x 64 tile, and
// Qwen3-30B-A3B's expert shape — and the sigmoid-gated add of Qwen2-MoE's shared expert. Quantized
// experts are refused, naming the flag.
#include <algorithm>
#include <numeric>

#include "backend/cuda/moe.h"
#include "common/status.h"
#include "gpu_test_util.h"

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

TEST_P(CudaMoe, ExpertsMatchCpuOnBothPaths) {
  for (const ExpertsShape s : {ExpertsShape{1, 8, 2, 64, 32},            // decode
                               ExpertsShape{8, 128, 8, 256, 96},         // decode, 64 routed rows
                               ExpertsShape{9, 128, 8, 256, 96},         // prefill, 72 rows
                               ExpertsShape{100, 6, 2, 72, 40},          // tiles cut at both edges
                               ExpertsShape{300, 128, 8, 2048, 768}}) {  // Qwen3-30B-A3B experts
    const int64_t t = s.tokens, e = s.experts, k = s.top_k, d = s.hidden, f = s.ffn, p = t * k;
    auto [cx, gx] = both(random_vector(static_cast<size_t>(t * d), rng_), {t, d});
    auto [cgu, ggu] =
        both(random_vector(static_cast<size_t>(e * 2 * f * d), rng_, 0.05f), {e * 2 * f, d});
    auto [cdn, gdn] = both(random_vector(static_cast<size_t>(e * d * f), rng_, 0.05f), {e * d, f});
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
    MoeExperts cpu_experts{.num_experts = static_cast<int32_t>(e), .gate_up = cgu, .down = cdn};
    MoeExperts gpu_experts{.num_experts = static_cast<int32_t>(e), .gate_up = ggu, .down = gdn};
    MoeScratch scratch{.index = gpu_->allocate_tensor(gpu_mem_, DType::kI32, {2 * p + 2 * (e + 1)}),
                       .up = gpu_->allocate_tensor(gpu_mem_, dt(), {p, 2 * f}),
                       .act = gpu_->allocate_tensor(gpu_mem_, dt(), {p, f}),
                       .down = gpu_->allocate_tensor(gpu_mem_, dt(), {p, d})};
    auto [co, go] = both_empty({t, d});
    cpu_.moe_experts(cx, ci, cw, cpu_experts, MoeScratch{}, co);
    gpu_->moe_experts(gx, gi, gw, gpu_experts, scratch, go);
    const std::string what = "experts t " + std::to_string(t) + " e " + std::to_string(e) +
                             (p <= cuda::kMoeGemvMaxRows ? " (decode)" : " (prefill)");
    // gate/up, the activation and each expert's output are rounded to the dtype on the GPU.
    EXPECT_CLOSE_REL(read_tensor(*gpu_, go), read_tensor(cpu_, co), 2 * tol(), what);
    // The same inputs again give the same bytes (no dependence on the atomics' order).
    const std::vector<float> first = read_tensor(*gpu_, go);
    gpu_->moe_experts(gx, gi, gw, gpu_experts, scratch, go);
    EXPECT_EQ(read_tensor(*gpu_, go), first) << what;
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

TEST_P(CudaMoe, QuantizedExpertsAreRefusedNamingTheFlag) {
  std::vector<Buffer> mem;
  MoeExperts experts{.num_experts = 2,
                     .gate_up = gpu_->allocate_tensor(mem, DType::kI8, {2 * 16, 32}),
                     .down = gpu_->allocate_tensor(mem, DType::kI8, {2 * 32, 8})};
  Tensor x = gpu_->allocate_tensor(mem, dt(), {1, 32});
  Tensor ids = gpu_->allocate_tensor(mem, DType::kI32, {1, 1});
  Tensor w = gpu_->allocate_tensor(mem, DType::kF32, {1, 1});
  try {
    gpu_->moe_experts(x, ids, w, experts, MoeScratch{}, x);
    ADD_FAILURE() << "int8 experts accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kUnimplemented);
    EXPECT_NE(std::string(e.what()).find("--quantization"), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaMoe, ::testing::Values(DType::kF16, DType::kBF16),
                         [](const auto& info) { return std::string(dtype_label(info.param)); });

}  // namespace
}  // namespace llmserve
