// Speculative decoding (engine/speculative.h): the prompt-lookup proposer, the scheduler's drafts
// and their bookkeeping (blocks trimmed after rejections, limits, the off-switch), and end to end
// on the CPU backend with the tiny fixture models: the output with speculation is token for token
// the output without it — greedy, and seeded sampling with penalties, bad words and logprobs —
// under in-flight batching, chunked prefill, preemption and prefix reuse.
#include "engine/speculative.h"

#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "engine/engine.h"
#include "engine/scheduler.h"
#include "testing/engine_streams.h"

namespace llmserve {
namespace {

std::vector<int32_t> ngram(std::vector<int32_t> tokens, int32_t min_n, int32_t max_n,
                           int32_t max_drafts) {
  std::vector<int32_t> drafts;
  propose_ngram(tokens, min_n, max_n, max_drafts, drafts);
  return drafts;
}

TEST(PromptLookup, ProposesWhatFollowedTheSuffix) {
  // Suffix [7, 8] occurred at 1..2, followed by 9, 4, 5.
  EXPECT_EQ(ngram({1, 7, 8, 9, 4, 5, 6, 7, 8}, 1, 4, 3), (std::vector<int32_t>{9, 4, 5}));
  EXPECT_EQ(ngram({1, 7, 8, 9, 4, 5, 6, 7, 8}, 1, 4, 2), (std::vector<int32_t>{9, 4}));
  EXPECT_TRUE(ngram({1, 7, 8, 9, 4, 5, 6, 7, 8}, 1, 4, 0).empty());
}

TEST(PromptLookup, PrefersTheLongestSuffix) {
  // [5] alone last occurred before 1; [3, 5] occurred before 9.
  EXPECT_EQ(ngram({3, 5, 9, 2, 5, 1, 0, 3, 5}, 1, 2, 1), (std::vector<int32_t>{9}));
  EXPECT_EQ(ngram({3, 5, 9, 2, 5, 1, 0, 3, 5}, 1, 1, 1), (std::vector<int32_t>{1}));
}

TEST(PromptLookup, NothingWithoutARecurrence) {
  EXPECT_TRUE(ngram({1, 2, 3, 4}, 1, 3, 4).empty());
  EXPECT_TRUE(ngram({4}, 1, 3, 4).empty());
  EXPECT_TRUE(ngram({}, 1, 3, 4).empty());
  // [2, 3] recurs but only suffixes of at least 3 tokens may be looked up.
  EXPECT_TRUE(ngram({2, 3, 9, 2, 3}, 3, 4, 4).empty());
}

TEST(PromptLookup, PeriodicTextProposesAFullRun) {
  // The latest occurrence of [1, 2] is followed by only [1, 2]; an earlier one by four tokens.
  EXPECT_EQ(ngram({1, 2, 1, 2, 1, 2, 1, 2}, 2, 2, 4), (std::vector<int32_t>{1, 2, 1, 2}));
  // Recency when the latest occurrence is followed by enough tokens.
  EXPECT_EQ(ngram({4, 6, 1, 4, 7, 2, 9, 4}, 1, 1, 2), (std::vector<int32_t>{7, 2}));
}

TEST(SpeculativeConfig, ValidateNamesTheField) {
  SpeculativeConfig c;
  c.mode = SpeculativeMode::kNgram;
  EXPECT_TRUE(c.validate().is_ok());
  c.num_speculative_tokens = 0;
  EXPECT_NE(c.validate().message().find("num_speculative_tokens"), std::string::npos);
  c.num_speculative_tokens = 4;
  c.ngram_max = 0;
  EXPECT_NE(c.validate().message().find("ngram_max"), std::string::npos);
  SpeculativeMode mode;
  EXPECT_TRUE(parse_speculative_mode("ngram", mode).is_ok());
  EXPECT_EQ(mode, SpeculativeMode::kNgram);
  EXPECT_NE(parse_speculative_mode("eagle", mode).message().find("none, ngram"), std::string::npos);
}

SampleResult sampled(int32_t token) {
  SampleResult r;
  r.token_id = token;
  return r;
}

SchedulerConfig spec_scheduler_config(int32_t num_blocks = 16) {
  SchedulerConfig c;
  c.block_size = 4;
  c.num_blocks = num_blocks;
  c.max_num_tokens = 64;
  c.max_batch_size = 4;
  c.max_model_len = 64;
  c.enable_prefix_caching = true;
  c.speculative.mode = SpeculativeMode::kNgram;
  c.speculative.num_speculative_tokens = 4;
  c.speculative.max_batch_size = 2;
  return c;
}

// Runs a prefill step for every waiting sequence, each sampling `next`.
void prefill(Scheduler& s, int32_t next) {
  SchedulerOutput out = s.schedule();
  StepResult r;
  for (const ScheduledSequence& e : out.scheduled) {
    ASSERT_TRUE(e.needs_sample);
    ASSERT_TRUE(e.verify_tokens.empty());
    r.samples.push_back(sampled(next));
  }
  s.update(out, r);
}

TEST(SpeculativeScheduler, DraftsAreVerifiedAndRejectedBlocksReturn) {
  Scheduler s(spec_scheduler_config());
  // 10 11 12 13 10 11 12 13 10 11 -> suffix [10, 11] was followed by 12 13 10 11.
  ASSERT_TRUE(s.add(std::make_unique<Sequence>(
                        1, std::vector<int32_t>{10, 11, 12, 13, 10, 11, 12, 13, 10}, 32))
                  .is_ok());
  prefill(s, 11);
  SchedulerOutput out = s.schedule();
  ASSERT_EQ(out.scheduled.size(), 1u);
  const ScheduledSequence& e = out.scheduled[0];
  EXPECT_TRUE(e.needs_sample);
  EXPECT_EQ(e.verify_tokens, (std::vector<int32_t>{11, 12, 13, 10, 11}));
  EXPECT_EQ(e.num_new_tokens, 5);
  EXPECT_EQ(out.num_drafts, 4);
  const Sequence& seq = *s.find(1);
  EXPECT_EQ(seq.block_table.size(), 4u);  // 15 positions of 4 tokens
  // The first draft is accepted, the second replaced: tokens 12, then 99.
  StepResult r;
  r.samples = {sampled(12), sampled(99)};
  r.accepted = {1};
  s.update(out, r);
  EXPECT_EQ(seq.num_computed_tokens, 11);  // the last token and one draft
  EXPECT_EQ(seq.num_tokens(), 12);
  EXPECT_EQ(seq.token_ids.back(), 99);
  EXPECT_EQ(seq.block_table.size(), 3u);  // the 4th block held only rejected drafts
  EXPECT_TRUE(s.check_invariants().is_ok()) << s.check_invariants().to_string();
  EXPECT_EQ(s.stats().num_draft_tokens, 4);
  EXPECT_EQ(s.stats().num_accepted_tokens, 1);
  EXPECT_EQ(s.stats().num_spec_decodes, 1);
}

TEST(SpeculativeScheduler, BlocksPastTheAcceptedTokensAreTrimmed) {
  // 12 tokens after the prefill (3 full blocks); drafts 1 2 3 4 put positions 12-15 in a 4th.
  Scheduler s(spec_scheduler_config());
  ASSERT_TRUE(s.add(std::make_unique<Sequence>(
                        2, std::vector<int32_t>{1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5}, 32))
                  .is_ok());
  prefill(s, 6);
  SchedulerOutput out = s.schedule();
  ASSERT_EQ(out.scheduled[0].verify_tokens, (std::vector<int32_t>{6, 1, 2, 3, 4}));
  EXPECT_EQ(s.find(2)->block_table.size(), 4u);
  const int32_t free_with_drafts = s.block_pool().num_free_blocks();
  StepResult r;
  r.samples = {sampled(42)};  // the first draft is rejected
  r.accepted = {0};
  s.update(out, r);
  EXPECT_EQ(s.find(2)->num_tokens(), 13);
  EXPECT_EQ(s.find(2)->num_computed_tokens, 12);
  EXPECT_EQ(s.find(2)->block_table.size(), 4u);  // token 13 lives in the 4th block: kept
  EXPECT_EQ(s.block_pool().num_free_blocks(), free_with_drafts);
  EXPECT_TRUE(s.check_invariants().is_ok()) << s.check_invariants().to_string();

  // 8 drafts allowed: 16 tokens, drafts 3 4 5 6 7 1 2 (7: what followed [6, 7, 1, 2]) reach
  // position 22, 6 blocks; all rejected, 17 tokens need 5.
  SchedulerConfig wide = spec_scheduler_config();
  wide.speculative.num_speculative_tokens = 8;
  Scheduler t(wide);
  ASSERT_TRUE(t.add(std::make_unique<Sequence>(
                        1, std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7, 1, 2, 3, 4, 5, 6, 7, 1}, 32))
                  .is_ok());
  prefill(t, 2);
  out = t.schedule();
  ASSERT_EQ(out.scheduled[0].num_drafts(), 7);
  EXPECT_EQ(t.find(1)->block_table.size(), 6u);
  const int32_t free_before = t.block_pool().num_free_blocks();
  r.samples = {sampled(99)};
  r.accepted = {0};
  t.update(out, r);
  EXPECT_EQ(t.find(1)->num_tokens(), 17);
  EXPECT_EQ(t.find(1)->block_table.size(), 5u);
  EXPECT_EQ(t.block_pool().num_free_blocks(), free_before + 1);
  EXPECT_TRUE(t.check_invariants().is_ok()) << t.check_invariants().to_string();
}

TEST(SpeculativeScheduler, AcceptedDraftsAdvanceTheSequence) {
  Scheduler s(spec_scheduler_config());
  ASSERT_TRUE(
      s.add(std::make_unique<Sequence>(1, std::vector<int32_t>{5, 6, 7, 8, 5, 6, 7}, 32)).is_ok());
  prefill(s, 8);  // 5 6 7 8 5 6 7 8: suffix [5, 6, 7, 8] was followed by 5 6 7 8
  SchedulerOutput out = s.schedule();
  ASSERT_EQ(out.scheduled[0].verify_tokens, (std::vector<int32_t>{8, 5, 6, 7, 8}));
  EXPECT_EQ(s.find(1)->block_table.size(), 3u);
  StepResult r;
  r.samples = {sampled(5), sampled(6), sampled(8)};
  r.accepted = {2};
  s.update(out, r);
  EXPECT_EQ(s.find(1)->num_tokens(), 11);
  EXPECT_EQ(s.find(1)->num_computed_tokens, 10);
  EXPECT_EQ(s.find(1)->block_table.size(), 3u);
  EXPECT_TRUE(s.find(1)->is_decoding());
  // A sample that claims a draft it is not: an internal error, not a silent corruption.
  out = s.schedule();
  ASSERT_GT(out.scheduled[0].num_drafts(), 0);
  r.samples = {sampled(out.scheduled[0].verify_tokens[1] + 1), sampled(3)};
  r.accepted = {1};
  EXPECT_THROW(s.update(out, r), Error);
}

TEST(SpeculativeScheduler, BacksOffAfterRejections) {
  Scheduler s(spec_scheduler_config(/*num_blocks=*/32));
  ASSERT_TRUE(
      s.add(std::make_unique<Sequence>(1, std::vector<int32_t>{1, 2, 1, 2, 1}, 40)).is_ok());
  prefill(s, 2);
  // Reject every draft: speculation comes back after 1, 3, 7 plain decodes.
  std::vector<int32_t> plain_runs;
  int32_t run = 0;
  for (int step = 0; step < 16; ++step) {
    SchedulerOutput out = s.schedule();
    ASSERT_EQ(out.scheduled.size(), 1u);
    StepResult r;
    r.samples = {sampled(1 + s.find(1)->num_tokens() % 2)};  // keeps the text periodic
    if (out.num_drafts > 0) {
      r.samples[0].token_id = out.scheduled[0].verify_tokens[1] + 7;  // never the draft
      r.accepted = {0};
      if (step > 0) plain_runs.push_back(run);
      run = 0;
    } else {
      ++run;
    }
    s.update(out, r);
  }
  EXPECT_EQ(plain_runs, (std::vector<int32_t>{1, 3, 7}));
  EXPECT_EQ(s.find(1)->num_spec_misses, 4);
}

TEST(SpeculativeScheduler, DraftsRespectTheCompletionLimit) {
  Scheduler s(spec_scheduler_config());
  // max_tokens 3: after the prefill's token, 2 remain, so at most 1 draft.
  ASSERT_TRUE(s.add(std::make_unique<Sequence>(1, std::vector<int32_t>{1, 2, 3, 1, 2, 3, 1, 2}, 3))
                  .is_ok());
  prefill(s, 3);
  SchedulerOutput out = s.schedule();
  EXPECT_EQ(out.scheduled[0].num_drafts(), 1);
}

TEST(SpeculativeScheduler, OffWhenTheBatchIsLargeOrTheRequestOptsOut) {
  Scheduler s(spec_scheduler_config());  // speculates while at most 2 sequences decode
  for (uint64_t id = 1; id <= 3; ++id)
    ASSERT_TRUE(
        s.add(std::make_unique<Sequence>(id, std::vector<int32_t>{1, 2, 1, 2, 1}, 16)).is_ok());
  prefill(s, 2);
  SchedulerOutput out = s.schedule();
  EXPECT_EQ(out.num_drafts, 0) << "3 decodes > speculative max_batch_size 2";
  StepResult r;
  for (size_t i = 0; i < out.scheduled.size(); ++i) r.samples.push_back(sampled(1));
  s.update(out, r);
  s.finish(3);
  out = s.schedule();
  EXPECT_EQ(out.scheduled.size(), 2u);
  EXPECT_GT(out.num_drafts, 0);

  Scheduler t(spec_scheduler_config());
  auto seq = std::make_unique<Sequence>(1, std::vector<int32_t>{1, 2, 1, 2, 1}, 16);
  seq->allows_speculation = false;
  ASSERT_TRUE(t.add(std::move(seq)).is_ok());
  prefill(t, 2);
  EXPECT_EQ(t.schedule().num_drafts, 0);
}

TEST(SpeculativeScheduler, DraftsNeverPreempt) {
  // 4 blocks of 4, all held: sequence 1 (12 tokens, 3 blocks) would need a 4th for drafts.
  Scheduler s(spec_scheduler_config(/*num_blocks=*/4));
  ASSERT_TRUE(
      s.add(std::make_unique<Sequence>(1, std::vector<int32_t>{1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2}, 4))
          .is_ok());
  ASSERT_TRUE(s.add(std::make_unique<Sequence>(2, std::vector<int32_t>{7, 8, 9}, 4)).is_ok());
  prefill(s, 3);
  EXPECT_EQ(s.block_pool().num_free_blocks(), 0);
  SchedulerOutput out = s.schedule();
  ASSERT_EQ(out.scheduled.size(), 2u);
  EXPECT_TRUE(out.preempted_seq_ids.empty());
  EXPECT_EQ(out.num_drafts, 0);
}

// End to end on the CPU backend.

const std::filesystem::path kModels = std::filesystem::path(LLMSERVE_TEST_DATA) / "models";

// speculate: "" (off), "ngram", or "draft:<fixture>" (that fixture as the draft model).
EngineConfig engine_config(const std::string& model, const std::string& speculate) {
  EngineConfig c;
  c.model_dir = kModels / model;
  c.seed = 42;
  c.max_model_len = 128;
  c.num_kv_blocks = 64;
  if (!speculate.empty()) {
    c.speculative.mode = SpeculativeMode::kNgram;
    if (speculate.starts_with("draft:")) {
      c.speculative.mode = SpeculativeMode::kDraft;
      c.speculative.draft_model_dir = kModels / speculate.substr(6);
    }
    c.speculative.num_speculative_tokens = 4;
    c.speculative.max_batch_size = 16;
  }
  return c;
}

// Prompts that repeat themselves (so prompt lookup finds drafts), of assorted lengths, a third
// sharing a prefix (prefix reuse).
std::vector<std::vector<int32_t>> repetitive_prompts(int n) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int32_t> tok(3, 500);
  std::vector<int32_t> shared(24);
  for (auto& t : shared) t = tok(rng);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < n; ++i) {
    std::vector<int32_t> p = i % 3 == 0 ? shared : std::vector<int32_t>{};
    std::vector<int32_t> phrase(2 + rng() % 6);
    for (auto& t : phrase) t = tok(rng);
    const int repeats = 2 + static_cast<int>(rng() % 5);
    for (int r = 0; r < repeats; ++r) p.insert(p.end(), phrase.begin(), phrase.end());
    prompts.push_back(p);
  }
  return prompts;
}

struct EngineRun {
  std::vector<std::vector<int32_t>> tokens;
  std::vector<RequestOutput> last;
  EngineStats stats;
};

// Submits every request at once into a small engine (preemption, chunked prefill) and collects.
EngineRun run_all(const std::string& model, const std::string& speculate,
                  const std::vector<Request>& requests, int32_t num_kv_blocks = 12, int32_t tp = 1,
                  int32_t pp = 1) {
  EngineConfig c = engine_config(model, speculate);
  c.tensor_parallel_size = tp;
  c.pipeline_parallel_size = pp;
  c.num_kv_blocks = num_kv_blocks;
  c.max_num_tokens = 32;
  c.max_batch_size = 8;
  Engine engine(c);
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (const Request& r : requests) streams.push_back(testing::must_submit(engine, r));
  EngineRun run;
  for (const auto& stream : streams) {
    testing::Collected c = testing::drain(*stream);
    run.tokens.push_back(std::move(c.tokens));
    run.last.push_back(c.last);
  }
  for (int i = 0; i < 200 && engine.stats().num_used_blocks > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  run.stats = engine.stats();
  EXPECT_EQ(run.stats.num_used_blocks, 0);
  return run;
}

class SpeculativeEngine : public ::testing::TestWithParam<std::string> {};

TEST_P(SpeculativeEngine, GreedyOutputIsUnchanged) {
  std::vector<Request> requests;
  for (const auto& p : repetitive_prompts(10)) {
    Request r;
    r.prompt_token_ids = p;
    r.sampling.temperature = 0;
    r.sampling.max_tokens = 24;
    r.sampling.ignore_eos = true;
    requests.push_back(r);
  }
  const EngineRun plain = run_all(GetParam(), "", requests);
  const EngineRun spec = run_all(GetParam(), "ngram", requests);
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(spec.tokens[i], plain.tokens[i]) << "request " << i;
    EXPECT_EQ(spec.last[i].finish_reason, FinishReason::kLength);
    EXPECT_EQ(spec.last[i].num_generated_tokens, 24);
  }
  EXPECT_GT(spec.stats.num_spec_decodes, 0);
  EXPECT_GT(spec.stats.num_accepted_tokens, 0) << "repetitive prompts were meant to be copied";
  EXPECT_GT(spec.stats.num_preemptions, 0) << "the pool was meant to be too small";
  EXPECT_EQ(plain.stats.num_draft_tokens, 0);

  // Alone, each accepted draft saves exactly one step: the prefill (one or more chunks), then 23
  // tokens from decodes that each yield 1 + their accepted drafts.
  for (size_t i = 0; i < 3; ++i) {
    const EngineRun one_plain = run_all(GetParam(), "", {requests[i]}, 64);
    const EngineRun one_spec = run_all(GetParam(), "ngram", {requests[i]}, 64);
    EXPECT_EQ(one_spec.tokens[0], plain.tokens[i]);
    EXPECT_EQ(one_spec.stats.num_steps,
              one_plain.stats.num_steps - one_spec.stats.num_accepted_tokens)
        << "request " << i;
  }
}

TEST_P(SpeculativeEngine, SeededSamplingIsUnchanged) {
  std::vector<Request> requests;
  int i = 0;
  for (const auto& p : repetitive_prompts(9)) {
    Request r;
    r.prompt_token_ids = p;
    r.sampling.temperature = 0.7f;
    r.sampling.top_k = 40;
    r.sampling.seed = 1000 + i;
    r.sampling.max_tokens = 20;
    r.sampling.ignore_eos = true;
    // Position-dependent rules, so each verified position must see the drafts before it.
    if (i % 3 == 1) r.sampling.repetition_penalty = 1.3f, r.sampling.presence_penalty = 0.5f;
    if (i % 3 == 2) r.sampling.logprobs = 2, r.sampling.frequency_penalty = 0.4f;
    if (i % 4 == 3) r.sampling.bad_words = {{p[0], p[1]}};
    if (i == 4) r.sampling.min_tokens = 6;
    requests.push_back(r);
    ++i;
  }
  const EngineRun plain = run_all(GetParam(), "", requests, 64);
  const EngineRun spec = run_all(GetParam(), "ngram", requests, 64);
  for (size_t k = 0; k < requests.size(); ++k) {
    EXPECT_EQ(spec.tokens[k], plain.tokens[k]) << "request " << k;
    EXPECT_EQ(spec.last[k].num_generated_tokens, 20);
  }
  EXPECT_GT(spec.stats.num_spec_decodes, 0);
}

TEST_P(SpeculativeEngine, AStopTokenAmongAcceptedDraftsEndsThere) {
  // Learn a greedy output, then stop at a token from its middle: with speculation the stop may
  // fall among a step's accepted drafts, and nothing after it may be emitted.
  Request r;
  r.prompt_token_ids = repetitive_prompts(2)[1];
  r.sampling.temperature = 0;
  r.sampling.max_tokens = 32;
  r.sampling.ignore_eos = true;
  const EngineRun plain = run_all(GetParam(), "", {r}, 64);
  const std::vector<int32_t>& full = plain.tokens[0];
  ASSERT_EQ(full.size(), 32u);
  for (size_t at : {size_t{5}, size_t{11}, size_t{20}}) {
    const int32_t stop = full[at];
    const size_t first =
        static_cast<size_t>(std::find(full.begin(), full.end(), stop) - full.begin());
    Request s = r;
    s.sampling.stop_token_ids = {stop};
    const EngineRun spec = run_all(GetParam(), "ngram", {s}, 64);
    EXPECT_EQ(spec.tokens[0], std::vector<int32_t>(full.begin(), full.begin() + first + 1));
    EXPECT_EQ(spec.last[0].finish_reason, FinishReason::kStop);
    EXPECT_EQ(spec.last[0].num_generated_tokens, static_cast<int32_t>(first + 1));
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, SpeculativeEngine,
                         ::testing::Values("gpt2-tiny", "llama-tiny", "gemma2-tiny",
                                           "qwen3moe-tiny"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

std::vector<Request> greedy_requests(int n, int32_t max_tokens) {
  std::vector<Request> requests;
  for (const auto& p : repetitive_prompts(n)) {
    Request r;
    r.prompt_token_ids = p;
    r.sampling.temperature = 0;
    r.sampling.max_tokens = max_tokens;
    r.sampling.ignore_eos = true;
    requests.push_back(r);
  }
  return requests;
}

TEST(DraftModel, TheModelAsItsOwnDraftIsAlwaysRight) {
  // Greedy drafts of the model itself are what verification picks: every draft is accepted, so
  // alone a request needs the prefill and ceil(23 / 5) decode steps. The draft's cache is fed
  // everything it has not seen each time, including after the preemptions of the batched run.
  const std::vector<Request> requests = greedy_requests(8, 24);
  const EngineRun plain = run_all("llama-tiny", "", requests);
  const EngineRun spec = run_all("llama-tiny", "draft:llama-tiny", requests);
  for (size_t i = 0; i < requests.size(); ++i)
    EXPECT_EQ(spec.tokens[i], plain.tokens[i]) << "request " << i;
  EXPECT_GT(spec.stats.num_draft_tokens, 0);
  EXPECT_EQ(spec.stats.num_accepted_tokens, spec.stats.num_draft_tokens);
  EXPECT_GT(spec.stats.num_preemptions, 0) << "the pool was meant to be too small";
  const EngineRun one_plain = run_all("llama-tiny", "", {requests[1]}, 64);
  const EngineRun one = run_all("llama-tiny", "draft:llama-tiny", {requests[1]}, 64);
  EXPECT_EQ(one.tokens[0], plain.tokens[1]);
  EXPECT_EQ(one.stats.num_steps, one_plain.stats.num_steps - 23 + 5);
}

TEST(DraftModel, ASlidingWindowModelDraftsInARecycledPool) {
  // mistral-tiny (window 8 on every layer) drafting for itself with 12 blocks: blocks behind the
  // window go back to the pool while the draft catches up over the same block tables.
  const std::vector<Request> requests = greedy_requests(8, 60);
  const EngineRun plain = run_all("mistral-tiny", "", requests, 64);
  const EngineRun spec = run_all("mistral-tiny", "draft:mistral-tiny", requests, 12);
  for (size_t i = 0; i < requests.size(); ++i)
    EXPECT_EQ(spec.tokens[i], plain.tokens[i]) << "request " << i;
  EXPECT_GT(spec.stats.num_accepted_tokens, 0);
  EXPECT_GT(spec.stats.num_window_released_blocks, 0);
  // A full-attention target keeps every block, whatever its draft's window.
  const EngineRun llama = run_all("llama-tiny", "draft:mistral-tiny", requests, 64);
  EXPECT_EQ(llama.stats.num_window_released_blocks, 0);
  EXPECT_EQ(llama.tokens, run_all("llama-tiny", "", requests, 64).tokens);
}

TEST(DraftModel, AnotherModelsDraftsLeaveTheOutputUnchanged) {
  // gpt2-tiny drafting for llama-tiny (same 512-token vocabulary): mostly wrong guesses.
  const std::vector<Request> requests = greedy_requests(8, 24);
  const EngineRun plain = run_all("llama-tiny", "", requests);
  const EngineRun spec = run_all("llama-tiny", "draft:gpt2-tiny", requests);
  for (size_t i = 0; i < requests.size(); ++i)
    EXPECT_EQ(spec.tokens[i], plain.tokens[i]) << "request " << i;
  EXPECT_GT(spec.stats.num_draft_tokens, 0);
  EXPECT_LT(spec.stats.num_accepted_tokens, spec.stats.num_draft_tokens);
}

TEST(DraftModel, RefusedWithoutADraftOrWithAnotherVocabulary) {
  EngineConfig c = engine_config("llama-tiny", "draft:llama-tiny");
  c.speculative.draft_model_dir.clear();
  EXPECT_NE(c.validate().message().find("--draft-model"), std::string::npos);
  c = engine_config("llama-tiny", "draft:llama-tiny");
  c.tensor_parallel_size = 2;
  EXPECT_NE(c.validate().message().find("--speculative draft"), std::string::npos);
  // The embedded default model has GPT-2's 50,257 tokens; the fixtures 512.
  c = engine_config("gpt2-tiny", "draft:gpt2-tiny");
  c.speculative.draft_model_dir = std::filesystem::path(LLMSERVE_SOURCE_DIR) / "models" / "default";
  try {
    Engine engine(c);
    ADD_FAILURE() << "a draft with another vocabulary was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("vocabulary"), std::string::npos) << e.what();
  }
}

TEST(SpeculativeEngine, ParallelRanksVerifyAlike) {
  // Prompt lookup with the model split over CPU ranks (tensor and pipeline parallel): the verify
  // step's logits at every position come from the last stage's rank 0, as a decode's do.
  const std::vector<Request> requests = greedy_requests(6, 20);
  const EngineRun plain = run_all("llama-tiny", "", requests, 64);
  for (auto [tp, pp] : {std::pair{2, 1}, std::pair{1, 2}}) {
    const EngineRun spec = run_all("llama-tiny", "ngram", requests, 64, tp, pp);
    EXPECT_EQ(spec.tokens, plain.tokens) << "tp " << tp << " pp " << pp;
    EXPECT_GT(spec.stats.num_draft_tokens, 0);
  }
}

TEST(SpeculativeEngine, ConfigErrorsNameTheFlag) {
  EngineConfig c = engine_config("llama-tiny", "ngram");
  c.speculative.num_speculative_tokens = 17;
  EXPECT_NE(c.validate().message().find("--num-speculative-tokens"), std::string::npos);
  c = engine_config("llama-tiny", "ngram");
  c.speculative.ngram_min = 3;
  c.speculative.ngram_max = 2;
  EXPECT_NE(c.validate().message().find("--ngram-max"), std::string::npos);
  c = engine_config("llama-tiny", "ngram");
  c.speculative.max_batch_size = -1;
  EXPECT_NE(c.validate().message().find("--speculative-max-batch-size"), std::string::npos);
}

}  // namespace
}  // namespace llmserve
