// The quantized matmuls on the CUDA backend against the CPU backend (whose own tests,
// tests/unit/backend/matmul_{q8,fp8}_test.cpp, pin it to the definition) on random shapes:
// matmul_q8 through its GEMV (M <= 4, K % 16 == 0) and through dequantization + cuBLASLt (larger M,
// K not a multiple of 16, a weight wider than one chunk of the quantization buffer); matmul_fp8
// for decode and prefill sizes and an input longer than one chunk of that buffer. Both backends
// see the same codes and scales and the same dt()-rounded inputs (and matmul_fp8 quantizes its
// input with the same arithmetic on both), so the differences are fp32 summation order, the
// output's rounding to dt() and, on the dequantization path, the weights' rounding to dt():
// per-op thresholds are the ops tests' (2e-3 fp16, 1.2e-2 bf16). Also: both ops record into a CUDA
// graph whose replay follows new inputs, and a first call inside a capture is refused.
// Written without a GPU; skips without one.
#include <algorithm>
#include <cstring>
#include <string>

#include "common/status.h"
#include "gpu_test_util.h"
#include "model/quantize.h"

namespace llmserve {
namespace {

using namespace testing_gpu;

struct Shape {
  int64_t m, n, k;
  bool bias;
  bool f32_out = false;
};

std::string label(const char* op, const Shape& s) {
  return std::string(op) + " " + std::to_string(s.m) + "x" + std::to_string(s.n) + "x" + std::to_string(s.k) +
         (s.bias ? " +bias" : "") + (s.f32_out ? " ->f32" : "");
}

class CudaQuantizedOps : public CudaVsCpu {
 protected:
  // Random int8 codes in [-127, 127] and per-row scales over a decade, on both backends.
  std::pair<Tensor, Tensor> int8_weight(int64_t n, int64_t k, std::pair<Tensor, Tensor>& scales) {
    std::uniform_int_distribution<int> code(-127, 127);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    std::vector<int8_t> q(static_cast<size_t>(n * k));
    for (int8_t& c : q) c = static_cast<int8_t>(code(rng_));
    std::vector<float> s(static_cast<size_t>(n));
    for (float& v : s) v = 1e-4f * (1.0f + 9.0f * u(rng_));
    scales = both_bytes(s.data(), DType::kF32, {n});
    return both_bytes(q.data(), DType::kI8, {n, k});
  }
  // A random weight quantized per tensor to e4m3 (model/quantize.h), on both backends.
  std::pair<Tensor, Tensor> fp8_weight(int64_t n, int64_t k, std::pair<Tensor, Tensor>& scale) {
    const std::vector<float> w = random_vector(static_cast<size_t>(n * k), rng_, 0.05f);
    std::vector<uint8_t> q(w.size());
    const float s = quantize_tensor_fp8(w, q);
    scale = both_bytes(&s, DType::kF32, {1});
    return both_bytes(q.data(), DType::kF8E4M3, {n, k});
  }
  // Normal inputs with one outlier, so the fp8 input scale is not the bulk's.
  std::vector<float> input(int64_t m, int64_t k) {
    std::vector<float> x = random_vector(static_cast<size_t>(m * k), rng_);
    x[x.size() / 2] = 30.0f;
    return x;
  }
};

TEST_P(CudaQuantizedOps, MatmulQ8MatchesCpu) {
  // GEMV: M <= 4 and K % 16 == 0 (one and several warps per column, part-filled blocks, K under
  // one round of the lanes). Dequantization + cuBLASLt: K % 16 != 0 (the element-wise dequantize
  // kernel, even at M = 1) and M > 4, with 6144 x 4096 wider than one 4,096-column chunk.
  for (const Shape s : {Shape{1, 2304, 768, true}, Shape{2, 768, 3072, true}, Shape{3, 6144, 4096, false},
                        Shape{4, 4096, 14336, false}, Shape{1, 1001, 4096, true}, Shape{2, 37, 8192, false, true},
                        Shape{4, 50, 48, true, true}, Shape{1, 130, 72, true}, Shape{3, 64, 40, false},
                        Shape{5, 129, 64, true}, Shape{17, 200, 96, false}, Shape{64, 6144, 4096, true},
                        Shape{130, 512, 256, false, true}, Shape{64, 300, 72, true}}) {
    std::pair<Tensor, Tensor> scales;
    auto [cq, gq] = int8_weight(s.n, s.k, scales);
    auto [cx, gx] = both(input(s.m, s.k), {s.m, s.k});
    auto [cb, gb] = both(random_vector(static_cast<size_t>(s.n), rng_), {s.n});
    auto [co, go] = both_empty({s.m, s.n}, s.f32_out ? DType::kF32 : dt());
    cpu_.matmul_q8(cx, cq, scales.first, s.bias ? cb : Tensor(), co);
    gpu_->matmul_q8(gx, gq, scales.second, s.bias ? gb : Tensor(), go);
    const std::vector<float> got = read_tensor(*gpu_, go), want = read_tensor(cpu_, co);
    EXPECT_CLOSE_REL(got, want, tol(), label("matmul_q8", s));
  }
}

TEST_P(CudaQuantizedOps, MatmulFp8MatchesCpu) {
  // 2100 x 16384 input bytes are more than the 32 MiB buffer: two row chunks under one scale.
  for (const Shape s : {Shape{1, 48, 64, true}, Shape{2, 2304, 768, false}, Shape{3, 4096, 4096, true},
                        Shape{4, 1024, 14336, false}, Shape{5, 80, 160, true}, Shape{64, 6144, 4096, true},
                        Shape{130, 512, 256, false}, Shape{2100, 32, 16384, true}}) {
    std::pair<Tensor, Tensor> scale;
    auto [cq, gq] = fp8_weight(s.n, s.k, scale);
    auto [cx, gx] = both(input(s.m, s.k), {s.m, s.k});
    auto [cb, gb] = both(random_vector(static_cast<size_t>(s.n), rng_), {s.n});
    auto [co, go] = both_empty({s.m, s.n});
    cpu_.matmul_fp8(cx, cq, scale.first, s.bias ? cb : Tensor(), co);
    gpu_->matmul_fp8(gx, gq, scale.second, s.bias ? gb : Tensor(), go);
    const std::vector<float> got = read_tensor(*gpu_, go), want = read_tensor(cpu_, co);
    EXPECT_CLOSE_REL(got, want, tol(), label("matmul_fp8", s));
  }
}

TEST_P(CudaQuantizedOps, MatmulFp8RefusesShapesCublasLtCannotTake) {
  for (auto [n, k] : {std::pair<int64_t, int64_t>{64, 72}, {40, 64}}) {
    std::pair<Tensor, Tensor> scale;
    auto [cq, gq] = fp8_weight(n, k, scale);
    auto [cx, gx] = both(input(2, k), {2, k});
    auto [co, go] = both_empty({2, n});
    try {
      gpu_->matmul_fp8(gx, gq, scale.second, Tensor(), go);
      ADD_FAILURE() << "an fp8 weight [" << n << ", " << k << "] was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), StatusCode::kUnimplemented);
      EXPECT_NE(std::string(e.what()).find("multiples of 16"), std::string::npos) << e.what();
    }
  }
}

// After one eager call (which allocates the quantization scratch and makes the cuBLASLt plans),
// both ops record into a graph; replayed after new inputs are uploaded, it gives what eager calls
// on those inputs give (and not the recorded inputs' result).
TEST_P(CudaQuantizedOps, RecordedInAGraph) {
  const int64_t n = 1024, k = 768;
  std::pair<Tensor, Tensor> q8_scales, fp8_scale;
  const Tensor q8 = int8_weight(n, k, q8_scales).second, f8 = fp8_weight(n, k, fp8_scale).second;
  const Tensor bias = both(random_vector(static_cast<size_t>(n), rng_), {n}).second;
  for (int64_t m : {3, 64}) {  // the int8 GEMV and the dequantization path
    Tensor x = make_tensor(*gpu_, gpu_mem_, input(m, k), dt(), {m, k});
    Tensor graph_q8 = gpu_->allocate_tensor(gpu_mem_, dt(), {m, n}), graph_fp8 = gpu_->allocate_tensor(gpu_mem_, dt(), {m, n});
    Tensor eager_q8 = gpu_->allocate_tensor(gpu_mem_, dt(), {m, n}), eager_fp8 = gpu_->allocate_tensor(gpu_mem_, dt(), {m, n});
    const auto body = [&] {
      gpu_->matmul_q8(x, q8, q8_scales.second, bias, graph_q8);
      gpu_->matmul_fp8(x, f8, fp8_scale.second, bias, graph_fp8);
    };
    body();
    const std::vector<float> recorded = read_tensor(*gpu_, graph_fp8);
    auto graph = gpu_->capture(body);
    ASSERT_NE(graph, nullptr);
    gpu_->upload(encode(input(m, k), dt()).data(), x);
    graph->replay();
    gpu_->matmul_q8(x, q8, q8_scales.second, bias, eager_q8);
    gpu_->matmul_fp8(x, f8, fp8_scale.second, bias, eager_fp8);
    const std::string what = "m " + std::to_string(m);
    const std::vector<float> replayed_q8 = read_tensor(*gpu_, graph_q8), replayed_fp8 = read_tensor(*gpu_, graph_fp8);
    const std::vector<float> want_q8 = read_tensor(*gpu_, eager_q8), want_fp8 = read_tensor(*gpu_, eager_fp8);
    EXPECT_CLOSE_REL(replayed_q8, want_q8, 1e-6, what + " matmul_q8 replay");
    EXPECT_CLOSE_REL(replayed_fp8, want_fp8, 1e-6, what + " matmul_fp8 replay");
    EXPECT_GT(compare(replayed_fp8, recorded).rel_l2, 0.1) << what << ": the replay ignored the new input";
  }
}

TEST_P(CudaQuantizedOps, FirstUseInsideACaptureIsRefused) {
  const int64_t m = 64, n = 256, k = 128;  // the dequantization path, which needs the scratch
  std::pair<Tensor, Tensor> scales;
  const Tensor q = int8_weight(n, k, scales).second;
  const Tensor x = make_tensor(*gpu_, gpu_mem_, input(m, k), dt(), {m, k});
  const Tensor out = gpu_->allocate_tensor(gpu_mem_, dt(), {m, n});
  try {
    gpu_->capture([&] { gpu_->matmul_q8(x, q, scales.second, Tensor(), out); });
    ADD_FAILURE() << "a capture allocated the quantization scratch";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("eagerly"), std::string::npos) << e.what();
  }
  gpu_->matmul_q8(x, q, scales.second, Tensor(), out);  // eagerly, the backend still works
  gpu_->synchronize();
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaQuantizedOps, ::testing::Values(DType::kF16, DType::kBF16),
                         [](const auto& info) { return std::string(dtype_label(info.param)); });

}  // namespace
}  // namespace llmserve
