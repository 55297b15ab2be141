// Every CUDA op against the CPU reference backend on random shapes: inputs are drawn in fp32,
// rounded through the GPU dtype, and fed to both; the CPU computes in fp32. Thresholds are
// relative L2 errors per op (one rounding of the output: ~4e-4 fp16, ~3e-3 bf16; GEMMs and
// attention accumulate in fp32 and land near that).
#include <algorithm>
#include <numeric>

#include "common/status.h"
#include "engine/philox.h"
#include "engine/sampler.h"
#include "gpu_test_util.h"

namespace llmserve {
namespace {

using namespace testing_gpu;

class CudaOps : public CudaVsCpu {};

// A batch of sequences with random lengths and scattered KV blocks, uploaded to both backends.
struct TestBatch {
  ForwardBatch fb;
  std::vector<std::vector<int32_t>> tables, tokens;
  BatchTensors cpu, gpu;
};

TestBatch make_batch(const std::vector<std::pair<int32_t, int32_t>>& seqs /* (computed, new) */,
                     int32_t block_size, int32_t num_blocks, int32_t vocab, std::mt19937& rng,
                     LogitRows rows) {
  TestBatch b;
  std::vector<int32_t> free(static_cast<size_t>(num_blocks));
  std::iota(free.begin(), free.end(), 0);
  std::shuffle(free.begin(), free.end(), rng);
  size_t next = 0;
  for (auto [computed, fresh] : seqs) {
    std::vector<int32_t> table;
    for (int32_t i = 0; i * block_size < computed + fresh; ++i) table.push_back(free.at(next++));
    b.tables.push_back(table);
    std::vector<int32_t> toks(static_cast<size_t>(fresh));
    for (auto& t : toks) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
    b.tokens.push_back(toks);
  }
  for (size_t i = 0; i < seqs.size(); ++i) {
    b.fb.add_sequence(b.tokens[i].data(), seqs[i].second, seqs[i].first, b.tables[i], block_size,
                      rows);
  }
  b.fb.finalize();
  return b;
}

TEST_P(CudaOps, EmbeddingWithAndWithoutPositions) {
  const int64_t vocab = 300, dim = 96, positions = 64;
  auto [ct, gt] = both(random_vector(vocab * dim, rng_), {vocab, dim});
  auto [cp, gp] = both(random_vector(positions * dim, rng_), {positions, dim});
  TestBatch b = make_batch({{0, 20}, {10, 5}, {30, 1}}, 16, 16, static_cast<int32_t>(vocab), rng_,
                           LogitRows::kLast);
  BatchTensors cb = cpu_.upload_batch(b.fb), gb = gpu_->upload_batch(b.fb);
  const int64_t t = b.fb.num_tokens();
  for (bool with_pos : {false, true}) {
    auto [co, go] = both_empty({t, dim});
    cpu_.embedding(cb, ct, with_pos ? cp : Tensor(), co);
    gpu_->embedding(gb, gt, with_pos ? gp : Tensor(), go);
    EXPECT_CLOSE_REL(read_tensor(*gpu_, go), read_tensor(cpu_, co), tol(), "embedding");
  }
}

TEST_P(CudaOps, NormsFusedWithResidualAdd) {
  for (int64_t dim :
       {64, 100, 768, 4096, 1000, 8192, 16384, 40000}) {  // vector path; 100, 40000: scalar
    for (int64_t t : {1, 7, 130}) {
      const auto res = random_vector(t * dim, rng_, 2.0f), x = random_vector(t * dim, rng_);
      const auto w = random_vector(dim, rng_), b = random_vector(dim, rng_, 0.1f);
      auto [cw, gw] = both(w, {dim});
      auto [cb, gb] = both(b, {dim});
      // layer_norm / rms_norm alone
      {
        auto [cx, gx] = both(res, {t, dim});
        auto [co, go] = both_empty({t, dim});
        cpu_.layer_norm(cx, cw, cb, 1e-5f, co);
        gpu_->layer_norm(gx, gw, gb, 1e-5f, go);
        EXPECT_CLOSE_REL(read_tensor(*gpu_, go), read_tensor(cpu_, co), tol(),
                         "layer_norm dim " + std::to_string(dim));
        cpu_.rms_norm(cx, cw, 1e-6f, co);
        gpu_->rms_norm(gx, gw, 1e-6f, go);
        EXPECT_CLOSE_REL(read_tensor(*gpu_, go), read_tensor(cpu_, co), tol(),
                         "rms_norm dim " + std::to_string(dim));
      }
      // fused: residual += x, then norm; both the residual and the output are checked
      for (bool rms : {false, true}) {
        auto [cr, gr] = both(res, {t, dim});
        auto [cx, gx] = both(x, {t, dim});
        auto [co, go] = both_empty({t, dim});
        if (rms) {
          cpu_.add_rms_norm(cr, cx, cw, 1e-6f, co);
          gpu_->add_rms_norm(gr, gx, gw, 1e-6f, go);
        } else {
          cpu_.add_layer_norm(cr, cx, cw, cb, 1e-5f, co);
          gpu_->add_layer_norm(gr, gx, gw, gb, 1e-5f, go);
        }
        const std::string what =
            std::string(rms ? "add_rms_norm" : "add_layer_norm") + " dim " + std::to_string(dim);
        EXPECT_CLOSE_REL(read_tensor(*gpu_, gr), read_tensor(cpu_, cr), tol(), what + " residual");
        EXPECT_CLOSE_REL(read_tensor(*gpu_, go), read_tensor(cpu_, co), tol(), what + " out");
      }
    }
  }
}

TEST_P(CudaOps, MatmulShapesBiasAndFp32Output) {
  struct Shape {
    int64_t m, n, k;
    bool bias;
    bool f32_out;
  };
  // M <= 4 takes the GEMV kernel (gemv.cu), larger M cuBLASLt.
  for (const Shape s : {Shape{1, 2304, 768, true, false}, Shape{2, 768, 3072, true, false},
                        Shape{3, 6144, 4096, false, false}, Shape{4, 4096, 14336, false, false},
                        Shape{4, 50257, 768, false, true}, Shape{7, 768, 3072, true, false},
                        Shape{130, 512, 256, false, false}, Shape{1, 50257, 768, false, true},
                        Shape{33, 1000, 64, false, true}, Shape{256, 384, 128, true, false},
                        // GEMV with several warps per column, the last block part-filled
                        Shape{1, 1001, 4096, true, false}, Shape{2, 37, 8192, false, true}}) {
    auto [cx, gx] = both(random_vector(s.m * s.k, rng_), {s.m, s.k});
    auto [cw, gw] = both(random_vector(s.n * s.k, rng_, 0.05f), {s.n, s.k});
    auto [cb, gb] = both(random_vector(s.n, rng_), {s.n});
    auto [co, go] = both_empty({s.m, s.n}, s.f32_out ? DType::kF32 : dt());
    cpu_.matmul(cx, cw, s.bias ? cb : Tensor(), co);
    gpu_->matmul(gx, gw, s.bias ? gb : Tensor(), go);
    EXPECT_CLOSE_REL(
        read_tensor(*gpu_, go), read_tensor(cpu_, co), tol(),
        "matmul " + std::to_string(s.m) + "x" + std::to_string(s.n) + "x" + std::to_string(s.k));
  }
}

TEST_P(CudaOps, MatmulGeluFusedEpilogue) {
  for (int64_t m : {1, 3, 40}) {
    const int64_t n = 3072, k = 768;
    auto [cx, gx] = both(random_vector(m * k, rng_), {m, k});
    auto [cw, gw] = both(random_vector(n * k, rng_, 0.05f), {n, k});
    auto [cb, gb] = both(random_vector(n, rng_), {n});
    auto [co, go] = both_empty({m, n});
    cpu_.matmul_gelu(cx, cw, cb, co);
    gpu_->matmul_gelu(gx, gw, gb, go);
    EXPECT_CLOSE_REL(read_tensor(*gpu_, go), read_tensor(cpu_, co), tol(),
                     "matmul_gelu m " + std::to_string(m));
  }
}

TEST_P(CudaOps, ArgmaxRowsLowestIndexOnTies) {
  for (int64_t vocab : {50257, 128256, 1000, 7}) {
    const int64_t rows = 9;
    std::vector<float> logits = random_vector(static_cast<size_t>(rows * vocab), rng_);
    // Row 0: a tie between two maxima; the lower index wins. Row 1: the maximum is the last id.
    logits[static_cast<size_t>(vocab / 2)] = 50.0f;
    logits[static_cast<size_t>(vocab / 3)] = 50.0f;
    logits[static_cast<size_t>(2 * vocab - 1)] = 60.0f;
    Tensor g = make_tensor(*gpu_, gpu_mem_, logits, DType::kF32, {rows, vocab});
    Tensor c = make_tensor(cpu_, cpu_mem_, logits, DType::kF32, {rows, vocab});
    Tensor gid = gpu_->allocate_tensor(gpu_mem_, DType::kI32, {rows});
    Tensor cid = cpu_.allocate_tensor(cpu_mem_, DType::kI32, {rows});
    gpu_->argmax_rows(g, gid);
    cpu_.argmax_rows(c, cid);
    std::vector<int32_t> got(static_cast<size_t>(rows)), want(static_cast<size_t>(rows));
    gpu_->download(gid, got.data());
    cpu_.download(cid, want.data());
    EXPECT_EQ(got, want) << "vocab " << vocab;
    EXPECT_EQ(got[0], vocab / 3);
    EXPECT_EQ(got[1], vocab - 1);
  }
}

TEST_P(CudaOps, TransposeIsExact) {
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{768, 2304}, {33, 65}, {1, 7}}) {
    const auto v = rounded(random_vector(static_cast<size_t>(rows * cols), rng_), dt());
    Tensor g = make_tensor(*gpu_, gpu_mem_, v, dt(), {rows, cols});
    Tensor gt = gpu_->allocate_tensor(gpu_mem_, dt(), {cols, rows});
    gpu_->transpose(g, gt);
    const auto got = read_tensor(*gpu_, gt);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) {
        ASSERT_EQ(got[static_cast<size_t>(c * rows + r)], v[static_cast<size_t>(r * cols + c)])
            << r << "," << c;
      }
    }
  }
}

// The GPU sampler against the host sampler (src/engine/sampler.cpp) with the same Philox draw,
// penalties and min-token masks included: identical tokens except where a draw lands within
// rounding of a boundary between two tokens.
TEST_P(CudaOps, SamplingMatchesHostSampler) {
  if (dt() != DType::kF16) GTEST_SKIP() << "dtype-independent (fp32 logits); run once";
  struct Case {
    float temperature;
    int32_t top_k;
    float top_p;
    float min_p;
    float rep, freq, presence;
    int32_t min_tokens;
    bool logit_bias = false;  // bias the favourite down and two other tokens up
  };
  const int64_t rows = 96, vocab = 50257;
  const std::vector<int32_t> eos = {50256};
  int64_t agree = 0, total = 0;
  for (const Case c :
       {Case{0.7f, 0, 1.0f, 0.0f, 1, 0, 0, 0}, Case{1.0f, 40, 1.0f, 0.0f, 1, 0, 0, 0},
        Case{0.9f, 0, 0.9f, 0.0f, 1, 0, 0, 0}, Case{1.2f, 100, 0.8f, 0.05f, 1, 0, 0, 0},
        Case{1.0f, 0, 1.0f, 0.1f, 1, 0, 0, 0}, Case{0.0f, 0, 1.0f, 0.0f, 1, 0, 0, 0},
        Case{1.5f, 5000, 0.95f, 0.0f, 1, 0, 0, 0}, Case{0.8f, 50, 1.0f, 0.0f, 1.3f, 0.4f, 0.6f, 0},
        Case{0.0f, 0, 1.0f, 0.0f, 1.5f, 0.0f, 0.0f, 0},
        Case{1.0f, 0, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f, 50},
        Case{0.0f, 0, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f, 0, true},
        Case{0.9f, 0, 1.0f, 0.0f, 1.2f, 0.3f, 0.0f, 3, true}}) {
    std::vector<float> logits = random_vector(static_cast<size_t>(rows * vocab), rng_, 3.0f);
    std::vector<RowSampling> params;
    std::vector<TokenAdjustment> adjustments;
    std::vector<int32_t> want;
    for (int64_t r = 0; r < rows; ++r) {
      SamplingParams p;
      p.temperature = c.temperature;
      p.top_k = c.top_k;
      p.top_p = c.top_p;
      p.min_p = c.min_p;
      p.repetition_penalty = c.rep;
      p.frequency_penalty = c.freq;
      p.presence_penalty = c.presence;
      p.min_tokens = c.min_tokens;
      p.stop_token_ids = {7, 11};
      p.seed = 1000 + static_cast<uint64_t>(r);
      // A prompt and a few generated tokens, some of them the row's current favourites, so the
      // penalties and masks change the outcome; eos is made the favourite where it is masked.
      float* row_logits = logits.data() + r * vocab;
      const int32_t top =
          static_cast<int32_t>(std::max_element(row_logits, row_logits + vocab) - row_logits);
      const std::vector<int32_t> prompt = {top, 3, 5, static_cast<int32_t>(r)};
      SamplingState state(p, prompt, 0);
      for (int32_t t : {top, 9, 9, static_cast<int32_t>(100 + r)}) state.on_token(t);
      if (c.min_tokens > 0) row_logits[eos[0]] = row_logits[top] + 5.0f;
      if (c.logit_bias) {  // entries shared with the prompt, the output and a masked stop token
        p.logit_bias = {{top, -4.0f}, {9, 2.5f}, {7, 50.0f}, {static_cast<int32_t>(200 + r), 6.0f}};
      }
      std::vector<float> row(row_logits, row_logits + vocab);
      want.push_back(sample(row, p, state, std::span<const int32_t>(eos)).token_id);
      params.push_back(make_row_sampling(p, state, eos, adjustments));
    }
    Tensor g = make_tensor(*gpu_, gpu_mem_, logits, DType::kF32, {rows, vocab});
    Tensor ids = gpu_->allocate_tensor(gpu_mem_, DType::kI32, {rows});
    gpu_->sample_rows(g, params, adjustments, ids);
    std::vector<int32_t> got(static_cast<size_t>(rows));
    gpu_->download(ids, got.data());
    int64_t case_agree = 0;
    for (int64_t r = 0; r < rows; ++r) {
      ASSERT_GE(got[static_cast<size_t>(r)], 0);
      ASSERT_LT(got[static_cast<size_t>(r)], vocab);
      if (c.min_tokens > 0) {
        ASSERT_NE(got[static_cast<size_t>(r)], eos[0]) << "eos drawn before min_tokens";
      }
      case_agree += got[static_cast<size_t>(r)] == want[static_cast<size_t>(r)];
    }
    const std::string what = "T " + std::to_string(c.temperature) + " k " +
                             std::to_string(c.top_k) + " p " + std::to_string(c.top_p) + " min_p " +
                             std::to_string(c.min_p) + " rep " + std::to_string(c.rep) +
                             " min_tokens " + std::to_string(c.min_tokens) +
                             (c.logit_bias ? " logit_bias" : "");
    if (c.temperature == 0.0f) {
      EXPECT_EQ(case_agree, rows) << what << ": greedy rows must agree exactly";
    }
    EXPECT_GE(case_agree, rows - 2) << what;
    agree += case_agree;
    total += rows;
  }
  std::printf("[ note ] GPU sampler agreed with the host sampler on %ld of %ld draws\n",
              static_cast<long>(agree), static_cast<long>(total));
}

TEST_P(CudaOps, Activations) {
  const int64_t t = 9, f = 1000;
  auto [cx, gx] = both(random_vector(t * f, rng_, 2.0f), {t, f});
  cpu_.gelu_tanh(cx);
  gpu_->gelu_tanh(gx);
  EXPECT_CLOSE_REL(read_tensor(*gpu_, gx), read_tensor(cpu_, cx), tol(), "gelu_tanh");
  for (int64_t ffn : {f, int64_t{1024}, int64_t{14336}}) {  // scalar (F % 8 != 0) and vector paths
    auto [cg, gg] = both(random_vector(t * 2 * ffn, rng_, 2.0f), {t, 2 * ffn});
    auto [co, go] = both_empty({t, ffn});
    cpu_.silu_mul(cg, co);
    gpu_->silu_mul(gg, go);
    EXPECT_CLOSE_REL(read_tensor(*gpu_, go), read_tensor(cpu_, co), tol(),
                     "silu_mul ffn " + std::to_string(ffn));
    cpu_.gelu_mul(cg, co);  // GeGLU (Gemma), the same two paths
    gpu_->gelu_mul(gg, go);
    EXPECT_CLOSE_REL(read_tensor(*gpu_, go), read_tensor(cpu_, co), tol(),
                     "gelu_mul ffn " + std::to_string(ffn));
  }
  {  // Gemma's embedding scale
    auto [cs, gs] = both(random_vector(t * f, rng_), {t, f});
    cpu_.scale(cs, 48.0f);
    gpu_->scale(gs, 48.0f);
    EXPECT_CLOSE_REL(read_tensor(*gpu_, gs), read_tensor(cpu_, cs), tol(), "scale");
  }
  auto [ca, ga] = both(random_vector(t * f, rng_), {t, f});
  auto [cb2, gb2] = both(random_vector(t * f, rng_), {t, f});
  cpu_.add(ca, cb2);
  gpu_->add(ga, gb2);
  EXPECT_CLOSE_REL(read_tensor(*gpu_, ga), read_tensor(cpu_, ca), tol(), "add");
}

// RoPE, KV write, attention and the row gather over one batch with prefill chunks and decodes,
// for the head shapes of the fixtures (d 16), the default model (d 32), GPT-2 (d 64) and Llama (d
// 128).
TEST_P(CudaOps, RopeKvWriteAttentionGather) {
  struct Heads {
    int32_t hq, hk, d;
  };
  for (const Heads h :
       {Heads{4, 2, 16}, Heads{4, 4, 32}, Heads{12, 12, 64}, Heads{32, 8, 128}, Heads{8, 1, 128}}) {
    for (int32_t block_size : {16, 32}) {
      const int32_t num_blocks = 96, max_pos = 1024;
      TestBatch b = make_batch({{0, 37}, {200, 50}, {15, 1}, {16, 1}, {0, 1}, {700, 1}}, block_size,
                               num_blocks, 100, rng_, LogitRows::kLast);
      BatchTensors cb = cpu_.upload_batch(b.fb), gb = gpu_->upload_batch(b.fb);
      const int64_t t = b.fb.num_tokens(), width = static_cast<int64_t>(h.hq + 2 * h.hk) * h.d;
      const AttentionShape shape{h.hq, h.hk, h.d, 1.0f / std::sqrt(static_cast<float>(h.d))};
      std::vector<float> table(static_cast<size_t>(max_pos * h.d));
      for (int32_t p = 0; p < max_pos; ++p) {
        for (int32_t i = 0; i < h.d / 2; ++i) {
          const double a = p / std::pow(10000.0, 2.0 * i / h.d);
          table[static_cast<size_t>(p * h.d + i)] = static_cast<float>(std::cos(a));
          table[static_cast<size_t>(p * h.d + h.d / 2 + i)] = static_cast<float>(std::sin(a));
        }
      }
      Tensor crope = make_tensor(cpu_, cpu_mem_, table, DType::kF32, {max_pos, h.d});
      Tensor grope = make_tensor(*gpu_, gpu_mem_, table, DType::kF32, {max_pos, h.d});
      // The cache holds earlier context (random) for the sequences that have some.
      const std::vector<float> cache =
          random_vector(static_cast<size_t>(num_blocks) * block_size * h.hk * h.d, rng_);
      auto [ck, gk] = both(cache, {num_blocks, block_size, h.hk, h.d});
      auto [cv, gv] = both(random_vector(cache.size(), rng_), {num_blocks, block_size, h.hk, h.d});
      KvLayer ckv{ck, cv, block_size}, gkv{gk, gv, block_size};
      auto [cq, gq] = both(random_vector(static_cast<size_t>(t * width), rng_), {t, width});

      const std::string what = "hq " + std::to_string(h.hq) + " hk " + std::to_string(h.hk) +
                               " d " + std::to_string(h.d) + " bs " + std::to_string(block_size);
      {  // the fused rope_write_kv on the GPU against rope then write_kv on the CPU
        auto [fqc, fqg] = both(read_tensor(cpu_, cq), {t, width});
        auto [fkc, fkg] = both(cache, {num_blocks, block_size, h.hk, h.d});
        auto [fvc, fvg] = both(read_tensor(cpu_, cv), {num_blocks, block_size, h.hk, h.d});
        const KvLayer fc{fkc, fvc, block_size}, fg{fkg, fvg, block_size};
        cpu_.rope_write_kv(fqc, shape, crope, cb, fc);
        gpu_->rope_write_kv(fqg, shape, grope, gb, fg);
        EXPECT_CLOSE_REL(read_tensor(*gpu_, fqg), read_tensor(cpu_, fqc), tol(),
                         what + " rope_write_kv qkv");
        EXPECT_CLOSE_REL(read_tensor(*gpu_, fkg), read_tensor(cpu_, fkc), tol(),
                         what + " rope_write_kv k cache");
        EXPECT_CLOSE_REL(read_tensor(*gpu_, fvg), read_tensor(cpu_, fvc), tol(),
                         what + " rope_write_kv v cache");
      }
      cpu_.rope(cq, shape, crope, cb);
      gpu_->rope(gq, shape, grope, gb);
      EXPECT_CLOSE_REL(read_tensor(*gpu_, gq), read_tensor(cpu_, cq), tol(), what + " rope");
      // Continue from identical inputs so each op is judged on its own error.
      gpu_->upload(encode(rounded(read_tensor(cpu_, cq), dt()), dt()).data(), gq);
      cpu_.upload(rounded(read_tensor(cpu_, cq), dt()).data(), cq);
      cpu_.write_kv(cq, shape, cb, ckv);
      gpu_->write_kv(gq, shape, gb, gkv);
      EXPECT_CLOSE_REL(read_tensor(*gpu_, gk), read_tensor(cpu_, ck), tol(), what + " k cache");
      EXPECT_CLOSE_REL(read_tensor(*gpu_, gv), read_tensor(cpu_, cv), tol(), what + " v cache");
      auto [co, go] = both_empty({t, static_cast<int64_t>(h.hq) * h.d});
      cpu_.attention(cq, shape, cb, ckv, co);
      gpu_->attention(gq, shape, gb, gkv, go);
      EXPECT_CLOSE_REL(read_tensor(*gpu_, go), read_tensor(cpu_, co), tol(), what + " attention");
      auto [cg, gg] = both_empty({b.fb.num_logits(), static_cast<int64_t>(h.hq) * h.d});
      cpu_.gather_rows(co, cb, cg);
      gpu_->gather_rows(go, gb, gg);
      EXPECT_CLOSE_REL(read_tensor(*gpu_, gg), read_tensor(cpu_, cg), tol(), what + " gather_rows");
    }
  }
}

// Final logit soft-capping (Gemma 2) on fp32 logits: the same values as the CPU's up to tanhf's
// last bits, and |x| stays below the cap.
TEST_P(CudaOps, SoftcapOfFp32Logits) {
  if (dt() != DType::kF16) GTEST_SKIP() << "dtype-independent (fp32 logits); run once";
  const int64_t rows = 5, vocab = 50257;
  const std::vector<float> logits = random_vector(rows * vocab, rng_, 60.0f);
  auto [cl, gl] = both_bytes(logits.data(), DType::kF32, {rows, vocab});
  cpu_.softcap(cl, 30.0f);
  gpu_->softcap(gl, 30.0f);
  const std::vector<float> got = read_tensor(*gpu_, gl), want = read_tensor(cpu_, cl);
  EXPECT_CLOSE_REL(got, want, 1e-6, "softcap");
  for (const float x : got) ASSERT_LE(std::abs(x), 30.0f);
}

// Attention with a sliding window and soft-capped scores, as Mistral and Gemma 2/3 run it, against
// the CPU backend's: prefill chunks (with windows starting inside, at and before a 64-position K/V
// tile), decodes past and within the window, fp16/bf16.
TEST_P(CudaOps, AttentionWindowAndSoftcap) {
  struct Variant {
    int32_t window;
    float softcap;
  };
  for (const Variant v : {Variant{8, 0.0f}, Variant{100, 0.0f}, Variant{0, 20.0f},
                          Variant{8, 50.0f}, Variant{4096, 30.0f}}) {
    for (const int32_t d : {16, 128, 256}) {  // 256: every token on the decode kernel
      const int32_t hq = 8, hk = 2, block_size = 16, num_blocks = 128;
      // Two leading decodes (the decode kernel), then prefill chunks (the prefill kernel).
      TestBatch b = make_batch({{700, 1}, {5, 1}, {0, 37}, {200, 50}, {0, 130}}, block_size,
                               num_blocks, 100, rng_, LogitRows::kLast);
      BatchTensors cb = cpu_.upload_batch(b.fb), gb = gpu_->upload_batch(b.fb);
      const int64_t t = b.fb.num_tokens(), width = static_cast<int64_t>(hq + 2 * hk) * d;
      AttentionShape shape{hq, hk, d, 1.0f / std::sqrt(static_cast<float>(d))};
      shape.window = v.window;
      shape.softcap = v.softcap;
      // Scores of a few units, so the cap bends them.
      const std::vector<float> cache =
          random_vector(static_cast<size_t>(num_blocks) * block_size * hk * d, rng_, 2.0f);
      auto [ck, gk] = both(cache, {num_blocks, block_size, hk, d});
      auto [cv, gv] = both(random_vector(cache.size(), rng_), {num_blocks, block_size, hk, d});
      const KvLayer ckv{ck, cv, block_size}, gkv{gk, gv, block_size};
      auto [cq, gq] = both(random_vector(static_cast<size_t>(t * width), rng_, 2.0f), {t, width});
      cpu_.write_kv(cq, shape, cb, ckv);
      gpu_->write_kv(gq, shape, gb, gkv);
      auto [co, go] = both_empty({t, static_cast<int64_t>(hq) * d});
      cpu_.attention(cq, shape, cb, ckv, co);
      gpu_->attention(gq, shape, gb, gkv, go);
      EXPECT_CLOSE_REL(read_tensor(*gpu_, go), read_tensor(cpu_, co), tol(),
                       "window " + std::to_string(v.window) + " softcap " +
                           std::to_string(v.softcap) + " d " + std::to_string(d));
    }
  }
}

TEST_P(CudaOps, OutOfMemoryIsAClearError) {
  try {
    gpu_->allocate(size_t{1} << 50);
    FAIL() << "a 1 PiB allocation succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.status().code(), StatusCode::kResourceExhausted);
    EXPECT_NE(std::string(e.what()).find("out of GPU memory"), std::string::npos) << e.what();
  }
  // The backend still works afterwards.
  auto [ca, ga] = both(random_vector(100, rng_), {100});
  auto [cb, gb] = both(random_vector(100, rng_), {100});
  cpu_.add(ca, cb);
  gpu_->add(ga, gb);
  EXPECT_CLOSE_REL(read_tensor(*gpu_, ga), read_tensor(cpu_, ca), tol(), "add after OOM");
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaOps, ::testing::Values(DType::kF16, DType::kBF16),
                         [](const auto& info) { return std::string(dtype_label(info.param)); });

}  // namespace
}  // namespace llmserve
