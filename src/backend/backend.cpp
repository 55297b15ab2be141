#include "backend/backend.h"

#include "backend/cpu/cpu_backend.h"
#include "common/status.h"

namespace llmserve {

size_t KvCacheSpec::bytes_per_block() const {
  return 2ull * static_cast<size_t>(num_layers) * static_cast<size_t>(block_size) *
         static_cast<size_t>(num_kv_heads) * static_cast<size_t>(head_dim) * dtype_size(dtype);
}

Tensor Backend::allocate_tensor(std::vector<Buffer>& owner, DType dtype,
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

void Backend::add_layer_norm(Tensor residual, Tensor x, Tensor w, Tensor b, float eps, Tensor out) {
  add(residual, x);
  layer_norm(residual, w, b, eps, out);
}

void Backend::add_rms_norm(Tensor residual, Tensor x, Tensor w, float eps, Tensor out) {
  add(residual, x);
  rms_norm(residual, w, eps, out);
}

std::unique_ptr<Backend> create_backend(DeviceKind kind) {
  switch (kind) {
    case DeviceKind::kCpu: return std::make_unique<CpuBackend>();
    case DeviceKind::kCuda:
      fail(StatusCode::kUnavailable, "--device cuda: this build has no CUDA backend yet");
  }
  fail(StatusCode::kInternal, "unknown device kind");
}

}  // namespace llmserve
