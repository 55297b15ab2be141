// The CUDA backend's GEMMs (split from cuda_backend.cpp, which owns memory, graphs and the other
// ops): cuBLASLt plans cached per shape (plan_for, run_gemm), the small-M GEMV paths (gemv.h), and
// the quantized matmuls — int8 and int4 weight-only (GEMV, or weight columns dequantized into a
// fixed scratch buffer ahead of cuBLASLt) and fp8 W8A8 (activation quantization, fused producers,
// the tensor-core GEMV, cuBLASLt with outer-vector scales or an unscaled GEMM and a scaling pass).
#include <algorithm>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/gemv.h"
#include "backend/cuda/kernels.h"
#include "common/logging.h"
#include "common/status.h"

namespace llmserve {
namespace {

using cuda_internal::check;
using cuda_internal::check_lt;

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::kF16:
      return CUDA_R_16F;
    case DType::kBF16:
      return CUDA_R_16BF;
    case DType::kF32:
      return CUDA_R_32F;
    case DType::kF8E4M3:
      return CUDA_R_8F_E4M3;
    default:
      fail(StatusCode::kInvalidArgument, "the CUDA backend has no GEMM for dtype {}",
           dtype_name(t));
  }
}

// matmul_q8's dequantized weight columns for one cuBLASLt call live here (4,096 columns of
// K = 4,096 in fp16): enough for GEMMs near full tensor-core speed, and one fixed allocation
// (graphs bake in its address) instead of the largest operand's size.
constexpr size_t kQuantBufferBytes = 32u << 20;
// cuBLASLt picks algorithms assuming 256-byte aligned operands (its default minimum alignment):
// chunk offsets are whole multiples of 128 rows or columns, which keeps them so.
constexpr int64_t kQuantChunkAlign = 128;

}  // namespace

void* CudaBackend::quant_scratch() {
  if (quant_scratch_ == nullptr) {
    cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
    check(cudaStreamIsCapturing(stream_, &capturing), "cudaStreamIsCapturing");
    if (capturing != cudaStreamCaptureStatusNone) {
      fail(StatusCode::kInternal,
           "a quantized matmul was first run inside a graph capture; run the step eagerly first");
    }
    check(cudaMalloc(&quant_scratch_, kQuantBufferBytes), "cudaMalloc(quantization scratch)");
  }
  return quant_scratch_;
}

const CudaBackend::MatmulPlan* CudaBackend::plan_for(const PlanKey& key) {
  if (auto it = plans_.find(key); it != plans_.end())
    return it->second.desc != nullptr ? &it->second : nullptr;
  const auto [m, n, k, ldc, xt, wt, ot, has_bias, outer_scales] = key;
  MatmulPlan p;
  // Row-major out[M, N] = x[M, K] @ w[N, K]^T is column-major out^T[N, M] = w^T... : with A = w
  // (column-major [K, N], transposed) and B = x (column-major [K, M]), D = A^T B is [N, M].
  check_lt(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "MatmulDescCreate");
  const cublasOperation_t trans = CUBLAS_OP_T, no_trans = CUBLAS_OP_N;
  check_lt(
      cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &trans, sizeof trans),
      "TRANSA");
  check_lt(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &no_trans,
                                          sizeof no_trans),
           "TRANSB");
  if (wt == DType::kF8E4M3 && fp8_fast_accum_) {
    const int8_t fast = 1;
    check_lt(
        cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast, sizeof fast),
        "FAST_ACCUM");
  }
  if (has_bias) {
    const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    check_lt(
        cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi),
        "EPILOGUE");
    // The bias has the weights' type, except that fp8 GEMMs take it in the output's.
    const cudaDataType_t bias_type = cuda_type(wt == DType::kF8E4M3 ? ot : wt);
    check_lt(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type,
                                            sizeof bias_type),
             "BIAS_DATA_TYPE");
  }
  if (outer_scales) {
    // D[n, m] = (A^T B)[n, m] * a_scale[n] * b_scale[m]: per-output-row weight scales (A has N
    // rows in D) and per-token input scales (B has M columns).
    const int32_t mode = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    check_lt(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode,
                                            sizeof mode),
             "A_SCALE_MODE");
    check_lt(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode,
                                            sizeof mode),
             "B_SCALE_MODE");
  }
  check_lt(cublasLtMatrixLayoutCreate(&p.a, cuda_type(wt), static_cast<uint64_t>(k),
                                      static_cast<uint64_t>(n), k),
           "layout A");
  check_lt(cublasLtMatrixLayoutCreate(&p.b, cuda_type(xt), static_cast<uint64_t>(k),
                                      static_cast<uint64_t>(m), k),
           "layout B");
  check_lt(cublasLtMatrixLayoutCreate(&p.c, cuda_type(ot), static_cast<uint64_t>(n),
                                      static_cast<uint64_t>(m), ldc),
           "layout C");
  cublasLtMatmulPreference_t pref = nullptr;
  check_lt(cublasLtMatmulPreferenceCreate(&pref), "PreferenceCreate");
  check_lt(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                &lt_workspace_bytes_, sizeof lt_workspace_bytes_),
           "PREF_MAX_WORKSPACE_BYTES");
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  const cublasStatus_t s =
      cublasLtMatmulAlgoGetHeuristic(lt_, p.desc, p.a, p.b, p.c, p.c, pref, 1, &result, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (s != CUBLAS_STATUS_SUCCESS || found == 0) {
    cublasLtMatrixLayoutDestroy(p.a);
    cublasLtMatrixLayoutDestroy(p.b);
    cublasLtMatrixLayoutDestroy(p.c);
    cublasLtMatmulDescDestroy(p.desc);
    plans_.emplace(key, MatmulPlan{});  // remembered: no algorithm
    return nullptr;
  }
  p.algo = result.algo;
  return &plans_.emplace(key, p).first->second;
}

void CudaBackend::run_gemm(const PlanKey& key, const void* x, const void* w, const void* bias,
                           void* out, const float* w_scales, const float* x_scales, float alpha) {
  const MatmulPlan* p = plan_for(key);
  if (p == nullptr) {
    fail(StatusCode::kInternal,
         "cuBLASLt has no algorithm for [{}x{}] @ [{}x{}]^T ({} x {} -> {}{}{})", key.m, key.k,
         key.n, key.k, dtype_name(key.x_dtype), dtype_name(key.w_dtype), dtype_name(key.out_dtype),
         key.has_bias ? ", bias" : "", key.outer_scales ? ", per-row/column scales" : "");
  }
  if (key.has_bias) {
    check_lt(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                            sizeof bias),
             "BIAS_POINTER");
  }
  if (key.outer_scales) {  // A is w, B is x (see plan_for)
    check_lt(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                                            &w_scales, sizeof w_scales),
             "A_SCALE_POINTER");
    check_lt(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                            &x_scales, sizeof x_scales),
             "B_SCALE_POINTER");
  }
  const float beta = 0.0f;
  check_lt(cublasLtMatmul(lt_, p->desc, &alpha, w, p->a, x, p->b, &beta, out, p->c, out, p->c,
                          &p->algo, lt_workspace_, lt_workspace_bytes_, stream_),
           "cublasLtMatmul");
}

void CudaBackend::matmul(Tensor x, Tensor w, Tensor bias, Tensor out) {
  const OpTimer timer(profile_.get(), stream_, "matmul");
  const int64_t m = x.dim(0), k = x.dim(-1), n = w.dim(0);
  if (w.dim(-1) != k || out.dim(0) != m || out.dim(-1) != n) {
    fail(StatusCode::kInternal, "matmul shapes: x {} w {} out {}", x.shape_string(),
         w.shape_string(), out.shape_string());
  }
  if (m == 0) return;
  if (try_gemv(x, w, bias, /*gelu=*/false, out)) return;
  run_gemm(PlanKey{m, n, k, n, x.dtype, w.dtype, out.dtype, bias.data != nullptr}, x.data, w.data,
           bias.data, out.data);
}

void CudaBackend::matmul_q8(Tensor x, Tensor w, Tensor scales, Tensor bias, Tensor out) {
  const OpTimer timer(profile_.get(), stream_, "matmul_q8");
  const int64_t m = x.dim(0), k = x.dim(-1), n = w.dim(0);
  const bool has_bias = bias.data != nullptr;
  if (w.dtype != DType::kI8 || scales.dtype != DType::kF32 || x.dtype != dtype_ ||
      (out.dtype != dtype_ && out.dtype != DType::kF32) || (has_bias && bias.dtype != dtype_) ||
      w.dim(-1) != k || scales.numel() != n || out.dim(0) != m || out.dim(-1) != n ||
      (has_bias && bias.numel() != n)) {
    fail(StatusCode::kInternal, "matmul_q8: x {} ({}) w {} ({}) scales {} out {} ({})",
         x.shape_string(), dtype_name(x.dtype), w.shape_string(), dtype_name(w.dtype),
         scales.shape_string(), out.shape_string(), dtype_name(out.dtype));
  }
  if (m == 0 || n == 0) return;
  const cuda::GemvTcArgs tc{.weights = cuda::GemvWeights::kInt8,
                            .dtype = x.dtype,
                            .out_dtype = out.dtype,
                            .x = x.data,
                            .w = w.data,
                            .w_scales = scales.as<float>(),
                            .bias = bias.data,
                            .out = out.data,
                            .m = static_cast<int32_t>(m),
                            .n = static_cast<int32_t>(n),
                            .k = static_cast<int32_t>(k)};
  if (!gemv_simt_ && cuda::gemv_tc_supports(tc)) {
    check(cuda::launch_gemv_tc(tc, stream_), "gemv_tc int8");
    return;
  }
  cuda::GemvQ8Args a;
  a.dtype = x.dtype;
  a.out_dtype = out.dtype;
  a.x = x.data;
  a.w = w.as<int8_t>();
  a.scales = scales.as<float>();
  a.bias = bias.data;
  a.out = out.data;
  a.m = static_cast<int32_t>(m);
  a.n = static_cast<int32_t>(n);
  a.k = static_cast<int32_t>(k);
  if (cuda::gemv_q8_supports(a)) {
    check(cuda::launch_gemv_q8(a, stream_), "gemv_q8");
    return;
  }
  // Column chunks of the weight, dequantized to the activation dtype, each multiplied by cuBLASLt
  // straight into its columns of out (ldc = N). Chunks of kQuantChunkAlign columns keep the
  // output and bias pointers as aligned as cuBLASLt's heuristics assume.
  const size_t esize = dtype_size(dtype_), out_esize = dtype_size(out.dtype);
  const int64_t chunk = std::min<int64_t>(n, static_cast<int64_t>(kQuantBufferBytes / (k * esize)) /
                                                 kQuantChunkAlign * kQuantChunkAlign);
  if (chunk <= 0)
    fail(StatusCode::kUnimplemented, "matmul_q8: K = {} is too long for the dequantization buffer",
         k);
  void* buffer = quant_scratch();
  for (int64_t n0 = 0; n0 < n; n0 += chunk) {
    const int64_t cols = std::min(chunk, n - n0);
    check(cuda::launch_dequantize_rows_int8(dtype_, w.as<int8_t>() + n0 * k,
                                            scales.as<float>() + n0, static_cast<int32_t>(cols),
                                            static_cast<int32_t>(k), buffer, stream_),
          "dequantize_rows_int8");
    run_gemm(PlanKey{m, cols, k, n, x.dtype, dtype_, out.dtype, has_bias}, x.data, buffer,
             has_bias ? static_cast<const uint8_t*>(bias.data) + n0 * esize : nullptr,
             static_cast<uint8_t*>(out.data) + n0 * out_esize);
  }
}

void CudaBackend::matmul_int4(Tensor x, Tensor w, Tensor scales, Tensor bias, Tensor out) {
  const OpTimer timer(profile_.get(), stream_, "matmul_int4");
  const int64_t m = x.dim(0), k = x.dim(-1), n = w.dim(0);
  const int64_t pairs = scales.ndim == 2 ? scales.dim(1) : 0;
  const bool has_bias = bias.data != nullptr;
  if (w.dtype != DType::kI32 || w.ndim != 2 || k % 32 != 0 || w.dim(1) != k / 8 ||
      scales.dtype != dtype_ || scales.dim(0) != n || pairs < 2 || pairs % 2 != 0 ||
      k % (pairs / 2) != 0 || x.dtype != dtype_ || out.dtype != dtype_ || out.dim(0) != m ||
      out.dim(-1) != n || (has_bias && (bias.dtype != dtype_ || bias.numel() != n))) {
    fail(StatusCode::kInternal, "matmul_int4: x {} ({}) w {} ({}) scales {} ({}) out {} ({})",
         x.shape_string(), dtype_name(x.dtype), w.shape_string(), dtype_name(w.dtype),
         scales.shape_string(), dtype_name(scales.dtype), out.shape_string(),
         dtype_name(out.dtype));
  }
  if (m == 0 || n == 0) return;
  const auto group = static_cast<int32_t>(k / (pairs / 2));
  const size_t esize = dtype_size(dtype_);
  // Up to kGemvInt4MaxRows tokens: the GEMV, one pass over a quarter of the bytes the 16-bit
  // weight has, where the path below writes and reads the whole 16-bit weight.
  const cuda::GemvInt4Args a{.dtype = dtype_,
                             .x = x.data,
                             .w = w.data,
                             .scales = scales.data,
                             .bias = bias.data,
                             .out = out.data,
                             .m = static_cast<int32_t>(m),
                             .n = static_cast<int32_t>(n),
                             .k = static_cast<int32_t>(k),
                             .group = group};
  if (cuda::gemv_int4_supports(a)) {
    check(cuda::launch_gemv_int4(a, stream_), "gemv_int4");
    return;
  }
  // Row chunks of the weight dequantized to the activation dtype, each multiplied by cuBLASLt
  // straight into its columns of out, as matmul_q8 does.
  const int64_t chunk = std::min<int64_t>(n, static_cast<int64_t>(kQuantBufferBytes / (k * esize)) /
                                                 kQuantChunkAlign * kQuantChunkAlign);
  if (chunk <= 0) {
    fail(StatusCode::kUnimplemented,
         "matmul_int4: K = {} is too long for the dequantization buffer", k);
  }
  void* buffer = quant_scratch();
  for (int64_t n0 = 0; n0 < n; n0 += chunk) {
    const int64_t rows = std::min(chunk, n - n0);
    check(cuda::launch_dequantize_int4(
              dtype_, w.as<uint32_t>() + n0 * (k / 8),
              static_cast<const uint8_t*>(scales.data) + n0 * pairs * esize,
              static_cast<int32_t>(rows), static_cast<int32_t>(k), group, buffer, stream_),
          "dequantize_int4");
    run_gemm(PlanKey{m, rows, k, n, x.dtype, dtype_, out.dtype, has_bias}, x.data, buffer,
             has_bias ? static_cast<const uint8_t*>(bias.data) + n0 * esize : nullptr,
             static_cast<uint8_t*>(out.data) + n0 * esize);
  }
}

void CudaBackend::quantize_fp8_rows(Tensor x, const Fp8Rows& out) {
  const OpTimer timer(profile_.get(), stream_, "quantize_fp8");
  const int64_t m = x.dim(0), k = x.dim(-1);
  if (x.dtype != dtype_ || out.q.dtype != DType::kF8E4M3 || out.q.numel() != m * k ||
      out.scales.dtype != DType::kF32 || out.scales.numel() != m) {
    fail(StatusCode::kInternal, "quantize_fp8_rows: x {} ({}) codes {} ({}) scales {}",
         x.shape_string(), dtype_name(x.dtype), out.q.shape_string(), dtype_name(out.q.dtype),
         out.scales.shape_string());
  }
  check(cuda::launch_quantize_fp8_rows(dtype_, x.data, static_cast<int32_t>(m),
                                       static_cast<int32_t>(k), out.q.data, out.scales.as<float>(),
                                       stream_),
        "quantize_fp8_rows");
}

void CudaBackend::add_rms_norm_fp8(Tensor residual, Tensor x, Tensor w, float eps, Tensor out,
                                   const Fp8Rows& q) {
  const OpTimer timer(profile_.get(), stream_, "add_rms_norm_fp8");
  const cudaError_t e = cuda::launch_add_rms_norm_fp8(
      dtype_, residual.data, x.data, w.data, eps, static_cast<int32_t>(residual.dim(0)),
      static_cast<int32_t>(residual.dim(-1)), q.q.data, q.scales.as<float>(), stream_);
  if (e == cudaErrorNotSupported) {
    Backend::add_rms_norm_fp8(residual, x, w, eps, out,
                              q);  // a shape the fused kernel does not take
    return;
  }
  check(e, "add_rms_norm_fp8");
}

void CudaBackend::silu_mul_fp8(Tensor gate_up, Tensor out, const Fp8Rows& q) {
  if (!fuse_silu_fp8_) {
    Backend::silu_mul_fp8(gate_up, out, q);
    return;
  }
  const OpTimer timer(profile_.get(), stream_, "silu_mul_fp8");
  const cudaError_t e = cuda::launch_silu_mul_fp8(
      dtype_, gate_up.data, static_cast<int32_t>(out.dim(0)), static_cast<int32_t>(out.dim(-1)),
      q.q.data, q.scales.as<float>(), stream_);
  if (e == cudaErrorNotSupported) {
    Backend::silu_mul_fp8(gate_up, out, q);
    return;
  }
  check(e, "silu_mul_fp8");
}

void CudaBackend::matmul_fp8(const Fp8Rows& x, Tensor w, Tensor w_scales, Tensor bias, Tensor out) {
  const OpTimer timer(profile_.get(), stream_, "matmul_fp8");
  const int64_t m = x.q.dim(0), k = x.q.dim(-1), n = w.dim(0);
  const bool has_bias = bias.data != nullptr;
  if (w.dtype != DType::kF8E4M3 || x.q.dtype != DType::kF8E4M3 || x.scales.dtype != DType::kF32 ||
      x.scales.numel() != m || w_scales.dtype != DType::kF32 || w_scales.numel() != n ||
      out.dtype != dtype_ || (has_bias && bias.dtype != dtype_) || w.dim(-1) != k ||
      out.dim(0) != m || out.dim(-1) != n || (has_bias && bias.numel() != n)) {
    fail(StatusCode::kInternal,
         "matmul_fp8: x {} ({}) x scales {} w {} ({}) w scales {} out {} ({})", x.q.shape_string(),
         dtype_name(x.q.dtype), x.scales.shape_string(), w.shape_string(), dtype_name(w.dtype),
         w_scales.shape_string(), out.shape_string(), dtype_name(out.dtype));
  }
  if (k % 16 != 0 || n % 16 != 0) {
    fail(
        StatusCode::kUnimplemented,
        "--quantization fp8 on cuda: fp8 GEMMs need K and N multiples of 16, got a [{}, {}] weight",
        n, k);
  }
  if (m == 0) return;
  const cuda::GemvTcArgs a{.weights = cuda::GemvWeights::kFp8,
                           .dtype = dtype_,
                           .out_dtype = dtype_,
                           .x = x.q.data,
                           .x_scales = x.scales.as<float>(),
                           .w = w.data,
                           .w_scales = w_scales.as<float>(),
                           .bias = bias.data,
                           .out = out.data,
                           .m = static_cast<int32_t>(m),
                           .n = static_cast<int32_t>(n),
                           .k = static_cast<int32_t>(k)};
  if (cuda::gemv_tc_supports(a)) {
    check(cuda::launch_gemv_tc(a, stream_), "gemv_tc fp8");
    return;
  }
  // cuBLASLt applies the per-token and per-row scales itself (outer-vector scaling) where it can.
  const PlanKey scaled{
      m, n, k, n, DType::kF8E4M3, DType::kF8E4M3, dtype_, has_bias, /*outer_scales=*/true};
  if (fp8_cublaslt_scales_) {
    if (plan_for(scaled) != nullptr) {
      run_gemm(scaled, x.q.data, w.data, bias.data, out.data, w_scales.as<float>(),
               x.scales.as<float>());
      return;
    }
    if (!has_warned_fp8_scaling_) {  // once: the fallback is the normal path on some cuBLASLt
                                     // versions
      LOG_INFO(
          "cuBLASLt has no fp8 GEMM with per-token and per-channel scales ([{}x{}] @ [{}x{}]^T); "
          "fp8 GEMMs "
          "scale in a separate pass",
          m, k, n, k);
      has_warned_fp8_scaling_ = true;
    }
  }
  // Otherwise the unscaled products straight into out, then the scales and the bias in place: one
  // GEMM over all of M, no scratch. bf16 holds any sum of K e4m3 products (|sum| <= K * 448^2) with
  // its usual 8-bit mantissa; fp16 would overflow past 65,504, so its GEMM runs with alpha = 2^-16
  // (exact) and the pass multiplies it back.
  const float alpha = dtype_ == DType::kF16 ? 0x1p-16f : 1.0f;
  run_gemm(PlanKey{m, n, k, n, DType::kF8E4M3, DType::kF8E4M3, dtype_, false, false}, x.q.data,
           w.data, nullptr, out.data, nullptr, nullptr, alpha);
  check(cuda::launch_scale_fp8_output(dtype_, out.data, x.scales.as<float>(), w_scales.as<float>(),
                                      bias.data, 1.0f / alpha, m, static_cast<int32_t>(n), stream_),
        "scale_fp8_output");
}

void CudaBackend::transpose(Tensor src, Tensor dst) {
  if (src.dtype != dst.dtype)
    fail(StatusCode::kInternal, "transpose from {} to {}", dtype_name(src.dtype),
         dtype_name(dst.dtype));
  check(cuda::launch_transpose(src.dtype, src.data, src.dim(0), src.dim(-1), dst.data, stream_),
        "transpose");
}

bool CudaBackend::try_gemv(Tensor x, Tensor w, Tensor bias, bool gelu, Tensor out) {
  if (w.dtype != x.dtype) return false;
  const auto m = static_cast<int32_t>(x.dim(0)), n = static_cast<int32_t>(w.dim(0)),
             k = static_cast<int32_t>(x.dim(-1));
  if (!gemv_simt_) {
    const cuda::GemvTcArgs tc{.weights = cuda::GemvWeights::k16Bit,
                              .dtype = x.dtype,
                              .out_dtype = out.dtype,
                              .x = x.data,
                              .w = w.data,
                              .bias = bias.data,
                              .out = out.data,
                              .m = m,
                              .n = n,
                              .k = k,
                              .gelu = gelu};
    if (cuda::gemv_tc_supports(tc)) {
      check(cuda::launch_gemv_tc(tc, stream_), "gemv_tc");
      return true;
    }
  }
  cuda::GemvArgs a;
  a.dtype = x.dtype;
  a.out_dtype = out.dtype;
  a.x = x.data;
  a.w = w.data;
  a.bias = bias.data;
  a.out = out.data;
  a.m = m;
  a.n = n;
  a.k = k;
  a.gelu = gelu;
  if (!cuda::gemv_supports(a)) return false;
  check(cuda::launch_gemv(a, stream_), "gemv");
  return true;
}

bool CudaBackend::can_fuse_linear(int64_t num_tokens, DType weight_dtype) const {
  return fuse_decode_ && !gemv_simt_ && num_tokens >= 1 && num_tokens <= cuda::kGemvTcMaxRows &&
         (weight_dtype == dtype_ || weight_dtype == DType::kI8) && dtype_ != DType::kF32;
}

void CudaBackend::fused_linear(Tensor x, Tensor w, Tensor scales, Tensor bias,
                               const LinearFusion& f, Tensor out) {
  const OpTimer timer(profile_.get(), stream_, "fused_linear");
  const int64_t m = x.dim(0), n = w.dim(0), k = w.dim(-1);
  const bool int8 = w.dtype == DType::kI8;
  const cuda::GemvTcArgs a{.weights = int8 ? cuda::GemvWeights::kInt8 : cuda::GemvWeights::k16Bit,
                           .dtype = x.dtype,
                           .out_dtype = out.dtype,
                           .x = x.data,
                           .w = w.data,
                           .w_scales = int8 ? scales.as<float>() : nullptr,
                           .bias = bias.data,
                           .out = out.data,
                           .m = static_cast<int32_t>(m),
                           .n = static_cast<int32_t>(n),
                           .k = static_cast<int32_t>(k),
                           .prologue = f.silu_mul                 ? cuda::GemvPrologue::kSiluMul
                                       : f.norm_w.data != nullptr ? cuda::GemvPrologue::kRmsNorm
                                                                  : cuda::GemvPrologue::kNone,
                           .norm_w = f.norm_w.data,
                           .norm_eps = f.norm_eps,
                           .accumulate = f.accumulate};
  const int64_t x_cols = f.silu_mul ? 2 * k : k;
  if (!can_fuse_linear(m, w.dtype) || x.dim(-1) != x_cols || out.dim(0) != m || out.dim(-1) != n ||
      (f.norm_w.data != nullptr && f.norm_w.numel() != k) || (int8 && scales.numel() != n) ||
      !cuda::gemv_tc_supports(a)) {
    fail(StatusCode::kInternal, "fused_linear: x {} ({}) w {} ({}) out {} ({}), {} tokens",
         x.shape_string(), dtype_name(x.dtype), w.shape_string(), dtype_name(w.dtype),
         out.shape_string(), dtype_name(out.dtype), m);
  }
  check(cuda::launch_gemv_tc(a, stream_), "gemv_tc fused");
}

void CudaBackend::matmul_gelu(Tensor x, Tensor w, Tensor bias, Tensor out) {
  const OpTimer timer(profile_.get(), stream_, "matmul_gelu");
  if (x.dim(0) > 0 && try_gemv(x, w, bias, /*gelu=*/true, out)) return;
  matmul(x, w, bias, out);
  gelu_tanh(out);
}

}  // namespace llmserve
