// Launchers of the mixture-of-experts kernels (moe.cu): Backend::moe_route, moe_experts and
// add_sigmoid_gated on the GPU. Like kernels.h's, each enqueues on `stream`, never synchronises or
// allocates (so graphs record them) and returns the launch error; cudaErrorNotSupported for a
// shape or dtype they do not take, launching nothing.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "common/dtype.h"

namespace llmserve::cuda {

// The most experts moe_route takes (8 router logits a lane of one warp).
inline constexpr int32_t kMoeMaxExperts = 256;
// Routed rows (tokens x top_k) up to which moe_experts takes the decode path (one GEMV block
// row a routed row, no sort); above it the prefill path (sort by expert, grouped tensor-core GEMM).
inline constexpr int32_t kMoeGemvMaxRows = 64;

// Backend::moe_route. logits fp32 [T, cols] (the first num_experts columns are the router's); ids
// int32 [T, k], weights fp32 [T, k]. num_experts <= kMoeMaxExperts, top_k <= 32.
cudaError_t launch_moe_route(const float* logits, int32_t num_tokens, int32_t cols,
                             int32_t num_experts, int32_t top_k, bool renormalize, int32_t* ids,
                             float* weights, cudaStream_t stream);

// The expert weights' form: the activation dtype; int8-wo codes with one fp32 scale a row; int4-wo
// packed words [rows, K / 8] (src/common/int4.h) with (scale, zero) pairs in the activation dtype
// [rows, 2K / group].
enum class MoeWeights { k16Bit, kInt8, kInt4 };

// Backend::moe_experts. P = T * k routed rows. hidden (D) and ffn (F, this rank's) multiples of 8
// (int4-wo: of 32, with groups of a multiple of 8 columns), 16-byte aligned tensors.
struct MoeExpertsParams {
  DType dtype = DType::kBF16;
  MoeWeights weights = MoeWeights::k16Bit;
  const void* x = nullptr;                    // [T, D]
  const int32_t* expert_ids = nullptr;        // [T, k]
  const float* expert_weights = nullptr;      // [T, k]
  const void* gate_up = nullptr;              // [E * 2F, D]
  const void* down = nullptr;                 // [E * D, F]
  const void* gate_up_scales = nullptr;       // int8-wo: fp32 [E * 2F]; int4-wo: pairs; else null
  const void* down_scales = nullptr;          // int8-wo: fp32 [E * D]; int4-wo: pairs; else null
  int32_t gate_up_group = 0, down_group = 0;  // int4-wo: the columns a (scale, zero) pair covers
  int32_t num_tokens = 0, top_k = 0, num_experts = 0, hidden = 0, ffn = 0;
  int32_t* index = nullptr;  // [2P + 2(E + 1)] (layout in moe.cu)
  void* up = nullptr;        // [P, 2F]
  void* act = nullptr;       // [P, F]
  void* rows_out = nullptr;  // [P, D]: each routed row's expert output
  void* out = nullptr;       // [T, D]
};
cudaError_t launch_moe_experts(const MoeExpertsParams& p, cudaStream_t stream);

// Backend::add_sigmoid_gated: a[t, :] += sigmoid(gate[t, cols - 1]) * x[t, :]; a, x [T, D], gate
// fp32 [T, cols]; a and x in `dtype`.
cudaError_t launch_add_sigmoid_gated(DType dtype, void* a, const void* x, const float* gate,
                                     int32_t num_tokens, int32_t dim, int32_t cols,
                                     cudaStream_t stream);

}  // namespace llmserve::cuda
