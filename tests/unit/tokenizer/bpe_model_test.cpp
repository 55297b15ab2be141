// The BPE merge loop: rank order, leftmost ties, ignore_merges, unknown characters, the cache
// under concurrency, and load-time validation.
#include "tokenizer/bpe_model.h"

#include <gtest/gtest.h>

#include <thread>

#include "common/status.h"

namespace llmserve {
namespace {

using Ids = std::vector<int32_t>;

// Single letters a..e have ids 0..4; longer tokens follow in the order given.
BpeModel make_model(const std::vector<BpeModel::Merge>& merges, std::vector<std::string> extra = {},
                    BpeModel::Options options = {}) {
  TokenIdMap vocab;
  for (char c = 'a'; c <= 'e'; ++c) vocab[std::string(1, c)] = c - 'a';
  int32_t next = 5;
  for (const auto& m : merges) vocab.emplace(m.left + m.right, next++);
  for (auto& token : extra) vocab.emplace(std::move(token), next++);
  return BpeModel(std::move(vocab), merges, options, "test");
}

Ids encode(const BpeModel& model, std::string_view word) {
  Ids ids;
  model.encode_word(word, ids);
  return ids;
}

TEST(BpeModelTest, MergesApplyInRankOrder) {
  // "bc" outranks "ab": abc -> a bc; swapping the lines gives ab c.
  const BpeModel bc_first = make_model({{"b", "c"}, {"a", "b"}});
  EXPECT_EQ(encode(bc_first, "abc"), (Ids{0, *bc_first.token_to_id("bc")}));
  const BpeModel ab_first = make_model({{"a", "b"}, {"b", "c"}});
  EXPECT_EQ(encode(ab_first, "abc"), (Ids{*ab_first.token_to_id("ab"), 2}));
}

TEST(BpeModelTest, MergesChainToLongTokens) {
  const BpeModel model = make_model({{"a", "b"}, {"c", "d"}, {"ab", "cd"}, {"abcd", "e"}});
  EXPECT_EQ(encode(model, "abcde"), (Ids{*model.token_to_id("abcde")}));
  EXPECT_EQ(encode(model, "abcdab"), (Ids{*model.token_to_id("abcd"), *model.token_to_id("ab")}));
  EXPECT_EQ(encode(model, "ba"), (Ids{1, 0}));
}

TEST(BpeModelTest, EqualRanksMergeLeftmostFirst) {
  const BpeModel model = make_model({{"a", "a"}});
  const int32_t aa = *model.token_to_id("aa");
  EXPECT_EQ(encode(model, "aaa"), (Ids{aa, 0}));
  EXPECT_EQ(encode(model, "aaaaa"), (Ids{aa, aa, 0}));
}

TEST(BpeModelTest, IgnoreMergesEmitsWholeVocabularyWords) {
  // "abc" is in the vocabulary but no merge produces it.
  const BpeModel plain = make_model({{"a", "b"}}, {"abc"});
  EXPECT_EQ(encode(plain, "abc"), (Ids{*plain.token_to_id("ab"), 2}));
  BpeModel::Options options;
  options.ignore_merges = true;
  const BpeModel llama3 = make_model({{"a", "b"}}, {"abc"}, options);
  EXPECT_EQ(encode(llama3, "abc"), (Ids{*llama3.token_to_id("abc")}));
  EXPECT_EQ(encode(llama3, "abcd"), (Ids{*llama3.token_to_id("ab"), 2, 3}));
}

TEST(BpeModelTest, UnknownCharactersAreDroppedOrUnk) {
  const BpeModel drop = make_model({});
  EXPECT_EQ(encode(drop, "axb"), (Ids{0, 1}));
  BpeModel::Options options;
  options.unk_token = "<unk>";
  const BpeModel unk = make_model({}, {"<unk>"}, options);
  EXPECT_EQ(encode(unk, "axb"), (Ids{0, *unk.token_to_id("<unk>"), 1}));
}

TEST(BpeModelTest, CachedAndConcurrentEncodesAgree) {
  const BpeModel model = make_model({{"a", "b"}, {"c", "d"}, {"ab", "cd"}, {"e", "a"}});
  const std::vector<std::string> words = {"abcd", "eab", "dcba", "abcdabcd", "eeaa", "a"};
  std::vector<Ids> expected;
  for (const auto& w : words) expected.push_back(encode(model, w));
  std::vector<std::thread> threads;
  std::atomic<int> mismatches = 0;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        const std::size_t k = (i + t) % words.size();
        if (encode(model, words[k]) != expected[k]) ++mismatches;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches, 0);
}

TEST(BpeModelTest, RejectsMergesOutsideTheVocabulary) {
  TokenIdMap vocab{{"a", 0}, {"b", 1}};
  try {
    BpeModel(std::move(vocab), {{"a", "b"}}, {}, "merges.txt");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("merges.txt: merge 0"), std::string::npos) << e.what();
  }
}

TEST(BpeModelTest, RejectsDuplicateIds) {
  TokenIdMap vocab{{"a", 0}, {"b", 0}};
  EXPECT_THROW(BpeModel(std::move(vocab), {}, {}, "vocab.json"), Error);
}

}  // namespace
}  // namespace llmserve
