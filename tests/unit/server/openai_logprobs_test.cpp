// openai::LogprobsBuilder and prompt_logprobs_json: the wire shapes of completions logprobs with
// the echoed prompt first (null for its first token, text_offset running on into the completion)
// and of vLLM's prompt_logprobs, with the default model's tokenizer.
#include "server/openai/logprobs.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

namespace llmserve::openai {
namespace {

using nlohmann::json;

const std::filesystem::path kDefault =
    std::filesystem::path(LLMSERVE_SOURCE_DIR) / "models/default";

class OpenAILogprobs : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tokenizer_ = Tokenizer::from_dir(kDefault).release(); }
  static void TearDownTestSuite() { delete tokenizer_; }
  static std::string piece(int32_t id) {
    return tokenizer_->decode(std::span<const int32_t>(&id, 1));
  }
  static inline Tokenizer* tokenizer_ = nullptr;
};

SampleResult scored(int32_t id, float logprob, int32_t rank, std::vector<TokenLogprob> top) {
  SampleResult r;
  r.token_id = id;
  r.logprob = logprob;
  r.rank = rank;
  r.top_logprobs = std::move(top);
  return r;
}

TEST_F(OpenAILogprobs, EchoedPromptLeadsWithANullFirstToken) {
  const std::vector<int32_t> prompt = tokenizer_->encode("ROMEO: Hi", EncodeOptions{});
  ASSERT_GE(prompt.size(), 3u);
  std::vector<SampleResult> scores;
  for (size_t i = 1; i < prompt.size(); ++i) {
    // Rank 1 for the second token (it is the top alternative), rank 7 otherwise.
    const bool is_top = i == 1;
    scores.push_back(scored(prompt[i], is_top ? -0.5f : -3.0f, is_top ? 1 : 7,
                            {{is_top ? prompt[i] : 11, -0.5f}, {12, -1.0f}, {13, -2.0f}}));
  }
  LogprobsBuilder b(*tokenizer_, false);
  b.add_prompt(prompt, scores, 2);  // alternatives cut to 2
  b.add(std::vector<SampleResult>{scored(14, -0.25f, 1, {{14, -0.25f}, {15, -2.0f}})});
  const json& v = b.value();
  const size_t n = prompt.size() + 1;
  ASSERT_EQ(v["tokens"].size(), n);
  ASSERT_EQ(v["token_logprobs"].size(), n);
  ASSERT_EQ(v["top_logprobs"].size(), n);
  ASSERT_EQ(v["text_offset"].size(), n);
  EXPECT_TRUE(v["token_logprobs"][0].is_null());
  EXPECT_TRUE(v["top_logprobs"][0].is_null());
  EXPECT_EQ(v["tokens"][0], piece(prompt[0]));
  EXPECT_EQ(v["token_logprobs"][1], -0.5f);
  EXPECT_EQ(v["top_logprobs"][1].size(), 2u);  // the token is one of its top 2
  EXPECT_EQ(v["top_logprobs"][1][piece(prompt[1])], -0.5f);
  EXPECT_EQ(v["top_logprobs"][2].size(), 3u);  // top 2 and the token itself
  EXPECT_EQ(v["top_logprobs"][2][piece(prompt[2])], -3.0f);
  // text_offset: the running length of the tokens' text, prompt and completion alike.
  size_t offset = 0;
  for (size_t i = 0; i < n; ++i) {
    EXPECT_EQ(v["text_offset"][i], offset) << i;
    offset += v["tokens"][i].get<std::string>().size();
  }
  EXPECT_EQ(v["tokens"][n - 1], piece(14));
  EXPECT_EQ(b.text_offset(), offset);
}

TEST_F(OpenAILogprobs, MinusInfinityIsWrittenAsVllmDoes) {
  LogprobsBuilder b(*tokenizer_, false);
  b.add(std::vector<SampleResult>{scored(5, -INFINITY, 9, {{6, 0.0f}})});
  EXPECT_EQ(b.value()["token_logprobs"][0], -9999.0f);
  EXPECT_EQ(b.value()["top_logprobs"][0][piece(5)], -9999.0f);
}

TEST_F(OpenAILogprobs, PromptLogprobsHaveVllmsShape) {
  const std::vector<int32_t> prompt = {100, 200, 300};
  const std::vector<SampleResult> scores = {
      scored(200, -1.5f, 3, {{7, -0.5f}, {8, -1.0f}, {200, -1.5f}}),
      scored(300, -0.1f, 1, {{300, -0.1f}, {9, -3.0f}, {10, -4.0f}})};
  const json list = prompt_logprobs_json(*tokenizer_, prompt, scores, 2);
  ASSERT_EQ(list.size(), 3u);
  EXPECT_TRUE(list[0].is_null());
  // The prompt token (rank 3, outside the top 2) and the top 2 with ranks 1 and 2.
  ASSERT_EQ(list[1].size(), 3u);
  EXPECT_EQ(list[1]["200"]["logprob"], -1.5f);
  EXPECT_EQ(list[1]["200"]["rank"], 3);
  EXPECT_EQ(list[1]["200"]["decoded_token"], piece(200));
  EXPECT_EQ(list[1]["7"]["rank"], 1);
  EXPECT_EQ(list[1]["8"]["rank"], 2);
  // The prompt token inside the top 2 appears once.
  ASSERT_EQ(list[2].size(), 2u);
  EXPECT_EQ(list[2]["300"]["rank"], 1);
  EXPECT_EQ(list[2]["9"]["rank"], 2);
  // k = 0: the prompt token alone.
  const json bare = prompt_logprobs_json(*tokenizer_, prompt, scores, 0);
  EXPECT_EQ(bare[1].size(), 1u);
  EXPECT_TRUE(bare[1].contains("200"));
  // Scores that do not match the prompt are an internal error, not a wrong reply.
  EXPECT_THROW(prompt_logprobs_json(*tokenizer_, prompt, {scores.data(), 1}, 2), Error);
}

}  // namespace
}  // namespace llmserve::openai
