// Weight quantization at load (--quantization int8-wo, fp8 and int4-wo; the host arithmetic itself:
// quantize_arithmetic_test.cpp): whole models quantized at load stay close to the unquantized
// ones on the fixtures and on the embedded default model: relative L2 of the logits, greedy-token
// agreement, and the perplexity of a held-out text under teacher forcing. The thresholds are the
// measured figures (in the comments) with margin; a broken scale (e.g. off by a factor, or per
// tensor instead of per row) moves the logits by O(1) and fails them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "common/half.h"
#include "engine/engine.h"
#include "engine/model_runner.h"
#include "engine/rank_pool.h"
#include "model/model.h"
#include "model/quantize.h"
#include "testing/reference_cases.h"
#include "tokenizer/tokenizer.h"

namespace llmserve {
namespace {

const std::filesystem::path kModels = std::filesystem::path(LLMSERVE_TEST_DATA) / "models";
const std::filesystem::path kDefault =
    std::filesystem::path(LLMSERVE_SOURCE_DIR) / "models/default";

struct Bounds {
  double max_rel_l2;
  double min_greedy;
  double max_ppl_diff;
};

// int8-wo thresholds: measured (Release, 2026-11-25) -> bound. The fixtures are random tiny models
// whose top-1 margins are small, so free-running greedy decoding diverges sooner there than on the
// trained default model. Measured per fixture (tp 1 / tp 2): rel L2 0.019-0.035, greedy agreement
// over 20 steps 0.56-0.90, ppl relative difference 0.006-0.019. Default model: rel L2 0.0013,
// greedy agreement over 32 steps x 4 prompts 0.93, ppl relative difference 0.00002. Since the CPU's
// int8 decode kernels round x to int8 too (blocks of 32, backend/cpu/cpu_matmul_q8.cpp; 2026-12-07,
// an AVX-VNNI CPU): fixtures rel L2 0.026-0.048, greedy 0.50-1.0, ppl 0.007-0.034; default model
// unchanged (0.0013 / 0.99 / 0.00002).
constexpr Bounds kInt8Fixture{0.07, 0.45, 0.05};
constexpr Bounds kInt8Default{0.005, 0.8, 1e-3};
// fp8 thresholds: weights per output row and every linear layer's input per token go through e4m3
// (3 mantissa bits: ~3.6 % RMS relative rounding error per value, against ~1 % for int8 per-row
// weights, and the activations are rounded too), so several times int8's logit error. Measured
// (Release, 2026-12-06) -> bound. Per fixture (tp 1 / tp 2): rel L2 0.111-0.194 (GPT-2 0.11, Llama
// 0.19: the gated MLP multiplies two rounded matmuls), greedy agreement 0.20-0.49, ppl relative
// difference 0.035-0.191. Default model: rel L2 0.0096, greedy agreement 0.92, ppl relative
// difference 0.0003 (per-tensor scales, before: 0.0086 / 0.77 / 0.0012). Weight scales stored 2x
// too large measured rel L2 0.49-0.82 and ppl difference 0.57-3.5 on the fixtures and 0.45 / 4.7
// on the default model: the L2 and perplexity bounds separate them. Greedy agreement does not on
// the random fixtures (0.03-0.11 broken), only on the default model (0.08).
constexpr Bounds kFp8Fixture{0.3, 0.12, 0.3};
constexpr Bounds kFp8Default{0.02, 0.8, 0.002};
// fp8 KV cache thresholds (--kv-cache-dtype fp8: keys and values rounded to e4m3, scale 1; weights
// and activations untouched). Measured (ASan build, 2026-12-05) -> bound. Per fixture (tp 1 / 2):
// rel L2 0.055-0.101, greedy agreement 0.30-0.66, ppl relative difference 0.018-0.067. Default
// model: rel L2 0.0015, greedy agreement 0.99, ppl relative difference 0.0010. A cache read back
// 2x too large measured rel L2 0.59-0.78 and ppl difference 0.70-3.7 on the fixtures and 0.18 /
// 0.76 (greedy 0.06) on the default model: every bound below separates it.
constexpr Bounds kKvFp8Fixture{0.2, 0.2, 0.15};
// int4-wo thresholds: 16 levels per group of 32 (the fixtures' 64- and 160-wide rows) or 128 inputs
// (the default model) with a scale and zero each, ~8 % RMS relative rounding per weight of a random
// fixture, twice fp8's, which the random tiny models amplify most in Llama's gated MLP. Measured
// (Release, 2026-12-07) -> bound. GPT-2 fixtures (tp 1 / tp 2): rel L2 0.279-0.305, greedy
// agreement 0.15-0.225, ppl relative difference 0.211-0.299; Llama fixtures: rel L2 0.463-0.477,
// greedy 0.062-0.075, ppl 0.714-0.877; default model: rel L2 0.0141, greedy 0.47, ppl 0.0136.
// Scales stored 2x too large (a planted bug) measured rel L2 0.550-0.621 / ppl 0.638-1.32 (GPT-2),
// 0.808-0.858 / 3.30-4.74 (Llama) and 0.417 / 4.84 (greedy 0.06) on the default model: the L2 and
// perplexity bounds separate them per family; greedy agreement only on the default model.
constexpr Bounds kInt4Gpt2Fixture{0.42, 0.1, 0.45};
constexpr Bounds kInt4LlamaFixture{0.65, 0.05, 1.5};
constexpr Bounds kInt4Default{0.03, 0.35, 0.03};
// MoE fixtures (mixtral-tiny, qwen2moe-tiny, qwen3moe-tiny; experts quantized, routers not):
// measured (Release, 2026-12-07) int8-wo rel L2 0.039-0.169, greedy agreement 0.36-0.46, ppl
// relative difference 0.021-0.033; int4-wo rel L2 0.45-0.60, greedy 0.025-0.062, ppl 0.52-1.28.
// The fixtures' routers are only 1e-3 from a tie (scripts/make_reference.py), so the rounding of
// the attention and expert weights flips some tokens' expert choice, which moves their MLP output
// wholesale: the logits move more than a dense model's, and greedy agreement says little here.
// Expert outputs 2x too large (a planted bug) measured rel L2 1.01-1.17 and ppl 5.9-28 under both
// schemes: the L2 and perplexity bounds separate it. With the CPU's integer int8 kernels (x rounded
// to int8 too, backend/cpu/cpu_matmul_q8.cpp): int8-wo rel L2 0.055-0.177, greedy 0.25-0.54, ppl
// 0.014-0.140 (qwen3moe: more flipped routes), so the int8 bounds are the int4 ones' order of
// magnitude below, still 4x under the planted bug's L2 and 40x under its perplexity.
constexpr Bounds kInt8MoeFixture{0.25, 0.15, 0.2};
constexpr Bounds kInt4MoeFixture{0.8, 0.0, 2.0};

// The bounds of scheme q on the default model (model empty) or a fixture.
const Bounds& bounds_for(Quantization q, const std::string& model = {}) {
  const bool default_model = model.empty();
  if (model.find("moe") != std::string::npos || model.starts_with("mixtral"))
    return q == Quantization::kInt4WeightOnly ? kInt4MoeFixture : kInt8MoeFixture;
  switch (q) {
    case Quantization::kFp8:
      return default_model ? kFp8Default : kFp8Fixture;
    case Quantization::kInt4WeightOnly:
      return default_model               ? kInt4Default
             : model.starts_with("gpt2") ? kInt4Gpt2Fixture
                                         : kInt4LlamaFixture;
    default:
      return default_model ? kInt8Default : kInt8Fixture;
  }
}
constexpr Bounds kKvFp8Default{0.005, 0.9, 0.004};

// A model loaded (optionally quantized, optionally over `tp` CPU ranks) with a runner and one
// block table reused by every sequence (each is run from position 0).
class QuantHarness {
 public:
  static constexpr int32_t kBlockSize = 16, kBlocks = 32;
  QuantHarness(const std::filesystem::path& dir, Quantization quantization, int32_t tp = 1,
               std::optional<DType> kv_dtype = std::nullopt)
      : backends_(create_backend_group(DeviceKind::kCpu, DType::kF32, tp)),
        pool_(tp, [](int32_t) {}),
        models_(static_cast<size_t>(tp)),
        kv_(static_cast<size_t>(tp)) {
    RunnerOptions o;
    o.max_num_tokens = kBlocks * kBlockSize;
    o.max_batch_size = 4;
    pool_.run([&](int32_t r) {
      const auto i = static_cast<size_t>(r);
      models_[i] = load_model(dir, *backends_[i], LoadOptions{quantization});
      KvCacheSpec spec = models_[i]->kv_cache_spec(kBlockSize, kBlocks);
      if (kv_dtype) spec.dtype = *kv_dtype;
      kv_[i] = backends_[i]->allocate_kv_cache(spec);
    });
    o.max_model_len = std::min(kBlocks * kBlockSize, models_[0]->config().max_position_embeddings);
    std::vector<RunnerRank> ranks;
    for (size_t i = 0; i < models_.size(); ++i)
      ranks.push_back({models_[i].get(), backends_[i].get(), &kv_[i]});
    runner_ = std::make_unique<ModelRunner>(std::move(ranks), &pool_, o);
    for (int32_t b = 0; b < kBlocks; ++b) table_.push_back(kBlocks - 1 - b);
  }
  int32_t vocab() const { return models_[0]->config().vocab_size; }

  // Teacher forcing: the logits at every position of `tokens`, [T, V].
  std::vector<float> all_logits(const std::vector<int32_t>& tokens) {
    RunnerSequence seq{tokens.data(), static_cast<int32_t>(tokens.size()), 0, &table_,
                       LogitRows::kAll};
    auto logits = runner_->forward_logits({&seq, 1});
    return {logits.begin(), logits.end()};
  }

  // Greedy continuation of `prompt` by `steps` tokens, one decode step each.
  std::vector<int32_t> greedy(std::vector<int32_t> tokens, int32_t steps) {
    std::vector<int32_t> out;
    int32_t computed = 0;
    for (int32_t s = 0; s < steps; ++s) {
      const int32_t fresh = static_cast<int32_t>(tokens.size()) - computed;
      RunnerSequence seq{tokens.data() + computed, fresh, computed, &table_, LogitRows::kLast};
      auto logits = runner_->forward_logits({&seq, 1});
      const auto best =
          static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
      computed = static_cast<int32_t>(tokens.size());
      tokens.push_back(best);
      out.push_back(best);
    }
    return out;
  }

 private:
  std::vector<std::unique_ptr<Backend>> backends_;
  RankPool pool_;
  std::vector<std::unique_ptr<Model>> models_;
  std::vector<KvCache> kv_;
  std::unique_ptr<ModelRunner> runner_;
  std::vector<int32_t> table_;
};

double rel_l2(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num += (got[i] - want[i]) * static_cast<double>(got[i] - want[i]);
    den += want[i] * static_cast<double>(want[i]);
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

// exp(mean negative log-likelihood of tokens[1:] given the prefix), from teacher-forced logits.
double perplexity(const std::vector<float>& logits, const std::vector<int32_t>& tokens,
                  int32_t vocab) {
  double nll = 0;
  for (size_t t = 0; t + 1 < tokens.size(); ++t) {
    const float* row = logits.data() + t * static_cast<size_t>(vocab);
    const float mx = *std::max_element(row, row + vocab);
    double sum = 0;
    for (int32_t v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(row[v] - mx));
    nll -= static_cast<double>(row[tokens[t + 1]] - mx) - std::log(sum);
  }
  return std::exp(nll / static_cast<double>(tokens.size() - 1));
}

struct Agreement {
  double max_rel_l2 = 0;
  double greedy_rate = 0;   // tokens equal at the same step / all steps
  double ppl_rel_diff = 0;  // |ppl_q - ppl| / ppl on the held-out texts, the worst one
};

Agreement compare(QuantHarness& base, QuantHarness& quant,
                  const std::vector<std::vector<int32_t>>& texts,
                  const std::vector<std::vector<int32_t>>& prompts, int32_t steps) {
  Agreement a;
  for (const auto& text : texts) {
    const std::vector<float> want = base.all_logits(text);
    const std::vector<float> got = quant.all_logits(text);
    a.max_rel_l2 = std::max(a.max_rel_l2, rel_l2(got, want));
    const double p = perplexity(want, text, base.vocab()),
                 pq = perplexity(got, text, quant.vocab());
    a.ppl_rel_diff = std::max(a.ppl_rel_diff, std::abs(pq - p) / p);
  }
  int32_t same = 0, total = 0;
  for (const auto& prompt : prompts) {
    const auto want = base.greedy(prompt, steps), got = quant.greedy(prompt, steps);
    for (size_t i = 0; i < want.size(); ++i) same += want[i] == got[i] ? 1 : 0;
    total += static_cast<int32_t>(want.size());
  }
  a.greedy_rate = static_cast<double>(same) / total;
  return a;
}

// A fixture's held-out texts (each case's prompt followed by its reference greedy continuation)
// and its prompts.
std::pair<std::vector<std::vector<int32_t>>, std::vector<std::vector<int32_t>>> held_out(
    const std::filesystem::path& dir) {
  std::vector<std::vector<int32_t>> texts, prompts;
  for (const auto& c : testing::read_reference_cases(dir)) {
    std::vector<int32_t> t = c.prompt;
    t.insert(t.end(), c.greedy.begin(), c.greedy.end());
    texts.push_back(t);
    prompts.push_back(c.prompt);
  }
  return {texts, prompts};
}

struct FixtureCase {
  std::string model;
  Quantization quantization = Quantization::kInt8WeightOnly;
  int32_t tp = 1;
};

class QuantizedFixtures : public ::testing::TestWithParam<FixtureCase> {};

// Held-out text: each case's prompt followed by the reference greedy continuation; tp 2 quantizes
// each rank's slice (row-parallel layers get their own scales per slice).
TEST_P(QuantizedFixtures, CloseToUnquantized) {
  const FixtureCase& p = GetParam();
  const auto dir = kModels / p.model;
  const auto [texts, prompts] = held_out(dir);
  QuantHarness base(dir, Quantization::kNone), quant(dir, p.quantization, p.tp);
  const Agreement a = compare(base, quant, texts, prompts, 20);
  std::printf("[ %s ] %s tp %d: logits rel L2 %.5f, greedy agreement %.3f, ppl rel diff %.5f\n",
              std::string(quantization_name(p.quantization)).c_str(), p.model.c_str(), p.tp,
              a.max_rel_l2, a.greedy_rate, a.ppl_rel_diff);
  const Bounds& b = bounds_for(p.quantization, p.model);
  EXPECT_LT(a.max_rel_l2, b.max_rel_l2);
  EXPECT_GE(a.greedy_rate, b.min_greedy);
  EXPECT_LT(a.ppl_rel_diff, b.max_ppl_diff);
}

std::string fixture_case_name(const ::testing::TestParamInfo<FixtureCase>& info) {
  std::string n = info.param.model + "_tp" + std::to_string(info.param.tp);
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
}

// gemma2-tiny stands for the sliding-window and soft-capped families: the random weights of
// mistral-tiny put its greedy agreement under fp8 weights (0.08) and the fp8 KV cache (0.19), and
// those of gemma3-tiny its perplexity difference under the fp8 KV cache (0.24), outside the bounds
// tuned on these fixtures.
std::vector<FixtureCase> fixture_cases(Quantization q) {
  std::vector<FixtureCase> cases = {{"gpt2-tiny", q},    {"gpt2-tiny-fp16", q},
                                    {"llama-tiny", q},   {"llama-tiny-bf16", q},
                                    {"gpt2-tiny", q, 2}, {"llama-tiny", q, 2}};
  // int4 steps are 32 inputs: llama-tiny's down projection (160 inputs) has 80 a rank at tp 2.
  if (q == Quantization::kInt4WeightOnly) cases.pop_back();
  cases.push_back({"gemma2-tiny", q});
  return cases;
}

// int4-wo on a layer whose inputs a rank holds are not a multiple of 32 is refused, naming the
// layer and the tensor-parallel split.
TEST(Int4Quantization, RefusesRowsNotMultipleOf32) {
  try {
    QuantHarness quant(kModels / "llama-tiny", Quantization::kInt4WeightOnly, 2);
    ADD_FAILURE() << "80 inputs a rank accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kInvalidArgument);
    const std::string m = e.what();
    EXPECT_NE(m.find("down_proj"), std::string::npos) << m;
    EXPECT_NE(m.find("has 80 on each of the 2 tensor-parallel ranks"), std::string::npos) << m;
  }
}

INSTANTIATE_TEST_SUITE_P(Int8, QuantizedFixtures,
                         ::testing::ValuesIn(fixture_cases(Quantization::kInt8WeightOnly)),
                         fixture_case_name);
INSTANTIATE_TEST_SUITE_P(Fp8, QuantizedFixtures,
                         ::testing::ValuesIn(fixture_cases(Quantization::kFp8)), fixture_case_name);
INSTANTIATE_TEST_SUITE_P(Int4, QuantizedFixtures,
                         ::testing::ValuesIn(fixture_cases(Quantization::kInt4WeightOnly)),
                         fixture_case_name);

// The MoE families: each expert's rows quantized like a linear layer's (the router kept as it
// is), under int8-wo and int4-wo, alone and with the experts split over 2 ranks (int8-wo: int4's
// 32-input steps leave the experts' 32 inputs 16 a rank).
std::vector<FixtureCase> moe_cases(Quantization q) {
  std::vector<FixtureCase> cases = {
      {"mixtral-tiny", q}, {"qwen2moe-tiny", q}, {"qwen3moe-tiny", q}};
  if (q == Quantization::kInt8WeightOnly) cases.push_back({"qwen2moe-tiny", q, 2});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(MoeInt8, QuantizedFixtures,
                         ::testing::ValuesIn(moe_cases(Quantization::kInt8WeightOnly)),
                         fixture_case_name);
INSTANTIATE_TEST_SUITE_P(MoeInt4, QuantizedFixtures,
                         ::testing::ValuesIn(moe_cases(Quantization::kInt4WeightOnly)),
                         fixture_case_name);

// fp8 W8A8 needs e4m3 codes of every linear input, which the experts' grouped rows do not have:
// refused at load, naming the flag.
TEST(MoeQuantization, Fp8IsRefusedNamingTheFlag) {
  try {
    QuantHarness quant(kModels / "mixtral-tiny", Quantization::kFp8);
    ADD_FAILURE() << "fp8 experts accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kUnimplemented);
    const std::string m = e.what();
    EXPECT_NE(m.find("--quantization fp8"), std::string::npos) << m;
    EXPECT_NE(m.find("MixtralForCausalLM"), std::string::npos) << m;
  }
}

// A pre-quantized AWQ checkpoint served with int4-wo (what the engine picks for it) finds its
// codes again: at its own group size (32) every group whose codes reach 0 and 15 requantizes to
// the same codes, scale and zero, so the logits are those of the dequantized model up to the fp32
// summation order. GPTQ with act-order (g_idx) groups inputs out of order; requantized in
// contiguous groups it is an approximation, bounded like a fresh int4 quantization.
TEST(Int4Checkpoints, AwqCodesFoundAgainGptqActOrderApproximated) {
  for (const char* model : {"llama-tiny-awq", "llama-tiny-gptq"}) {
    const auto dir = kModels / model;
    const auto [texts, prompts] = held_out(dir);
    QuantHarness base(dir, Quantization::kNone), quant(dir, Quantization::kInt4WeightOnly);
    const Agreement a = compare(base, quant, texts, prompts, 20);
    std::printf("[ int4-wo ] %s: logits rel L2 %.7f, greedy agreement %.3f, ppl rel diff %.6f\n",
                model, a.max_rel_l2, a.greedy_rate, a.ppl_rel_diff);
    if (std::string(model) == "llama-tiny-awq") {
      EXPECT_LT(a.max_rel_l2, 1e-5);
      EXPECT_EQ(a.greedy_rate, 1.0);
    } else {  // measured: rel L2 0.388, ppl relative difference 0.296
      EXPECT_LT(a.max_rel_l2, kInt4LlamaFixture.max_rel_l2);
      EXPECT_LT(a.ppl_rel_diff, kInt4LlamaFixture.max_ppl_diff);
    }
  }
}

// Held out from nothing in particular: Shakespeare (the default model's training corpus is Tiny
// Shakespeare, so this passage may have been seen; the comparison is between two versions of the
// same model, which is what matters here).
constexpr const char* kPassage =
    "ROMEO:\nBut, soft! what light through yonder window breaks?\nIt is the east, and Juliet is "
    "the sun.\n"
    "Arise, fair sun, and kill the envious moon,\nWho is already sick and pale with grief,\n"
    "That thou her maid art far more fair than she.\n\nJULIET:\nO Romeo, Romeo! wherefore art thou "
    "Romeo?\n"
    "Deny thy father and refuse thy name;\nOr, if thou wilt not, be but sworn my love,\n"
    "And I'll no longer be a Capulet.\n";

std::string scheme_name(const ::testing::TestParamInfo<Quantization>& info) {
  return info.param == Quantization::kFp8              ? "fp8"
         : info.param == Quantization::kInt4WeightOnly ? "int4"
                                                       : "int8";
}

// The passage and four prompts, as the default model's tokens.
std::pair<std::vector<int32_t>, std::vector<std::vector<int32_t>>> default_model_texts() {
  auto tokenizer = Tokenizer::from_dir(kDefault);
  std::vector<std::vector<int32_t>> prompts;
  for (const char* p : {"First Citizen:\nBefore we proceed", "KING RICHARD III:\nNow is the winter",
                        "To be, or not to be", "MENENIUS:\nWhat work's, my countrymen"}) {
    prompts.push_back(tokenizer->encode(p));
  }
  return {tokenizer->encode(kPassage), prompts};
}

class QuantizedDefaultModel : public ::testing::TestWithParam<Quantization> {};

TEST_P(QuantizedDefaultModel, CloseToUnquantized) {
  const auto [text, prompts] = default_model_texts();
  QuantHarness base(kDefault, Quantization::kNone), quant(kDefault, GetParam());
  const Agreement a = compare(base, quant, {text}, prompts, 32);
  std::printf(
      "[ %s ] default model: logits rel L2 %.5f, greedy agreement %.3f, ppl rel diff %.5f\n",
      std::string(quantization_name(GetParam())).c_str(), a.max_rel_l2, a.greedy_rate,
      a.ppl_rel_diff);
  const Bounds& b = bounds_for(GetParam());
  EXPECT_LT(a.max_rel_l2, b.max_rel_l2);
  EXPECT_GE(a.greedy_rate, b.min_greedy);
  EXPECT_LT(a.ppl_rel_diff, b.max_ppl_diff);
}

INSTANTIATE_TEST_SUITE_P(Schemes, QuantizedDefaultModel,
                         ::testing::Values(Quantization::kInt8WeightOnly, Quantization::kFp8,
                                           Quantization::kInt4WeightOnly),
                         scheme_name);

TEST(QuantizedEngineConfig, AcceptedOnCpuAndCudaRefusedOnNull) {
  for (Quantization q :
       {Quantization::kInt8WeightOnly, Quantization::kFp8, Quantization::kInt4WeightOnly}) {
    EngineConfig c;
    c.model_dir = kModels / "gpt2-tiny";
    c.quantization = q;
    EXPECT_TRUE(c.validate().is_ok()) << c.validate().to_string();
    c.device = DeviceKind::kCuda;
    EXPECT_TRUE(c.validate().is_ok()) << c.validate().to_string();
    c.device = DeviceKind::kNull;
    const Status s = c.validate();
    EXPECT_EQ(s.code(), StatusCode::kUnimplemented);
    EXPECT_NE(s.message().find("--quantization " + std::string(quantization_name(q))),
              std::string::npos)
        << s.message();
  }
  EXPECT_EQ(parse_quantization("int8-wo"), Quantization::kInt8WeightOnly);
  EXPECT_EQ(parse_quantization("fp8"), Quantization::kFp8);
  EXPECT_EQ(parse_quantization("int4-wo"), Quantization::kInt4WeightOnly);
  EXPECT_EQ(parse_quantization("none"), Quantization::kNone);
  EXPECT_FALSE(parse_quantization("int4").has_value());
  EXPECT_FALSE(parse_quantization("fp8-e5m2").has_value());
  EXPECT_EQ(quantization_name(Quantization::kInt8WeightOnly), "int8-wo");
  EXPECT_EQ(quantization_name(Quantization::kFp8), "fp8");
  EXPECT_EQ(quantization_name(Quantization::kInt4WeightOnly), "int4-wo");
}

// Through the engine (two tensor-parallel ranks): the greedy tokens of the quantized model are
// those of the runner-level harness over the same two ranks.
class QuantizedEngine : public ::testing::TestWithParam<Quantization> {};

TEST_P(QuantizedEngine, GeneratesOnTheCpuWithTensorParallel) {
  const auto dir = kModels / "gpt2-tiny";
  const auto cases = testing::read_reference_cases(dir);
  QuantHarness quant(dir, GetParam(), 2);
  const std::vector<int32_t> want = quant.greedy(cases[0].prompt, 8);
  EngineConfig c;
  c.model_dir = dir;
  c.num_kv_blocks = 64;
  c.seed = 1;
  c.tensor_parallel_size = 2;
  c.quantization = GetParam();
  Engine engine(c);
  Request r;
  r.prompt_token_ids = cases[0].prompt;
  r.sampling.temperature = 0;
  r.sampling.max_tokens = 8;
  r.sampling.ignore_eos = true;
  std::shared_ptr<RequestStream> stream;
  ASSERT_TRUE(engine.submit(std::move(r), stream).is_ok());
  std::vector<int32_t> got;
  RequestOutput out;
  while (stream->next(out, std::chrono::seconds(60))) {
    got.insert(got.end(), out.token_ids.begin(), out.token_ids.end());
    if (out.is_final()) break;
  }
  EXPECT_EQ(got, want);
}

INSTANTIATE_TEST_SUITE_P(Schemes, QuantizedEngine,
                         ::testing::Values(Quantization::kInt8WeightOnly, Quantization::kFp8,
                                           Quantization::kInt4WeightOnly),
                         scheme_name);

// --kv-cache-dtype fp8: keys and values stored as e4m3 (scale 1) and read back through the table,
// weights unquantized. Compared with the fp32 cache on the same texts and prompts as above.
class KvFp8Fixtures : public ::testing::TestWithParam<FixtureCase> {};

TEST_P(KvFp8Fixtures, CloseToFp32Cache) {
  const FixtureCase& p = GetParam();
  const auto dir = kModels / p.model;
  const auto [texts, prompts] = held_out(dir);
  QuantHarness base(dir, Quantization::kNone), fp8(dir, Quantization::kNone, p.tp, DType::kF8E4M3);
  const Agreement a = compare(base, fp8, texts, prompts, 20);
  std::printf("[ kv fp8 ] %s tp %d: logits rel L2 %.5f, greedy agreement %.3f, ppl rel diff %.5f\n",
              p.model.c_str(), p.tp, a.max_rel_l2, a.greedy_rate, a.ppl_rel_diff);
  EXPECT_LT(a.max_rel_l2, kKvFp8Fixture.max_rel_l2);
  EXPECT_GE(a.greedy_rate, kKvFp8Fixture.min_greedy);
  EXPECT_LT(a.ppl_rel_diff, kKvFp8Fixture.max_ppl_diff);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, KvFp8Fixtures,
                         ::testing::ValuesIn(fixture_cases(Quantization::kNone)),
                         fixture_case_name);

TEST(KvFp8DefaultModel, CloseToFp32Cache) {
  const auto [text, prompts] = default_model_texts();
  QuantHarness base(kDefault, Quantization::kNone),
      fp8(kDefault, Quantization::kNone, 1, DType::kF8E4M3);
  const Agreement a = compare(base, fp8, {text}, prompts, 32);
  std::printf(
      "[ kv fp8 ] default model: logits rel L2 %.5f, greedy agreement %.3f, ppl rel diff %.5f\n",
      a.max_rel_l2, a.greedy_rate, a.ppl_rel_diff);
  EXPECT_LT(a.max_rel_l2, kKvFp8Default.max_rel_l2);
  EXPECT_GE(a.greedy_rate, kKvFp8Default.min_greedy);
  EXPECT_LT(a.ppl_rel_diff, kKvFp8Default.max_ppl_diff);
}

TEST(KvFp8, QuarterOfFp32BytesHalfOfBf16OnBothDevices) {
  KvCacheSpec spec{2, 4, 64, 16, 1, DType::kF32};
  const size_t fp32 = spec.bytes_per_block();
  spec.dtype = DType::kBF16;
  const size_t bf16 = spec.bytes_per_block();
  spec.dtype = DType::kF8E4M3;
  EXPECT_EQ(spec.bytes_per_block() * 4, fp32);
  EXPECT_EQ(spec.bytes_per_block() * 2, bf16);
  EngineConfig c;
  c.kv_cache_dtype = DType::kF8E4M3;
  for (const DeviceKind device : {DeviceKind::kCuda, DeviceKind::kCpu}) {
    c.device = device;
    EXPECT_TRUE(c.validate().is_ok()) << c.validate().message();
  }
  c.kv_cache_dtype = DType::kBF16;
  EXPECT_NE(c.validate().message().find("--kv-cache-dtype"), std::string::npos);
}

}  // namespace
}  // namespace llmserve
