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
#include "common/cpu_budget.h"
#include "common/half.h"
#include "common/logging.h"
#include "common/status.h"

namespace llmserve {

using cpu_detail::e4m3_values;
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

// Whether the layer's cache holds fp8 e4m3 codes (--kv-cache-dtype fp8); otherwise fp32.
bool kv_is_fp8(const KvLayer& kv) {
  if (kv.k.dtype == DType::kF8E4M3) return true;
  if (kv.k.dtype != DType::kF32) {
    fail(StatusCode::kInternal, "cpu backend: KV cache of {} (fp32 or F8_E4M3 only)",
         dtype_name(kv.k.dtype));
  }
  return false;
}

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
// exp(x) of 8 floats for x <= 0 (Cephes' expf: x = n ln 2 + r, a degree-6 polynomial in r, times
// 2^n; within 2 ulp where the result is normal, flushed to 0 below -87).
LLMSERVE_AVX2_F16C inline __m256 exp_nonpositive8(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

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

// exp_shifted_sum's vector part: row[i] = exp(row[i] - max) for the whole vectors of n, their sum;
// `i` is left at the first value not done.
LLMSERVE_AVX2_F16C float exp_shifted_sum_avx2(float* row, int64_t n, float max, int64_t& i) {
  __m256 acc = _mm256_setzero_ps();
  const __m256 m = _mm256_set1_ps(max);
  for (i = 0; i + 8 <= n; i += 8) {
    const __m256 e = exp_nonpositive8(_mm256_sub_ps(_mm256_loadu_ps(row + i), m));
    _mm256_storeu_ps(row + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc);
  return ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) +
         ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7]));
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

void CpuBackend::rope(Tensor qkv, const AttentionShape& shape, Tensor rope_table,
                      const BatchTensors& batch) {
  const int32_t d = shape.head_dim, half = d / 2;
  const int32_t heads = shape.num_q_heads + 2 * shape.num_kv_heads;
  const int32_t rotated = shape.num_q_heads + shape.num_kv_heads;
  const int32_t* pos = batch.rope_positions.as<int32_t>();
  float* x = qkv.as<float>();
  const float* table = rope_table.as<float>();
  for (int32_t t = 0; t < batch.num_tokens; ++t) {
    if (pos[t] >= rope_table.dim(0)) {
      fail(StatusCode::kOutOfRange, "position {} is past the rope table of {}", pos[t],
           rope_table.dim(0));
    }
    const float* cos = table + static_cast<int64_t>(pos[t]) * d;
    const float* sin = cos + half;
    for (int32_t h = 0; h < rotated; ++h) {
      float* v = x + (static_cast<int64_t>(t) * heads + h) * d;
      for (int32_t i = 0; i < half; ++i) {
        float a = v[i], b = v[i + half];
        v[i] = a * cos[i] - b * sin[i];
        v[i + half] = b * cos[i] + a * sin[i];
      }
    }
  }
}

void CpuBackend::write_kv(Tensor qkv, const AttentionShape& shape, const BatchTensors& batch,
                          const KvLayer& kv) {
  const int32_t d = shape.head_dim, hk = shape.num_kv_heads;
  const int32_t heads = shape.num_q_heads + 2 * hk;
  const int32_t* slots = batch.slot_mapping.as<int32_t>();
  const float* x = qkv.as<float>();
  const int64_t row = static_cast<int64_t>(hk) * d;
  const bool fp8 = kv_is_fp8(kv);
  for (int32_t t = 0; t < batch.num_tokens; ++t) {
    const float* k = x + (static_cast<int64_t>(t) * heads + shape.num_q_heads) * d;
    const int64_t at = slots[t] * row;
    if (fp8) {  // --kv-cache-dtype fp8: e4m3 codes, scale 1, saturating
      uint8_t* kc = kv.k.as<uint8_t>() + at;
      uint8_t* vc = kv.v.as<uint8_t>() + at;
      for (int64_t i = 0; i < row; ++i) {
        kc[i] = float_to_e4m3(k[i]);
        vc[i] = float_to_e4m3(k[row + i]);
      }
    } else {
      std::copy(k, k + row, kv.k.as<float>() + at);
      std::copy(k + row, k + 2 * row, kv.v.as<float>() + at);
    }
  }
}

namespace {

// One query head over the cached positions [begin, end): out = softmax(score_j) · v_j with
// score_j = scale * q·k_j, or with kSoftcap cap * tanh(scale * q·k_j / cap). `key(j)` / `value(j)`
// give position j's fp32 row of this head. `scores` holds at least end - begin floats.
template <bool kSoftcap, typename Row>
LLMSERVE_CPU_CLONES void attend_head(const float* q, int32_t d, int32_t begin, int32_t end,
                                     float scale, float cap, const Row& key, const Row& value,
                                     float* scores, float* out) {
  const int32_t len = end - begin;
  float max_score = -INFINITY;
  for (int32_t j = 0; j < len; ++j) {
    const float* k = key(begin + j);
    // Eight partial sums (one vector register on AVX2), added pairwise at the end: the same
    // order in every clone, so the result does not depend on the CPU.
    float acc[8] = {};
    int32_t i = 0;
    for (; i + 8 <= d; i += 8) {
      for (int32_t l = 0; l < 8; ++l) acc[l] += q[i + l] * k[i + l];
    }
    for (; i < d; ++i) acc[i % 8] += q[i] * k[i];
    const float dot =
        ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    scores[j] = dot * scale;
    if constexpr (kSoftcap) scores[j] = cap * std::tanh(scores[j] / cap);
    max_score = std::max(max_score, scores[j]);
  }
  double sum = 0;
  for (int32_t j = 0; j < len; ++j) {
    scores[j] = std::exp(scores[j] - max_score);
    sum += scores[j];
  }
  std::fill(out, out + d, 0.0f);
  const float inv = static_cast<float>(1.0 / sum);
  for (int32_t j = 0; j < len; ++j) {
    const float* v = value(begin + j);
    const float p = scores[j] * inv;
    for (int32_t i = 0; i < d; ++i) out[i] += p * v[i];
  }
}

// row[0, n) = exp(row - max), returning their sum: AVX2 with exp_nonpositive8 where the CPU has it.
float exp_shifted_sum(float* row, int64_t n, float max) {
  float sum = 0;
  int64_t i = 0;
#ifdef LLMSERVE_CPU_X86
  if (cpu_detail::cpu_has_avx2_f16c()) sum = exp_shifted_sum_avx2(row, n, max, i);
#endif
  for (; i < n; ++i) {
    row[i] = std::exp(row[i] - max);
    sum += row[i];
  }
  return sum;
}

// LLMSERVE_CPU_TILED_ATTENTION=0 starts with every row on the per-row path: for comparisons.
std::atomic<bool> tiled_attention_enabled{[] {
  const char* e = std::getenv("LLMSERVE_CPU_TILED_ATTENTION");
  return e == nullptr || std::string_view(e) != "0";
}()};

// Query rows of one sequence's prefill chunk are this many or more: attention as two GEMMs.
constexpr int32_t kTiledMinRows = 16;
constexpr int32_t kTiledRows = 128;  // query rows a thread's score tile holds

// The causal attention of sequence `s`'s n >= kTiledMinRows query rows (tokens t0.., positions
// p0.., consecutive), per KV head: its keys and values gathered from the paged cache into
// contiguous [L, d] rows (L = the context), then per query head and tile of rows S = scale Q K^T
// by sgemm, each row's softmax over the positions it sees (its window, causal), O = P V by sgemm
// straight into the output rows. fp32 caches, no soft-cap (the per-row path handles those).
void attend_tiled(const float* x, float* o, const int32_t* table, int32_t bs, int32_t t0, int32_t n,
                  int32_t p0, const AttentionShape& shape, const KvLayer& kv) {
  const int32_t d = shape.head_dim, hq = shape.num_q_heads, hk = shape.num_kv_heads;
  const int32_t group = hq / hk, heads = hq + 2 * hk, len = p0 + n;
  const int64_t kv_row = static_cast<int64_t>(hk) * d;
#pragma omp parallel
  {
    std::vector<float> keys(static_cast<size_t>(len) * d), values(keys.size());
    std::vector<float> scores(static_cast<size_t>(kTiledRows) * len);
    int32_t gathered = -1;
#pragma omp for schedule(dynamic)
    for (int32_t h = 0; h < hq; ++h) {
      const int32_t kvh = h / group;
      if (gathered != kvh) {
        // Below the first row's window nothing is visible, and the blocks may be back in the pool
        // (engine/sequence.h): zeros, which the masked (zero) probabilities then multiply.
        const int32_t first = shape.window > 0 ? std::max(0, p0 + 1 - shape.window) : 0;
        std::fill_n(keys.data(), static_cast<int64_t>(first) * d, 0.0f);
        std::fill_n(values.data(), static_cast<int64_t>(first) * d, 0.0f);
        for (int32_t j = first; j < len; ++j) {
          const int64_t slot = static_cast<int64_t>(table[j / bs]) * bs + j % bs;
          const int64_t at = slot * kv_row + static_cast<int64_t>(kvh) * d;
          std::copy_n(kv.k.as<const float>() + at, d, keys.data() + static_cast<int64_t>(j) * d);
          std::copy_n(kv.v.as<const float>() + at, d, values.data() + static_cast<int64_t>(j) * d);
        }
        gathered = kvh;
      }
      for (int32_t r0 = 0; r0 < n; r0 += kTiledRows) {
        const int32_t rows = std::min(kTiledRows, n - r0);
        const int32_t cols = p0 + r0 + rows;  // the tile's last row sees positions < cols
        const float* q = x + (static_cast<int64_t>(t0 + r0) * heads + h) * d;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, d, shape.scale, q,
                    heads * d, keys.data(), d, 0.0f, scores.data(), cols);
        for (int32_t i = 0; i < rows; ++i) {
          float* row = scores.data() + static_cast<int64_t>(i) * cols;
          const int32_t end = p0 + r0 + i + 1;
          const int32_t begin = shape.window > 0 ? std::max(0, end - shape.window) : 0;
          const float max = *std::max_element(row + begin, row + end);
          const float sum = exp_shifted_sum(row + begin, end - begin, max);
          const float inv = 1.0f / sum;
          std::fill(row, row + begin, 0.0f);
          for (int32_t j = begin; j < end; ++j) row[j] *= inv;
          std::fill(row + end, row + cols, 0.0f);
        }
        float* out = o + (static_cast<int64_t>(t0 + r0) * hq + h) * d;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, d, cols, 1.0f, scores.data(),
                    cols, values.data(), d, 0.0f, out, hq * d);
      }
    }
  }
}

}  // namespace

void CpuBackend::attention(Tensor qkv, const AttentionShape& shape, const BatchTensors& batch,
                           const KvLayer& kv, Tensor out) {
  const int32_t d = shape.head_dim, hq = shape.num_q_heads, hk = shape.num_kv_heads;
  const int32_t group = hq / hk, heads = hq + 2 * hk, bs = kv.block_size;
  const int32_t* pos = batch.positions.as<int32_t>();
  const int32_t* tables = batch.block_tables.as<int32_t>();
  const float* x = qkv.as<float>();
  const bool fp8 = kv_is_fp8(kv);
  float* o = out.as<float>();
  const int64_t kv_row = static_cast<int64_t>(hk) * d;
  const int64_t work = static_cast<int64_t>(batch.num_tokens) * hq;
  // Threads only pay off above ~100k multiply-adds; below that the fork/join costs more, and on a
  // loaded machine a barrier can wait a whole scheduler time slice.
  const int64_t seen =
      shape.window > 0 ? std::min(batch.max_context_len, shape.window) : batch.max_context_len;
  const bool is_big = work * seen * d > (1 << 17);
  // Prefill chunks of kTiledMinRows or more query rows: two GEMMs a head (attend_tiled); the rest
  // (decodes, short chunks, fp8 caches, soft-caps) one query row at a time below.
  std::vector<char> done(static_cast<size_t>(batch.num_tokens), 0);
  if (!fp8 && shape.softcap == 0 && tiled_attention_enabled.load(std::memory_order_relaxed)) {
    const int32_t* starts = batch.query_start.as<int32_t>();
    const int32_t* lens = batch.context_lens.as<int32_t>();
    for (int32_t s = 0; s < batch.num_seqs; ++s) {
      const int32_t t0 = starts[s], n = starts[s + 1] - t0;
      if (n < kTiledMinRows || pos[t0] + n != lens[s] || pos[t0 + n - 1] != lens[s] - 1) continue;
      attend_tiled(x, o, tables + static_cast<int64_t>(s) * batch.max_blocks_per_seq, bs, t0, n,
                   pos[t0], shape, kv);
      std::fill_n(done.begin() + t0, n, 1);
    }
  }
#pragma omp parallel if (is_big)
  {
    std::vector<float> scores(static_cast<size_t>(batch.max_context_len));
    std::vector<float> decoded(static_cast<size_t>(d));
#pragma omp for
    for (int64_t item = 0; item < work; ++item) {
      const int32_t t = static_cast<int32_t>(item / hq), h = static_cast<int32_t>(item % hq);
      if (done[static_cast<size_t>(t)] != 0) continue;
      const int32_t s = seq_of_token_[static_cast<size_t>(t)], kvh = h / group;
      const int32_t* table = tables + static_cast<int64_t>(s) * batch.max_blocks_per_seq;
      const float* q = x + (static_cast<int64_t>(t) * heads + h) * d;
      // Causal: the token sees positions 0..pos, or within a window the last `window` of them.
      const int32_t end = pos[t] + 1;
      const int32_t begin = shape.window > 0 ? std::max(0, end - shape.window) : 0;
      float* out_row = o + (static_cast<int64_t>(t) * hq + h) * d;
      // Position j's row of this head in `cache`: in place, or decoded from e4m3 into `decoded`.
      const auto row_of = [&](const Tensor& cache) {
        return [&, cache](int32_t j) -> const float* {
          const int64_t slot = static_cast<int64_t>(table[j / bs]) * bs + j % bs;
          const int64_t at = slot * kv_row + static_cast<int64_t>(kvh) * d;
          if (!fp8) return cache.as<const float>() + at;
          const uint8_t* codes = cache.as<const uint8_t>() + at;
          for (int32_t i = 0; i < d; ++i) decoded[static_cast<size_t>(i)] = e4m3_values()[codes[i]];
          return decoded.data();
        };
      };
      if (shape.softcap > 0) {
        attend_head<true>(q, d, begin, end, shape.scale, shape.softcap, row_of(kv.k), row_of(kv.v),
                          scores.data(), out_row);
      } else {
        attend_head<false>(q, d, begin, end, shape.scale, 0.0f, row_of(kv.k), row_of(kv.v),
                           scores.data(), out_row);
      }
    }
  }
}

bool set_cpu_tiled_attention(bool enabled) {
  return tiled_attention_enabled.exchange(enabled);
}

void CpuBackend::argmax_rows(Tensor logits, Tensor ids) {
  const int64_t rows = logits.dim(0), vocab = logits.dim(-1);
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = logits.as<float>() + r * vocab;
    ids.as<int32_t>()[r] = static_cast<int32_t>(std::max_element(row, row + vocab) - row);
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
