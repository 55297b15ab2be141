// Tests for SamplingParams::validate: every field's bounds, NaN / infinity everywhere, and that the
// message names the offending field.
#include "engine/sampling_params.h"

#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include <gtest/gtest.h>

namespace llmserve {
namespace {

constexpr int32_t kVocabSize = 100;
constexpr float kNan = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// Validates `params` after `edit` and returns the status.
Status validate_with(const std::function<void(SamplingParams&)>& edit) {
  SamplingParams params;
  edit(params);
  return params.validate(kVocabSize);
}

// Expects `status` to fail with `code` and a message that starts with the field name.
void expect_error(const Status& status, const std::string& field,
                  StatusCode code = StatusCode::kInvalidArgument) {
  EXPECT_FALSE(status.is_ok()) << field;
  EXPECT_EQ(status.code(), code) << status.to_string();
  EXPECT_EQ(status.message().rfind(field, 0), 0u)
      << "message does not name " << field << ": " << status.message();
}

TEST(SamplingParamsTest, DefaultsAreValid) {
  EXPECT_TRUE(SamplingParams{}.validate(kVocabSize).is_ok());
  SamplingParams params;
  EXPECT_FALSE(params.is_greedy());
  EXPECT_FALSE(params.has_logprobs());
  EXPECT_EQ(params.max_tokens, 16);
}

TEST(SamplingParamsTest, BoundaryValuesAreValid) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.top_k = -1;
  p.top_p = 1.0f;
  p.min_p = 1.0f;
  p.repetition_penalty = 0.01f;
  p.presence_penalty = -2.0f;
  p.frequency_penalty = 2.0f;
  p.seed = std::numeric_limits<uint64_t>::max();
  p.max_tokens = 1;
  p.min_tokens = 1;
  p.ignore_eos = true;
  p.stop_token_ids = {0, kVocabSize - 1};
  p.stop = std::vector<std::string>(kMaxNumStopStrings, "x");
  p.logprobs = kMaxLogprobs;
  p.prompt_logprobs = kMaxLogprobs;
  EXPECT_TRUE(p.validate(kVocabSize).is_ok()) << p.validate(kVocabSize).to_string();
  p.prompt_logprobs = 0;
  EXPECT_TRUE(p.validate(kVocabSize).is_ok());
  p.top_k = 1000;  // larger than the vocabulary: truncation is simply off
  p.logprobs = 0;
  EXPECT_TRUE(p.validate(kVocabSize).is_ok());
}

TEST(SamplingParamsTest, TemperatureMessageMatchesContract) {
  const Status s = validate_with([](SamplingParams& p) { p.temperature = -1.0f; });
  EXPECT_EQ(s.message(), "temperature must be >= 0, got -1");
  EXPECT_EQ(s.to_string(), "INVALID_ARGUMENT: temperature must be >= 0, got -1");
}

TEST(SamplingParamsTest, RejectsEachOutOfRangeField) {
  expect_error(validate_with([](SamplingParams& p) { p.temperature = -0.01f; }), "temperature");
  expect_error(validate_with([](SamplingParams& p) { p.top_k = -2; }), "top_k");
  expect_error(validate_with([](SamplingParams& p) { p.top_p = 0.0f; }), "top_p");
  expect_error(validate_with([](SamplingParams& p) { p.top_p = 1.01f; }), "top_p");
  expect_error(validate_with([](SamplingParams& p) { p.top_p = -0.5f; }), "top_p");
  expect_error(validate_with([](SamplingParams& p) { p.min_p = -0.1f; }), "min_p");
  expect_error(validate_with([](SamplingParams& p) { p.min_p = 1.5f; }), "min_p");
  expect_error(validate_with([](SamplingParams& p) { p.repetition_penalty = 0.0f; }),
               "repetition_penalty");
  expect_error(validate_with([](SamplingParams& p) { p.repetition_penalty = -1.0f; }),
               "repetition_penalty");
  expect_error(validate_with([](SamplingParams& p) { p.presence_penalty = 2.5f; }),
               "presence_penalty");
  expect_error(validate_with([](SamplingParams& p) { p.presence_penalty = -2.01f; }),
               "presence_penalty");
  expect_error(validate_with([](SamplingParams& p) { p.frequency_penalty = -3.0f; }),
               "frequency_penalty");
  expect_error(validate_with([](SamplingParams& p) { p.frequency_penalty = 2.01f; }),
               "frequency_penalty");
  expect_error(validate_with([](SamplingParams& p) { p.max_tokens = 0; }), "max_tokens");
  expect_error(validate_with([](SamplingParams& p) { p.min_tokens = -1; }), "min_tokens");
  expect_error(validate_with([](SamplingParams& p) {
                 p.max_tokens = 4;
                 p.min_tokens = 5;
               }),
               "min_tokens");
  expect_error(validate_with([](SamplingParams& p) { p.logprobs = -2; }), "logprobs");
  expect_error(validate_with([](SamplingParams& p) { p.logprobs = kMaxLogprobs + 1; }), "logprobs");
  expect_error(validate_with([](SamplingParams& p) { p.prompt_logprobs = -2; }), "prompt_logprobs");
  expect_error(validate_with([](SamplingParams& p) { p.prompt_logprobs = kMaxLogprobs + 1; }),
               "prompt_logprobs");
}

TEST(SamplingParamsTest, RejectsNanAndInfinityInEveryFloatField) {
  using Setter = void (*)(SamplingParams&, float);
  const std::vector<std::pair<std::string, Setter>> fields = {
      {"temperature", [](SamplingParams& p, float v) { p.temperature = v; }},
      {"top_p", [](SamplingParams& p, float v) { p.top_p = v; }},
      {"min_p", [](SamplingParams& p, float v) { p.min_p = v; }},
      {"repetition_penalty", [](SamplingParams& p, float v) { p.repetition_penalty = v; }},
      {"presence_penalty", [](SamplingParams& p, float v) { p.presence_penalty = v; }},
      {"frequency_penalty", [](SamplingParams& p, float v) { p.frequency_penalty = v; }},
  };
  for (const auto& [name, set] : fields) {
    for (float bad : {kNan, kInf, -kInf}) {
      SamplingParams p;
      set(p, bad);
      const Status s = p.validate(kVocabSize);
      expect_error(s, name);
      if (std::isnan(bad)) {
        EXPECT_NE(s.message().find("nan"), std::string::npos) << s.message();
      }
    }
  }
}

TEST(SamplingParamsTest, StopTokenIdsMustBeInsideVocabulary) {
  const Status past = validate_with([](SamplingParams& p) { p.stop_token_ids = {5, kVocabSize}; });
  expect_error(past, "stop_token_ids", StatusCode::kOutOfRange);
  EXPECT_EQ(past.message(), "stop_token_ids[1] must be in [0, 100), got 100");
  expect_error(validate_with([](SamplingParams& p) { p.stop_token_ids = {-1}; }), "stop_token_ids",
               StatusCode::kOutOfRange);
}

TEST(SamplingParamsTest, LogitBiasTokensInVocabularyOnceAndBiasWithinHundred) {
  EXPECT_TRUE(validate_with([](SamplingParams& p) {
                p.logit_bias = {{0, -100.0f}, {kVocabSize - 1, 100.0f}};
              }).is_ok());
  const Status past = validate_with([](SamplingParams& p) { p.logit_bias = {{kVocabSize, 1}}; });
  expect_error(past, "logit_bias", StatusCode::kOutOfRange);
  EXPECT_EQ(past.message(), "logit_bias token 100 is not in [0, 100)");
  expect_error(validate_with([](SamplingParams& p) {
                 p.logit_bias = {{-1, 1}};
               }),
               "logit_bias", StatusCode::kOutOfRange);
  expect_error(validate_with([](SamplingParams& p) {
                 p.logit_bias = {{3, 100.5f}};
               }),
               "logit_bias of token 3");
  expect_error(validate_with([](SamplingParams& p) {
                 p.logit_bias = {{3, NAN}};
               }),
               "logit_bias of token 3");
  expect_error(validate_with([](SamplingParams& p) {
                 p.logit_bias = {{3, 1}, {4, 1}, {3, 2}};
               }),
               "logit_bias names token 3 twice");
}

TEST(SamplingParamsTest, BadWordsAreShortNonEmptyAndInsideVocabulary) {
  EXPECT_TRUE(validate_with([](SamplingParams& p) {
                p.bad_words = {{0}, {5, kVocabSize - 1}};
              }).is_ok());
  expect_error(validate_with([](SamplingParams& p) { p.bad_words = {{1}, {}}; }), "bad_words");
  expect_error(validate_with([](SamplingParams& p) {
                 p.bad_words = {{1, kVocabSize}};
               }),
               "bad_words token 100", StatusCode::kOutOfRange);
  expect_error(validate_with([](SamplingParams& p) { p.bad_words.assign(kMaxBadWords + 1, {1}); }),
               "bad_words must hold at most");
  expect_error(validate_with([](SamplingParams& p) {
                 p.bad_words = {std::vector<int32_t>(kMaxBadWordTokens + 1, 1)};
               }),
               "bad_words: each word");
}

TEST(SamplingParamsTest, StopStringsAreNonEmptyAndAtMostSixteen) {
  const Status empty = validate_with([](SamplingParams& p) { p.stop = {"a", ""}; });
  expect_error(empty, "stop[1]");
  const Status too_many = validate_with(
      [](SamplingParams& p) { p.stop = std::vector<std::string>(kMaxNumStopStrings + 1, "x"); });
  expect_error(too_many, "stop");
  EXPECT_NE(too_many.message().find("17"), std::string::npos) << too_many.message();
}

TEST(SamplingParamsTest, FirstBadFieldIsReported) {
  const Status s = validate_with([](SamplingParams& p) {
    p.top_p = 0.0f;
    p.max_tokens = 0;
  });
  expect_error(s, "top_p");
}

}  // namespace
}  // namespace llmserve
