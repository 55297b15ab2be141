// Small-batch GEMMs for decode steps: out[M, N] = act(x[M, K] @ w[N, K]^T + bias) with 16-bit
// weights on the CUDA cores (gemv.cu), with int8 weights scaled per output row (gemv_q8.cu), and
// the tensor-core GEMV for 16-bit, int8 and fp8 W8A8 weights (gemv_tc.cuh).
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "common/dtype.h"

namespace llmserve::cuda {

constexpr int32_t kGemvMaxRows = 4;
constexpr int kGemvWarps = 8;  // warps per block of both kernels

struct GemvArgs {
  DType dtype = DType::kF16;      // of x, w and bias: kF16 or kBF16
  DType out_dtype = DType::kF16;  // dtype or kF32 (logits)
  const void* x = nullptr;        // [M, K]
  const void* w = nullptr;        // [N, K]
  const void* bias = nullptr;     // [N] or null
  void* out = nullptr;            // [M, N]
  int32_t m = 0, n = 0, k = 0;
  bool gelu = false;  // apply gelu_tanh after the bias
};

// Whether launch_gemv handles these arguments (M <= kGemvMaxRows, K % 8 == 0, 16-byte aligned
// x and w, 16-bit inputs).
bool gemv_supports(const GemvArgs& a);
cudaError_t launch_gemv(const GemvArgs& a, cudaStream_t stream);

// Warps per output column for N columns of `chunks_per_row` 16-byte chunks: the smallest power
// of two up to kGemvWarps giving ~64 resident warps per SM (LLMSERVE_GEMV_SPLIT overrides).
int gemv_warps_per_column(int32_t n, int32_t chunks_per_row);

// int8 weight-only: out[M, N] = (x[M, K] @ q[N, K]^T) * scales[N] (+ bias[N]).
struct GemvQ8Args {
  DType dtype = DType::kF16;      // of x and bias: kF16 or kBF16
  DType out_dtype = DType::kF16;  // dtype or kF32
  const void* x = nullptr;        // [M, K]
  const int8_t* w = nullptr;      // [N, K]
  const float* scales = nullptr;  // [N]
  const void* bias = nullptr;     // [N] or null
  void* out = nullptr;            // [M, N]
  int32_t m = 0, n = 0, k = 0;
};

// Whether launch_gemv_q8 handles these arguments (M <= kGemvMaxRows, K % 16 == 0, 16-byte
// aligned x and w, 16-bit x).
bool gemv_q8_supports(const GemvQ8Args& a);
cudaError_t launch_gemv_q8(const GemvQ8Args& a, cudaStream_t stream);

// The tensor-core GEMV (gemv_tc.cuh): one grid mapping, the weights as the mma's 16-row operand
// and up to 8 tokens as its 8-column operand, for three weight formats:
//   out[M, N] = act((x[M, K] @ w[N, K]^T) * x_scales[M] * w_scales[N] + bias[N]).
enum class GemvWeights {
  k16Bit,  // w in x's dtype; no scales
  kInt8,   // w int8, w_scales per row; x 16-bit (int8 weight-only, Backend::matmul_q8)
  kFp8,    // w and x e4m3 codes, w_scales per row, x_scales per token (Backend::matmul_fp8)
};
// What the tensor-core GEMV does to x before the product (16-bit and int8 weights; decode steps
// of a pre-norm decoder, so the op that produced x needs no kernel of its own):
enum class GemvPrologue {
  kNone,
  kRmsNorm,  // x' = x / sqrt(mean(x^2) + norm_eps) * norm_w, per token row (Backend::rms_norm)
  kSiluMul,  // x is [M, 2K]: x' = silu(x[:, :K]) * x[:, K:] (Backend::silu_mul)
};
constexpr int32_t kGemvTcMaxRows = 8;
constexpr int kGemvTcVariants = 8;  // tile shapes, gemv_tc.cuh kGemvTcShapes

struct GemvTcArgs {
  GemvWeights weights = GemvWeights::k16Bit;
  DType dtype = DType::kBF16;       // of x (16-bit, int8) or out (fp8), and bias: kF16 or kBF16
  DType out_dtype = DType::kBF16;   // dtype, or kF32 (16-bit and int8 weights)
  const void* x = nullptr;          // [M, K]
  const float* x_scales = nullptr;  // [M] (fp8)
  const void* w = nullptr;          // [N, K]
  const float* w_scales = nullptr;  // [N] (int8, fp8)
  const void* bias = nullptr;       // [N] or null
  void* out = nullptr;              // [M, N]
  int32_t m = 0, n = 0, k = 0;
  bool gelu = false;  // gelu_tanh after the bias
  // Fusions (not with fp8): x' rounded to x's dtype as the unfused op would store it, and with
  // accumulate, out += the result rounded to out's dtype (a residual add; out must be x's dtype).
  GemvPrologue prologue = GemvPrologue::kNone;
  const void* norm_w = nullptr;  // [K], x's dtype (kRmsNorm)
  float norm_eps = 0.0f;
  bool accumulate = false;
};

// Whether launch_gemv_tc handles these arguments: 1 <= M <= kGemvTcMaxRows, K a multiple of 16
// (32 for fp8), 16-byte aligned x and w (and norm_w), the dtypes above, fusions only with 16-bit
// or int8 weights (accumulate: out in x's dtype, no GELU).
bool gemv_tc_supports(const GemvTcArgs& a);
// variant in [0, kGemvTcVariants) picks a tile shape (for measuring); -1 the format's default
// (LLMSERVE_GEMV_TC_VARIANT overrides it). With a prologue only the default variants are built
// (0, 6 and 7); another one is refused with cudaErrorInvalidValue.
cudaError_t launch_gemv_tc(const GemvTcArgs& a, cudaStream_t stream, int variant = -1);

// int4 weight-only (gemv_int4.cu): out[M, N] = x[M, K] @ W^T (+ bias[N]), W[n, k] = (q[n, k] -
// zero) * scale of k's group; w the packed words [N, K / 8] and scales the (scale, zero) pairs
// [N, 2 * K / group] in x's dtype (src/common/int4.h, model/quantize.h).
constexpr int kGemvInt4Variants = 10;     // tile and streaming shapes, gemv_int4.cu
constexpr int32_t kGemvInt4MaxRows = 32;  // tokens of one launch (tiles of 8)
struct GemvInt4Args {
  DType dtype = DType::kBF16;  // of x, scales, bias and out: kF16 or kBF16
  const void* x = nullptr;     // [M, K]
  const void* w = nullptr;     // [N, K / 8] words
  const void* scales = nullptr;
  const void* bias = nullptr;  // [N] or null
  void* out = nullptr;         // [M, N]
  int32_t m = 0, n = 0, k = 0;
  int32_t group = 0;  // a power of two >= 32 dividing K
};
// Whether launch_gemv_int4 handles these arguments: 1 <= M <= kGemvInt4MaxRows, K a multiple of 32,
// the group as above, 16-byte aligned x and w.
bool gemv_int4_supports(const GemvInt4Args& a);
// variant in [0, kGemvInt4Variants) picks a tile shape (for measuring); -1 the default for M
// (LLMSERVE_GEMV_INT4_VARIANT overrides it).
cudaError_t launch_gemv_int4(const GemvInt4Args& a, cudaStream_t stream, int variant = -1);

}  // namespace llmserve::cuda
