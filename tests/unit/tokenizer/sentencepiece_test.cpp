// SentencePiece-style tokenizers (Llama-2, Mistral, Gemma, Phi-3, Unigram): character-level BPE
// with byte fallback, normalizers, Metaspace, the decoder chain and its streaming, Unigram's
// Viterbi, and the added-token passes around normalization. Expected values follow Hugging Face
// tokenizers (tests/tokenizer_diff/sentencepiece_diff.mjs checks the same against it at scale).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "tokenizer/incremental_detokenizer.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_test_util.h"

namespace llmserve {
namespace {

using nlohmann::json;
using testing::TempDir;
using Ids = std::vector<int32_t>;

const std::string kMeta = "\u2581";

// A Llama-2-shaped tokenizer.json: <unk> 0, <s> 1, </s> 2, <0x00>..<0xFF> 3..258, then pieces.
json llama_json(const std::vector<std::string>& pieces,
                const std::vector<std::pair<std::string, std::string>>& merges) {
  json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}};
  for (int b = 0; b < 256; ++b) vocab[fmt::format("<0x{:02X}>", b)] = 3 + b;
  int next = 259;
  for (const auto& piece : pieces) vocab[piece] = next++;
  json merge_list = json::array();
  for (const auto& [a, b] : merges) merge_list.push_back(a + " " + b);
  return {{"added_tokens",
           {testing::added_token(0, "<unk>", true), testing::added_token(1, "<s>", true),
            testing::added_token(2, "</s>", true)}},
          {"normalizer",
           {{"type", "Sequence"},
            {"normalizers",
             {{{"type", "Prepend"}, {"prepend", kMeta}},
              {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kMeta}}}}}},
          {"pre_tokenizer", nullptr},
          {"post_processor",
           {{"type", "TemplateProcessing"},
            {"single", {{{"SpecialToken", {{"id", "<s>"}}}}, {{"Sequence", {{"id", "A"}}}}}},
            {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}}}}}}},
          {"decoder",
           {{"type", "Sequence"},
            {"decoders",
             {{{"type", "Replace"}, {"pattern", {{"String", kMeta}}}, {"content", " "}},
              {{"type", "ByteFallback"}},
              {{"type", "Fuse"}},
              {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", "<unk>"},
            {"fuse_unk", true},
            {"byte_fallback", true},
            {"vocab", vocab},
            {"merges", merge_list}}}};
}

class SentencePieceTest : public ::testing::Test {
 protected:
  void load(const json& tokenizer_json) {
    dir_.write("tokenizer.json", tokenizer_json.dump());
    tok_ = Tokenizer::from_dir(dir_.path());
  }
  int32_t id(const std::string& token) const { return *tok_->token_to_id(token); }
  std::string stream(const Ids& ids, const DecodeOptions& options = {}) const {
    IncrementalDetokenizer detok(*tok_, options);
    std::string text;
    for (int32_t i : ids) text += detok.push(i);
    return text + detok.flush();
  }

  TempDir dir_;
  std::unique_ptr<Tokenizer> tok_;
  // Pieces: ▁ a b ▁a ab ▁ab é
  const std::vector<std::string> pieces_ = {kMeta, "a", "b", kMeta + "a", "ab", kMeta + "ab", "é"};
  const std::vector<std::pair<std::string, std::string>> merges_ = {
      {kMeta, "a"}, {"a", "b"}, {kMeta + "a", "b"}};
};

TEST_F(SentencePieceTest, LlamaEncodesWithPrependReplaceAndByteFallback) {
  load(llama_json(pieces_, merges_));
  // "ab ab" -> "▁ab▁ab"; 中 (E4 B8 AD) has no piece, so its bytes; <s> from the template.
  EXPECT_EQ(tok_->encode("ab ab"), (Ids{1, id(kMeta + "ab"), id(kMeta + "ab")}));
  EXPECT_EQ(tok_->encode("a中", {.add_special_tokens = false}),
            (Ids{id(kMeta + "a"), 3 + 0xE4, 3 + 0xB8, 3 + 0xAD}));
  EXPECT_EQ(tok_->encode("é", {.add_special_tokens = false}), (Ids{id(kMeta), id("é")}));
  // Each stretch between special tokens is normalized on its own: "▁" before "b" too.
  EXPECT_EQ(tok_->encode("a</s>b", {.add_special_tokens = false}),
            (Ids{id(kMeta + "a"), 2, id(kMeta), id("b")}));
  EXPECT_EQ(tok_->encode("", {.add_special_tokens = false}), Ids{});
}

TEST_F(SentencePieceTest, UnkFusesWithoutByteFallback) {
  json j = llama_json(pieces_, merges_);
  j["model"]["byte_fallback"] = false;
  load(j);
  EXPECT_EQ(tok_->encode("a中中b", {.add_special_tokens = false}),
            (Ids{id(kMeta + "a"), 0, id("b")}));
  j["model"]["fuse_unk"] = false;
  load(j);
  EXPECT_EQ(tok_->encode("a中中b", {.add_special_tokens = false}),
            (Ids{id(kMeta + "a"), 0, 0, id("b")}));
}

TEST_F(SentencePieceTest, DecodeJoinsBytesAndStripsOnlyTheFirstSpace) {
  load(llama_json(pieces_, merges_));
  const Ids ids = {1, id(kMeta + "ab"), id(kMeta + "a"), 3 + 0xE4, 3 + 0xB8, 3 + 0xAD};
  EXPECT_EQ(tok_->decode(ids), "<s> ab a中");
  EXPECT_EQ(tok_->decode(ids, {.skip_special_tokens = true}), "ab a中");
  EXPECT_EQ(stream(ids, {.skip_special_tokens = true}), "ab a中");
  // A byte run that is not valid UTF-8 as a whole is U+FFFD per byte, even its valid part.
  const std::string fffd = "\xEF\xBF\xBD";
  const Ids broken = {3 + 0xE4, 3 + 0xB8, 3 + 0xAD, 3 + 0xFF, id("a")};
  EXPECT_EQ(tok_->decode(broken), fffd + fffd + fffd + fffd + "a");
  EXPECT_EQ(stream(broken), tok_->decode(broken));
}

TEST_F(SentencePieceTest, StreamHoldsByteRunsUntilTheyEnd) {
  load(llama_json(pieces_, merges_));
  IncrementalDetokenizer detok(*tok_, {.skip_special_tokens = true});
  EXPECT_EQ(detok.push(1), "");
  EXPECT_EQ(detok.push(id(kMeta + "a")), "a");  // the first space is stripped
  EXPECT_EQ(detok.push(3 + 0xE4), "");
  EXPECT_EQ(detok.push(3 + 0xB8), "");
  EXPECT_EQ(detok.push(3 + 0xAD), "");  // the run may still go on
  EXPECT_EQ(detok.push(id(kMeta + "ab")), "中 ab");
  EXPECT_EQ(detok.push(id(kMeta)), " ");  // later spaces are kept
  EXPECT_EQ(detok.push(3 + 0xC3), "");
  EXPECT_EQ(detok.flush(), "\xEF\xBF\xBD");
}

TEST_F(SentencePieceTest, MetaspacePreTokenizerAndDecoder) {
  json j = llama_json(pieces_, merges_);
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {
      {"type", "Metaspace"}, {"replacement", kMeta}, {"prepend_scheme", "first"}, {"split", false}};
  j["decoder"] = {{"type", "Metaspace"}, {"replacement", kMeta}, {"prepend_scheme", "first"}};
  load(j);
  // "first": the prefix only at the very start, not after an added token.
  EXPECT_EQ(tok_->encode("ab</s>ab", {.add_special_tokens = false}),
            (Ids{id(kMeta + "ab"), 2, id("ab")}));
  // The Metaspace decoder drops every "▁" of the first token only.
  EXPECT_EQ(tok_->decode(Ids{id(kMeta + "ab"), id(kMeta + "a")}), "ab a");
  EXPECT_EQ(stream(Ids{id(kMeta + "ab"), id(kMeta + "a")}), "ab a");
}

TEST(MetaspaceTest, SchemesAndSplit) {
  PreTokenizer always;
  always.add_metaspace(kMeta, PreTokenizer::PrependScheme::kAlways, true);
  EXPECT_EQ(always.pre_tokenize("a  b", false),
            (std::vector<std::string>{kMeta + "a", kMeta, kMeta + "b"}));
  PreTokenizer first;
  first.add_metaspace(kMeta, PreTokenizer::PrependScheme::kFirst, false);
  EXPECT_EQ(first.pre_tokenize("a b", true), (std::vector<std::string>{kMeta + "a" + kMeta + "b"}));
  EXPECT_EQ(first.pre_tokenize("a b", false), (std::vector<std::string>{"a" + kMeta + "b"}));
  PreTokenizer never;
  never.add_metaspace(kMeta, PreTokenizer::PrependScheme::kNever, true);
  EXPECT_EQ(never.pre_tokenize("a b ", true), (std::vector<std::string>{"a", kMeta + "b", kMeta}));
}

TEST(NormalizerTest, Steps) {
  Normalizer n;
  n.add_unicode(Normalizer::UnicodeForm::kNfkc);
  n.add_replace(" {2,}", RegexSplitter::PatternKind::kRegex, " ", "test");
  n.add_unicode(Normalizer::UnicodeForm::kLowercase);
  n.add_strip(true, true);
  n.add_prepend(kMeta);
  EXPECT_EQ(n.normalize("  Ｆｕｌｌ   ΣΑΣ ½ "), kMeta + "full σασ 1⁄2");
  EXPECT_EQ(n.normalize(""), "");  // Prepend leaves an empty text empty
  EXPECT_EQ(n.normalize("A\xFF"
                        "B"),
            kMeta +
                "a\xFF"
                "b");  // invalid bytes pass through
  EXPECT_EQ(unicode_transform("e\u0301", Normalizer::UnicodeForm::kNfc), "\u00e9");
  EXPECT_EQ(unicode_transform("\u00e9", Normalizer::UnicodeForm::kNfd), "e\u0301");
}

TEST_F(SentencePieceTest, NormalizedAddedTokensMatchTheirNormalizedContent) {
  json j = llama_json(pieces_, merges_);
  json user = testing::added_token(300, "ab", false);
  user["normalized"] = true;  // matched as "▁ab" after Prepend/Replace, as Hugging Face does
  j["added_tokens"].push_back(user);
  load(j);
  EXPECT_EQ(tok_->encode("ab", {.add_special_tokens = false}), (Ids{300}));
  EXPECT_EQ(tok_->encode("b ab", {.add_special_tokens = false}), (Ids{id(kMeta), id("b"), 300}));
}

json unigram_json(bool byte_fallback) {
  json vocab = json::array({{"<unk>", 0.0}, {"<s>", 0.0}, {"</s>", 0.0}});
  for (int b = 0; b < 256; ++b) vocab.push_back(json::array({fmt::format("<0x{:02X}>", b), 0.0}));
  // 259 ▁  260 a  261 b  262 ab  263 ▁a  264 ▁ab
  for (auto [piece, score] : {std::pair{kMeta, -2.0},
                              {"a", -3.0},
                              {"b", -3.0},
                              {"ab", -4.0},
                              {kMeta + "a", -4.5},
                              {kMeta + "ab", -8.0}}) {
    vocab.push_back(json::array({piece, score}));
  }
  return {
      {"added_tokens", json::array()},
      {"normalizer", nullptr},
      {"pre_tokenizer",
       {{"type", "Metaspace"}, {"replacement", kMeta}, {"prepend_scheme", "always"}}},
      {"post_processor", nullptr},
      {"decoder", {{"type", "Metaspace"}, {"replacement", kMeta}, {"prepend_scheme", "always"}}},
      {"model",
       {{"type", "Unigram"}, {"unk_id", 0}, {"byte_fallback", byte_fallback}, {"vocab", vocab}}}};
}

TEST_F(SentencePieceTest, UnigramViterbi) {
  load(unigram_json(false));
  // ▁ab: whole -8.0; ▁a + b -7.5 (best); ▁ + ab -6.0 (better still).
  EXPECT_EQ(tok_->encode("ab"), (Ids{259, 262}));
  // Unknown characters fuse into one unk; with byte fallback they become bytes.
  EXPECT_EQ(tok_->encode("a中中"), (Ids{263, 0}));
  load(unigram_json(true));
  EXPECT_EQ(tok_->encode("a中"), (Ids{263, 3 + 0xE4, 3 + 0xB8, 3 + 0xAD}));
  EXPECT_EQ(tok_->decode(Ids{263, 3 + 0xE4, 3 + 0xB8, 3 + 0xAD, 259, 261}),
            "a<0xE4><0xB8><0xAD> b");
}

}  // namespace
}  // namespace llmserve
