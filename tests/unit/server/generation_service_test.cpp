#include "server/generation_service.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

namespace llmserve {
namespace {

const std::filesystem::path kDefault =
    std::filesystem::path(LLMSERVE_SOURCE_DIR) / "models/default";

class Recorder : public RequestObserver {
 public:
  void on_request_done(const RequestRecord& r) override { records.push_back(r); }
  std::vector<RequestRecord> records;
};

struct Fixture {
  Fixture() : tokenizer(Tokenizer::from_dir(kDefault)) {
    EngineConfig c;
    c.model_dir = kDefault;
    c.num_kv_blocks = 64;
    engine = std::make_unique<Engine>(c);
    service = std::make_unique<GenerationService>(*engine, *tokenizer);
    service->add_observer(&recorder);
  }
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<GenerationService> service;
  Recorder recorder;
};

std::string run(GenerationService& service, const GenerateRequest& req, GenerateChunk& last) {
  std::shared_ptr<GenerationHandle> h;
  Status s = service.start(req, h);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  std::string text;
  GenerateChunk c;
  while (h->next(c)) {
    text += c.text;
    last = c;
  }
  return text;  // dropping the handle reports its record
}

TEST(GenerationService, GreedyTextMatchesTransformers) {
  Fixture f;
  std::ifstream in(kDefault / "reference.json");
  auto ref = nlohmann::json::parse(in)["prompts"][0];
  GenerateRequest req;
  req.prompt = ref["prompt"].get<std::string>();
  req.sampling.temperature = 0;
  req.sampling.max_tokens = 40;
  req.sampling.ignore_eos = true;
  req.model = "default";
  GenerateChunk last;
  EXPECT_EQ(run(*f.service, req, last), ref["greedy_text"].get<std::string>());
  EXPECT_EQ(last.finish_reason, FinishReason::kLength);
  EXPECT_EQ(last.num_generated_tokens, 40);
  ASSERT_EQ(f.recorder.records.size(), 1u);
  const RequestRecord& r = f.recorder.records[0];
  EXPECT_TRUE(r.is_success);
  EXPECT_EQ(r.num_prompt_tokens, 3);
  EXPECT_EQ(r.num_generated_tokens, 40);
  ASSERT_TRUE(r.admitted && r.first_token && r.finished);
  EXPECT_LE(r.arrival, *r.admitted);
  EXPECT_LE(*r.finished, r.completed);
  EXPECT_EQ(r.inter_token_seconds.size(), 39u);
}

TEST(GenerationService, StopStringEndsWithStop) {
  Fixture f;
  GenerateRequest req;
  req.prompt = std::string("ROMEO:");
  req.sampling.temperature = 0;
  req.sampling.max_tokens = 40;
  req.sampling.stop = {"man"};
  GenerateChunk last;
  EXPECT_EQ(run(*f.service, req, last), "\nI'll be a ");
  EXPECT_EQ(last.finish_reason, FinishReason::kStop);
  req.include_stop_str_in_output = true;
  EXPECT_EQ(run(*f.service, req, last), "\nI'll be a man");
}

// Whether `needle` occurs in `ids` as a contiguous run.
bool contains_run(const std::vector<int32_t>& ids, const std::vector<int32_t>& needle) {
  return std::search(ids.begin(), ids.end(), needle.begin(), needle.end()) != ids.end();
}

TEST(GenerationService, BadWordsAreNeverGenerated) {
  Fixture f;
  GenerateRequest req;
  req.prompt = std::string("ROMEO:");
  req.sampling.temperature = 0;
  req.sampling.max_tokens = 40;
  req.sampling.ignore_eos = true;
  const auto tokens_of = [&](const GenerateRequest& r, std::string& text) {
    std::shared_ptr<GenerationHandle> h;
    const Status s = f.service->start(r, h);
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    std::vector<int32_t> ids;
    GenerateChunk c;
    while (h != nullptr && h->next(c)) {
      ids.insert(ids.end(), c.token_ids.begin(), c.token_ids.end());
      text += c.text;
    }
    return ids;
  };
  const EncodeOptions enc{.add_special_tokens = false};
  const std::vector<int32_t> plain = f.tokenizer->encode("man", enc);
  const std::vector<int32_t> spaced = f.tokenizer->encode(" man", enc);
  std::string free_text;
  const std::vector<int32_t> free = tokens_of(req, free_text);
  ASSERT_TRUE(contains_run(free, plain) || contains_run(free, spaced)) << free_text;

  req.bad_words = {"man"};
  std::string banned_text;
  const std::vector<int32_t> banned = tokens_of(req, banned_text);
  EXPECT_EQ(banned.size(), 40u);
  EXPECT_FALSE(contains_run(banned, plain)) << banned_text;
  EXPECT_FALSE(contains_run(banned, spaced)) << banned_text;
  EXPECT_EQ(banned_text.rfind("\nI'll be a ", 0), 0u) << banned_text;  // same until the ban bites
  EXPECT_NE(banned_text, free_text);

  req.bad_words = {"  "};
  std::shared_ptr<GenerationHandle> h;
  EXPECT_EQ(f.service->start(req, h).code(), StatusCode::kInvalidArgument);
}

TEST(GenerationService, TokenPromptAndRejection) {
  Fixture f;
  GenerateRequest req;
  req.prompt = std::vector<int32_t>{33676, 4720, 25};  // "ROMEO:"
  req.sampling.temperature = 0;
  req.sampling.max_tokens = 3;
  GenerateChunk last;
  EXPECT_EQ(run(*f.service, req, last), "\nI'll");
  req.sampling.max_tokens = 1000;
  std::shared_ptr<GenerationHandle> h;
  Status s = f.service->start(req, h);
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_EQ(h, nullptr);
  f.service->reject(req, s);
  EXPECT_EQ(f.recorder.records.back().failure, FailureReason::kRejected);
  // The statistics extension counts every finished request, whichever frontend finished it.
  const ModelStats::Snapshot stats = f.service->stats().snapshot();
  EXPECT_EQ(stats.inference_count, 1u);
  EXPECT_EQ(stats.fail.count, 1u);
}

// However a request ends, its handle reports it once: here the frontend drops it mid-stream (the
// engine request is cancelled, the record says so) and the KV blocks come back.
TEST(GenerationService, HandleDroppedMidStreamIsRecordedOnceAsCancelled) {
  Fixture f;
  GenerateRequest req;
  req.prompt = std::string("ROMEO:");
  req.sampling.temperature = 0;
  req.sampling.max_tokens = 200;
  req.sampling.ignore_eos = true;
  std::shared_ptr<GenerationHandle> h;
  ASSERT_TRUE(f.service->start(req, h).is_ok());
  GenerateChunk c;
  ASSERT_TRUE(h->next(c));
  EXPECT_FALSE(c.is_final());
  EXPECT_TRUE(f.recorder.records.empty());
  h.reset();
  ASSERT_EQ(f.recorder.records.size(), 1u);
  EXPECT_FALSE(f.recorder.records[0].is_success);
  EXPECT_EQ(f.recorder.records[0].failure, FailureReason::kCancelled);
  for (int i = 0; i < 400 && f.engine->stats().num_used_blocks > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(f.engine->stats().num_used_blocks, 0);
  EXPECT_EQ(f.service->stats().snapshot().fail.count, 1u);
}

// A text prompt that cannot fit max_model_len tokens is refused by its size in bytes, before the
// tokenizer sees it (60 MB prompts once held every I/O thread for seconds); the bound is never
// below what max_model_len tokens of the longest token can hold.
TEST(GenerationService, OversizedTextPromptRefusedBeforeTokenizing) {
  Fixture f;
  const int64_t cap = f.service->max_prompt_bytes();
  EXPECT_GE(cap, static_cast<int64_t>(f.engine->max_model_len()) * 4);
  GenerateRequest req;
  req.prompt = std::string(static_cast<size_t>(cap) + 1, 'a');
  req.sampling.max_tokens = 1;
  std::shared_ptr<GenerationHandle> h;
  Status s = f.service->start(req, h);
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_NE(s.message().find("bytes"), std::string::npos) << s.message();
  EXPECT_EQ(h, nullptr);
}

}  // namespace
}  // namespace llmserve
