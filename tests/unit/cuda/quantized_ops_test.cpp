// The quantized ops on the CUDA backend against the CPU backend (whose own tests,
// tests/unit/backend/matmul_{q8,fp8}_test.cpp, pin it to the definition) on random shapes:
// matmul_q8 through its GEMV (M <= 4, K % 16 == 0) and through dequantization + cuBLASLt (larger M,
// K not a multiple of 16, a weight wider than one chunk of the quantization buffer). fp8 W8A8:
// quantize_fp8_rows gives the CPU's codes and scales bit for bit (same dt()-rounded inputs, same
// division and rounding); the fused add_rms_norm_fp8 / silu_mul_fp8 give exactly what their
// compositions give; matmul_fp8 through the tensor-core GEMV (M <= 8, with and without the K % 64
// tail) and cuBLASLt (per-token x per-row scales, or the fp32 + scaling-pass fallback) on the same
// codes. int4 weight-only through its GEMV (every tile variant) and the dequantization path, and a
// planted scale mix-up that fails. The matmul differences are fp32 summation order, the output's
// rounding to dt() and, on the dequantization path, the weights' rounding to dt(): per-op
// thresholds are the ops tests' (2e-3 fp16, 1.2e-2 bf16). Also: the ops record into a CUDA graph
// whose replay follows new inputs, and a first call inside a capture is refused.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <tuple>

#include "backend/cuda/gemv.h"
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
  return std::string(op) + " " + std::to_string(s.m) + "x" + std::to_string(s.n) + "x" +
         std::to_string(s.k) + (s.bias ? " +bias" : "") + (s.f32_out ? " ->f32" : "");
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
  // A random weight quantized per row to e4m3 (model/quantize.h), rows over two decades, on both
  // backends.
  std::pair<Tensor, Tensor> fp8_weight(int64_t n, int64_t k, std::pair<Tensor, Tensor>& scales) {
    std::vector<float> w = random_vector(static_cast<size_t>(n * k), rng_, 0.05f);
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t i = 0; i < k; ++i)
        w[static_cast<size_t>(r * k + i)] *= std::pow(10.0f, static_cast<float>(r % 3) - 1);
    }
    std::vector<uint8_t> q(w.size());
    std::vector<float> s(static_cast<size_t>(n));
    quantize_rows_fp8(w, n, k, q, s);
    scales = both_bytes(s.data(), DType::kF32, {n});
    return both_bytes(q.data(), DType::kF8E4M3, {n, k});
  }
  // fp8 codes of an input [m, k] (quantized on the CPU from input(m, k)) on both backends.
  std::pair<Fp8Rows, Fp8Rows> fp8_input(int64_t m, int64_t k) {
    auto [cx, gx] = both(input(m, k), {m, k});
    (void)gx;
    Fp8Rows c{cpu_.allocate_tensor(cpu_mem_, DType::kF8E4M3, {m, k}),
              cpu_.allocate_tensor(cpu_mem_, DType::kF32, {m})};
    cpu_.quantize_fp8_rows(cx, c);
    Fp8Rows g{both_bytes(c.q.data, DType::kF8E4M3, {m, k}).second,
              both_bytes(c.scales.data, DType::kF32, {m}).second};
    return {c, g};
  }
  Fp8Rows gpu_rows(int64_t m, int64_t k) {
    return {gpu_->allocate_tensor(gpu_mem_, DType::kF8E4M3, {m, k}),
            gpu_->allocate_tensor(gpu_mem_, DType::kF32, {m})};
  }
  std::vector<uint8_t> codes_of(Backend& b, const Fp8Rows& r) {
    std::vector<uint8_t> out(r.q.nbytes());
    b.download(r.q, out.data());
    return out;
  }
  std::vector<float> scales_of(Backend& b, const Fp8Rows& r) {
    std::vector<float> out(static_cast<size_t>(r.scales.numel()));
    b.download(r.scales, out.data());
    return out;
  }
  // A copy of gpu_'s 1- or 2-d tensor t on another backend (one made with other settings).
  Tensor copy_to(CudaBackend& other, std::vector<Buffer>& mem, Tensor t) {
    Tensor c = t.ndim == 1 ? other.allocate_tensor(mem, t.dtype, {t.dim(0)})
                           : other.allocate_tensor(mem, t.dtype, {t.dim(0), t.dim(1)});
    std::vector<uint8_t> bytes(t.nbytes());
    gpu_->download(t, bytes.data());
    other.upload(bytes.data(), c);
    return c;
  }
  // Normal inputs with one outlier (so a row's fp8 scale is not the bulk's), rows over three
  // decades, and row 2 (when there is one) all zero.
  std::vector<float> input(int64_t m, int64_t k) {
    std::vector<float> x = random_vector(static_cast<size_t>(m * k), rng_);
    for (int64_t r = 0; r < m; ++r) {
      for (int64_t i = 0; i < k; ++i)
        x[static_cast<size_t>(r * k + i)] *= std::pow(10.0f, static_cast<float>(r % 4) - 2);
    }
    x[x.size() / 2] = 30.0f;
    if (m > 2) std::fill(x.begin() + 2 * k, x.begin() + 3 * k, 0.0f);
    return x;
  }
};

TEST_P(CudaQuantizedOps, MatmulQ8MatchesCpu) {
  // GEMV: M <= 4 and K % 16 == 0 (one and several warps per column, part-filled blocks, K under
  // one round of the lanes). Dequantization + cuBLASLt: K % 16 != 0 (the element-wise dequantize
  // kernel, even at M = 1) and M > 4, with 6144 x 4096 wider than one 4,096-column chunk.
  for (const Shape s :
       {Shape{1, 2304, 768, true}, Shape{2, 768, 3072, true}, Shape{3, 6144, 4096, false},
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

TEST_P(CudaQuantizedOps, QuantizeFp8RowsMatchesCpuExactly) {
  // K % 8 == 0 takes the vector kernel, other K the element-wise one; one row per block.
  for (auto [m, k] : {std::pair<int64_t, int64_t>{1, 4096},
                      {3, 160},
                      {7, 72},
                      {5, 70},
                      {130, 1024},
                      {4, 14336}}) {
    auto [cx, gx] = both(input(m, k), {m, k});
    Fp8Rows c{cpu_.allocate_tensor(cpu_mem_, DType::kF8E4M3, {m, k}),
              cpu_.allocate_tensor(cpu_mem_, DType::kF32, {m})};
    const Fp8Rows g = gpu_rows(m, k);
    cpu_.quantize_fp8_rows(cx, c);
    gpu_->quantize_fp8_rows(gx, g);
    const std::string what = "quantize_fp8_rows " + std::to_string(m) + "x" + std::to_string(k);
    EXPECT_EQ(scales_of(*gpu_, g), scales_of(cpu_, c)) << what;
    const std::vector<uint8_t> got = codes_of(*gpu_, g), want = codes_of(cpu_, c);
    size_t differ = 0;
    for (size_t i = 0; i < got.size(); ++i) differ += got[i] != want[i] ? 1 : 0;
    EXPECT_EQ(differ, 0u) << what << ": codes differ";
  }
}

// The fused producers write what their compositions write, bit for bit: the residual, the scales
// and the codes (the norm's and silu's outputs are rounded to dt() before quantization in both).
// D = 36 is a row the fused norm does not take (it falls back to the composition).
TEST_P(CudaQuantizedOps, FusedFp8ProducersEqualTheirCompositions) {
  for (int64_t d : {4096, 64, 72, 36}) {
    const int64_t t = 5;
    const std::vector<float> r0 = input(t, d), x0 = random_vector(static_cast<size_t>(t * d), rng_);
    const std::vector<float> w0 = random_vector(static_cast<size_t>(d), rng_);
    Tensor r_fused = make_tensor(*gpu_, gpu_mem_, r0, dt(), {t, d}),
           r_plain = make_tensor(*gpu_, gpu_mem_, r0, dt(), {t, d});
    Tensor x = make_tensor(*gpu_, gpu_mem_, x0, dt(), {t, d}),
           w = make_tensor(*gpu_, gpu_mem_, w0, dt(), {d});
    Tensor out = gpu_->allocate_tensor(gpu_mem_, dt(), {t, d});
    const Fp8Rows fused = gpu_rows(t, d), plain = gpu_rows(t, d);
    gpu_->add_rms_norm_fp8(r_fused, x, w, 1e-5f, out, fused);
    gpu_->add_rms_norm(r_plain, x, w, 1e-5f, out);
    gpu_->quantize_fp8_rows(out, plain);
    const std::string what = "add_rms_norm_fp8 d " + std::to_string(d);
    EXPECT_EQ(read_tensor(*gpu_, r_fused), read_tensor(*gpu_, r_plain)) << what << " residual";
    EXPECT_EQ(scales_of(*gpu_, fused), scales_of(*gpu_, plain)) << what;
    EXPECT_EQ(codes_of(*gpu_, fused), codes_of(*gpu_, plain)) << what;
  }
  // 70 rows take the fused kernel (registers for F = 14336 and 160, two passes for 40,000); 6
  // rows (decode) the composition.
  for (auto [t, f] :
       {std::pair<int64_t, int64_t>{70, 14336}, {70, 160}, {70, 40000}, {6, 14336}, {6, 36}}) {
    Tensor gate_up = make_tensor(*gpu_, gpu_mem_, input(t, 2 * f), dt(), {t, 2 * f});
    Tensor act = gpu_->allocate_tensor(gpu_mem_, dt(), {t, f});
    const Fp8Rows fused = gpu_rows(t, f), plain = gpu_rows(t, f);
    gpu_->silu_mul_fp8(gate_up, act, fused);
    gpu_->silu_mul(gate_up, act);
    gpu_->quantize_fp8_rows(act, plain);
    const std::string what = "silu_mul_fp8 f " + std::to_string(f);
    EXPECT_EQ(scales_of(*gpu_, fused), scales_of(*gpu_, plain)) << what;
    EXPECT_EQ(codes_of(*gpu_, fused), codes_of(*gpu_, plain)) << what;
  }
}

TEST_P(CudaQuantizedOps, MatmulFp8MatchesCpu) {
  // Tensor-core GEMV: M 1..8, K % 32 == 0 (K = 96 and 160 end in a 32-column tail). cuBLASLt: M >
  // 8, and K % 32 != 0 at any M; 2100 x 32 fp32 outputs of K = 16384 also cover the fallback's
  // chunks.
  for (const Shape s :
       {Shape{1, 48, 64, true}, Shape{2, 2304, 768, false}, Shape{3, 4096, 4096, true},
        Shape{4, 1024, 14336, false}, Shape{5, 80, 160, true}, Shape{8, 6144, 4096, false},
        Shape{6, 64, 96, true}, Shape{7, 128, 32, false}, Shape{2, 96, 48, true},
        Shape{9, 256, 4096, true}, Shape{64, 6144, 4096, true}, Shape{130, 512, 256, false},
        Shape{2100, 32, 16384, true}}) {
    std::pair<Tensor, Tensor> scales;
    auto [cq, gq] = fp8_weight(s.n, s.k, scales);
    auto [cx, gx] = fp8_input(s.m, s.k);
    auto [cb, gb] = both(random_vector(static_cast<size_t>(s.n), rng_), {s.n});
    auto [co, go] = both_empty({s.m, s.n});
    cpu_.matmul_fp8(cx, cq, scales.first, s.bias ? cb : Tensor(), co);
    gpu_->matmul_fp8(gx, gq, scales.second, s.bias ? gb : Tensor(), go);
    const std::vector<float> got = read_tensor(*gpu_, go), want = read_tensor(cpu_, co);
    EXPECT_CLOSE_REL(got, want, tol(), label("matmul_fp8", s));
    // The same above the GEMV through the fallback: an unscaled fp32 GEMM, then the scaling pass.
    if (s.m > 8 || s.k % 32 != 0) {
      setenv("LLMSERVE_FP8_SCALING", "pass", 1);
      CudaBackend fallback(dt());
      unsetenv("LLMSERVE_FP8_SCALING");
      std::vector<Buffer> mem;
      const auto copy = [&](Tensor t) { return copy_to(fallback, mem, t); };
      Tensor o = fallback.allocate_tensor(mem, dt(), {s.m, s.n});
      fallback.matmul_fp8(Fp8Rows{copy(gx.q), copy(gx.scales)}, copy(gq), copy(scales.second),
                          s.bias ? copy(gb) : Tensor(), o);
      EXPECT_CLOSE_REL(read_tensor(fallback, o), want, tol(),
                       label("matmul_fp8 (scaling pass)", s));
    }
  }
}

TEST_P(CudaQuantizedOps, MatmulFp8RefusesShapesCublasLtCannotTake) {
  for (auto [n, k] : {std::pair<int64_t, int64_t>{64, 72}, {40, 64}}) {
    std::pair<Tensor, Tensor> scales;
    auto [cq, gq] = fp8_weight(n, k, scales);
    auto [cx, gx] = fp8_input(2, k);
    auto [co, go] = both_empty({2, n});
    try {
      gpu_->matmul_fp8(gx, gq, scales.second, Tensor(), go);
      ADD_FAILURE() << "an fp8 weight [" << n << ", " << k << "] was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), StatusCode::kUnimplemented);
      EXPECT_NE(std::string(e.what()).find("multiples of 16"), std::string::npos) << e.what();
    }
  }
}

// Every tile variant of the tensor-core GEMV (gemv_tc.cuh: loads per lane, chunks in flight,
// warps, weights loaded before the PDL wait), launched directly, for each weight format against
// the CPU op of the same format: N not a multiple of 16 (rows past N re-read the last row and are
// not stored), K with and without a tail after the last whole chunk, M 1..8, bias, fp32 output,
// the GELU epilogue. Then the backend ops with the other GEMV choice than the default one
// (LLMSERVE_GEMV=tc).
// Backend::fused_linear (the decode-step fusions of model/decoder.cpp) against the CPU's
// composition of the ops it replaces: rms_norm then matmul (QKV, gate_up), matmul then add into
// the residual (o_proj), silu_mul then matmul then add (down), with 16-bit and int8 weights.
TEST_P(CudaQuantizedOps, FusedLinearMatchesComposition) {
  ASSERT_FALSE(gpu_->can_fuse_linear(1, dt())) << "off by default";
  gpu_->set_decode_fusion(true);
  CudaBackend* fusing = gpu_.get();
  for (const Shape s : {Shape{1, 4096, 4096, false}, Shape{8, 1001, 416, true},
                        Shape{5, 40, 4128, false}, Shape{3, 300, 400, true}}) {
    ASSERT_TRUE(fusing->can_fuse_linear(s.m, dt()));
    ASSERT_FALSE(fusing->can_fuse_linear(cuda::kGemvTcMaxRows + 1, dt()));
    auto [cx, gx] = both(input(s.m, s.k), {s.m, s.k});
    auto [cx2, gx2] = both(input(s.m, 2 * s.k), {s.m, 2 * s.k});  // gate | up
    auto [cg, gg] = both(random_vector(static_cast<size_t>(s.k), rng_, 0.5f), {s.k});
    auto [cw, gw] = both(random_vector(static_cast<size_t>(s.n * s.k), rng_, 0.05f), {s.n, s.k});
    std::pair<Tensor, Tensor> q8_scales;
    auto [cq, gq] = int8_weight(s.n, s.k, q8_scales);
    auto [cb, gb] = both(random_vector(static_cast<size_t>(s.n), rng_), {s.n});
    const std::vector<float> residual = random_vector(static_cast<size_t>(s.m * s.n), rng_);
    Tensor bias_c = s.bias ? cb : Tensor(), bias_g = s.bias ? gb : Tensor();
    Tensor cn = cpu_.allocate_tensor(cpu_mem_, DType::kF32, {s.m, s.k});
    auto [co, go] = both_empty({s.m, s.n});
    for (const bool int8 : {false, true}) {
      const Tensor cwt = int8 ? cq : cw, gwt = int8 ? gq : gw;
      const Tensor cs = int8 ? q8_scales.first : Tensor(), gs = int8 ? q8_scales.second : Tensor();
      const auto cpu_linear = [&](Tensor x, Tensor out) {
        if (int8) {
          cpu_.matmul_q8(x, cwt, cs, bias_c, out);
        } else {
          cpu_.matmul(x, cwt, bias_c, out);
        }
      };
      const std::string what = std::string(int8 ? " int8" : " 16-bit");
      // QKV / gate_up: the RMSNorm prologue.
      cpu_.rms_norm(cx, cg, 1e-5f, cn);
      cpu_linear(cn, co);
      fusing->fused_linear(gx, gwt, gs, bias_g, {.norm_w = gg, .norm_eps = 1e-5f}, go);
      EXPECT_CLOSE_REL(read_tensor(*gpu_, go), read_tensor(cpu_, co), 2 * tol(),
                       label("fused_linear rms_norm", s) + what);
      // o_proj: the residual add.
      auto [cr, gr] = both(residual, {s.m, s.n});
      cpu_linear(cx, co);
      cpu_.add(cr, co);
      fusing->fused_linear(gx, gwt, gs, bias_g, {.accumulate = true}, gr);
      EXPECT_CLOSE_REL(read_tensor(*gpu_, gr), read_tensor(cpu_, cr), tol(),
                       label("fused_linear accumulate", s) + what);
      // down: SiLU·mul prologue and the residual add.
      auto [cr2, gr2] = both(residual, {s.m, s.n});
      cpu_.silu_mul(cx2, cn);
      cpu_linear(cn, co);
      cpu_.add(cr2, co);
      fusing->fused_linear(gx2, gwt, gs, bias_g, {.silu_mul = true, .accumulate = true}, gr2);
      EXPECT_CLOSE_REL(read_tensor(*gpu_, gr2), read_tensor(cpu_, cr2), 2 * tol(),
                       label("fused_linear silu_mul accumulate", s) + what);
    }
  }
}

TEST_P(CudaQuantizedOps, TensorCoreGemvVariantsMatchCpu) {
  using cuda::GemvWeights;
  const auto run = [&](int variant, cuda::GemvTcArgs a) {
    ASSERT_TRUE(cuda::gemv_tc_supports(a));
    ASSERT_EQ(cuda::launch_gemv_tc(a, /*stream=*/nullptr, variant), cudaSuccess);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  };
  for (const Shape s :
       {Shape{1, 4096, 4096, true}, Shape{8, 1001, 416, true}, Shape{5, 40, 4128, false, true},
        Shape{2, 16, 32, false}, Shape{3, 300, 400, true}}) {
    auto [cx, gx] = both(input(s.m, s.k), {s.m, s.k});
    auto [cw, gw] = both(random_vector(static_cast<size_t>(s.n * s.k), rng_, 0.05f), {s.n, s.k});
    auto [cb, gb] = both(random_vector(static_cast<size_t>(s.n), rng_), {s.n});
    std::pair<Tensor, Tensor> q8_scales, fp8_scales;
    auto [cq, gq] = int8_weight(s.n, s.k, q8_scales);
    auto [co, go] = both_empty({s.m, s.n}, s.f32_out ? DType::kF32 : dt());
    const bool fp8_shape = s.k % 32 == 0;
    std::pair<Tensor, Tensor> f8, f8x_pair;
    Fp8Rows f8x_cpu, f8x_gpu;
    if (fp8_shape) {
      f8 = fp8_weight(s.n, s.k, fp8_scales);
      std::tie(f8x_cpu, f8x_gpu) = fp8_input(s.m, s.k);
    }
    std::vector<float> want_16, want_gelu, want_q8, want_fp8;
    cpu_.matmul(cx, cw, s.bias ? cb : Tensor(), co);
    want_16 = read_tensor(cpu_, co);
    cpu_.matmul_gelu(cx, cw, cb, co);
    want_gelu = read_tensor(cpu_, co);
    cpu_.matmul_q8(cx, cq, q8_scales.first, s.bias ? cb : Tensor(), co);
    want_q8 = read_tensor(cpu_, co);
    Tensor co16 = cpu_.allocate_tensor(cpu_mem_, DType::kF32, {s.m, s.n});
    Tensor go16 = gpu_->allocate_tensor(gpu_mem_, dt(), {s.m, s.n});
    if (fp8_shape) {
      cpu_.matmul_fp8(f8x_cpu, f8.first, fp8_scales.first, s.bias ? cb : Tensor(), co16);
      want_fp8 = read_tensor(cpu_, co16);
    }
    const cuda::GemvTcArgs base{.dtype = dt(),
                                .out_dtype = go.dtype,
                                .x = gx.data,
                                .bias = s.bias ? gb.data : nullptr,
                                .out = go.data,
                                .m = static_cast<int32_t>(s.m),
                                .n = static_cast<int32_t>(s.n),
                                .k = static_cast<int32_t>(s.k)};
    for (int v = 0; v < cuda::kGemvTcVariants; ++v) {
      const std::string what = " variant " + std::to_string(v);
      cuda::GemvTcArgs a = base;
      a.w = gw.data;
      run(v, a);
      EXPECT_CLOSE_REL(read_tensor(*gpu_, go), want_16, tol(), label("gemv_tc 16-bit", s) + what);
      a.gelu = true;
      a.bias = gb.data;
      run(v, a);
      EXPECT_CLOSE_REL(read_tensor(*gpu_, go), want_gelu, tol(), label("gemv_tc gelu", s) + what);
      a = base;
      a.weights = GemvWeights::kInt8;
      a.w = gq.data;
      a.w_scales = q8_scales.second.as<float>();
      run(v, a);
      EXPECT_CLOSE_REL(read_tensor(*gpu_, go), want_q8, tol(), label("gemv_tc int8", s) + what);
      if (fp8_shape) {
        a = base;
        a.weights = GemvWeights::kFp8;
        a.out_dtype = dt();
        a.out = go16.data;
        a.x = f8x_gpu.q.data;
        a.x_scales = f8x_gpu.scales.as<float>();
        a.w = f8.second.data;
        a.w_scales = fp8_scales.second.as<float>();
        run(v, a);
        EXPECT_CLOSE_REL(read_tensor(*gpu_, go16), want_fp8, tol(), label("gemv_tc fp8", s) + what);
      }
    }
    // The backend's ops with LLMSERVE_GEMV=simt (the CUDA-core GEMVs; the ops tests cover the
    // default), where those apply (M <= 4).
    if (s.m <= cuda::kGemvMaxRows) {
      setenv("LLMSERVE_GEMV", "simt", 1);
      CudaBackend other(dt());
      unsetenv("LLMSERVE_GEMV");
      std::vector<Buffer> mem;
      const auto copy = [&](Tensor t) { return copy_to(other, mem, t); };
      Tensor o = other.allocate_tensor(mem, go.dtype, {s.m, s.n});
      const Tensor x = copy(gx), bias = s.bias ? copy(gb) : Tensor();
      other.matmul(x, copy(gw), bias, o);
      EXPECT_CLOSE_REL(read_tensor(other, o), want_16, tol(),
                       label("matmul, LLMSERVE_GEMV=simt", s));
      other.matmul_q8(x, copy(gq), copy(q8_scales.second), bias, o);
      EXPECT_CLOSE_REL(read_tensor(other, o), want_q8, tol(),
                       label("matmul_q8, LLMSERVE_GEMV=simt", s));
    }
  }
}

// int4 weight-only against the CPU on the same codes and (scale, zero) pairs (held in dt(), as
// the loader stores them): the GEMV (1, 2 or 4 token tiles of 8, up to 32 tokens) through every
// tile variant, and the dequantization + cuBLASLt path above 32 tokens. Rows of only tail steps
// (K = 64, 160), whole 128-column blocks (4096, 14336) and both (4160); groups of 32 to 256. The
// last two shapes have more 16-row tiles than the device holds blocks of the streaming variants,
// so their blocks take several tiles each (and the last tile is partial).
TEST_P(CudaQuantizedOps, MatmulInt4MatchesCpu) {
  struct Int4Shape {
    int64_t m, n, k;
    int32_t group;
    bool bias;
  };
  for (const Int4Shape s :
       {Int4Shape{1, 4096, 4096, 128, false}, Int4Shape{1, 24, 64, 32, true},
        Int4Shape{3, 40, 160, 32, false}, Int4Shape{8, 1001, 4160, 64, true},
        Int4Shape{2, 4096, 14336, 128, false}, Int4Shape{5, 300, 512, 256, true},
        Int4Shape{13, 512, 4096, 128, true}, Int4Shape{32, 200, 256, 64, false},
        Int4Shape{17, 72, 4160, 32, true}, Int4Shape{24, 1024, 14336, 128, false},
        Int4Shape{33, 512, 4096, 128, true}, Int4Shape{130, 6144, 4096, 128, false},
        Int4Shape{64, 96, 160, 32, true}, Int4Shape{3, 12008, 4096, 128, true},
        Int4Shape{20, 6000, 2048, 128, false}}) {
    std::uniform_int_distribution<int> code(0, 15);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    std::vector<uint8_t> codes(static_cast<size_t>(s.n * s.k));
    for (uint8_t& c : codes) c = static_cast<uint8_t>(code(rng_));
    const std::vector<uint32_t> words = pack_int4(codes, s.n, s.k);
    const int64_t pairs = 2 * (s.k / s.group);
    std::vector<float> sz(static_cast<size_t>(s.n * pairs));
    for (size_t i = 0; i < sz.size(); ++i)
      sz[i] = i % 2 == 0 ? 1e-3f * (1.0f + 9.0f * u(rng_)) : static_cast<float>(code(rng_));
    const std::vector<uint8_t> sz_bytes = encode(sz, dt());
    auto [cq, gq] = both_bytes(words.data(), DType::kI32, {s.n, s.k / 8});
    auto [cs, gs] = both_bytes(sz_bytes.data(), dt(), {s.n, pairs});
    auto [cx, gx] = both(input(s.m, s.k), {s.m, s.k});
    auto [cb, gb] = both(random_vector(static_cast<size_t>(s.n), rng_), {s.n});
    auto [co, go] = both_empty({s.m, s.n});
    cpu_.matmul_int4(cx, cq, cs, s.bias ? cb : Tensor(), co);
    const std::vector<float> want = read_tensor(cpu_, co);
    const std::string what =
        label("matmul_int4", {s.m, s.n, s.k, s.bias}) + " group " + std::to_string(s.group);
    gpu_->matmul_int4(gx, gq, gs, s.bias ? gb : Tensor(), go);
    EXPECT_CLOSE_REL(read_tensor(*gpu_, go), want, tol(), what);
    if (s.m > cuda::kGemvInt4MaxRows) continue;
    for (int v = 0; v < cuda::kGemvInt4Variants; ++v) {
      const cuda::GemvInt4Args a{.dtype = dt(),
                                 .x = gx.data,
                                 .w = gq.data,
                                 .scales = gs.data,
                                 .bias = s.bias ? gb.data : nullptr,
                                 .out = go.data,
                                 .m = static_cast<int32_t>(s.m),
                                 .n = static_cast<int32_t>(s.n),
                                 .k = static_cast<int32_t>(s.k),
                                 .group = s.group};
      ASSERT_TRUE(cuda::gemv_int4_supports(a)) << what;
      ASSERT_EQ(cuda::launch_gemv_int4(a, /*stream=*/nullptr, v), cudaSuccess) << what;
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      EXPECT_CLOSE_REL(read_tensor(*gpu_, go), want, tol(), what + " variant " + std::to_string(v));
    }
  }
}

// A zero point read as 0 or a group's scale taken from the wrong group must fail the comparison
// above: the same check with the pairs of the next group planted in the GPU's copy.
TEST_P(CudaQuantizedOps, MatmulInt4PlantedScaleMixUpFails) {
  const int64_t m = 2, n = 64, k = 256;
  const int32_t group = 32;
  std::uniform_int_distribution<int> code(0, 15);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<uint8_t> codes(static_cast<size_t>(n * k));
  for (uint8_t& c : codes) c = static_cast<uint8_t>(code(rng_));
  const std::vector<uint32_t> words = pack_int4(codes, n, k);
  const int64_t pairs = 2 * (k / group);
  std::vector<float> sz(static_cast<size_t>(n * pairs)), shifted(sz.size());
  for (size_t i = 0; i < sz.size(); ++i)
    sz[i] = i % 2 == 0 ? 1e-3f * (1.0f + 9.0f * u(rng_)) : static_cast<float>(code(rng_));
  for (size_t i = 0; i < sz.size(); ++i) shifted[i] = sz[(i + 2) % sz.size()];
  auto [cq, gq] = both_bytes(words.data(), DType::kI32, {n, k / 8});
  auto [cs, gs_ok] = both_bytes(encode(sz, dt()).data(), dt(), {n, pairs});
  const Tensor gs_bad = both_bytes(encode(shifted, dt()).data(), dt(), {n, pairs}).second;
  auto [cx, gx] = both(input(m, k), {m, k});
  auto [co, go] = both_empty({m, n});
  cpu_.matmul_int4(cx, cq, cs, Tensor(), co);
  const std::vector<float> want = read_tensor(cpu_, co);
  gpu_->matmul_int4(gx, gq, gs_ok, Tensor(), go);
  EXPECT_LE(compare(read_tensor(*gpu_, go), want).rel_l2, tol());
  gpu_->matmul_int4(gx, gq, gs_bad, Tensor(), go);
  EXPECT_GT(compare(read_tensor(*gpu_, go), want).rel_l2, 10 * tol());
}

// After one eager call (which allocates the quantization scratch and makes the cuBLASLt plans),
// both ops record into a graph; replayed after new inputs are uploaded, it gives what eager calls
// on those inputs give (and not the recorded inputs' result).
TEST_P(CudaQuantizedOps, RecordedInAGraph) {
  const int64_t n = 1024, k = 768;
  std::pair<Tensor, Tensor> q8_scales, fp8_scales;
  const Tensor q8 = int8_weight(n, k, q8_scales).second, f8 = fp8_weight(n, k, fp8_scales).second;
  const Tensor bias = both(random_vector(static_cast<size_t>(n), rng_), {n}).second;
  std::vector<uint8_t> codes4(static_cast<size_t>(n * k));
  for (size_t i = 0; i < codes4.size(); ++i) codes4[i] = static_cast<uint8_t>((i * 7 + i / 5) % 16);
  std::vector<float> sz4(static_cast<size_t>(n * 2 * (k / 128)));
  for (size_t i = 0; i < sz4.size(); ++i) sz4[i] = i % 2 == 0 ? 1e-3f * (1 + i % 5) : (i / 2) % 16;
  const Tensor q4 = both_bytes(pack_int4(codes4, n, k).data(), DType::kI32, {n, k / 8}).second;
  const Tensor s4 = both_bytes(encode(sz4, dt()).data(), dt(), {n, 2 * (k / 128)}).second;
  for (int64_t m : {3, 64}) {  // the GEMVs, then the dequantization path and cuBLASLt's fp8 GEMM
    Tensor x = make_tensor(*gpu_, gpu_mem_, input(m, k), dt(), {m, k});
    const Fp8Rows codes = gpu_rows(m, k);
    Tensor graph_q8 = gpu_->allocate_tensor(gpu_mem_, dt(), {m, n}),
           graph_fp8 = gpu_->allocate_tensor(gpu_mem_, dt(), {m, n});
    Tensor eager_q8 = gpu_->allocate_tensor(gpu_mem_, dt(), {m, n}),
           eager_fp8 = gpu_->allocate_tensor(gpu_mem_, dt(), {m, n});
    Tensor graph_int4 = gpu_->allocate_tensor(gpu_mem_, dt(), {m, n}),
           eager_int4 = gpu_->allocate_tensor(gpu_mem_, dt(), {m, n});
    const auto body = [&] {
      gpu_->matmul_q8(x, q8, q8_scales.second, bias, graph_q8);
      gpu_->quantize_fp8_rows(x, codes);
      gpu_->matmul_fp8(codes, f8, fp8_scales.second, bias, graph_fp8);
      gpu_->matmul_int4(x, q4, s4, bias, graph_int4);
    };
    body();
    const std::vector<float> recorded = read_tensor(*gpu_, graph_fp8);
    auto graph = gpu_->capture(body);
    ASSERT_NE(graph, nullptr);
    gpu_->upload(encode(input(m, k), dt()).data(), x);
    graph->replay();
    gpu_->matmul_q8(x, q8, q8_scales.second, bias, eager_q8);
    gpu_->quantize_fp8_rows(x, codes);
    gpu_->matmul_fp8(codes, f8, fp8_scales.second, bias, eager_fp8);
    gpu_->matmul_int4(x, q4, s4, bias, eager_int4);
    const std::string what = "m " + std::to_string(m);
    EXPECT_CLOSE_REL(read_tensor(*gpu_, graph_int4), read_tensor(*gpu_, eager_int4), 1e-6,
                     what + " matmul_int4 replay");
    const std::vector<float> replayed_q8 = read_tensor(*gpu_, graph_q8),
                             replayed_fp8 = read_tensor(*gpu_, graph_fp8);
    const std::vector<float> want_q8 = read_tensor(*gpu_, eager_q8),
                             want_fp8 = read_tensor(*gpu_, eager_fp8);
    EXPECT_CLOSE_REL(replayed_q8, want_q8, 1e-6, what + " matmul_q8 replay");
    EXPECT_CLOSE_REL(replayed_fp8, want_fp8, 1e-6, what + " matmul_fp8 replay");
    EXPECT_GT(compare(replayed_fp8, recorded).rel_l2, 0.1)
        << what << ": the replay ignored the new input";
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
