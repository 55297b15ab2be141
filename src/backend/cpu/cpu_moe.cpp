// The CPU backend's mixture-of-experts ops (backend.h: moe_route, moe_experts, add_sigmoid_gated),
// the reference the CUDA kernels (src/backend/cuda/moe.cu) are tested against.
//
// moe_experts groups the routed (token, slot) pairs by expert, then runs each expert once over
// its tokens only: gather their rows of x, one [n_e, 2F] gate/up matmul and one [n_e, D] down
// matmul through the backend's own matmuls (so 16-bit, int8-wo and int4-wo expert weights take
// the same kernels as dense layers), and adds each row times its routing weight into its token's
// output. Experts nobody chose cost nothing. Sums are fp32; the order of the adds into a token's
// row is by expert index, fixed whatever the batch.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_internal.h"

namespace llmserve {

using cpu_detail::require_f32;

void CpuBackend::moe_route(Tensor router_logits, const MoeRouting& routing, Tensor expert_ids,
                           Tensor expert_weights) {
  require_f32(router_logits, "moe_route logits");
  require_f32(expert_weights, "moe_route weights");
  const int64_t num_tokens = router_logits.dim(0), cols = router_logits.dim(-1);
  const int32_t e = routing.num_experts, k = routing.top_k;
  if (e < 1 || k < 1 || k > e || cols < e || expert_ids.dtype != DType::kI32 ||
      expert_ids.numel() != num_tokens * k || expert_weights.numel() != num_tokens * k) {
    fail(StatusCode::kInternal, "moe_route shapes: logits {} ids {} weights {}, top {} of {}",
         router_logits.shape_string(), expert_ids.shape_string(), expert_weights.shape_string(), k,
         e);
  }
  const float* logits = router_logits.as<float>();
  auto* ids = expert_ids.as<int32_t>();
  auto* weights = expert_weights.as<float>();
  std::vector<float> probs(static_cast<size_t>(e));
  std::vector<char> taken(static_cast<size_t>(e));
  for (int64_t t = 0; t < num_tokens; ++t) {
    const float* row = logits + t * cols;
    const float top = *std::max_element(row, row + e);
    float sum = 0;
    for (int32_t i = 0; i < e; ++i) sum += probs[static_cast<size_t>(i)] = std::exp(row[i] - top);
    std::fill(taken.begin(), taken.end(), 0);
    float chosen_sum = 0;
    for (int32_t j = 0; j < k; ++j) {
      int32_t best = -1;
      for (int32_t i = 0; i < e; ++i) {
        if (taken[static_cast<size_t>(i)] == 0 &&
            (best < 0 || probs[static_cast<size_t>(i)] > probs[static_cast<size_t>(best)])) {
          best = i;
        }
      }
      taken[static_cast<size_t>(best)] = 1;
      ids[t * k + j] = best;
      weights[t * k + j] = probs[static_cast<size_t>(best)] / sum;
      chosen_sum += weights[t * k + j];
    }
    if (routing.renormalize) {
      for (int32_t j = 0; j < k; ++j) weights[t * k + j] /= chosen_sum;
    }
  }
}

void CpuBackend::moe_experts(Tensor x, Tensor expert_ids, Tensor expert_weights,
                             const MoeExperts& experts, const MoeScratch& /*scratch*/, Tensor out) {
  require_f32(x, "moe_experts input");
  require_f32(out, "moe_experts output");
  const int64_t num_tokens = x.dim(0), d = x.dim(-1), e = experts.num_experts;
  const int64_t k = num_tokens > 0 ? expert_ids.numel() / num_tokens : 0;
  const int64_t two_f = e > 0 ? experts.gate_up.dim(0) / e : 0, f = two_f / 2;
  if (e < 1 || experts.gate_up.dim(0) != e * two_f || two_f % 2 != 0 ||
      experts.down.dim(0) != e * d || out.numel() != num_tokens * d ||
      expert_weights.numel() != num_tokens * k) {
    fail(StatusCode::kInternal, "moe_experts shapes: x {} gate_up {} down {} ids {} out {}",
         x.shape_string(), experts.gate_up.shape_string(), experts.down.shape_string(),
         expert_ids.shape_string(), out.shape_string());
  }
  const auto* ids = expert_ids.as<int32_t>();
  const auto* weights = expert_weights.as<float>();
  // The routed pairs t * k + j of each expert, in token order.
  std::vector<std::vector<int64_t>> routed(static_cast<size_t>(e));
  for (int64_t p = 0; p < num_tokens * k; ++p) {
    if (ids[p] < 0 || ids[p] >= e) {
      fail(StatusCode::kInternal, "moe_experts: expert id {} of {}", ids[p], e);
    }
    routed[static_cast<size_t>(ids[p])].push_back(p);
  }
  // One expert's linear layer, rows [first, first + rows) of a stacked weight, as the dense
  // layers run it.
  const auto expert_linear = [&](Tensor in, Tensor w, Tensor scales, int64_t first, int64_t rows,
                                 Tensor result) {
    const Tensor we = w.rows(first, rows);
    switch (w.dtype) {
      case DType::kI8:
        matmul_q8(in, we, scales.rows(first, rows), Tensor(), result);
        break;
      case DType::kI32:
        matmul_int4(in, we, scales.rows(first, rows), Tensor(), result);
        break;
      default:
        matmul(in, we, Tensor(), result);
        break;
    }
  };
  float* o = out.as<float>();
  std::fill(o, o + num_tokens * d, 0.0f);
  std::vector<float> xs, up, act, down;
  for (int64_t ex = 0; ex < e; ++ex) {
    const std::vector<int64_t>& pairs = routed[static_cast<size_t>(ex)];
    const auto n = static_cast<int64_t>(pairs.size());
    if (n == 0) continue;
    xs.resize(static_cast<size_t>(n * d));
    up.resize(static_cast<size_t>(n * two_f));
    act.resize(static_cast<size_t>(n * f));
    down.resize(static_cast<size_t>(n * d));
    for (int64_t r = 0; r < n; ++r) {
      const float* row = x.as<float>() + (pairs[static_cast<size_t>(r)] / k) * d;
      std::copy(row, row + d, xs.begin() + r * d);
    }
    const Tensor xs_t(xs.data(), DType::kF32, {n, d});
    const Tensor up_t(up.data(), DType::kF32, {n, two_f});
    const Tensor act_t(act.data(), DType::kF32, {n, f});
    const Tensor down_t(down.data(), DType::kF32, {n, d});
    expert_linear(xs_t, experts.gate_up, experts.gate_up_scales, ex * two_f, two_f, up_t);
    silu_mul(up_t, act_t);
    expert_linear(act_t, experts.down, experts.down_scales, ex * d, d, down_t);
    for (int64_t r = 0; r < n; ++r) {
      const int64_t p = pairs[static_cast<size_t>(r)];
      const float w = weights[p];
      float* dst = o + (p / k) * d;
      const float* src = down.data() + r * d;
      for (int64_t c = 0; c < d; ++c) dst[c] += w * src[c];
    }
  }
}

void CpuBackend::add_sigmoid_gated(Tensor a, Tensor x, Tensor gate) {
  require_f32(a, "add_sigmoid_gated a");
  require_f32(x, "add_sigmoid_gated x");
  require_f32(gate, "add_sigmoid_gated gate");
  const int64_t num_tokens = a.dim(0), d = a.dim(-1), cols = gate.dim(-1);
  if (x.numel() != a.numel() || gate.dim(0) != num_tokens) {
    fail(StatusCode::kInternal, "add_sigmoid_gated shapes: a {} x {} gate {}", a.shape_string(),
         x.shape_string(), gate.shape_string());
  }
  float* dst = a.as<float>();
  const float* src = x.as<float>();
  const float* g = gate.as<float>();
  for (int64_t t = 0; t < num_tokens; ++t) {
    const float s = 1.0f / (1.0f + std::exp(-g[t * cols + cols - 1]));
    for (int64_t c = 0; c < d; ++c) dst[t * d + c] += s * src[t * d + c];
  }
}

}  // namespace llmserve
