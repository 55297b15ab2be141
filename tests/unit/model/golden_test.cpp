// Golden tests: our CPU forward against Hugging Face transformers on the tiny fixture checkpoints
// written by scripts/make_reference.py (tests/data/models/*). Logits must match within fp32
// tolerance and greedy continuations exactly — alone, batched with other sequences, and with the
// prompt split into chunks across steps — with fp32 weights, and for the 16-bit checkpoints also
// with their weights kept in 16 bits (widened as the CPU's matmul reads them).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "backend/backend.h"
#include "engine/model_runner.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "testing/reference_cases.h"

namespace llmserve {
namespace {

const std::filesystem::path kModels = std::filesystem::path(LLMSERVE_TEST_DATA) / "models";
constexpr float kAbsTol = 2e-4f;
constexpr float kRelTol = 1e-4f;

using Case = testing::ReferenceCase;

std::vector<Case> read_cases(const std::filesystem::path& dir) {
  return testing::read_reference_cases(dir);
}

void expect_close(std::span<const float> got, std::span<const float> want,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  float worst = 0;
  size_t worst_at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    float err = std::abs(got[i] - want[i]) - kRelTol * std::abs(want[i]);
    ASSERT_FALSE(std::isnan(got[i])) << what << " NaN at " << i;
    if (err > worst) {
      worst = err;
      worst_at = i;
    }
  }
  EXPECT_LE(worst, kAbsTol) << what << ": at " << worst_at << " got " << got[worst_at] << " want "
                            << want[worst_at];
}

int32_t argmax(std::span<const float> row) {
  return static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
}

// A model on the CPU backend (weights in `weights`) with a KV pool and a trivial block allocator.
class Harness {
 public:
  explicit Harness(const std::filesystem::path& dir, DType weights = DType::kF32)
      : backend_(create_backend(DeviceKind::kCpu, weights)) {
    model_ = load_model(dir, *backend_);
    kv_ = backend_->allocate_kv_cache(model_->kv_cache_spec(kBlockSize, 128));
    runner_ = std::make_unique<ModelRunner>(*model_, *backend_, kv_);
  }
  int32_t vocab() const { return model_->config().vocab_size; }
  std::vector<int32_t> new_table(int32_t num_tokens) {
    std::vector<int32_t> t;
    // Hand out blocks in reverse so tables are not the identity mapping.
    for (int32_t i = 0; i * kBlockSize < num_tokens; ++i) t.push_back(127 - next_block_++);
    return t;
  }
  ModelRunner& runner() { return *runner_; }
  static constexpr int32_t kBlockSize = 16;

 private:
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Model> model_;
  KvCache kv_;
  std::unique_ptr<ModelRunner> runner_;
  int32_t next_block_ = 0;
};

void prefill_and_decode_alone(const std::string& model, DType weights) {
  const auto dir = kModels / model;
  auto cases = read_cases(dir);
  ASSERT_FALSE(cases.empty());
  for (size_t ci = 0; ci < cases.size(); ++ci) {
    const Case& c = cases[ci];
    Harness h(dir, weights);
    const int32_t v = h.vocab();
    const int32_t t = static_cast<int32_t>(c.prompt.size());
    auto table = h.new_table(t + static_cast<int32_t>(c.decode_tokens.size()) + 1);
    RunnerSequence seq{c.prompt.data(), t, 0, &table, LogitRows::kAll};
    auto logits = h.runner().forward_logits({&seq, 1});
    expect_close(logits, c.prefill_logits, model + " case " + std::to_string(ci) + " prefill");
    for (size_t j = 0; j < c.decode_tokens.size(); ++j) {
      RunnerSequence step{&c.decode_tokens[j], 1, t + static_cast<int32_t>(j), &table,
                          LogitRows::kLast};
      auto row = h.runner().forward_logits({&step, 1});
      expect_close(row, std::span<const float>(c.decode_logits).subspan(j * v, v),
                   model + " case " + std::to_string(ci) + " decode " + std::to_string(j));
    }
  }
}

// All cases run together: one batch of prefills of different lengths, then batched decodes of
// greedy tokens; the greedy continuations must equal HF's exactly.
void greedy_batched(const std::string& model, DType weights) {
  const auto dir = kModels / model;
  auto cases = read_cases(dir);
  Harness h(dir, weights);
  std::vector<std::vector<int32_t>> tokens, tables;
  for (const Case& c : cases) {
    tokens.push_back(c.prompt);
    tables.push_back(h.new_table(static_cast<int32_t>(c.prompt.size() + c.greedy.size())));
  }
  std::vector<int32_t> computed(cases.size(), 0);
  const size_t steps = cases[0].greedy.size();
  for (size_t step = 0; step < steps; ++step) {
    std::vector<RunnerSequence> seqs;
    for (size_t i = 0; i < cases.size(); ++i) {
      const int32_t n = static_cast<int32_t>(tokens[i].size()) - computed[i];
      seqs.push_back(
          {tokens[i].data() + computed[i], n, computed[i], &tables[i], LogitRows::kLast});
    }
    auto logits = h.runner().forward_logits(seqs);
    for (size_t i = 0; i < cases.size(); ++i) {
      computed[i] = static_cast<int32_t>(tokens[i].size());
      tokens[i].push_back(argmax(logits.subspan(i * h.vocab(), h.vocab())));
    }
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    std::vector<int32_t> got(
        tokens[i].begin() + static_cast<std::ptrdiff_t>(cases[i].prompt.size()), tokens[i].end());
    EXPECT_EQ(got, cases[i].greedy) << model << " case " << i;
  }
}

// The longest prompt prefilled in chunks of 7 tokens gives the same last-position logits.
void chunked_prefill(const std::string& model, DType weights) {
  const auto dir = kModels / model;
  auto cases = read_cases(dir);
  const Case& c = *std::max_element(cases.begin(), cases.end(), [](const Case& a, const Case& b) {
    return a.prompt.size() < b.prompt.size();
  });
  Harness h(dir, weights);
  const int32_t t = static_cast<int32_t>(c.prompt.size()), v = h.vocab();
  auto table = h.new_table(t);
  std::span<const float> last;
  for (int32_t done = 0; done < t; done += 7) {
    const int32_t n = std::min(7, t - done);
    // The whole prompt's length picks LongRoPE's rows, as in one forward (and as the engine does).
    RunnerSequence seq{c.prompt.data() + done, n, done, &table, LogitRows::kLast, t};
    last = h.runner().forward_logits({&seq, 1});
  }
  expect_close(
      last, std::span<const float>(c.prefill_logits).subspan(static_cast<size_t>((t - 1) * v), v),
      model + " chunked");
}

class Golden : public ::testing::TestWithParam<std::string> {};

TEST_P(Golden, PrefillDecodeAndGreedyAlone) {
  prefill_and_decode_alone(GetParam(), DType::kF32);
}
TEST_P(Golden, GreedyBatchedMatchesReference) {
  greedy_batched(GetParam(), DType::kF32);
}
TEST_P(Golden, ChunkedPrefillMatchesReference) {
  chunked_prefill(GetParam(), DType::kF32);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Golden,
                         ::testing::Values("gpt2-tiny", "gpt2-tiny-fp16", "llama-tiny",
                                           "llama-tiny-bf16", "qwen2-tiny", "qwen3-tiny",
                                           "llama32-tied-tiny", "phi3-tiny", "mistral-tiny",
                                           "gemma2-tiny", "gemma3-tiny", "phi3-longrope-tiny",
                                           "qwen2-yarn-tiny", "llama-dynamic-tiny", "mixtral-tiny",
                                           "qwen2moe-tiny", "qwen3moe-tiny",
                                           // pre-quantized checkpoints, dequantized at load
                                           // (model/quantized_checkpoint.h); references from
                                           // the same dequantized weights
                                           "llama-tiny-fp8-ct", "llama-tiny-fp8-block",
                                           "llama-tiny-awq", "llama-tiny-gptq"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

// The 16-bit checkpoints with their weights kept in 16 bits, as `--device cpu` serves them by
// default (default_cpu_weight_dtype). The weights are the checkpoint's own values, so HF's logits
// hold to the same fp32 tolerance: only the order of the fp32 sums differs. A widening that got a
// mantissa bit or an exponent wrong fails these.
class GoldenKept16Bit : public ::testing::TestWithParam<std::string> {
 protected:
  DType weights() const { return default_cpu_weight_dtype(kModels / GetParam()); }
};

TEST_P(GoldenKept16Bit, PrefillDecodeAndGreedyAlone) {
  ASSERT_NE(weights(), DType::kF32);
  prefill_and_decode_alone(GetParam(), weights());
}
TEST_P(GoldenKept16Bit, GreedyBatchedMatchesReference) {
  greedy_batched(GetParam(), weights());
}
TEST_P(GoldenKept16Bit, ChunkedPrefillMatchesReference) {
  chunked_prefill(GetParam(), weights());
}

// Sees the dtype of every loaded tensor.
class DtypeRecorder final : public WeightRecorder {
 public:
  void record(const std::string& key, const Tensor& t) override {
    (t.ndim == 2 ? two_d : one_d).emplace_back(key, t.dtype);
  }
  std::vector<std::pair<std::string, DType>> one_d, two_d;
};

// What is kept in 16 bits: every 2-D weight (linear layers, embeddings, the lm_head); norms and
// biases stay fp32, as the ops that read them want.
TEST_P(GoldenKept16Bit, TwoDimensionalWeightsAreHeldIn16Bits) {
  auto backend = create_backend(DeviceKind::kCpu, weights());
  DtypeRecorder recorder;
  LoadOptions options;
  options.recorder = &recorder;
  const auto model = load_model(kModels / GetParam(), *backend, options);
  EXPECT_FALSE(recorder.two_d.empty());
  for (const auto& [key, dtype] : recorder.two_d) EXPECT_EQ(dtype, weights()) << key;
  for (const auto& [key, dtype] : recorder.one_d) EXPECT_EQ(dtype, DType::kF32) << key;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GoldenKept16Bit,
                         ::testing::Values("gpt2-tiny-fp16", "llama-tiny-bf16", "qwen3-tiny",
                                           "mistral-tiny", "gemma3-tiny", "mixtral-tiny",
                                           "qwen3moe-tiny"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

// --device cpu's default: a 16-bit checkpoint's own dtype; fp32 for fp32 checkpoints and for
// pre-quantized ones (dequantized at load to values 16 bits would round), whatever their other
// tensors are stored in.
TEST(CpuWeightDtype, KeepsA16BitCheckpointsDtype) {
  EXPECT_EQ(default_cpu_weight_dtype(kModels / "gpt2-tiny"), DType::kF32);
  EXPECT_EQ(default_cpu_weight_dtype(kModels / "gpt2-tiny-fp16"), DType::kF16);
  EXPECT_EQ(default_cpu_weight_dtype(kModels / "llama-tiny-bf16"), DType::kBF16);
  EXPECT_EQ(default_cpu_weight_dtype(kModels / "llama-tiny-awq"), DType::kF32);
  EXPECT_EQ(default_cpu_weight_dtype(kModels / "llama-tiny-fp8-ct"), DType::kF32);
}

}  // namespace
}  // namespace llmserve
