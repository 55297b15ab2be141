// Tokenizer end to end on small hand-made tokenizer directories: byte-level encode/decode,
// special and added tokens, post-processor bos, tokenizer_config.json, invalid UTF-8, threads.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <thread>

#include "common/status.h"
#include "tokenizer_test_util.h"

namespace llmserve {
namespace {

using testing::bl;
using testing::BpeSpec;
using testing::byte_ids;
using testing::TempDir;
using Ids = std::vector<int32_t>;

const std::string kFffd = "\xEF\xBF\xBD";

std::unique_ptr<Tokenizer> load(const BpeSpec& spec, const TempDir& dir) {
  spec.write(dir);
  return Tokenizer::from_dir(dir.path());
}

TEST(TokenizerTest, ByteVocabularyEncodesBytesAndRoundTrips) {
  TempDir dir;
  const auto tok = load(BpeSpec{}, dir);
  const std::string text = "Hi \xE4\xB8\xAD\xF0\x9F\x98\x80!\n";
  EXPECT_EQ(tok->encode(text), byte_ids(text));
  EXPECT_EQ(tok->decode(tok->encode(text)), text);
  EXPECT_EQ(tok->vocab_size(), 256);
  EXPECT_EQ(tok->token_to_id(bl(" ")), 32);
  EXPECT_EQ(tok->id_to_token(32), "\xC4\xA0");  // "Ġ"
  EXPECT_EQ(tok->token_bytes(32), " ");
  EXPECT_FALSE(tok->token_to_id(" ").has_value());
  EXPECT_FALSE(tok->bos_token_id().has_value());
  EXPECT_EQ(tok->chat_template(), "");
}

TEST(TokenizerTest, MergesApplyWithinPreTokensOnly) {
  BpeSpec spec;
  spec.merges = {{" ", "t"}, {"h", "e"}, {" t", "he"}, {"e", " "}};
  TempDir dir;
  const auto tok = load(spec, dir);
  // " the" is one pre-token; "e " would span two pre-tokens, so that merge never fires.
  EXPECT_EQ(tok->encode("he the"), (Ids{spec.id("he"), spec.id(" the")}));
  EXPECT_EQ(tok->encode("the"), (Ids{'t', spec.id("he")}));
  EXPECT_EQ(tok->decode(tok->encode("he the")), "he the");
  EXPECT_EQ(tok->token_bytes(spec.id(" the")), " the");
}

TEST(TokenizerTest, SpecialTokensAreMatchedOnlyWhenParsed) {
  BpeSpec spec;
  spec.added_tokens.push_back(testing::added_token(300, "<|endoftext|>", true));
  TempDir dir;
  const auto tok = load(spec, dir);
  EXPECT_EQ(tok->vocab_size(), 301);
  EXPECT_TRUE(tok->is_special(300));
  EXPECT_FALSE(tok->is_special('a'));
  EXPECT_EQ(tok->encode("a<|endoftext|>b"), (Ids{'a', 300, 'b'}));
  EXPECT_EQ(tok->encode("a<|endoftext|>b", {.parse_special_tokens = false}),
            byte_ids("a<|endoftext|>b"));
  EXPECT_EQ(tok->token_to_id("<|endoftext|>"), 300);
  EXPECT_EQ(tok->id_to_token(300), "<|endoftext|>");
  const Ids ids = {'a', 300, 'b'};
  EXPECT_EQ(tok->decode(ids), "a<|endoftext|>b");
  EXPECT_EQ(tok->decode(ids, {.skip_special_tokens = true}), "ab");
  // Ids between the model's last id and the added token are holes: they decode to nothing.
  EXPECT_EQ(tok->decode(Ids{'a', 299}), "a");
  EXPECT_EQ(tok->id_to_token(299), "");
}

TEST(TokenizerTest, AddedTokensLongestFirstAndNonSpecialAlwaysMatched) {
  BpeSpec spec;
  spec.added_tokens.push_back(testing::added_token(300, "<a>", true));
  spec.added_tokens.push_back(testing::added_token(301, "<a><b>", true));
  spec.added_tokens.push_back(testing::added_token(302, "foo bar", false));
  TempDir dir;
  const auto tok = load(spec, dir);
  EXPECT_EQ(tok->encode("<a><b><a>"), (Ids{301, 300}));
  EXPECT_EQ(tok->encode("xfoo bar!", {.parse_special_tokens = false}), (Ids{'x', 302, '!'}));
  EXPECT_FALSE(tok->is_special(302));
  EXPECT_EQ(tok->decode(Ids{302, 300}, {.skip_special_tokens = true}), "foo bar");
  EXPECT_EQ(tok->token_bytes(302), "foo bar");  // added tokens stand for their raw content
}

TEST(TokenizerTest, AddedTokenStripAndSingleWord) {
  BpeSpec spec;
  auto mask = testing::added_token(300, "<mask>", true);
  mask["lstrip"] = true;
  auto sep = testing::added_token(301, "<sep>", true);
  sep["rstrip"] = true;
  auto word = testing::added_token(302, "cat", false);
  word["single_word"] = true;
  spec.added_tokens = {mask, sep, word};
  TempDir dir;
  const auto tok = load(spec, dir);
  EXPECT_EQ(tok->encode("a  <mask>b"), (Ids{'a', 300, 'b'}));
  EXPECT_EQ(tok->encode("a<sep>  b"), (Ids{'a', 301, 'b'}));
  EXPECT_EQ(tok->encode("a cat"), (Ids{'a', ' ', 302}));
  EXPECT_EQ(tok->encode("cats"), byte_ids("cats"));
}

TEST(TokenizerTest, TemplateProcessingAddsBos) {
  BpeSpec spec;
  spec.added_tokens.push_back(testing::added_token(300, "<|begin_of_text|>", true));
  spec.post_processor = nlohmann::json::parse(R"({
    "type": "Sequence",
    "processors": [
      {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
      {"type": "TemplateProcessing",
       "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                  {"Sequence": {"id": "A", "type_id": 0}}],
       "pair": [],
       "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [300],
                                                "tokens": ["<|begin_of_text|>"]}}}]})");
  TempDir dir;
  const auto tok = load(spec, dir);
  EXPECT_EQ(tok->encode("hi"), (Ids{300, 'h', 'i'}));
  EXPECT_EQ(tok->encode("hi", {.add_special_tokens = false}), (Ids{'h', 'i'}));
  EXPECT_EQ(tok->encode(""), (Ids{300}));
}

TEST(TokenizerTest, TokenizerConfigSetsSpecialTokensTemplateAndBos) {
  BpeSpec spec;
  spec.added_tokens.push_back(testing::added_token(300, "<s>", true));
  TempDir dir;
  spec.write(dir);
  dir.write("tokenizer_config.json", R"({
    "bos_token": "<s>",
    "eos_token": {"__type": "AddedToken", "content": "</s>", "special": true},
    "add_bos_token": true,
    "added_tokens_decoder": {"301": {"content": "</s>", "special": true}},
    "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "{{ x }}"}],
    "model_max_length": 4096})");
  const auto tok = Tokenizer::from_dir(dir.path());
  EXPECT_EQ(tok->bos_token_id(), 300);
  EXPECT_EQ(tok->eos_token_id(), 301);
  EXPECT_TRUE(tok->is_special(301));
  EXPECT_EQ(tok->vocab_size(), 302);
  EXPECT_EQ(tok->chat_template(), "{{ x }}");
  EXPECT_EQ(tok->model_max_length(), 4096);
  EXPECT_EQ(tok->encode("a</s>"), (Ids{300, 'a', 301}));
}

TEST(TokenizerTest, ChatTemplateFileAndHugeMaxLength) {
  TempDir dir;
  BpeSpec{}.write(dir);
  dir.write("tokenizer_config.json", R"({"model_max_length": 1e30, "add_bos_token": false})");
  dir.write("chat_template.jinja", "{% for m in messages %}{{ m.content }}{% endfor %}");
  const auto tok = Tokenizer::from_dir(dir.path());
  EXPECT_FALSE(tok->model_max_length().has_value());
  EXPECT_EQ(tok->chat_template(), "{% for m in messages %}{{ m.content }}{% endfor %}");
}

TEST(TokenizerTest, VocabJsonAndMergesTxt) {
  TempDir dir;
  nlohmann::json vocab;
  for (int b = 0; b < 256; ++b) vocab[bl(std::string(1, static_cast<char>(b)))] = b;
  vocab[bl(" w")] = 256;
  vocab[bl(" wo")] = 257;
  vocab["<|endoftext|>"] = 258;
  dir.write("vocab.json", vocab.dump());
  dir.write("merges.txt", "#version: 0.2\n" + bl(" ") + " w\n" + bl(" w") + " o\n");
  const auto tok = Tokenizer::from_dir(dir.path());
  EXPECT_EQ(tok->encode("a wow"), (Ids{'a', 257, 'w'}));
  EXPECT_EQ(tok->encode("x<|endoftext|>"), (Ids{'x', 258}));
  EXPECT_EQ(tok->eos_token_id(), 258);
  EXPECT_EQ(tok->bos_token_id(), 258);
  EXPECT_TRUE(tok->is_special(258));
  EXPECT_EQ(tok->encode("x", {.add_special_tokens = true}), (Ids{'x'}));  // GPT-2 adds no bos
}

TEST(TokenizerTest, InvalidUtf8IsEncodedByteByByteAndDecodedAsReplacement) {
  BpeSpec spec;
  spec.merges = {{"\xFF", "\xFE"}, {"a", "b"}};
  TempDir dir;
  const auto tok = load(spec, dir);
  const std::string text =
      "ab\xFF\xFE"
      "ab\xE4\xB8";
  const Ids ids = tok->encode(text);
  EXPECT_EQ(ids, (Ids{spec.id("ab"), spec.id("\xFF\xFE"), spec.id("ab"), 0xE4, 0xB8}));
  std::string bytes;
  for (int32_t id : ids) bytes += tok->token_bytes(id);
  EXPECT_EQ(bytes, text);
  EXPECT_EQ(tok->decode(ids), "ab" + kFffd + kFffd + "ab" + kFffd);
}

TEST(TokenizerTest, DecodeReplacesInvalidSequencesLikeHuggingFace) {
  TempDir dir;
  const auto tok = load(BpeSpec{}, dir);
  EXPECT_EQ(tok->decode(Ids{0xE2, 0x82, 0xAC}), "\xE2\x82\xAC");  // €
  EXPECT_EQ(tok->decode(Ids{0xE2, 0x82}), kFffd);
  EXPECT_EQ(tok->decode(Ids{0xC0, 0x80, 'a'}), kFffd + kFffd + "a");
  EXPECT_EQ(tok->decode(Ids{0xED, 0xA0, 0x80}), kFffd + kFffd + kFffd);
}

TEST(TokenizerTest, OutOfRangeIdsThrow) {
  TempDir dir;
  const auto tok = load(BpeSpec{}, dir);
  for (int32_t id : {-1, 256, 1 << 30}) {
    try {
      tok->decode(Ids{id});
      FAIL() << "expected an Error for " << id;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), StatusCode::kOutOfRange);
    }
    EXPECT_THROW(tok->token_bytes(id), Error);
    EXPECT_FALSE(tok->is_special(id));
  }
}

TEST(TokenizerTest, ConcurrentEncodesMatchSerialOnes) {
  BpeSpec spec;
  spec.merges = {{" ", "t"}, {"h", "e"}, {" t", "he"}, {"a", "b"}};
  TempDir dir;
  const auto tok = load(spec, dir);
  std::vector<std::string> texts;
  for (int i = 0; i < 50; ++i)
    texts.push_back("the ab " + std::to_string(i * 7919) + " abab the\n");
  std::vector<Ids> expected;
  for (const auto& t : texts) expected.push_back(tok->encode(t));
  std::atomic<int> mismatches = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        const std::size_t k = (i * 13 + t) % texts.size();
        if (tok->encode(texts[k]) != expected[k]) ++mismatches;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches, 0);
}

}  // namespace
}  // namespace llmserve
