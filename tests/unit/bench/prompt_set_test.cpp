#include "bench/load/prompt_set.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace llmserve::bench::load {
namespace {

const std::filesystem::path kModel = std::filesystem::path(LLMSERVE_SOURCE_DIR) / "models/default";

TEST(PromptSet, SyntheticPromptsAreTokenExact) {
  auto tok = Tokenizer::from_dir(kModel);
  auto prompts = make_synthetic_prompts(*tok, {32, 0.5}, {16, 0.25}, 50, 7);
  ASSERT_EQ(prompts.size(), 50u);
  for (const auto& p : prompts) {
    EXPECT_EQ(static_cast<int32_t>(tok->encode(p.text).size()), p.num_input_tokens) << p.text;
    EXPECT_GE(p.num_input_tokens, 16);
    EXPECT_LE(p.num_input_tokens, 48);
    EXPECT_GE(p.max_tokens, 12);
    EXPECT_LE(p.max_tokens, 20);
  }
  auto again = make_synthetic_prompts(*tok, {32, 0.5}, {16, 0.25}, 50, 7);
  EXPECT_EQ(again[17].text, prompts[17].text);  // deterministic in the seed
}

TEST(PromptSet, ExactLengthsForFixedSpec) {
  auto tok = Tokenizer::from_dir(kModel);
  for (int32_t len : {1, 2, 5, 100, 200}) {
    auto prompts = make_synthetic_prompts(*tok, {len, 0}, {4, 0}, 5, static_cast<uint64_t>(len));
    for (const auto& p : prompts) {
      EXPECT_EQ(p.num_input_tokens, len);
      EXPECT_EQ(static_cast<int32_t>(tok->encode(p.text).size()), len);
      EXPECT_EQ(p.max_tokens, 4);
    }
  }
}

TEST(PromptSet, JsonlFile) {
  auto tok = Tokenizer::from_dir(kModel);
  auto path = std::filesystem::temp_directory_path() / "llmserve_prompts_test.jsonl";
  std::ofstream(path)
      << "{\"prompt\": \"Hello world\", \"output_len\": 5}\n\n{\"text_input\": \"ROMEO:\"}\n";
  auto prompts = load_prompt_file(path.string(), *tok, 9);
  ASSERT_EQ(prompts.size(), 2u);
  EXPECT_EQ(prompts[0].max_tokens, 5);
  EXPECT_EQ(prompts[0].num_input_tokens, static_cast<int32_t>(tok->encode("Hello world").size()));
  EXPECT_EQ(prompts[1].text, "ROMEO:");
  EXPECT_EQ(prompts[1].max_tokens, 9);
  std::ofstream(path) << "{\"prompt\": 3}\n";
  EXPECT_THROW(load_prompt_file(path.string(), *tok, 9), std::exception);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace llmserve::bench::load
