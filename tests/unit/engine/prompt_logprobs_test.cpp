// Prompt logprobs (SamplingParams::prompt_logprobs) through the whole engine on the CPU backend:
// each prompt token's score equals the log-softmax of the model's logits at the position before
// it, computed here from one forward over the whole prompt (ModelRunner::forward_logits, every
// row) — whether the engine ran the prompt in one step or in chunks, with a warm prefix cache
// (which such a request must not use) and under preemption.
#include "engine/engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "testing/engine_streams.h"
#include "testing/runner_harness.h"

namespace llmserve {
namespace {

const std::filesystem::path kModels = std::filesystem::path(LLMSERVE_TEST_DATA) / "models";
constexpr int32_t kTop = 3;
constexpr float kRankTolerance = 1e-4f;

std::vector<int32_t> random_tokens(uint32_t seed, int32_t n) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> tok(3, 500);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = tok(rng);
  return t;
}

// The reference: the raw logits of every prompt position from one forward, each row turned into
// the score of the token after it (log-softmax by hand in double, rank, the top kTop ids).
struct Reference {
  std::vector<double> logprobs;  // prompt tokens 1..
  // The rank, as a range: logits within kRankTolerance of the token's may fall either side of it
  // once a batched or chunked forward rounds differently.
  std::vector<std::pair<int32_t, int32_t>> ranks;
  std::vector<std::vector<int32_t>> top_ids;
};

Reference reference_scores(const std::string& model, const std::vector<int32_t>& prompt) {
  testing::RunnerHarness h(kModels / model, DeviceKind::kCpu, DType::kF32);
  const auto n = static_cast<int32_t>(prompt.size());
  const std::vector<int32_t> table = h.new_table(n);
  const RunnerSequence seq{prompt.data(), n, 0, &table, LogitRows::kAll};
  const std::span<const float> logits = h.runner().forward_logits({&seq, 1});
  const auto vocab = static_cast<size_t>(h.vocab());
  Reference ref;
  for (size_t p = 0; p + 1 < prompt.size(); ++p) {
    const std::span<const float> row = logits.subspan(p * vocab, vocab);
    const double lmax = *std::max_element(row.begin(), row.end());
    double sum = 0;
    for (float l : row) sum += std::exp(l - lmax);
    const float target = row[static_cast<size_t>(prompt[p + 1])];
    ref.logprobs.push_back(target - lmax - std::log(sum));
    const auto num_above = [&](float threshold) {
      return 1 + static_cast<int32_t>(
                     std::ranges::count_if(row, [&](float l) { return l > threshold; }));
    };
    ref.ranks.emplace_back(num_above(target + kRankTolerance), num_above(target - kRankTolerance));
    std::vector<int32_t> ids(vocab);
    for (size_t i = 0; i < vocab; ++i) ids[i] = static_cast<int32_t>(i);
    std::partial_sort(ids.begin(), ids.begin() + kTop, ids.end(), [&](int32_t a, int32_t b) {
      return row[static_cast<size_t>(a)] != row[static_cast<size_t>(b)]
                 ? row[static_cast<size_t>(a)] > row[static_cast<size_t>(b)]
                 : a < b;
    });
    ref.top_ids.emplace_back(ids.begin(), ids.begin() + kTop);
  }
  return ref;
}

Request scored_request(std::vector<int32_t> prompt, int32_t max_tokens, int32_t prompt_logprobs) {
  Request r;
  r.prompt_token_ids = std::move(prompt);
  r.sampling.temperature = 0;
  r.sampling.max_tokens = max_tokens;
  r.sampling.ignore_eos = true;
  r.sampling.prompt_logprobs = prompt_logprobs;
  return r;
}

// Every output of the stream: the tokens, and the prompt logprobs (only the first output with a
// token may carry them).
struct Scored {
  std::vector<int32_t> tokens;
  std::vector<SampleResult> prompt_logprobs;
  int32_t num_outputs_with_prompt_logprobs = 0;
  RequestOutput last;
};

Scored drain_scored(RequestStream& stream) {
  Scored s;
  RequestOutput out;
  while (stream.next(out, std::chrono::seconds(60))) {
    if (!out.prompt_logprobs.empty()) {
      ++s.num_outputs_with_prompt_logprobs;
      EXPECT_TRUE(s.tokens.empty()) << "prompt logprobs after the first token";
      s.prompt_logprobs = out.prompt_logprobs;
    }
    s.tokens.insert(s.tokens.end(), out.token_ids.begin(), out.token_ids.end());
    if (out.is_final()) {
      s.last = out;
      return s;
    }
  }
  ADD_FAILURE() << "stream did not finish";
  return s;
}

void expect_matches(const Scored& got, const std::vector<int32_t>& prompt, const Reference& ref,
                    int32_t num_top, const std::string& what) {
  ASSERT_EQ(got.prompt_logprobs.size(), prompt.size() - 1) << what;
  EXPECT_EQ(got.num_outputs_with_prompt_logprobs, 1) << what;
  for (size_t i = 0; i < got.prompt_logprobs.size(); ++i) {
    const SampleResult& r = got.prompt_logprobs[i];
    EXPECT_EQ(r.token_id, prompt[i + 1]) << what << " token " << i + 1;
    EXPECT_NEAR(r.logprob, ref.logprobs[i], 2e-4) << what << " token " << i + 1;
    EXPECT_TRUE(std::isfinite(r.logprob));
    EXPECT_GE(r.rank, ref.ranks[i].first) << what << " token " << i + 1;
    EXPECT_LE(r.rank, ref.ranks[i].second) << what << " token " << i + 1;
    ASSERT_EQ(r.top_logprobs.size(), static_cast<size_t>(num_top)) << what;
    for (int32_t k = 0; k < num_top; ++k) {
      EXPECT_EQ(r.top_logprobs[static_cast<size_t>(k)].token_id,
                ref.top_ids[i][static_cast<size_t>(k)])
          << what << " token " << i + 1 << " top " << k;
    }
  }
}

class PromptLogprobs : public ::testing::TestWithParam<std::string> {};

TEST_P(PromptLogprobs, EqualAFullForwardInOneStepInChunksAndWithAWarmPrefixCache) {
  const std::string model = GetParam();
  const std::vector<int32_t> prompt = random_tokens(11, 50);
  const Reference ref = reference_scores(model, prompt);

  std::vector<int32_t> plain_tokens;
  {
    EngineConfig c;
    c.model_dir = kModels / model;
    c.num_kv_blocks = 64;
    c.enable_prefix_caching = false;
    Engine engine(c);
    plain_tokens =
        drain_scored(*testing::must_submit(engine, scored_request(prompt, 4, -1))).tokens;
    const Scored one_step =
        drain_scored(*testing::must_submit(engine, scored_request(prompt, 4, kTop)));
    expect_matches(one_step, prompt, ref, kTop, "one step");
    EXPECT_EQ(one_step.tokens, plain_tokens) << "prompt logprobs changed the output";
  }
  // 16-token chunks, and the prompt's first 48 tokens already in the prefix cache.
  EngineConfig c;
  c.model_dir = kModels / model;
  c.num_kv_blocks = 64;
  c.max_num_tokens = 16;
  c.max_batch_size = 8;
  Engine engine(c);
  const std::vector<int32_t> head(prompt.begin(), prompt.begin() + 48);
  drain_scored(*testing::must_submit(engine, scored_request(head, 1, -1)));
  const Scored chunked = drain_scored(*testing::must_submit(engine, scored_request(prompt, 4, 1)));
  expect_matches(chunked, prompt, ref, 1, "chunked, cache warm");
  EXPECT_EQ(chunked.tokens, plain_tokens);
  EXPECT_EQ(chunked.last.num_cached_tokens, 0) << "a prompt-logprobs request reused the cache";
  // The same prompt without prompt logprobs does reuse it.
  EXPECT_GT(drain_scored(*testing::must_submit(engine, scored_request(prompt, 1, -1)))
                .last.num_cached_tokens,
            0);
  // Zero alternatives: the prompt token's own score only.
  const Scored bare = drain_scored(*testing::must_submit(engine, scored_request(prompt, 1, 0)));
  expect_matches(bare, prompt, ref, 0, "no alternatives");
}

INSTANTIATE_TEST_SUITE_P(Fixtures, PromptLogprobs, ::testing::Values("llama-tiny", "gpt2-tiny"));

TEST(PromptLogprobsEngine, SurvivePreemptionAndBatching) {
  // A pool of 12 blocks (192 tokens) holds at most two of these sequences at their longest, so
  // sequences are preempted, some mid-prompt, and recomputed; every prompt's scores still arrive
  // once, in order, equal to the reference.
  std::vector<std::vector<int32_t>> prompts;
  std::vector<Reference> refs;
  for (uint32_t i = 0; i < 5; ++i) {
    prompts.push_back(random_tokens(100 + i, 40 + static_cast<int32_t>(i) * 9));
    refs.push_back(reference_scores("llama-tiny", prompts.back()));
  }
  EngineConfig c;
  c.model_dir = kModels / "llama-tiny";
  c.max_model_len = 128;
  c.num_kv_blocks = 12;
  c.max_num_tokens = 32;
  c.max_batch_size = 8;
  Engine engine(c);
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (const auto& p : prompts)
    streams.push_back(testing::must_submit(engine, scored_request(p, 30, 2)));
  for (size_t i = 0; i < prompts.size(); ++i) {
    const Scored s = drain_scored(*streams[i]);
    expect_matches(s, prompts[i], refs[i], 2, "request " + std::to_string(i));
    EXPECT_EQ(s.tokens.size(), 30u);
  }
  EXPECT_GT(engine.stats().num_preemptions, 0) << "the pool was meant to be too small";
}

TEST(PromptLogprobsEngine, AlongsideSpeculativeDecodes) {
  // A prompt that repeats itself gives prompt lookup drafts to verify while the second request's
  // prompt is scored in the same steps; neither changes the other's result.
  std::vector<int32_t> repeating = random_tokens(21, 12);
  for (int i = 0; i < 3; ++i)
    repeating.insert(repeating.end(), repeating.begin(), repeating.begin() + 12);
  const std::vector<int32_t> prompt = random_tokens(22, 60);
  const Reference ref = reference_scores("llama-tiny", prompt);
  EngineConfig c;
  c.model_dir = kModels / "llama-tiny";
  c.num_kv_blocks = 64;
  c.max_num_tokens = 24;
  c.max_batch_size = 4;
  c.speculative.mode = SpeculativeMode::kNgram;
  Engine engine(c);
  auto decoding = testing::must_submit(engine, scored_request(repeating, 40, -1));
  auto scored = testing::must_submit(engine, scored_request(prompt, 8, 2));
  const Scored s = drain_scored(*scored);
  expect_matches(s, prompt, ref, 2, "beside speculation");
  EXPECT_EQ(drain_scored(*decoding).tokens.size(), 40u);
  EXPECT_GT(engine.stats().num_spec_decodes, 0) << "the repeating prompt was meant to speculate";
}

TEST(PromptLogprobsEngine, OneTokenPromptHasNoScores) {
  EngineConfig c;
  c.model_dir = kModels / "llama-tiny";
  c.num_kv_blocks = 16;
  Engine engine(c);
  const Scored s = drain_scored(*testing::must_submit(engine, scored_request({42}, 2, 5)));
  EXPECT_TRUE(s.prompt_logprobs.empty());
  EXPECT_EQ(s.tokens.size(), 2u);
}

TEST(PromptLogprobsEngine, OutOfRangeIsRefusedAtSubmit) {
  EngineConfig c;
  c.model_dir = kModels / "llama-tiny";
  c.num_kv_blocks = 16;
  Engine engine(c);
  std::shared_ptr<RequestStream> stream;
  const Status s = engine.submit(scored_request({1, 2, 3}, 2, kMaxLogprobs + 1), stream);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message().rfind("prompt_logprobs", 0), 0u) << s.message();
}

}  // namespace
}  // namespace llmserve
