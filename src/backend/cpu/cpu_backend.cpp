#include "backend/cpu/cpu_backend.h"

#include <cblas.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include <omp.h>

#include "backend/cpu/cpu_internal.h"
#include "backend/host_batch.h"
#include "common/argmax.h"
#include "common/cpu_budget.h"
#include "common/half.h"
#include "common/logging.h"
#include "common/status.h"

namespace llmserve {

using cpu_detail::e4m3_values;
#ifdef LLMSERVE_CPU_X86
using cpu_detail::exp_nonpositive8;
#endif
using cpu_detail::require_f32;
using cpu_detail::require_weight;
int32_t configure_cpu_threads(int32_t requested) {
  int32_t threads = requested;
  std::string why;
  if (threads > 0) {
    why = "--cpu-threads";
  } else if (const char* env = std::getenv("OMP_NUM_THREADS"); env != nullptr && *env != 0) {
    // OpenMP read it at start-up: keep its pool, and size OpenBLAS alike.
    threads = std::max(1, omp_get_max_threads());
    why = "OMP_NUM_THREADS";
  } else {
    const CpuBudget budget = cpu_budget();
    threads = budget.threads;
    why = budget.quota ? fmt::format("{} CPUs in the affinity mask, cgroup quota {:.2f} CPUs ({})",
                                     budget.affinity_cpus, *budget.quota, budget.quota_source)
                       : fmt::format("{} CPUs in the affinity mask, no cgroup CPU quota",
                                     budget.affinity_cpus);
  }
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
  LOG_INFO("CPU compute threads: {} ({})", threads, why);
  return threads;
}

namespace {

DType checked_weight_dtype(DType dtype) {
  if (dtype != DType::kF32 && dtype != DType::kF16 && dtype != DType::kBF16) {
    fail(StatusCode::kInvalidArgument,
         "cpu backend: weights in {}; it keeps them in float32, float16 or bfloat16",
         dtype_name(dtype));
  }
  return dtype;
}

// Row r of a 2-D weight [R, dim] as fp32 (a token's embedding): copied, or widened.
void weight_row_f32(const Tensor& t, int64_t r, int64_t dim, float* dst) {
  if (t.dtype == DType::kF32) {
    const float* row = t.as<float>() + r * dim;
    std::copy(row, row + dim, dst);
    return;
  }
  const uint16_t* row = t.as<uint16_t>() + r * dim;
  if (t.dtype == DType::kBF16) {
    for (int64_t i = 0; i < dim; ++i) dst[i] = bf16_to_float(row[i]);
  } else {
    for (int64_t i = 0; i < dim; ++i) dst[i] = fp16_to_float(row[i]);
  }
}

}  // namespace

CpuBackend::CpuBackend(DType weight_dtype) : weight_dtype_(checked_weight_dtype(weight_dtype)) {}

CpuBackend::CpuBackend(std::shared_ptr<HostGroup> group, int32_t rank,
                       std::shared_ptr<HostPipe> pipe, int32_t stage, int32_t num_stages,
                       DType weight_dtype)
    : group_(std::move(group)),
      rank_(rank),
      pipe_(std::move(pipe)),
      stage_(stage),
      num_stages_(num_stages),
      weight_dtype_(checked_weight_dtype(weight_dtype)) {}

Buffer CpuBackend::allocate(size_t nbytes) {
  size_t rounded = (std::max<size_t>(nbytes, 1) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded);
  if (p == nullptr)
    fail(StatusCode::kResourceExhausted, "cpu backend: cannot allocate {} bytes", nbytes);
  return Buffer(p, nbytes, [](void* q) { std::free(q); });
}

bool CpuBackend::reads_host_memory() const {
  static const bool mapped = [] {
    const char* e = std::getenv("LLMSERVE_CPU_MAP_WEIGHTS");
    return e == nullptr || std::string_view(e) != "0";
  }();
  return mapped;
}

void CpuBackend::upload(const void* host, Tensor dst) {
  if (dst.nbytes() > 0) std::memcpy(dst.data, host, dst.nbytes());
}

void CpuBackend::all_reduce_sum(Tensor x) {
  if (!group_) return;
  require_f32(x, "all_reduce_sum x");
  group_->all_reduce_sum(rank_, x.as<float>(), x.numel());
}

void CpuBackend::send_to_next_stage(Tensor x) {
  if (!pipe_) return;
  require_f32(x, "send_to_next_stage x");
  pipe_->send(global_rank(), global_rank() + group_size(), x.as<float>(), x.numel());
}

void CpuBackend::recv_from_prev_stage(Tensor x) {
  if (!pipe_) return;
  require_f32(x, "recv_from_prev_stage x");
  pipe_->recv(global_rank(), global_rank() - group_size(), x.as<float>(), x.numel());
}

void CpuBackend::download(Tensor src, void* host) {
  if (src.nbytes() > 0) std::memcpy(host, src.data, src.nbytes());
}

size_t CpuBackend::free_memory() const {
  long pages = sysconf(_SC_AVPHYS_PAGES);
  long page_size = sysconf(_SC_PAGESIZE);
  return pages > 0 && page_size > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page_size)
                                    : 0;
}

BatchTensors CpuBackend::upload_batch(const ForwardBatch& batch) {
  batch_copy_ = batch;
  const ForwardBatch& b = batch_copy_;
  BatchTensors t = host_batch_views(b);
  seq_of_token_.assign(static_cast<size_t>(t.num_tokens), 0);
  for (int32_t s = 0; s < t.num_seqs; ++s) {
    int32_t n = b.query_start[static_cast<size_t>(s) + 1] - b.query_start[static_cast<size_t>(s)];
    t.max_query_len = std::max(t.max_query_len, n);
    t.max_context_len = std::max(t.max_context_len, b.context_lens[static_cast<size_t>(s)]);
    for (int32_t i = b.query_start[static_cast<size_t>(s)];
         i < b.query_start[static_cast<size_t>(s) + 1]; ++i) {
      seq_of_token_[static_cast<size_t>(i)] = s;
    }
  }
  return t;
}

void CpuBackend::embedding(const BatchTensors& batch, Tensor table, Tensor pos_table, Tensor out) {
  require_weight(table, "embedding table");
  if (pos_table.data != nullptr) require_weight(pos_table, "position table");
  const int64_t dim = table.dim(1);
  const int32_t* ids = batch.token_ids.as<int32_t>();
  const int32_t* pos = batch.positions.as<int32_t>();
  float* o = out.as<float>();
  std::vector<float> position(pos_table.data != nullptr ? static_cast<size_t>(dim) : 0);
  for (int32_t t = 0; t < batch.num_tokens; ++t) {
    if (ids[t] < 0 || ids[t] >= table.dim(0)) {
      fail(StatusCode::kOutOfRange, "token id {} is outside the vocabulary of {}", ids[t],
           table.dim(0));
    }
    weight_row_f32(table, ids[t], dim, o + t * dim);
    if (pos_table.data != nullptr) {
      if (pos[t] >= pos_table.dim(0)) {
        fail(StatusCode::kOutOfRange, "position {} is past the model's {} positions", pos[t],
             pos_table.dim(0));
      }
      weight_row_f32(pos_table, pos[t], dim, position.data());
      for (int64_t i = 0; i < dim; ++i) o[t * dim + i] += position[static_cast<size_t>(i)];
    }
  }
}

void CpuBackend::layer_norm(Tensor x, Tensor w, Tensor b, float eps, Tensor out) {
  const int64_t rows = x.dim(0), dim = x.dim(1);
  const float* xs = x.as<float>();
  float* os = out.as<float>();
  const float* ws = w.as<float>();
  const float* bs = b.as<float>();
#pragma omp parallel for if (rows * dim > (1 << 16))
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = xs + r * dim;
    double mean = 0, var = 0;
    for (int64_t i = 0; i < dim; ++i) mean += xr[i];
    mean /= static_cast<double>(dim);
    for (int64_t i = 0; i < dim; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    var /= static_cast<double>(dim);
    const float inv = static_cast<float>(1.0 / std::sqrt(var + eps));
    for (int64_t i = 0; i < dim; ++i) {
      os[r * dim + i] = (xr[i] - static_cast<float>(mean)) * inv * ws[i] + bs[i];
    }
  }
}

void CpuBackend::rms_norm(Tensor x, Tensor w, float eps, Tensor out) {
  const int64_t rows = x.dim(0), dim = x.dim(1);
  const float* xs = x.as<float>();
  float* os = out.as<float>();
  const float* ws = w.as<float>();
#pragma omp parallel for if (rows * dim > (1 << 16))
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = xs + r * dim;
    double ss = 0;
    for (int64_t i = 0; i < dim; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(dim) + eps));
    for (int64_t i = 0; i < dim; ++i) os[r * dim + i] = xr[i] * inv * ws[i];
  }
}

void CpuBackend::qk_rms_norm(Tensor qkv, const AttentionShape& shape, Tensor q_w, Tensor k_w,
                             float eps) {
  const int64_t tokens = qkv.dim(0), d = shape.head_dim;
  const int64_t heads = shape.num_q_heads + 2 * shape.num_kv_heads;
  const int64_t normed = shape.num_q_heads + shape.num_kv_heads;  // q heads, then k heads
  float* x = qkv.as<float>();
  const float* qw = q_w.as<float>();
  const float* kw = k_w.as<float>();
#pragma omp parallel for if (tokens * normed * d > (1 << 16))
  for (int64_t item = 0; item < tokens * normed; ++item) {
    const int64_t t = item / normed, h = item % normed;
    float* row = x + (t * heads + h) * d;
    const float* w = h < shape.num_q_heads ? qw : kw;
    double ss = 0;
    for (int64_t i = 0; i < d; ++i) ss += static_cast<double>(row[i]) * row[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(d) + eps));
    for (int64_t i = 0; i < d; ++i) row[i] = row[i] * inv * w[i];
  }
}

void CpuBackend::add(Tensor a, Tensor b) {
  float* as = a.as<float>();
  const float* bs = b.as<float>();
  const int64_t n = a.numel();
  for (int64_t i = 0; i < n; ++i) as[i] += bs[i];
}

void CpuBackend::scale(Tensor x, float s) {
  float* xs = x.as<float>();
  const int64_t n = x.numel();
  for (int64_t i = 0; i < n; ++i) xs[i] *= s;
}

void CpuBackend::softcap(Tensor x, float cap) {
  require_f32(x, "softcap x");
  float* xs = x.as<float>();
  const int64_t n = x.numel();
#pragma omp parallel for if (n > 65536)
  for (int64_t i = 0; i < n; ++i) xs[i] = cap * std::tanh(xs[i] / cap);
}

namespace {

// GPT-2's gelu_new, which is also Gemma's gelu_pytorch_tanh.
inline float gelu_tanh_of(float v) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  return 0.5f * v * (1.0f + std::tanh(kSqrt2OverPi * (v + 0.044715f * v * v * v)));
}

#ifdef LLMSERVE_CPU_X86
// gelu_tanh_of over 8 floats: tanh(|u|) = (1 - e) / (1 + e) with e = exp(-2|u|) <= 1, the sign put
// back; within ~2e-7 of std::tanh (tests/unit/backend/gelu_test.cpp), where the call to libm's
// tanhf per value was 16 % of a GPT-2 prefill (docs/performance.md).
LLMSERVE_AVX2_F16C inline __m256 gelu_tanh8(__m256 v) {
  const __m256 u = _mm256_mul_ps(
      _mm256_set1_ps(0.7978845608028654f),
      _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(0.044715f), v), _mm256_mul_ps(v, v), v));
  const __m256 sign = _mm256_and_ps(u, _mm256_set1_ps(-0.0f));
  const __m256 e =
      exp_nonpositive8(_mm256_mul_ps(_mm256_set1_ps(-2.0f), _mm256_andnot_ps(sign, u)));
  const __m256 t =
      _mm256_div_ps(_mm256_sub_ps(_mm256_set1_ps(1.0f), e), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
  const __m256 tanh_u = _mm256_or_ps(t, sign);
  return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), v),
                       _mm256_add_ps(_mm256_set1_ps(1.0f), tanh_u));
}

LLMSERVE_AVX2_F16C void gelu_tanh_avx2(float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, gelu_tanh8(_mm256_loadu_ps(x + i)));
  for (; i < n; ++i) x[i] = gelu_tanh_of(x[i]);
}
#endif

// LLMSERVE_CPU_VECTOR_GELU=0 starts with libm's tanh per value: for comparisons.
std::atomic<bool> vector_gelu_enabled{[] {
  const char* e = std::getenv("LLMSERVE_CPU_VECTOR_GELU");
  return e == nullptr || std::string_view(e) != "0";
}()};

// x[0, n) = gelu_tanh_of(x), 8 at a time where the CPU has AVX2 + FMA.
void gelu_tanh_span(float* x, int64_t n) {
#ifdef LLMSERVE_CPU_X86
  if (cpu_detail::cpu_has_avx2_f16c() && vector_gelu_enabled.load(std::memory_order_relaxed)) {
    gelu_tanh_avx2(x, n);
    return;
  }
#endif
  for (int64_t i = 0; i < n; ++i) x[i] = gelu_tanh_of(x[i]);
}

}  // namespace

bool set_cpu_vector_gelu(bool enabled) {
  return vector_gelu_enabled.exchange(enabled);
}

bool cpu_vector_gelu_available() {
#ifdef LLMSERVE_CPU_X86
  return cpu_detail::cpu_has_avx2_f16c();
#else
  return false;
#endif
}

void CpuBackend::gelu_tanh(Tensor x) {
  float* xs = x.as<float>();
  const int64_t n = x.numel();
  constexpr int64_t kChunk = 16384;  // a thread's unit of work, in values
#pragma omp parallel for if (n > 65536)
  for (int64_t c = 0; c < n; c += kChunk) gelu_tanh_span(xs + c, std::min(kChunk, n - c));
}

namespace {

// out[r, i] = act(gate_up[r, i]) * gate_up[r, F + i]: the gated MLPs' activation (SwiGLU, GeGLU).
template <typename Act>
void gated_mul(Tensor gate_up, Tensor out, const Act& act) {
  const int64_t rows = gate_up.dim(0), f = gate_up.dim(1) / 2;
  const float* g = gate_up.as<float>();
  float* o = out.as<float>();
#pragma omp parallel for if (rows * f > (1 << 16))
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < f; ++i) o[r * f + i] = act(g[r * 2 * f + i]) * g[r * 2 * f + f + i];
  }
}

}  // namespace

void CpuBackend::silu_mul(Tensor gate_up, Tensor out) {
  gated_mul(gate_up, out, [](float a) { return a / (1.0f + std::exp(-a)); });
}

void CpuBackend::gelu_mul(Tensor gate_up, Tensor out) {
  const int64_t rows = gate_up.dim(0), f = gate_up.dim(1) / 2;
  const float* g = gate_up.as<float>();
  float* o = out.as<float>();
#pragma omp parallel for if (rows * f > (1 << 16))
  for (int64_t r = 0; r < rows; ++r) {
    float* row = o + r * f;
    const float* gate = g + r * 2 * f;
    std::copy(gate, gate + f, row);
    gelu_tanh_span(row, f);
    for (int64_t i = 0; i < f; ++i) row[i] *= gate[f + i];
  }
}

void CpuBackend::argmax_rows(Tensor logits, Tensor ids) {
  const int64_t rows = logits.dim(0), vocab = logits.dim(-1);
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = logits.as<float>() + r * vocab;
    ids.as<int32_t>()[r] = static_cast<int32_t>(argmax_first(row, vocab));
  }
}

namespace {

template <typename T>
void transpose_as(const void* src, void* dst, int64_t rows, int64_t cols) {
  const T* s = static_cast<const T*>(src);
  T* d = static_cast<T*>(dst);
  constexpr int64_t kTile = 64;  // both sides stay in cache
  for (int64_t r0 = 0; r0 < rows; r0 += kTile) {
    for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
      const int64_t r1 = std::min(rows, r0 + kTile), c1 = std::min(cols, c0 + kTile);
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t c = c0; c < c1; ++c) d[c * rows + r] = s[r * cols + c];
      }
    }
  }
}

}  // namespace

void CpuBackend::transpose(Tensor src, Tensor dst) {
  // Weight loading (GPT-2's Conv1D): fp32 or 16-bit weights, moved as bits.
  const int64_t rows = src.dim(0), cols = src.dim(-1);
  if (src.dtype != dst.dtype || dst.numel() != rows * cols) {
    fail(StatusCode::kInternal, "transpose: {} {} into {} {}", dtype_name(src.dtype),
         src.shape_string(), dtype_name(dst.dtype), dst.shape_string());
  }
  switch (dtype_size(src.dtype)) {
    case 4:
      return transpose_as<uint32_t>(src.data, dst.data, rows, cols);
    case 2:
      return transpose_as<uint16_t>(src.data, dst.data, rows, cols);
    default:
      fail(StatusCode::kInternal, "cpu backend: transpose of {}", dtype_name(src.dtype));
  }
}

void CpuBackend::gather_rows(Tensor x, const BatchTensors& batch, Tensor out) {
  const int64_t dim = x.dim(-1);
  const int32_t* idx = batch.logits_indices.as<int32_t>();
  for (int32_t i = 0; i < batch.num_logits; ++i) {
    const float* src = x.as<float>() + static_cast<int64_t>(idx[i]) * dim;
    std::copy(src, src + dim, out.as<float>() + static_cast<int64_t>(i) * dim);
  }
}

}  // namespace llmserve
