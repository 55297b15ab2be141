// CudaBackend's mixture-of-experts ops: argument checks and the launches of moe.cu's kernels
// (routing; the decode GEMV or the prefill sort + grouped GEMM; the weighted combine). Expert
// weights in the activation dtype, int8-wo codes with per-row scales or int4-wo packed codes with
// per-group (scale, zero) pairs, as the dense layers' quantized weights are held.
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/moe.h"
#include "common/status.h"

namespace llmserve {

using cuda_internal::check;

void CudaBackend::moe_route(Tensor router_logits, const MoeRouting& routing, Tensor expert_ids,
                            Tensor expert_weights) {
  const OpTimer timer(profile_.get(), stream_, "moe_route");
  if (routing.num_experts > cuda::kMoeMaxExperts) {
    fail(StatusCode::kUnimplemented, "cuda backend: {} experts (moe_route takes up to {})",
         routing.num_experts, cuda::kMoeMaxExperts);
  }
  if (router_logits.dtype != DType::kF32) {
    fail(StatusCode::kInternal, "cuda backend: moe_route of {} logits (F32 only)",
         dtype_name(router_logits.dtype));
  }
  check(cuda::launch_moe_route(
            router_logits.as<float>(), static_cast<int32_t>(router_logits.dim(0)),
            static_cast<int32_t>(router_logits.dim(-1)), routing.num_experts, routing.top_k,
            routing.renormalize, expert_ids.as<int32_t>(), expert_weights.as<float>(), stream_),
        "moe_route");
}

void CudaBackend::moe_experts(Tensor x, Tensor expert_ids, Tensor expert_weights,
                              const MoeExperts& experts, const MoeScratch& scratch, Tensor out) {
  const OpTimer timer(profile_.get(), stream_, "moe_experts");
  // The weights' form: the activation dtype, int8-wo (I8 + F32 scales a row) or int4-wo (I32
  // packed words + (scale, zero) pairs in the activation dtype, [rows, 2K / group]).
  cuda::MoeWeights form = cuda::MoeWeights::k16Bit;
  if (experts.gate_up.dtype == DType::kI8 && experts.down.dtype == DType::kI8 &&
      experts.gate_up_scales.dtype == DType::kF32 && experts.down_scales.dtype == DType::kF32) {
    form = cuda::MoeWeights::kInt8;
  } else if (experts.gate_up.dtype == DType::kI32 && experts.down.dtype == DType::kI32 &&
             experts.gate_up_scales.dtype == dtype_ && experts.down_scales.dtype == dtype_ &&
             experts.gate_up_scales.ndim == 2 && experts.down_scales.ndim == 2) {
    form = cuda::MoeWeights::kInt4;
  } else if (experts.gate_up.dtype != dtype_ || experts.down.dtype != dtype_) {
    fail(StatusCode::kUnimplemented,
         "cuda backend: mixture-of-experts weights in {}: the grouped expert GEMM reads {}, "
         "int8-wo or int4-wo weights",
         dtype_name(experts.gate_up.dtype), dtype_name(dtype_));
  }
  const int64_t num_tokens = x.dim(0), e = experts.num_experts;
  const int64_t k = num_tokens > 0 ? expert_ids.numel() / num_tokens : 0;
  const int64_t f = experts.gate_up.dim(0) / (2 * e), d = x.dim(-1);
  if (scratch.index.numel() < 2 * num_tokens * k + 2 * (e + 1) ||
      scratch.up.numel() < num_tokens * k * 2 * f || scratch.down.numel() < num_tokens * k * d) {
    fail(StatusCode::kInternal, "moe_experts: scratch for {} routed rows is too small",
         num_tokens * k);
  }
  cuda::MoeExpertsParams p;
  p.dtype = dtype_;
  p.x = x.data;
  p.expert_ids = expert_ids.as<int32_t>();
  p.expert_weights = expert_weights.as<float>();
  p.gate_up = experts.gate_up.data;
  p.down = experts.down.data;
  p.weights = form;
  if (form != cuda::MoeWeights::k16Bit) {
    p.gate_up_scales = experts.gate_up_scales.data;
    p.down_scales = experts.down_scales.data;
  }
  if (form == cuda::MoeWeights::kInt4) {
    // Each pair covers `group` columns: K / (pairs / 2).
    p.gate_up_group = static_cast<int32_t>(d / (experts.gate_up_scales.dim(1) / 2));
    p.down_group = static_cast<int32_t>(f / (experts.down_scales.dim(1) / 2));
  }
  p.num_tokens = static_cast<int32_t>(num_tokens);
  p.top_k = static_cast<int32_t>(k);
  p.num_experts = static_cast<int32_t>(e);
  p.hidden = static_cast<int32_t>(d);
  p.ffn = static_cast<int32_t>(f);
  p.index = scratch.index.as<int32_t>();
  p.up = scratch.up.data;
  p.act = scratch.act.data;
  p.rows_out = scratch.down.data;
  p.out = out.data;
  const cudaError_t launched = cuda::launch_moe_experts(p, stream_);
  if (launched == cudaErrorNotSupported) {
    fail(StatusCode::kUnimplemented,
         "cuda backend: moe_experts takes hidden and expert intermediate sizes that are multiples "
         "of 8, of 32 under int4-wo (got {} and {} on this rank), and 16-bit activations",
         d, f);
  }
  check(launched, "moe_experts");
}

void CudaBackend::add_sigmoid_gated(Tensor a, Tensor x, Tensor gate) {
  const OpTimer timer(profile_.get(), stream_, "add_sigmoid_gated");
  if (gate.dtype != DType::kF32) {
    fail(StatusCode::kInternal, "cuda backend: add_sigmoid_gated of a {} gate (F32 only)",
         dtype_name(gate.dtype));
  }
  check(cuda::launch_add_sigmoid_gated(
            dtype_, a.data, x.data, gate.as<float>(), static_cast<int32_t>(a.dim(0)),
            static_cast<int32_t>(a.dim(-1)), static_cast<int32_t>(gate.dim(-1)), stream_),
        "add_sigmoid_gated");
}

}  // namespace llmserve
