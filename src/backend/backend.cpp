#include "backend/backend.h"

#include <algorithm>

#include "backend/cpu/cpu_backend.h"
#include "backend/null/null_backend.h"
#include "common/status.h"
#ifdef LLMSERVE_HAS_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace llmserve {

void Backend::mark_step(bool begin) {
  using Ms = std::chrono::duration<double, std::milli>;
  const auto now = std::chrono::steady_clock::now();
  if (begin) {
    if (timeline_.num_steps > 0) timeline_.idle_ms += Ms(now - step_end_).count();
    step_begin_ = now;
    return;
  }
  timeline_.busy_ms += Ms(now - step_begin_).count();
  timeline_.num_steps++;
  step_end_ = now;
}

size_t KvCacheSpec::bytes_per_block() const {
  return 2ull * static_cast<size_t>(num_layers) * static_cast<size_t>(block_size) *
         static_cast<size_t>(num_kv_heads) * static_cast<size_t>(head_dim) * dtype_size(dtype);
}

Tensor BackendMemory::allocate_tensor(std::vector<Buffer>& owner, DType dtype,
                                      std::initializer_list<int64_t> dims) {
  Tensor t(nullptr, dtype, dims);
  owner.push_back(allocate(t.nbytes()));
  t.data = owner.back().data();
  return t;
}

KvCache Backend::allocate_kv_cache(const KvCacheSpec& spec) {
  KvCache cache;
  cache.spec = spec;
  for (int32_t l = 0; l < spec.num_layers; ++l) {
    KvLayer layer;
    layer.block_size = spec.block_size;
    layer.k = allocate_tensor(cache.storage, spec.dtype,
                              {spec.num_blocks, spec.block_size, spec.num_kv_heads, spec.head_dim});
    layer.v = allocate_tensor(cache.storage, spec.dtype,
                              {spec.num_blocks, spec.block_size, spec.num_kv_heads, spec.head_dim});
    cache.layers.push_back(layer);
  }
  return cache;
}

void Backend::unsupported(std::string_view op) const {
  fail(StatusCode::kUnimplemented, "the {} backend has no {} op", name(), op);
}

BatchTensors Backend::upload_batch(const ForwardBatch&) {
  unsupported("upload_batch");
}
void Backend::embedding(const BatchTensors&, Tensor, Tensor, Tensor) {
  unsupported("embedding");
}
void Backend::layer_norm(Tensor, Tensor, Tensor, float, Tensor) {
  unsupported("layer_norm");
}
void Backend::rms_norm(Tensor, Tensor, float, Tensor) {
  unsupported("rms_norm");
}
void Backend::add(Tensor, Tensor) {
  unsupported("add");
}
void Backend::matmul(Tensor, Tensor, Tensor, Tensor) {
  unsupported("matmul");
}
void Backend::gelu_tanh(Tensor) {
  unsupported("gelu_tanh");
}
void Backend::silu_mul(Tensor, Tensor) {
  unsupported("silu_mul");
}
void Backend::rope(Tensor, const AttentionShape&, Tensor, const BatchTensors&) {
  unsupported("rope");
}
void Backend::write_kv(Tensor, const AttentionShape&, const BatchTensors&, const KvLayer&) {
  unsupported("write_kv");
}
void Backend::attention(Tensor, const AttentionShape&, const BatchTensors&, const KvLayer&,
                        Tensor) {
  unsupported("attention");
}
void Backend::gather_rows(Tensor, const BatchTensors&, Tensor) {
  unsupported("gather_rows");
}

void Backend::add_layer_norm(Tensor residual, Tensor x, Tensor w, Tensor b, float eps, Tensor out) {
  add(residual, x);
  layer_norm(residual, w, b, eps, out);
}

void Backend::matmul_gelu(Tensor x, Tensor w, Tensor bias, Tensor out) {
  matmul(x, w, bias, out);
  gelu_tanh(out);
}

void Backend::matmul_q8(Tensor /*x*/, Tensor /*w*/, Tensor /*scales*/, Tensor /*bias*/,
                        Tensor /*out*/) {
  fail(StatusCode::kUnimplemented, "--quantization int8-wo: the {} backend has no int8 matmul",
       name());
}

void Backend::matmul_int4(Tensor /*x*/, Tensor /*w*/, Tensor /*scales*/, Tensor /*bias*/,
                          Tensor /*out*/) {
  fail(StatusCode::kUnimplemented, "--quantization int4-wo: the {} backend has no int4 matmul",
       name());
}

void Backend::moe_route(Tensor /*router_logits*/, const MoeRouting& /*routing*/,
                        Tensor /*expert_ids*/, Tensor /*expert_weights*/) {
  fail(StatusCode::kUnimplemented, "the {} backend has no mixture-of-experts routing", name());
}

void Backend::moe_experts(Tensor /*x*/, Tensor /*expert_ids*/, Tensor /*expert_weights*/,
                          const MoeExperts& /*experts*/, const MoeScratch& /*scratch*/,
                          Tensor /*out*/) {
  fail(StatusCode::kUnimplemented, "the {} backend has no mixture-of-experts layers", name());
}

void Backend::add_sigmoid_gated(Tensor /*a*/, Tensor /*x*/, Tensor /*gate*/) {
  fail(StatusCode::kUnimplemented, "the {} backend has no sigmoid-gated add", name());
}

void Backend::fused_linear(Tensor /*x*/, Tensor /*w*/, Tensor /*scales*/, Tensor /*bias*/,
                           const LinearFusion& /*f*/, Tensor /*out*/) {
  fail(StatusCode::kUnimplemented, "the {} backend has no fused linear layers", name());
}

void Backend::quantize_fp8_rows(Tensor /*x*/, const Fp8Rows& /*out*/) {
  fail(StatusCode::kUnimplemented, "--quantization fp8: the {} backend has no fp8 quantization",
       name());
}

void Backend::matmul_fp8(const Fp8Rows& /*x*/, Tensor /*w*/, Tensor /*w_scales*/, Tensor /*bias*/,
                         Tensor /*out*/) {
  fail(StatusCode::kUnimplemented, "--quantization fp8: the {} backend has no fp8 matmul", name());
}

void Backend::add_rms_norm_fp8(Tensor residual, Tensor x, Tensor w, float eps, Tensor out,
                               const Fp8Rows& q) {
  add_rms_norm(residual, x, w, eps, out);
  quantize_fp8_rows(out, q);
}

void Backend::qk_rms_norm(Tensor, const AttentionShape&, Tensor, Tensor, float) {
  fail(StatusCode::kUnimplemented, "the {} backend has no qk_rms_norm (per-head q/k RMSNorm)",
       name());
}

void Backend::scale(Tensor, float) {
  fail(StatusCode::kUnimplemented, "the {} backend has no scale op", name());
}

void Backend::softcap(Tensor, float) {
  fail(StatusCode::kUnimplemented, "the {} backend has no softcap op (logit soft-capping)", name());
}

void Backend::gelu_mul(Tensor, Tensor) {
  fail(StatusCode::kUnimplemented, "the {} backend has no gelu_mul op (GeGLU)", name());
}

void Backend::silu_mul_fp8(Tensor gate_up, Tensor out, const Fp8Rows& q) {
  silu_mul(gate_up, out);
  quantize_fp8_rows(out, q);
}

void Backend::argmax_rows(Tensor logits, Tensor ids) {
  const int64_t rows = logits.dim(0), vocab = logits.dim(-1);
  std::vector<float> host(static_cast<size_t>(logits.numel()));
  download(logits, host.data());
  std::vector<int32_t> out(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = host.data() + r * vocab;
    out[static_cast<size_t>(r)] = static_cast<int32_t>(std::max_element(row, row + vocab) - row);
  }
  upload(out.data(), ids);
}

void Backend::sample_rows(Tensor, const std::vector<RowSampling>&,
                          const std::vector<TokenAdjustment>&, Tensor) {
  fail(StatusCode::kUnimplemented, "the {} backend does not sample", name());
}

void Backend::rope_write_kv(Tensor qkv, const AttentionShape& shape, Tensor rope_table,
                            const BatchTensors& batch, const KvLayer& kv) {
  rope(qkv, shape, rope_table, batch);
  write_kv(qkv, shape, batch, kv);
}

void Backend::add_rms_norm(Tensor residual, Tensor x, Tensor w, float eps, Tensor out) {
  add(residual, x);
  rms_norm(residual, w, eps, out);
}

#ifndef LLMSERVE_HAS_CUDA
bool cuda_device_available() {
  return false;
}
int32_t cuda_device_count() {
  return 0;
}
std::string cuda_device_arch(int32_t /*device*/) {
  return {};
}
#endif

bool gpu_arch_has_fp8(std::string_view arch) {
  if (!arch.starts_with("sm_")) return false;
  int cc = 0;
  size_t i = 3;
  for (; i < arch.size() && arch[i] >= '0' && arch[i] <= '9'; ++i) cc = 10 * cc + (arch[i] - '0');
  return i > 3 && cc >= 89;
}

std::unique_ptr<Backend> create_backend(DeviceKind kind, DType dtype) {
  switch (kind) {
    case DeviceKind::kCpu:
      return std::make_unique<CpuBackend>(dtype);
    case DeviceKind::kNull:
      return std::make_unique<NullBackend>(dtype);
    case DeviceKind::kCuda:
#ifdef LLMSERVE_HAS_CUDA
      return std::make_unique<CudaBackend>(dtype);
#else
      fail(StatusCode::kUnavailable,
           "--device cuda: this build has no CUDA backend (configure with nvcc available, "
           "-DLLMSERVE_CUDA=ON)");
#endif
  }
  fail(StatusCode::kInternal, "unknown device kind");
}

#ifdef LLMSERVE_HAS_CUDA
std::vector<std::unique_ptr<Backend>> create_cuda_backend_group(DType activation_dtype, int32_t tp,
                                                                int32_t pp);  // cuda/
#endif

std::vector<std::unique_ptr<Backend>> create_backend_group(DeviceKind kind, DType dtype, int32_t tp,
                                                           int32_t pp) {
  if (tp < 1) fail(StatusCode::kInvalidArgument, "--tp must be >= 1, got {}", tp);
  if (pp < 1) fail(StatusCode::kInvalidArgument, "--pp must be >= 1, got {}", pp);
  std::vector<std::unique_ptr<Backend>> ranks;
  if (tp == 1 && pp == 1) {
    ranks.push_back(create_backend(kind, dtype));
    return ranks;
  }
  switch (kind) {
    case DeviceKind::kCpu: {
      auto pipe = pp > 1 ? std::make_shared<HostPipe>() : nullptr;
      for (int32_t s = 0; s < pp; ++s) {
        auto group = tp > 1 ? std::make_shared<HostGroup>(tp) : nullptr;
        for (int32_t r = 0; r < tp; ++r)
          ranks.push_back(std::make_unique<CpuBackend>(group, r, pipe, s, pp, dtype));
      }
      return ranks;
    }
    case DeviceKind::kNull:
      for (int32_t s = 0; s < pp; ++s) {
        for (int32_t r = 0; r < tp; ++r)
          ranks.push_back(std::make_unique<NullBackend>(r, tp, s, pp, dtype));
      }
      return ranks;
    case DeviceKind::kCuda:
#ifdef LLMSERVE_HAS_CUDA
      return create_cuda_backend_group(dtype, tp, pp);
#else
      ranks.push_back(create_backend(kind, dtype));  // throws: no CUDA in this build
      return ranks;
#endif
  }
  fail(StatusCode::kInternal, "unknown device kind");
}

}  // namespace llmserve
