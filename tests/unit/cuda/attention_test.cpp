// launch_attention against a double-precision host reference computed from the same rounded
// inputs: decode (split-K) and prefill (tensor-core tiles) paths, mixed batches, GQA ratios,
// head dims 16/32/64/128, fp16/bf16, block sizes 8/16/32, shuffled block tables, and bounds passed
// larger than the real lengths (as a captured CUDA graph does); the same cases over an fp8 e4m3
// KV cache (--kv-cache-dtype fp8), whose reference reads the codes' exact values; sliding windows
// (Mistral, Gemma 2/3: positions p - W + 1 .. p) and soft-capped scores (Gemma 2). Needs a GPU;
// skips without one.
#include <gtest/gtest.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "backend/cuda/attention.h"
#include "common/half.h"

namespace llmserve::cuda {
namespace {

#define ASSERT_CUDA(expr) ASSERT_EQ((expr), cudaSuccess) << #expr

bool has_gpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

uint16_t to_bits(float x, DType dtype) {
  if (dtype == DType::kF16) return static_cast<__half_raw>(__float2half_rn(x)).x;
  return static_cast<__nv_bfloat16_raw>(__float2bfloat16_rn(x)).x;
}

float from_bits(uint16_t bits, DType dtype) {
  if (dtype == DType::kF16) {
    __half_raw raw;
    raw.x = bits;
    return __half2float(__half(raw));
  }
  __nv_bfloat16_raw raw;
  raw.x = bits;
  return __bfloat162float(__nv_bfloat16(raw));
}

struct Case {
  DType dtype = DType::kF16;
  int head_dim = 128;
  int num_q_heads = 8;
  int num_kv_heads = 8;
  int block_size = 16;
  std::vector<int> query_lens;    // new tokens per sequence
  std::vector<int> context_lens;  // KV length after the step (>= query length)
  int extra_query_bound = 0;      // added to max_query_len (bounds larger than exact)
  int extra_context_bound = 0;    // added to max_context_len
  uint32_t seed = 1;
  bool kv_fp8 = false;       // caches of e4m3 codes instead of dtype
  bool misread_kv = false;   // a planted bug: the kernel is told the other cache type
  int leading_decodes = -1;  // num_leading_decodes; -1: as CudaBackend::upload_batch counts them
  int window = 0;            // sliding window; 0: none
  float softcap = 0.0f;      // score soft-cap; 0: none
  float value_scale = 1.0f;  // q and k drawn in (-value_scale, value_scale): larger scores
  bool misread_softcap = false;  // a planted bug: the kernel is not told the soft-cap
};

// Device buffer freed on scope exit.
struct DeviceBuffer {
  void* ptr = nullptr;
  ~DeviceBuffer() {
    if (ptr != nullptr) cudaFree(ptr);
  }
};

template <typename V>
void upload(DeviceBuffer& buf, const std::vector<V>& host) {
  const size_t bytes = std::max<size_t>(host.size() * sizeof(V), 16);
  ASSERT_CUDA(cudaMalloc(&buf.ptr, bytes));
  if (!host.empty()) {
    ASSERT_CUDA(cudaMemcpy(buf.ptr, host.data(), host.size() * sizeof(V), cudaMemcpyHostToDevice));
  }
}

struct Result {
  std::vector<float> out;  // [T, Hq * d], from the device
  double max_err = 0;
  bool is_fully_written = true;
};

void run_case(const Case& c, Result* result) {
  const int num_seqs = static_cast<int>(c.query_lens.size());
  const int d = c.head_dim, hq = c.num_q_heads, hk = c.num_kv_heads, bs = c.block_size;
  const int heads = hq + 2 * hk, group = hq / hk;
  std::mt19937 rng(c.seed);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);

  std::vector<int32_t> query_start(num_seqs + 1, 0), positions;
  int max_q = 0, max_ctx = 0, max_blocks = 0, total_blocks = 0;
  for (int s = 0; s < num_seqs; ++s) {
    query_start[s + 1] = query_start[s] + c.query_lens[s];
    for (int i = 0; i < c.query_lens[s]; ++i) {
      positions.push_back(c.context_lens[s] - c.query_lens[s] + i);
    }
    max_q = std::max(max_q, c.query_lens[s]);
    max_ctx = std::max(max_ctx, c.context_lens[s]);
    const int blocks = (c.context_lens[s] + bs - 1) / bs;
    max_blocks = std::max(max_blocks, blocks);
    total_blocks += blocks;
  }
  const int num_tokens = query_start[num_seqs];
  const int max_blocks_per_seq = max_blocks + (c.extra_context_bound + bs - 1) / bs;
  const int num_blocks = total_blocks + 5;  // a few unused blocks

  // Shuffled distinct block ids; unused table entries point at block 0.
  std::vector<int32_t> ids(num_blocks);
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  std::vector<int32_t> tables(static_cast<size_t>(num_seqs) * max_blocks_per_seq, 0);
  int next = 0;
  for (int s = 0; s < num_seqs; ++s) {
    for (int b = 0; b < (c.context_lens[s] + bs - 1) / bs; ++b)
      tables[s * max_blocks_per_seq + b] = ids[next++];
  }

  auto random_rounded = [&](size_t n, std::vector<uint16_t>& bits, std::vector<float>& vals,
                            float range = 1.0f) {
    bits.resize(n);
    vals.resize(n);
    for (size_t i = 0; i < n; ++i) {
      bits[i] = to_bits(range * uni(rng), c.dtype);
      vals[i] = from_bits(bits[i], c.dtype);
    }
  };
  // e4m3 caches: codes of values in (-2, 2), which span the normal and subnormal exponents.
  auto random_codes = [&](size_t n, std::vector<uint8_t>& codes, std::vector<float>& vals) {
    codes.resize(n);
    vals.resize(n);
    for (size_t i = 0; i < n; ++i) {
      codes[i] = float_to_e4m3(2.0f * uni(rng));
      vals[i] = e4m3_to_float(codes[i]);
    }
  };
  std::vector<uint16_t> qkv_bits, k_bits, v_bits;
  std::vector<uint8_t> k_codes, v_codes;
  std::vector<float> qkv, kc, vc;
  const size_t cache_elems = static_cast<size_t>(num_blocks) * bs * hk * d;
  random_rounded(static_cast<size_t>(num_tokens) * heads * d, qkv_bits, qkv, c.value_scale);
  if (c.kv_fp8) {
    random_codes(cache_elems, k_codes, kc);
    random_codes(cache_elems, v_codes, vc);
  } else {
    random_rounded(cache_elems, k_bits, kc, c.value_scale);
    random_rounded(cache_elems, v_bits, vc);
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));

  // Double-precision reference.
  std::vector<double> ref(static_cast<size_t>(num_tokens) * hq * d, 0.0);
  for (int s = 0; s < num_seqs; ++s) {
    for (int t = query_start[s]; t < query_start[s + 1]; ++t) {
      const int len = positions[t] + 1;
      const int first = c.window > 0 ? std::max(0, len - c.window) : 0;
      for (int h = 0; h < hq; ++h) {
        const float* q = &qkv[(static_cast<size_t>(t) * heads + h) * d];
        std::vector<double> p(len, 0.0);
        double mx = -INFINITY;
        for (int j = first; j < len; ++j) {
          const size_t slot =
              static_cast<size_t>(tables[s * max_blocks_per_seq + j / bs]) * bs + j % bs;
          const float* k = &kc[(slot * hk + h / group) * d];
          double dot = 0;
          for (int i = 0; i < d; ++i) dot += static_cast<double>(q[i]) * k[i];
          p[j] = dot * scale;
          if (c.softcap > 0) p[j] = c.softcap * std::tanh(p[j] / c.softcap);
          mx = std::max(mx, p[j]);
        }
        double sum = 0;
        for (int j = first; j < len; ++j) sum += (p[j] = std::exp(p[j] - mx));
        double* o = &ref[(static_cast<size_t>(t) * hq + h) * d];
        for (int j = first; j < len; ++j) {
          const size_t slot =
              static_cast<size_t>(tables[s * max_blocks_per_seq + j / bs]) * bs + j % bs;
          const float* v = &vc[(slot * hk + h / group) * d];
          for (int i = 0; i < d; ++i) o[i] += p[j] / sum * v[i];
        }
      }
    }
  }

  std::vector<int32_t> context_lens(c.context_lens.begin(), c.context_lens.end());
  DeviceBuffer d_qkv, d_k, d_v, d_out, d_pos, d_qs, d_ctx, d_tables, d_ws;
  upload(d_qkv, qkv_bits);
  if (c.kv_fp8) {
    upload(d_k, k_codes);
    upload(d_v, v_codes);
  } else {
    upload(d_k, k_bits);
    upload(d_v, v_bits);
  }
  upload(d_pos, positions);
  upload(d_qs, query_start);
  upload(d_ctx, context_lens);
  upload(d_tables, tables);
  const size_t out_elems = static_cast<size_t>(num_tokens) * hq * d;
  ASSERT_CUDA(cudaMalloc(&d_out.ptr, out_elems * 2));
  ASSERT_CUDA(cudaMemset(d_out.ptr, 0xFF, out_elems * 2));  // NaN in fp16 and bf16

  AttentionParams p;
  p.dtype = c.dtype;
  p.kv_fp8 = c.kv_fp8 != c.misread_kv;
  p.qkv = d_qkv.ptr;
  p.k_cache = d_k.ptr;
  p.v_cache = d_v.ptr;
  p.out = d_out.ptr;
  p.positions = static_cast<const int32_t*>(d_pos.ptr);
  p.query_start = static_cast<const int32_t*>(d_qs.ptr);
  p.context_lens = static_cast<const int32_t*>(d_ctx.ptr);
  p.block_tables = static_cast<const int32_t*>(d_tables.ptr);
  p.num_tokens = num_tokens;
  p.num_seqs = num_seqs;
  p.max_blocks_per_seq = max_blocks_per_seq;
  p.max_query_len = max_q + c.extra_query_bound;
  p.num_leading_decodes = c.leading_decodes;
  if (c.leading_decodes < 0) {
    p.num_leading_decodes = 0;
    while (p.num_leading_decodes < num_seqs && c.query_lens[p.num_leading_decodes] == 1)
      ++p.num_leading_decodes;
  }
  p.max_context_len = max_ctx + c.extra_context_bound;
  p.num_q_heads = hq;
  p.num_kv_heads = hk;
  p.head_dim = d;
  p.block_size = bs;
  p.scale = scale;
  p.window = c.window;
  p.softcap = c.misread_softcap ? 0.0f : c.softcap;
  p.workspace_bytes = attention_workspace_bytes(num_tokens, num_seqs, hq, d, p.max_context_len);
  if (p.workspace_bytes > 0) {
    ASSERT_CUDA(cudaMalloc(&d_ws.ptr, p.workspace_bytes));
    ASSERT_CUDA(cudaMemset(d_ws.ptr, 0xFF, p.workspace_bytes));
  }
  p.workspace = d_ws.ptr;

  ASSERT_CUDA(launch_attention(p, nullptr));
  ASSERT_CUDA(cudaDeviceSynchronize());
  std::vector<uint16_t> out_bits(out_elems);
  ASSERT_CUDA(cudaMemcpy(out_bits.data(), d_out.ptr, out_elems * 2, cudaMemcpyDeviceToHost));

  result->out.resize(out_elems);
  for (size_t i = 0; i < out_elems; ++i) {
    const float x = from_bits(out_bits[i], c.dtype);
    result->out[i] = x;
    if (!std::isfinite(x)) {
      result->is_fully_written = false;
      continue;
    }
    result->max_err = std::max(result->max_err, std::abs(x - ref[i]));
  }
}

double tolerance(DType dtype) {
  return dtype == DType::kF16 ? 2e-3 : 1.6e-2;
}

void expect_matches(const Case& c) {
  Result r;
  run_case(c, &r);
  if (::testing::Test::HasFatalFailure()) return;
  EXPECT_TRUE(r.is_fully_written);
  EXPECT_LT(r.max_err, tolerance(c.dtype));
}

class AttentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!has_gpu()) GTEST_SKIP() << "no CUDA device";
  }
};

// (head_dim, Hq, Hk) shapes: GPT-2-like MHA, Llama-like GQA, Phi-3 mini's d = 96 (its lane
// groups padded on the decode kernel), and the small head dims of the test fixture models (d = 16,
// Hq = 4, Hk = 2) and the embedded default model (d = 32).
struct Shape {
  int head_dim, num_q_heads, num_kv_heads;
};
constexpr Shape kShapes[] = {{64, 12, 12}, {128, 32, 8}, {128, 16, 2},
                             {96, 8, 8},   {16, 4, 2},   {32, 8, 8}};
constexpr DType kDtypes[] = {DType::kF16, DType::kBF16};

Case make_case(DType dtype, const Shape& shape, int block_size, std::vector<int> query_lens,
               std::vector<int> context_lens) {
  Case c;
  c.dtype = dtype;
  c.head_dim = shape.head_dim;
  c.num_q_heads = shape.num_q_heads;
  c.num_kv_heads = shape.num_kv_heads;
  c.block_size = block_size;
  c.query_lens = std::move(query_lens);
  c.context_lens = std::move(context_lens);
  return c;
}

TEST_F(AttentionTest, DecodeBatchOneAllContextLengths) {
  for (const DType dtype : kDtypes) {
    for (const Shape& shape : kShapes) {
      for (const int ctx : {1, 15, 16, 17, 1000, 8192}) {
        SCOPED_TRACE(::testing::Message()
                     << "dtype " << static_cast<int>(dtype) << " d " << shape.head_dim << " Hq "
                     << shape.num_q_heads << " Hk " << shape.num_kv_heads << " ctx " << ctx);
        expect_matches(make_case(dtype, shape, 16, {1}, {ctx}));
      }
    }
  }
}

TEST_F(AttentionTest, DecodeBatchSevenMixedLengthsAndBlockSizes) {
  for (const DType dtype : kDtypes) {
    for (const Shape& shape : kShapes) {
      for (const int bs : {8, 16, 32}) {
        SCOPED_TRACE(::testing::Message()
                     << "dtype " << static_cast<int>(dtype) << " d " << shape.head_dim << " Hq "
                     << shape.num_q_heads << " bs " << bs);
        expect_matches(
            make_case(dtype, shape, bs, {1, 1, 1, 1, 1, 1, 1}, {1, 5, 16, 33, 250, 1024, 3000}));
      }
    }
  }
}

TEST_F(AttentionTest, GqaRatios) {
  for (const DType dtype : kDtypes) {
    // Decode head groups G = 8, 4, 2, 1 (largest power of two dividing Hq / Hk) for every head dim.
    for (const Shape shape :
         {Shape{128, 8, 8}, Shape{128, 16, 4}, Shape{64, 32, 4}, Shape{64, 6, 2}, Shape{32, 16, 2},
          Shape{32, 16, 4}, Shape{32, 8, 4}, Shape{32, 6, 2}, Shape{16, 8, 1}, Shape{16, 8, 2},
          Shape{16, 4, 2}, Shape{16, 6, 2}}) {
      SCOPED_TRACE(::testing::Message()
                   << "dtype " << static_cast<int>(dtype) << " d " << shape.head_dim << " Hq "
                   << shape.num_q_heads << " Hk " << shape.num_kv_heads);
      expect_matches(make_case(dtype, shape, 16, {1, 1, 1}, {3, 77, 600}));
      expect_matches(make_case(dtype, shape, 16, {40, 1}, {90, 513}));
    }
  }
}

TEST_F(AttentionTest, PrefillEmptyCache) {
  for (const DType dtype : kDtypes) {
    for (const Shape& shape : kShapes) {
      for (const int bs : {16, 32}) {
        for (const int len : {1, 37, 300}) {
          SCOPED_TRACE(::testing::Message()
                       << "dtype " << static_cast<int>(dtype) << " d " << shape.head_dim << " Hq "
                       << shape.num_q_heads << " bs " << bs << " len " << len);
          expect_matches(make_case(dtype, shape, bs, {len}, {len}));
        }
      }
    }
  }
}

TEST_F(AttentionTest, ChunkAfterCachedPrefix) {
  for (const DType dtype : kDtypes) {
    for (const Shape& shape : kShapes) {
      SCOPED_TRACE(::testing::Message()
                   << "dtype " << static_cast<int>(dtype) << " d " << shape.head_dim);
      expect_matches(make_case(dtype, shape, 16, {50}, {250}));
    }
  }
}

TEST_F(AttentionTest, MixedBatchDecodesAndChunks) {
  for (const DType dtype : kDtypes) {
    for (const Shape& shape : kShapes) {
      for (const int bs : {16, 32}) {
        SCOPED_TRACE(::testing::Message() << "dtype " << static_cast<int>(dtype) << " d "
                                          << shape.head_dim << " bs " << bs);
        expect_matches(make_case(dtype, shape, bs, {1, 37, 1, 50}, {100, 37, 7, 250}));
      }
    }
  }
}

// Mixed batches whose leading sequences decode: those take the decode kernel, the rest (a later
// decode included) the prefill kernel; with every sequence decoding under a query bound above 1,
// the prefill kernel has nothing left. Also the same batches with the split turned off.
TEST_F(AttentionTest, LeadingDecodesOfMixedBatches) {
  for (const DType dtype : kDtypes) {
    for (const Shape& shape : kShapes) {
      SCOPED_TRACE(::testing::Message() << "dtype " << static_cast<int>(dtype) << " d "
                                        << shape.head_dim << " Hq " << shape.num_q_heads);
      for (const int leading : {-1, 0, 2}) {
        Case c = make_case(dtype, shape, 16, {1, 1, 1, 37, 1, 50}, {900, 3, 64, 37, 7, 250});
        c.leading_decodes = leading;
        expect_matches(c);
      }
      Case all = make_case(dtype, shape, 16, {1, 1, 1}, {1, 300, 2000});
      all.extra_query_bound = 20;
      expect_matches(all);
      Case fp8 = make_case(dtype, shape, 32, {1, 1, 64}, {700, 20, 100});
      fp8.kv_fp8 = true;
      expect_matches(fp8);
    }
  }
}

TEST_F(AttentionTest, BoundsLargerThanExact) {
  for (const DType dtype : kDtypes) {
    for (const Shape& shape : kShapes) {
      for (const bool is_decode : {true, false}) {
        SCOPED_TRACE(::testing::Message() << "dtype " << static_cast<int>(dtype) << " d "
                                          << shape.head_dim << " decode " << is_decode);
        Case exact = is_decode ? make_case(dtype, shape, 16, {1, 1}, {45, 700})
                               : make_case(dtype, shape, 16, {1, 70}, {45, 130});
        // All on the prefill kernel, whose output the bounds must not change by a bit (the
        // leading decode would take the decode kernel, whose split count follows the bound).
        if (!is_decode) exact.leading_decodes = 0;
        Case loose = exact;
        loose.extra_query_bound = is_decode ? 0 : 100;
        loose.extra_context_bound = 4000;
        Result a, b;
        run_case(exact, &a);
        if (HasFatalFailure()) return;
        run_case(loose, &b);
        if (HasFatalFailure()) return;
        EXPECT_TRUE(a.is_fully_written);
        EXPECT_TRUE(b.is_fully_written);
        EXPECT_LT(a.max_err, tolerance(dtype));
        EXPECT_LT(b.max_err, tolerance(dtype));
        // The prefill grid only gains CTAs that exit, so its output is bit-identical; the decode
        // split count follows the bound, which may change rounding only.
        double diff = 0;
        for (size_t i = 0; i < a.out.size(); ++i)
          diff = std::max(diff, double(std::abs(a.out[i] - b.out[i])));
        if (is_decode) {
          EXPECT_LT(diff, tolerance(dtype));
        } else {
          EXPECT_EQ(diff, 0.0);
        }
      }
    }
  }
}

// fp8 e4m3 caches (--kv-cache-dtype fp8): decode, prefill, chunks after a cached prefix and
// mixed batches, every shape, both dtypes and the GQA head groups. The reference reads the codes'
// exact values, so the error budget is the 16-bit one; values up to 2 make the scores larger than
// the 16-bit cases' (|q.k| up to ~2x), still within it.
TEST_F(AttentionTest, Fp8KvCache) {
  for (const DType dtype : kDtypes) {
    for (const Shape& shape : kShapes) {
      for (const int bs : {16, 32}) {
        SCOPED_TRACE(::testing::Message() << "fp8 kv, dtype " << static_cast<int>(dtype) << " d "
                                          << shape.head_dim << " Hq " << shape.num_q_heads << " Hk "
                                          << shape.num_kv_heads << " bs " << bs);
        for (Case c :
             {make_case(dtype, shape, bs, {1}, {1}), make_case(dtype, shape, bs, {1}, {4000}),
              make_case(dtype, shape, bs, {1, 1, 1, 1}, {5, 16, 33, 1024}),
              make_case(dtype, shape, bs, {300}, {300}), make_case(dtype, shape, bs, {50}, {250}),
              make_case(dtype, shape, bs, {1, 37, 1, 50}, {100, 37, 7, 250})}) {
          c.kv_fp8 = true;
          expect_matches(c);
        }
      }
    }
    for (const Shape shape :
         {Shape{128, 16, 4}, Shape{64, 6, 2}, Shape{32, 16, 2}, Shape{16, 8, 1}}) {
      Case c = make_case(dtype, shape, 16, {1, 1, 1}, {3, 77, 600});
      c.kv_fp8 = true;
      expect_matches(c);
    }
  }
}

// Sliding windows: smaller than a block, than a 64-position K/V tile, larger than one, and larger
// than every context (then the same as none); decodes whose windows start inside a split chunk,
// prefills whose first row's window starts inside, at and before a tile, chunks after a cached
// prefix, mixed batches, an fp8 cache, and bounds larger than exact.
TEST_F(AttentionTest, SlidingWindow) {
  for (const DType dtype : kDtypes) {
    for (const Shape& shape : kShapes) {
      for (const int window : {1, 8, 64, 100, 4096}) {
        SCOPED_TRACE(::testing::Message()
                     << "dtype " << static_cast<int>(dtype) << " d " << shape.head_dim << " Hq "
                     << shape.num_q_heads << " window " << window);
        for (Case c :
             {make_case(dtype, shape, 16, {1}, {1}),
              make_case(dtype, shape, 16, {1, 1, 1, 1}, {7, 65, 1000, 8192}),
              make_case(dtype, shape, 16, {300}, {300}), make_case(dtype, shape, 32, {50}, {250}),
              make_case(dtype, shape, 16, {130}, {200}),
              make_case(dtype, shape, 16, {1, 37, 1, 50}, {100, 37, 7, 250})}) {
          c.window = window;
          expect_matches(c);
        }
        Case fp8 = make_case(dtype, shape, 16, {1, 1, 90}, {700, 20, 300});
        fp8.window = window;
        fp8.kv_fp8 = true;
        expect_matches(fp8);
        Case loose = make_case(dtype, shape, 16, {1, 70}, {45, 130});
        loose.window = window;
        loose.extra_query_bound = 100;
        loose.extra_context_bound = 4000;
        expect_matches(loose);
      }
    }
  }
}

// Soft-capped scores (Gemma 2: cap * tanh(score / cap) before the softmax), alone and with a
// window, with q and k in (-2, 2) so that scores of a few units meet a cap of 5.
TEST_F(AttentionTest, SoftcappedScores) {
  for (const DType dtype : kDtypes) {
    for (const Shape& shape : kShapes) {
      for (const int window : {0, 8, 100}) {
        SCOPED_TRACE(::testing::Message() << "dtype " << static_cast<int>(dtype) << " d "
                                          << shape.head_dim << " window " << window);
        for (Case c : {make_case(dtype, shape, 16, {1, 1, 1}, {1, 77, 3000}),
                       make_case(dtype, shape, 16, {300}, {300}),
                       make_case(dtype, shape, 16, {1, 37, 1, 50}, {100, 37, 7, 250})}) {
          c.window = window;
          c.softcap = 5.0f;
          c.value_scale = 2.0f;
          expect_matches(c);
          if (window == 0) {
            Case fp8 = c;
            fp8.kv_fp8 = true;
            expect_matches(fp8);
          }
        }
      }
    }
  }
  // A kernel that leaves the cap out is far outside the tolerance (scores of a few units against
  // a cap of 2 change the softmax weights by tens of percent).
  for (const bool decode : {true, false}) {
    Case c = decode ? make_case(DType::kF16, Shape{64, 12, 12}, 16, {1, 1}, {200, 40})
                    : make_case(DType::kF16, Shape{64, 12, 12}, 16, {60}, {60});
    c.softcap = 2.0f;
    c.value_scale = 2.0f;
    Result capped, uncapped;
    run_case(c, &capped);
    ASSERT_FALSE(HasFatalFailure());
    c.misread_softcap = true;
    run_case(c, &uncapped);
    ASSERT_FALSE(HasFatalFailure());
    EXPECT_LT(capped.max_err, tolerance(c.dtype)) << "decode " << decode;
    EXPECT_GT(uncapped.max_err, 10 * tolerance(c.dtype)) << "decode " << decode;
  }
}

// head_dim 256 (Gemma 2 2B/9B, Gemma 3 1B-12B) runs every token on the decode kernel: decodes,
// prefills, chunks after a cached prefix and mixed batches, with GQA groups 1, 2 and 4, windows,
// soft-caps, an fp8 cache and bounds larger than exact.
TEST_F(AttentionTest, HeadDim256OnTheDecodeKernel) {
  for (const DType dtype : kDtypes) {
    for (const Shape shape : {Shape{256, 8, 8}, Shape{256, 8, 4}, Shape{256, 4, 1}}) {
      SCOPED_TRACE(::testing::Message() << "dtype " << static_cast<int>(dtype) << " Hq "
                                        << shape.num_q_heads << " Hk " << shape.num_kv_heads);
      for (Case c :
           {make_case(dtype, shape, 16, {1}, {1}), make_case(dtype, shape, 16, {1}, {4000}),
            make_case(dtype, shape, 16, {1, 1, 1}, {5, 77, 600}),
            make_case(dtype, shape, 16, {300}, {300}), make_case(dtype, shape, 32, {50}, {250}),
            make_case(dtype, shape, 16, {1, 37, 1, 50}, {100, 37, 7, 250})}) {
        expect_matches(c);
        Case windowed = c;
        windowed.window = 64;
        expect_matches(windowed);
        Case capped = c;
        capped.softcap = 5.0f;
        capped.value_scale = 2.0f;
        expect_matches(capped);
        Case fp8 = c;
        fp8.kv_fp8 = true;
        expect_matches(fp8);
        Case loose = c;
        loose.extra_query_bound = 20;
        loose.extra_context_bound = 1000;
        expect_matches(loose);
      }
    }
  }
}

// The cases can fail: a 16-bit cache read as e4m3 codes (the kernel told kv_fp8 wrongly) is far
// outside the tolerance, or NaN.
TEST_F(AttentionTest, KvCacheReadAsTheWrongTypeFails) {
  for (const bool decode : {true, false}) {
    Case c = decode ? make_case(DType::kBF16, Shape{64, 12, 12}, 16, {1, 1}, {200, 40})
                    : make_case(DType::kBF16, Shape{64, 12, 12}, 16, {60}, {60});
    c.misread_kv = true;
    Result r;
    run_case(c, &r);
    ASSERT_FALSE(HasFatalFailure());
    EXPECT_TRUE(!r.is_fully_written || r.max_err > 10 * tolerance(c.dtype))
        << "decode " << decode << " max_err " << r.max_err;
  }
}

TEST(AttentionParamsTest, RejectsUnsupportedHeadDimAndSmallWorkspace) {
  AttentionParams p;
  p.num_tokens = 1;
  p.num_seqs = 1;
  p.max_query_len = 1;
  p.max_context_len = 8192;
  p.num_q_heads = 32;
  p.num_kv_heads = 8;
  for (const int head_dim : {0, 8, 24, 48, 80, 112, 192, 512}) {
    p.head_dim = head_dim;
    EXPECT_EQ(launch_attention(p, nullptr), cudaErrorInvalidValue) << "head_dim " << head_dim;
  }
  p.head_dim = 128;
  ASSERT_GT(attention_workspace_bytes(1, 1, 32, 128, 8192), 0u);
  p.workspace_bytes = attention_workspace_bytes(1, 1, 32, 128, 8192) - 1;
  EXPECT_EQ(launch_attention(p, nullptr), cudaErrorInvalidValue);
  p.workspace_bytes = attention_workspace_bytes(1, 1, 32, 128, 8192);
  p.window = -1;  // windows and soft-caps are >= 0 (0: none)
  EXPECT_EQ(launch_attention(p, nullptr), cudaErrorInvalidValue);
  p.window = 0;
  p.softcap = -1.0f;
  EXPECT_EQ(launch_attention(p, nullptr), cudaErrorInvalidValue);
  p.softcap = 0.0f;
  for (const int head_dim : {16, 32}) {  // supported; the workspace check applies as well
    p.head_dim = head_dim;
    ASSERT_GT(attention_workspace_bytes(1, 1, 32, head_dim, 8192), 0u);
    p.workspace_bytes = attention_workspace_bytes(1, 1, 32, head_dim, 8192) - 1;
    EXPECT_EQ(launch_attention(p, nullptr), cudaErrorInvalidValue) << "head_dim " << head_dim;
  }
}

}  // namespace
}  // namespace llmserve::cuda
