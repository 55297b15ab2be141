// Launchers of the CUDA backend's small kernels (everything but GEMMs and attention). Each
// enqueues on `stream`, never synchronises or allocates (so all of them can be captured in a CUDA
// graph), and returns the launch error. `dtype` is the activation type (kF16, kBF16 or kF32);
// weights passed here have the same type. Shapes are in each .cu file next to its kernel.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "backend/row_sampling.h"
#include "common/dtype.h"

namespace llmserve::cuda {

// elementwise.cu
// out[t, :] = table[ids[t], :] (+ pos_table[positions[t], :] when pos_table != nullptr).
cudaError_t launch_embedding(DType dtype, const void* table, const void* pos_table,
                             const int32_t* ids, const int32_t* positions, int32_t num_tokens,
                             int32_t dim, void* out, cudaStream_t stream);
// a += b over n elements.
cudaError_t launch_add(DType dtype, void* a, const void* b, int64_t n, cudaStream_t stream);
// dst[c, r] = src[r, c]; src [rows, cols], dst [cols, rows].
cudaError_t launch_transpose(DType dtype, const void* src, int64_t rows, int64_t cols, void* dst,
                             cudaStream_t stream);
// x *= s over n elements (Gemma's embedding scale).
cudaError_t launch_scale(DType dtype, void* x, float s, int64_t n, cudaStream_t stream);
// x = cap * tanh(x / cap) over n fp32 elements (Gemma 2's final logit soft-capping).
cudaError_t launch_softcap(float* x, float cap, int64_t n, cudaStream_t stream);
// x = gelu_tanh(x) over n elements.
cudaError_t launch_gelu_tanh(DType dtype, void* x, int64_t n, cudaStream_t stream);
// out[t, i] = silu(gate_up[t, i]) * gate_up[t, F + i]; gate_up [T, 2F], out [T, F].
cudaError_t launch_silu_mul(DType dtype, const void* gate_up, int32_t num_tokens, int32_t ffn,
                            void* out, cudaStream_t stream);
// out[t, i] = gelu_tanh(gate_up[t, i]) * gate_up[t, F + i] (GeGLU); shapes as launch_silu_mul.
cudaError_t launch_gelu_mul(DType dtype, const void* gate_up, int32_t num_tokens, int32_t ffn,
                            void* out, cudaStream_t stream);
// silu_mul written as per-row fp8 codes q [T, F] and scales fp32 [T] (of the values silu_mul would
// have stored in `dtype`). 16-bit types, F % 8 == 0, 16-byte aligned gate_up, 8-byte aligned q, and
// at least 64 rows (one block per row); cudaErrorNotSupported otherwise, launching nothing.
cudaError_t launch_silu_mul_fp8(DType dtype, const void* gate_up, int32_t num_tokens, int32_t ffn,
                                void* q, float* scales, cudaStream_t stream);
// out[i, :] = x[indices[i], :] for i < num_rows; x, out [*, dim].
cudaError_t launch_gather_rows(DType dtype, const void* x, const int32_t* indices, int32_t num_rows,
                               int32_t dim, void* out, cudaStream_t stream);

// norm.cu
// When x != nullptr: residual += x first. Then out = layer_norm(residual) * w + b (b may be null).
// residual, x, out: [T, D]; out may alias residual only when x == nullptr.
cudaError_t launch_add_layer_norm(DType dtype, void* residual, const void* x, const void* w,
                                  const void* b, float eps, int32_t num_tokens, int32_t dim,
                                  void* out, cudaStream_t stream);
// Same with RMSNorm: out = residual / sqrt(mean(residual^2) + eps) * w.
// Backend::qk_rms_norm: one warp per (token, q or k head), in place in qkv.
cudaError_t launch_qk_rms_norm(DType dtype, void* qkv, const void* q_w, const void* k_w,
                               int32_t num_tokens, int32_t num_q_heads, int32_t num_kv_heads,
                               int32_t head_dim, float eps, cudaStream_t stream);
cudaError_t launch_add_rms_norm(DType dtype, void* residual, const void* x, const void* w,
                                float eps, int32_t num_tokens, int32_t dim, void* out,
                                cudaStream_t stream);
// add_rms_norm whose output is written as per-row fp8 codes q [T, D] and scales fp32 [T] instead
// (launch_quantize_fp8_rows's arithmetic on the values add_rms_norm would have stored). 16-bit
// types, D % 8 == 0, 16-byte aligned residual/x/w, 8-byte aligned q, D <= 32,768; returns
// cudaErrorNotSupported otherwise, launching nothing (the caller composes add_rms_norm +
// quantize_fp8_rows).
cudaError_t launch_add_rms_norm_fp8(DType dtype, void* residual, const void* x, const void* w,
                                    float eps, int32_t num_tokens, int32_t dim, void* q,
                                    float* scales, cudaStream_t stream);

// rope_kv.cu
// Rotates the query and key heads of qkv [T, (Hq + 2Hk) * d] in place, rotate-half pairing
// (i, i + d/2), with rope_table fp32 [max_positions, d] (cos in [:, :d/2], sin in [:, d/2:]).
cudaError_t launch_rope(DType dtype, void* qkv, const float* rope_table, const int32_t* positions,
                        int32_t num_tokens, int32_t num_q_heads, int32_t num_kv_heads,
                        int32_t head_dim, cudaStream_t stream);
// Copies the key and value heads of qkv into k_cache/v_cache [blocks, block_size, Hk, d] at
// slot_mapping[t] (= block * block_size + offset).
// kv_dtype: the caches' element, `dtype` or F8_E4M3 (e4m3 codes, scale 1, saturating: what
// CpuBackend::write_kv stores for --kv-cache-dtype fp8).
cudaError_t launch_write_kv(DType dtype, DType kv_dtype, const void* qkv,
                            const int32_t* slot_mapping, int32_t num_tokens, int32_t num_q_heads,
                            int32_t num_kv_heads, int32_t head_dim, void* k_cache, void* v_cache,
                            cudaStream_t stream);

// rope then write_kv in one kernel (16-bit types, d % 16 == 0, 16-byte aligned; otherwise the two
// kernels above).
cudaError_t launch_rope_write_kv(DType dtype, DType kv_dtype, void* qkv, const float* rope_table,
                                 const int32_t* positions, const int32_t* slot_mapping,
                                 int32_t num_tokens, int32_t num_q_heads, int32_t num_kv_heads,
                                 int32_t head_dim, void* k_cache, void* v_cache,
                                 cudaStream_t stream);

// quantize.cu
// out[r, :] = q[r, :] * scales[r] in `dtype` for r < rows; q int8 [rows, k], scales fp32 [rows],
// out [rows, k].
// int4 weight-only codes (packed words [rows, k / 8], src/common/int4.h) and (scale, zero) pairs
// [rows, 2 * k / group] in `dtype` as out[rows, k] = (q - zero) * scale in `dtype` (16-byte
// aligned out).
cudaError_t launch_dequantize_int4(DType dtype, const uint32_t* words, const void* scales,
                                   int32_t rows, int32_t k, int32_t group, void* out,
                                   cudaStream_t stream);
cudaError_t launch_dequantize_rows_int8(DType dtype, const int8_t* q, const float* scales,
                                        int32_t rows, int32_t k, void* out, cudaStream_t stream);
// x [T, K] quantized per row to fp8 e4m3 (Backend::quantize_fp8_rows): scales[t] = max|x[t]| / 448,
// q[t, k] = e4m3(x[t, k] / scales[t]) (0 when the scale is 0). q [T, K] bytes, scales fp32 [T].
cudaError_t launch_quantize_fp8_rows(DType dtype, const void* x, int32_t num_rows, int32_t k,
                                     void* q, float* scales, cudaStream_t stream);
// out[m, n] = out[m, n] * pre * x_scales[m] * w_scales[n] (+ bias[n] when bias != nullptr), in
// place: the epilogue of an unscaled fp8 GEMM that wrote its products (times 1 / pre) into out [M,
// N] in `dtype`. N % 8 == 0 and a 16-byte aligned out, else cudaErrorInvalidValue.
cudaError_t launch_scale_fp8_output(DType dtype, void* out, const float* x_scales,
                                    const float* w_scales, const void* bias, float pre, int64_t m,
                                    int32_t n, cudaStream_t stream);

}  // namespace llmserve::cuda

namespace llmserve::cuda {
// sampling.cu
// out[r] = argmax_v logits[r, v] (lowest index on ties); logits fp32 [rows, vocab].
cudaError_t launch_argmax_rows(const float* logits, int32_t num_rows, int32_t vocab, int32_t* out,
                               cudaStream_t stream);
// out[r] = a token drawn from logits row r under rows[r] (see backend/row_sampling.h); the rows
// are overwritten. rows: device array [num_rows]; adjustments: device array the rows index.
cudaError_t launch_sample_rows(float* logits, int32_t num_rows, int32_t vocab,
                               const RowSampling* rows, const TokenAdjustment* adjustments,
                               int32_t* out, cudaStream_t stream);
}  // namespace llmserve::cuda
