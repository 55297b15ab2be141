// Tests for the sampler (sampler.h) and its rng (philox.h). Every expected value is worked out by
// hand from small logit vectors (or by an independent full-sort oracle for the large-vocabulary
// cases); the statistical tests compare sample frequencies with softmax by a chi-square test whose
// fixed seed makes them deterministic.
#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "engine/philox.h"

namespace llmserve {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
using Logits = std::vector<float>;
using Ids = std::vector<int32_t>;

SamplingState state_after(const SamplingParams& p, const Ids& prompt, const Ids& generated,
                          uint64_t default_seed = 0) {
  SamplingState state(p, prompt, default_seed);
  for (int32_t id : generated) state.on_token(id);
  return state;
}

Logits processed(Logits logits, const SamplingParams& p, const SamplingState& state,
                 Ids eos_ids = {}) {
  process_logits(logits, p, state, eos_ids);
  return logits;
}

Logits processed(Logits logits, const SamplingParams& p) {
  return processed(std::move(logits), p, state_after(p, {}, {}));
}

// sample() on a copy of `logits`, with at most one eos id.
SampleResult sample_copy(Logits logits, const SamplingParams& p, const SamplingState& state,
                         std::optional<int32_t> eos = std::nullopt) {
  return sample(logits, p, state, eos);
}

Ids kept_ids(const Logits& logits) {
  Ids ids;
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] > kNegInf) ids.push_back(static_cast<int32_t>(i));
  }
  return ids;
}

std::vector<double> softmax(const Logits& logits) {
  const float lmax = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  for (size_t i = 0; i < p.size(); ++i) p[i] = std::exp(double{logits[i]} - lmax);
  const double total = std::accumulate(p.begin(), p.end(), 0.0);
  for (double& x : p) x /= total;
  return p;
}

Logits logs(const std::vector<double>& probs) {
  Logits out;
  for (double p : probs) out.push_back(static_cast<float>(std::log(p)));
  return out;
}

// --- philox.h ---

TEST(PhiloxTest, MatchesRandom123KnownAnswers) {
  // Random123 tests/kat_vectors, "philox4x32 10" lines: counter, key -> output.
  EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}),
            (PhiloxCounter{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(philox4x32_10({~0u, ~0u, ~0u, ~0u}, {~0u, ~0u}),
            (PhiloxCounter{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(
      philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}),
      (PhiloxCounter{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(PhiloxTest, UniformIsAFunctionOfSeedAndStep) {
  // Layout: key = seed (low, high), counter = (step low, step high, 0, 0), words 0-1 -> 53 bits.
  const PhiloxCounter out = philox4x32_10({3, 1, 0, 0}, {7, 2});
  const double expected = static_cast<double>((uint64_t{out[0]} | uint64_t{out[1]} << 32) >> 11) /
                          9007199254740992.0;  // 2^53
  EXPECT_EQ(philox_uniform(7 | (uint64_t{2} << 32), 3 | (uint64_t{1} << 32)), expected);
  EXPECT_NE(philox_uniform(7, 3), philox_uniform(7, 4));
  EXPECT_NE(philox_uniform(7, 3), philox_uniform(8, 3));
  for (uint64_t step = 0; step < 1000; ++step) {
    EXPECT_TRUE(philox_uniform(42, step) >= 0.0 && philox_uniform(42, step) < 1.0) << step;
  }
}

// --- rule 4: greedy and temperature ---

TEST(SamplerTest, GreedyPicksArgmaxWithTiesToLowestId) {
  const SamplingParams p{.temperature = 0.0f};
  for (uint64_t seed : {0u, 1u, 99u}) {
    EXPECT_EQ(sample_copy({1.0f, 3.0f, 3.0f, 2.0f}, p, state_after(p, {}, {}, seed)).token_id, 1);
  }
  EXPECT_EQ(argmax_token(Logits{kNegInf, -5.0f, -5.0f}), 1);
}

TEST(SamplerTest, GreedySeesPenaltiesButNotScalingOrTruncation) {
  const SamplingParams p{.temperature = 0.0f, .top_k = 1, .presence_penalty = 1.0f};
  // Token 0 was generated once: 3 - 1 = 2 < 2.5, so token 1 wins.
  const SamplingState state = state_after(p, {}, {0});
  EXPECT_EQ(sample_copy({3.0f, 2.5f, 1.0f}, p, state).token_id, 1);
  EXPECT_EQ(processed({3.0f, 2.5f, 1.0f}, p, state), (Logits{2.0f, 2.5f, 1.0f}));
}

TEST(SamplerTest, TemperatureDividesLogitsAndScalesProbabilities) {
  EXPECT_EQ(processed({1.0f, 2.0f, -3.0f}, SamplingParams{.temperature = 0.5f}),
            (Logits{2.0f, 4.0f, -6.0f}));
  // Odds 1:2. At T = 0.5 they become 1:4 -> (0.2, 0.8); at T = 2, 1:sqrt(2).
  const Logits logits = {0.0f, std::log(2.0f)};
  const std::vector<double> cold = softmax(processed(logits, SamplingParams{.temperature = 0.5f}));
  EXPECT_NEAR(cold[0], 0.2, 1e-6);
  EXPECT_NEAR(cold[1], 0.8, 1e-6);
  const std::vector<double> hot = softmax(processed(logits, SamplingParams{.temperature = 2.0f}));
  EXPECT_NEAR(hot[0], 1.0 / (1.0 + std::sqrt(2.0)), 1e-6);
  EXPECT_NEAR(hot[1], std::sqrt(2.0) / (1.0 + std::sqrt(2.0)), 1e-6);
}

// --- rule 5: truncation ---

TEST(SamplerTest, TopKKeepsExactlyKWithTiesToLowestId) {
  const Logits logits = {1.0f, 5.0f, 3.0f, 5.0f, 2.0f};
  EXPECT_EQ(processed(logits, {.top_k = 2}), (Logits{kNegInf, 5.0f, kNegInf, 5.0f, kNegInf}));
  EXPECT_EQ(kept_ids(processed(logits, {.top_k = 1})), (Ids{1}));
  EXPECT_EQ(kept_ids(processed(logits, {.top_k = 3})), (Ids{1, 2, 3}));
  for (int32_t off : {0, -1, 5, 1000}) {
    EXPECT_EQ(processed(logits, {.top_k = off}), logits) << "top_k " << off;
  }
}

TEST(SamplerTest, TopPKeepsSmallestSetReachingTopP) {
  const Logits logits = logs({0.2, 0.5, 0.3});  // sorted: id 1, id 2, id 0
  SamplingParams p;
  const std::vector<std::pair<float, Ids>> cases = {{1e-6f, {1}},       {0.49f, {1}},
                                                    {0.51f, {1, 2}},    {0.79f, {1, 2}},
                                                    {0.81f, {0, 1, 2}}, {1.0f, {0, 1, 2}}};
  for (const auto& [top_p, expected] : cases) {
    p.top_p = top_p;
    EXPECT_EQ(kept_ids(processed(logits, p)), expected) << "top_p " << top_p;
  }
  // Four equal tokens, top_p 0.5: exactly two reach 0.5, the two lowest ids.
  p.top_p = 0.5f;
  EXPECT_EQ(kept_ids(processed({0.0f, 0.0f, 0.0f, 0.0f}, p)), (Ids{0, 1}));
}

TEST(SamplerTest, TopPRenormalisesOverTopKSurvivors) {
  // top_k 2 leaves (0.5, 0.3) -> (0.625, 0.375): top_p 0.6 keeps one token, 0.64 keeps two.
  const Logits logits = logs({0.2, 0.5, 0.3});
  SamplingParams p{.top_k = 2, .top_p = 0.6f};
  EXPECT_EQ(kept_ids(processed(logits, p)), (Ids{1}));
  p.top_p = 0.64f;
  EXPECT_EQ(kept_ids(processed(logits, p)), (Ids{1, 2}));
}

TEST(SamplerTest, MinPDropsTokensBelowFractionOfMax) {
  const Logits logits = logs({0.5, 0.3, 0.15, 0.05});
  SamplingParams p{.min_p = 0.2f};  // threshold 0.1
  EXPECT_EQ(kept_ids(processed(logits, p)), (Ids{0, 1, 2}));
  p.min_p = 0.35f;  // threshold 0.175
  EXPECT_EQ(kept_ids(processed(logits, p)), (Ids{0, 1}));
  p.min_p = 1.0f;
  EXPECT_EQ(kept_ids(processed(logits, p)), (Ids{0}));
  p.min_p = 0.2f;  // 0.101 stays, 0.099 goes
  EXPECT_EQ(kept_ids(processed(logs({0.5, 0.101, 0.099, 0.3}), p)), (Ids{0, 1, 3}));
  // After temperature 0.5 the ratios to the max square: 0.36, 0.09, 0.01 -> 0.2 keeps two.
  p.temperature = 0.5f;
  EXPECT_EQ(kept_ids(processed(logits, p)), (Ids{0, 1}));
}

// Large vocabulary: top-k / top-p must agree with a full sort of (logit desc, id asc).
TEST(SamplerTest, TruncationOnLargeVocabularyMatchesFullSort) {
  constexpr size_t kVocab = 152064;
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  Logits logits(kVocab);
  for (float& l : logits) l = normal(rng);
  Ids order(kVocab);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  auto sorted_prefix = [&](size_t n) {
    Ids ids(order.begin(), order.begin() + static_cast<ptrdiff_t>(n));
    std::sort(ids.begin(), ids.end());
    return ids;
  };
  SamplingParams p{.top_k = 50};
  EXPECT_EQ(kept_ids(processed(logits, p)), sorted_prefix(50));  // heap scan
  p.top_k = 5000;
  EXPECT_EQ(kept_ids(processed(logits, p)), sorted_prefix(5000));  // nth_element

  p.top_k = 0;
  p.top_p = 0.3f;
  const std::vector<double> probs = softmax(logits);
  double cumulative = 0.0;
  size_t nucleus = 0;
  while (cumulative < 0.3) cumulative += probs[order[nucleus++]];
  ASSERT_GT(nucleus, 256u) << "the case must grow the sorted prefix past its first 256";
  EXPECT_EQ(kept_ids(processed(logits, p)), sorted_prefix(nucleus));
}

// --- rule 3: penalties ---

TEST(SamplerTest, RepetitionPenaltyDividesPositiveAndMultipliesNegative) {
  SamplingParams p{.repetition_penalty = 2.0f};
  const SamplingState state = state_after(p, {0, 1, 0, 5}, {2});
  EXPECT_EQ(processed({2.0f, -2.0f, 1.0f, 0.5f, 3.0f, 0.0f}, p, state),
            (Logits{1.0f, -4.0f, 0.5f, 0.5f, 3.0f, 0.0f}));
  // A token in both prompt and output is penalised once: 4 / 2, not 4 / 8.
  EXPECT_EQ(processed({4.0f, 1.0f}, p, state_after(p, {0}, {0, 0})), (Logits{2.0f, 1.0f}));
  p.repetition_penalty = 0.5f;  // < 1 encourages repeats
  EXPECT_EQ(processed({2.0f, -2.0f, 1.0f}, p, state_after(p, {0, 1}, {})),
            (Logits{4.0f, -1.0f, 1.0f}));
}

TEST(SamplerTest, FrequencyAndPresencePenaltiesCountGeneratedTokensOnly) {
  SamplingParams p{.presence_penalty = 0.25f, .frequency_penalty = 0.5f};
  // Token 1 three times: 1 - 1.5 - 0.25; token 3 once: 1 - 0.5 - 0.25; prompt token 0 untouched.
  EXPECT_EQ(processed({1, 1, 1, 1, 1}, p, state_after(p, {0}, {1, 1, 1, 3})),
            (Logits{1.0f, -0.75f, 1.0f, 0.25f, 1.0f}));
  p.frequency_penalty = -1.0f;
  p.presence_penalty = -0.5f;
  EXPECT_EQ(processed({1, 1, 1}, p, state_after(p, {}, {2, 2})), (Logits{1.0f, 1.0f, 3.5f}));
}

TEST(SamplerTest, RepetitionPenaltyComesBeforeFrequency) {
  const SamplingParams p{.repetition_penalty = 2.0f, .frequency_penalty = 1.0f};
  // (2 / 2) - 1 = 0 and (-1 * 2) - 1 = -3; the other order would give 0.5 and -4.
  EXPECT_EQ(processed({2.0f, -1.0f}, p, state_after(p, {}, {0, 1})), (Logits{0.0f, -3.0f}));
}

// --- rule 2: min_tokens ---

TEST(SamplerTest, MinTokensMasksEosAndStopIdsUntilReached) {
  SamplingParams p{.min_tokens = 2, .stop_token_ids = {1}};
  const Logits logits = {1, 2, 3, 4, 5};
  EXPECT_EQ(processed(logits, p, state_after(p, {}, {0}), {4}),
            (Logits{1, kNegInf, 3, 4, kNegInf}));
  EXPECT_EQ(processed(logits, p, state_after(p, {}, {0, 0}), {4}), logits);
  EXPECT_EQ(processed(logits, p, state_after(p, {}, {}), {}), (Logits{1, kNegInf, 3, 4, 5}));
  p.ignore_eos = true;  // eos is no stop, so there is nothing to hold back
  EXPECT_EQ(processed(logits, p, state_after(p, {}, {}), {4}), (Logits{1, kNegInf, 3, 4, 5}));
  p.ignore_eos = false;  // several eos ids (Llama 3): all masked
  EXPECT_EQ(processed(logits, p, state_after(p, {}, {}), {2, 4}),
            (Logits{1, kNegInf, kNegInf, 4, kNegInf}));
  p.min_tokens = 0;
  EXPECT_EQ(processed(logits, p, state_after(p, {}, {}), {4}), logits);
}

TEST(SamplerTest, LogitBiasIsAddedBeforePenaltiesAndMasks) {
  SamplingParams p{.repetition_penalty = 2.0f, .min_tokens = 1, .stop_token_ids = {1}};
  p.logit_bias = {{0, 3.0f}, {1, 100.0f}, {3, -2.0f}};
  const Logits logits = {1, 2, 3, 4, 5};
  // Token 0: 1 + 3 = 4, then halved by the repetition penalty (it is in the prompt): 2. Token 1:
  // masked before min_tokens whatever its bias. Token 3: 4 - 2.
  EXPECT_EQ(processed(logits, p, state_after(p, {0}, {})), (Logits{2, kNegInf, 3, 2, 5}));
  p.min_tokens = 0;  // the stop token is no longer held back: its bias makes it the favourite
  EXPECT_EQ(processed(logits, p, state_after(p, {0}, {})), (Logits{2, 102, 3, 2, 5}));
  p.temperature = 0.0f;
  EXPECT_EQ(sample_copy(logits, p, state_after(p, {0}, {}), std::nullopt).token_id, 1);
}

TEST(SamplerTest, LogitBiasLeavesLogprobsRaw) {
  SamplingParams p{.temperature = 0.0f, .logprobs = 1};
  p.logit_bias = {{0, 50.0f}};
  const SampleResult r = sample_copy({1, 2, 3}, p, state_after(p, {}, {}), std::nullopt);
  EXPECT_EQ(r.token_id, 0);
  const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  EXPECT_NEAR(r.logprob, 1.0 - lse, 1e-5);
  ASSERT_EQ(r.top_logprobs.size(), 1u);
  EXPECT_EQ(r.top_logprobs[0].token_id, 2);
}

TEST(SamplerTest, RowSamplingHasOneEntryPerTokenWithItsBias) {
  SamplingParams p{.repetition_penalty = 1.5f, .min_tokens = 3, .stop_token_ids = {7}};
  p.logit_bias = {{7, 5.0f}, {4, -1.0f}, {9, 2.0f}};
  const SamplingState state = state_after(p, {4, 5}, {5, 9});
  std::vector<TokenAdjustment> adjustments(2);  // another row's entries come first
  const RowSampling row = make_row_sampling(p, state, std::vector<int32_t>{8}, adjustments);
  EXPECT_EQ(row.first_adjustment, 2);
  std::map<int32_t, TokenAdjustment> by_token;
  for (int32_t i = 0; i < row.num_adjustments; ++i) {
    const TokenAdjustment& a = adjustments[static_cast<size_t>(row.first_adjustment + i)];
    EXPECT_TRUE(by_token.emplace(a.token, a).second) << "token " << a.token << " twice";
  }
  ASSERT_EQ(by_token.size(), 5u);  // prompt 4, 5; output 9; masked 7, 8
  EXPECT_EQ(by_token[4].bias, -1.0f);
  EXPECT_EQ(by_token[4].flags, TokenAdjustment::kInPrompt);
  EXPECT_EQ(by_token[9].bias, 2.0f);
  EXPECT_EQ(by_token[9].output_count, 1);
  EXPECT_EQ(by_token[7].bias, 5.0f);
  EXPECT_EQ(by_token[7].flags, TokenAdjustment::kMasked);
  EXPECT_EQ(by_token[8].flags, TokenAdjustment::kMasked);
  EXPECT_EQ(by_token[5].bias, 0.0f);
}

TEST(SamplerTest, BadWordsMaskTheTokenThatWouldCompleteAWord) {
  SamplingParams p;
  p.bad_words = {{3}, {1, 2}, {0, 1, 4}};
  const Logits logits = {1, 2, 3, 4, 5};
  // Nothing generated: only the one-token word is banned.
  EXPECT_EQ(processed(logits, p, state_after(p, {1}, {})), (Logits{1, 2, 3, kNegInf, 5}));
  // After 1: "1 2" would complete; after 0 1: "0 1 4" too. The prompt does not count.
  EXPECT_EQ(processed(logits, p, state_after(p, {0}, {1})), (Logits{1, 2, kNegInf, kNegInf, 5}));
  EXPECT_EQ(processed(logits, p, state_after(p, {}, {0, 1})),
            (Logits{1, 2, kNegInf, kNegInf, kNegInf}));
  EXPECT_EQ(processed(logits, p, state_after(p, {}, {1, 0})), (Logits{1, 2, 3, kNegInf, 5}));
  // Greedy steps around the ban: token 4 is the favourite but "0 1 4" is a bad word.
  p.temperature = 0.0f;
  EXPECT_EQ(sample_copy(logits, p, state_after(p, {}, {0, 1}), std::nullopt).token_id, 1);
}

TEST(SamplerTest, RowSamplingMasksBadWordsAsTheHostSamplerDoes) {
  SamplingParams p;
  p.bad_words = {{6}, {2, 9}};
  const SamplingState state = state_after(p, {}, {5, 2});
  std::vector<TokenAdjustment> adjustments;
  const RowSampling row = make_row_sampling(p, state, std::vector<int32_t>{}, adjustments);
  std::vector<int32_t> masked;
  for (int32_t i = 0; i < row.num_adjustments; ++i) {
    const TokenAdjustment& a = adjustments[static_cast<size_t>(row.first_adjustment + i)];
    if (a.flags & TokenAdjustment::kMasked) masked.push_back(a.token);
  }
  std::sort(masked.begin(), masked.end());
  EXPECT_EQ(masked, (std::vector<int32_t>{6, 9}));
  std::vector<int32_t> banned;
  banned_tokens(p, state, banned);
  std::sort(banned.begin(), banned.end());
  EXPECT_EQ(banned, masked);
}

TEST(SamplerTest, GreedyAvoidsEosUntilMinTokens) {
  const SamplingParams p{.temperature = 0.0f, .min_tokens = 2};
  SamplingState state(p, {}, 0);
  Ids tokens;
  for (int step = 0; step < 3; ++step) {
    tokens.push_back(sample_copy({0.0f, 1.0f, 2.0f, 5.0f}, p, state, 3).token_id);
    state.on_token(tokens.back());
  }
  EXPECT_EQ(tokens, (Ids{2, 2, 3}));
}

// --- rule 1: logprobs ---

TEST(SamplerTest, LogprobsAreRawLogSoftmax) {
  // Raw probabilities (0.25, 0.75). Penalties, temperature and masking must not change them.
  SamplingParams p{.temperature = 0.0f, .repetition_penalty = 2.0f, .logprobs = 2};
  const Logits logits = {0.0f, std::log(3.0f)};
  SampleResult r = sample_copy(logits, p, state_after(p, {1}, {}));
  EXPECT_EQ(r.token_id, 1);
  EXPECT_NEAR(r.logprob, std::log(0.75), 1e-6);
  ASSERT_EQ(r.top_logprobs.size(), 2u);
  EXPECT_EQ(r.top_logprobs[0].token_id, 1);
  EXPECT_NEAR(r.top_logprobs[0].logprob, std::log(0.75), 1e-6);
  EXPECT_EQ(r.top_logprobs[1].token_id, 0);
  EXPECT_NEAR(r.top_logprobs[1].logprob, std::log(0.25), 1e-6);

  // eos (id 1) masked by min_tokens still reports its raw logprob; token 0 is sampled.
  p.min_tokens = 1;
  p.temperature = 0.7f;
  p.logprobs = 1;
  r = sample_copy(logits, p, state_after(p, {}, {}), 1);
  EXPECT_EQ(r.token_id, 0);
  EXPECT_NEAR(r.logprob, std::log(0.25), 1e-6);
  ASSERT_EQ(r.top_logprobs.size(), 1u);
  EXPECT_EQ(r.top_logprobs[0].token_id, 1);
  EXPECT_NEAR(r.top_logprobs[0].logprob, std::log(0.75), 1e-6);
}

TEST(SamplerTest, ScoreTokenGivesLogprobRankAndTop) {
  // A prompt token's score: rule 1 for a token nobody sampled.
  const Logits logits = {2.0f, 1.0f, 2.0f, 0.0f, 3.0f};
  const double log_total =
      std::log(std::exp(3.0) + 2 * std::exp(2.0) + std::exp(1.0) + std::exp(0.0));
  const SampleResult r = score_token(logits, 1, 2);
  EXPECT_EQ(r.token_id, 1);
  EXPECT_NEAR(r.logprob, 1.0 - log_total, 1e-6);
  EXPECT_EQ(r.rank, 4);  // 3.0, 2.0 and 2.0 are above it
  ASSERT_EQ(r.top_logprobs.size(), 2u);
  EXPECT_EQ(r.top_logprobs[0].token_id, 4);
  EXPECT_EQ(r.top_logprobs[1].token_id, 0);
  EXPECT_NEAR(r.top_logprobs[1].logprob, 2.0 - log_total, 1e-6);
  EXPECT_EQ(score_token(logits, 4, 0).rank, 1);
  EXPECT_EQ(score_token(logits, 2, 0).rank, 2);  // ties share the better rank
  EXPECT_TRUE(score_token(logits, 4, 0).top_logprobs.empty());
  EXPECT_THROW(score_token(logits, 5, 1), Error);
  EXPECT_THROW(score_token(logits, -1, 1), Error);
  // The sampler's own logprobs carry the rank too.
  SamplingParams p{.temperature = 0.0f, .logprobs = 0};
  EXPECT_EQ(sample_copy(logits, p, state_after(p, {}, {})).rank, 1);
}

TEST(SamplerTest, TopLogprobsOrderedWithTiesToLowestId) {
  SamplingParams p{.temperature = 0.0f, .logprobs = 3};
  const Logits logits = {2.0f, 1.0f, 2.0f, 0.0f};
  const SamplingState state = state_after(p, {}, {});
  const double log_total = std::log(2 * std::exp(2.0) + std::exp(1.0) + 1.0);
  const SampleResult r = sample_copy(logits, p, state);
  ASSERT_EQ(r.top_logprobs.size(), 3u);
  const int32_t expected_ids[] = {0, 2, 1};
  const double expected_logits[] = {2.0, 2.0, 1.0};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(r.top_logprobs[i].token_id, expected_ids[i]);
    EXPECT_NEAR(r.top_logprobs[i].logprob, expected_logits[i] - log_total, 1e-6);
  }
  p.logprobs = 10;  // more than the vocabulary: all of it
  EXPECT_EQ(sample_copy(logits, p, state).top_logprobs.size(), 4u);
  p.logprobs = 0;  // the sampled token only
  EXPECT_TRUE(sample_copy(logits, p, state).top_logprobs.empty());
  EXPECT_NEAR(sample_copy(logits, p, state).logprob, 2.0 - log_total, 1e-6);
  p.logprobs = -1;
  EXPECT_TRUE(sample_copy(logits, p, state).top_logprobs.empty());
  EXPECT_EQ(sample_copy(logits, p, state).logprob, 0.0f);
}

// --- rule 6: the draw and seeds ---

int32_t draw(Logits logits, double u) {
  return draw_token(logits, u);
}

TEST(SamplerTest, DrawWalksCumulativeSoftmaxInIdOrder) {
  const Logits halves = {kNegInf, 0.0f, 0.0f};
  EXPECT_EQ(draw(halves, 0.0), 1);
  EXPECT_EQ(draw(halves, 0.49), 1);
  EXPECT_EQ(draw(halves, 0.51), 2);
  EXPECT_EQ(draw(halves, 0.999999), 2);
  const Logits quarter = {0.0f, std::log(3.0f), kNegInf};
  EXPECT_EQ(draw(quarter, 0.24), 0);
  EXPECT_EQ(draw(quarter, 0.26), 1);
  EXPECT_THROW(draw(Logits{kNegInf, kNegInf}, 0.5), Error);
  EXPECT_THROW(draw(Logits{0.0f, std::nanf("")}, 0.5), Error);
}

Logits ramp() {  // 50 tokens, logits 0, 0.01, ..., 0.49
  Logits logits(50);
  for (size_t j = 0; j < logits.size(); ++j) logits[j] = 0.01f * static_cast<float>(j);
  return logits;
}

Ids generate(const SamplingParams& p, uint64_t default_seed, int num_tokens) {
  SamplingState state(p, {}, default_seed);
  Ids tokens;
  for (int i = 0; i < num_tokens; ++i) {
    tokens.push_back(sample_copy(ramp(), p, state).token_id);
    state.on_token(tokens.back());
  }
  return tokens;
}

TEST(SamplerTest, SameSeedSameSequenceDifferentSeedsDiffer) {
  SamplingParams p{.seed = 1234};
  const Ids a = generate(p, 0, 64);
  EXPECT_EQ(generate(p, 777, 64), a);  // params.seed wins over the engine's default
  EXPECT_GT(std::set<int32_t>(a.begin(), a.end()).size(), 10u);  // steps draw fresh numbers
  p.seed = 1235;
  EXPECT_NE(generate(p, 0, 64), a);
  p.seed.reset();
  EXPECT_EQ(generate(p, 1234, 64), a);  // absent seed: the default seed, same formula
  EXPECT_EQ(SamplingState(p, {}, 99).seed(), 99u);
}

TEST(SamplerTest, TokensDoNotDependOnOtherSequencesInTheBatch) {
  const SamplingParams p{.seed = 3};
  const Ids alone = generate(p, 0, 32);
  const SamplingParams other{.temperature = 0.3f};
  SamplingState a(p, {}, 0), b(other, {}, 5);
  Ids batched;
  for (int i = 0; i < 32; ++i) {  // b samples first each step, as another row of the batch would
    b.on_token(sample_copy(Logits(50, 0.0f), other, b).token_id);
    batched.push_back(sample_copy(ramp(), p, a).token_id);
    a.on_token(batched.back());
  }
  EXPECT_EQ(batched, alone);
}

// Chi-square of observed counts against probabilities; tokens with probability 0 must not occur.
double chi_square(const std::vector<int64_t>& counts, const std::vector<double>& probs, int64_t n) {
  double chi2 = 0.0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (probs[i] == 0.0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " should never be drawn";
      continue;
    }
    const double expected = probs[i] * static_cast<double>(n);
    chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
  }
  return chi2;
}

std::vector<int64_t> sample_counts(const Logits& logits, const SamplingParams& p,
                                   int64_t num_samples) {
  SamplingState state(p, {}, 0);
  std::vector<int64_t> counts(logits.size(), 0);
  for (int64_t i = 0; i < num_samples; ++i) {
    const int32_t token = sample_copy(logits, p, state).token_id;
    ++counts[token];
    state.on_token(token);
  }
  return counts;
}

constexpr int64_t kNumSamples = 200000;
// Far above the 99.99% points of chi-square (df 5: 25.7, df 2: 18.4), far below a wrong
// distribution's value (thousands at this N).
constexpr double kChiSquareLimit = 40.0;

TEST(SamplerStatisticsTest, FrequenciesMatchSoftmaxOverTemperature) {
  const Logits logits = {2.0f, 1.0f, 0.5f, 0.0f, -0.5f, -1.0f};
  const SamplingParams p{.temperature = 0.7f, .seed = 20240601};
  const std::vector<int64_t> counts = sample_counts(logits, p, kNumSamples);
  Logits scaled;
  for (float l : logits) scaled.push_back(l / 0.7f);
  EXPECT_LT(chi_square(counts, softmax(scaled), kNumSamples), kChiSquareLimit);
  // The test has power: the untempered distribution is rejected.
  EXPECT_GT(chi_square(counts, softmax(logits), kNumSamples), 1000.0);
}

TEST(SamplerStatisticsTest, TopPRenormalisesTheNucleus) {
  // Sorted probabilities 0.420, 0.255, 0.154, 0.094, 0.057, 0.021 (ids 2, 4, 0, 5, 3, 1):
  // cumulative 0.829 first reaches 0.8 at the third, so ids {2, 4, 0} remain, renormalised.
  const Logits logits = {1.0f, -1.0f, 2.0f, 0.0f, 1.5f, 0.5f};
  const SamplingParams p{.top_p = 0.8f, .seed = 7};
  const std::vector<int64_t> counts = sample_counts(logits, p, kNumSamples);
  Logits nucleus = logits;
  for (int32_t dropped : {1, 3, 5}) nucleus[dropped] = kNegInf;
  EXPECT_LT(chi_square(counts, softmax(nucleus), kNumSamples), kChiSquareLimit);
  EXPECT_GT(chi_square(counts, softmax(logits), kNumSamples), 1000.0);
}

}  // namespace
}  // namespace llmserve
