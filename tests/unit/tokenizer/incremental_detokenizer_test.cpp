// Streaming decode: characters split across tokens are held back until whole, broken bytes become
// U+FFFD at the same places a full decode puts them, and push()+flush() always equals decode().
#include "tokenizer/incremental_detokenizer.h"

#include <gtest/gtest.h>

#include <random>

#include "common/status.h"
#include "tokenizer/utf8.h"
#include "tokenizer_test_util.h"

namespace llmserve {
namespace {

using testing::BpeSpec;
using testing::TempDir;
using Ids = std::vector<int32_t>;

const std::string kFffd = "\xEF\xBF\xBD";

class IncrementalDetokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Tokens that cut characters: 😀 = F0 9F 98 80 as "F0 9F" + "98 80"; 中 = E4 B8 AD as
    // "E4" + "B8 AD"; and a token holding the end of one character and the start of the next.
    spec_.merges = {{"\xF0", "\x9F"}, {"\x98", "\x80"}, {"\xB8", "\xAD"}, {"\xAD", "\xE4"}};
    spec_.added_tokens.push_back(testing::added_token(300, "<|eot|>", true));
    spec_.write(dir_);
    tok_ = Tokenizer::from_dir(dir_.path());
  }

  std::vector<std::string> stream(const Ids& ids, DecodeOptions options = {}) {
    IncrementalDetokenizer detok(*tok_, options);
    std::vector<std::string> out;
    for (int32_t id : ids) out.push_back(detok.push(id));
    out.push_back(detok.flush());
    return out;
  }

  static std::string join(const std::vector<std::string>& parts) {
    std::string all;
    for (const auto& p : parts) all += p;
    return all;
  }

  BpeSpec spec_;
  TempDir dir_;
  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(IncrementalDetokenizerTest, EmojiSplitAcrossTokens) {
  const Ids ids = {'a', spec_.id("\xF0\x9F"), spec_.id("\x98\x80"), 'b'};
  EXPECT_EQ(stream(ids), (std::vector<std::string>{"a", "", "\xF0\x9F\x98\x80", "b", ""}));
}

TEST_F(IncrementalDetokenizerTest, CjkSplitAcrossTokensAndSharedToken) {
  // 中中 = E4 B8 AD E4 B8 AD as E4 | B8 AD | E4 | B8 AD
  const Ids ids = {0xE4, spec_.id("\xB8\xAD"), 0xE4, spec_.id("\xB8\xAD")};
  EXPECT_EQ(stream(ids), (std::vector<std::string>{"", "\xE4\xB8\xAD", "", "\xE4\xB8\xAD", ""}));
  // E4 B8 | AD E4 | B8 AD: the middle token ends one character and starts the next.
  const Ids shared = {0xE4, 0xB8, spec_.id("\xAD\xE4"), spec_.id("\xB8\xAD")};
  EXPECT_EQ(stream(shared), (std::vector<std::string>{"", "", "\xE4\xB8\xAD", "\xE4\xB8\xAD", ""}));
}

TEST_F(IncrementalDetokenizerTest, EncodedTextStreamsBackOneByteAtATime) {
  const std::string text =
      "h\xC3\xA9llo \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9 \xE4\xB8\xAD\xE6\x96\x87";
  const Ids ids = tok_->encode(text);
  const auto parts = stream(ids);
  EXPECT_EQ(join(parts), text);
  for (const auto& part : parts) EXPECT_TRUE(utf8::is_valid(part)) << part;
}

TEST_F(IncrementalDetokenizerTest, InvalidBytesBecomeReplacementAtTheRightTime) {
  // FF can never start a character: replaced at once.
  EXPECT_EQ(stream({'a', 0xFF, 'b'}), (std::vector<std::string>{"a", kFffd, "b", ""}));
  // E2 waits; 'A' proves it broken.
  EXPECT_EQ(stream({0xE2, 'A'}), (std::vector<std::string>{"", kFffd + "A", ""}));
  // A truncated character at the end comes out of flush().
  EXPECT_EQ(stream({'x', 0xE2, 0x82}), (std::vector<std::string>{"x", "", "", kFffd}));
}

TEST_F(IncrementalDetokenizerTest, SkipsSpecialTokensWhenAsked) {
  const Ids ids = {'a', 300, 0xE4, 300, spec_.id("\xB8\xAD")};
  EXPECT_EQ(join(stream(ids)), tok_->decode(ids));
  EXPECT_EQ(join(stream(ids, {.skip_special_tokens = true})),
            tok_->decode(ids, {.skip_special_tokens = true}));
  EXPECT_EQ(join(stream(ids, {.skip_special_tokens = true})), "a\xE4\xB8\xAD");
}

TEST_F(IncrementalDetokenizerTest, RandomIdSequencesMatchFullDecode) {
  const uint32_t seed = std::random_device{}();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> any_id(0, tok_->vocab_size() - 1);
  std::uniform_int_distribution<int32_t> high_byte(0x80, 0xFF);
  for (int round = 0; round < 300; ++round) {
    Ids ids;
    const int n = 1 + static_cast<int>(rng() % 24);
    for (int i = 0; i < n; ++i) ids.push_back(rng() % 2 ? high_byte(rng) : any_id(rng));
    for (bool skip : {false, true}) {
      const auto parts = stream(ids, {.skip_special_tokens = skip});
      ASSERT_EQ(join(parts), tok_->decode(ids, {.skip_special_tokens = skip}));
      for (const auto& part : parts) ASSERT_TRUE(utf8::is_valid(part));
    }
  }
}

TEST_F(IncrementalDetokenizerTest, OutOfRangeIdThrowsAndKeepsState) {
  IncrementalDetokenizer detok(*tok_);
  EXPECT_EQ(detok.push(0xE4), "");
  EXPECT_THROW(detok.push(5000), Error);
  EXPECT_EQ(detok.push(spec_.id("\xB8\xAD")), "\xE4\xB8\xAD");
}

}  // namespace
}  // namespace llmserve
