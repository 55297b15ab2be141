// The CPU backend's attention ops (cpu_backend.h): RoPE, the paged KV write, and attention over
// the paged cache — one query row at a time (decodes, short chunks, fp8 caches, soft-caps), or
// for a prefill chunk two GEMMs a head (attend_tiled).
#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <string_view>
#include <vector>

#include <omp.h>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_internal.h"
#include "common/half.h"
#include "common/status.h"

namespace llmserve {

using cpu_detail::e4m3_values;
#ifdef LLMSERVE_CPU_X86
using cpu_detail::exp_nonpositive8;
#endif

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

#ifdef LLMSERVE_CPU_X86
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
#endif

}  // namespace

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

}  // namespace llmserve
