// Regex splitting (GPT-2 / cl100k patterns, White_Space semantics, invalid UTF-8) and the
// ByteLevel / Split step pipeline.
#include "tokenizer/pre_tokenizer.h"

#include <gtest/gtest.h>

#include "common/status.h"

namespace llmserve {
namespace {

using Pieces = std::vector<std::string>;

// cl100k_base / Llama-3's pattern.
constexpr std::string_view kCl100kPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

Pieces split(const RegexSplitter& splitter, std::string_view text) {
  std::vector<std::string_view> views;
  splitter.split(text, views);
  return Pieces(views.begin(), views.end());
}

TEST(RegexSplitterTest, Gpt2Pattern) {
  const RegexSplitter gpt2(kGpt2Pattern, RegexSplitter::PatternKind::kRegex, "test");
  EXPECT_EQ(split(gpt2, "Hello world's 123  \n"),
            (Pieces{"Hello", " world", "'s", " 123", "  \n"}));
  // A run of spaces gives its last space to the next word.
  EXPECT_EQ(split(gpt2, "a   b"), (Pieces{"a", "  ", " b"}));
  EXPECT_EQ(split(gpt2, "I'll"), (Pieces{"I", "'ll"}));
  EXPECT_EQ(split(gpt2, "x=1;"), (Pieces{"x", "=", "1", ";"}));
  EXPECT_EQ(split(gpt2, "\xC3\xA9t\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87"),
            (Pieces{"\xC3\xA9t\xC3\xA9", " \xE4\xB8\xAD\xE6\x96\x87"}));  // été 中文
  EXPECT_TRUE(split(gpt2, "").empty());
}

TEST(RegexSplitterTest, Cl100kPattern) {
  const RegexSplitter cl100k(kCl100kPattern, RegexSplitter::PatternKind::kRegex, "test");
  EXPECT_EQ(split(cl100k, "1234567"), (Pieces{"123", "456", "7"}));
  EXPECT_EQ(split(cl100k, "HE'LL"), (Pieces{"HE", "'LL"}));  // contractions ignore case
  EXPECT_EQ(split(cl100k, "a\n\n  b"), (Pieces{"a", "\n\n", " ", " b"}));
  EXPECT_EQ(split(cl100k, "(x)"), (Pieces{"(x", ")"}));
}

TEST(RegexSplitterTest, WhitespaceMeansUnicodeWhiteSpace) {
  const RegexSplitter gpt2(kGpt2Pattern, RegexSplitter::PatternKind::kRegex, "test");
  // U+180E and U+FEFF are format characters, not White_Space: they join punctuation.
  EXPECT_EQ(split(gpt2, "\xE1\xA0\x8E!"), (Pieces{"\xE1\xA0\x8E!"}));
  EXPECT_EQ(split(gpt2, "\xEF\xBB\xBF!"), (Pieces{"\xEF\xBB\xBF!"}));
  // U+0085 and U+3000 are White_Space.
  EXPECT_EQ(split(gpt2, "a\xC2\x85!"), (Pieces{"a", "\xC2\x85", "!"}));
  EXPECT_EQ(split(gpt2, "a\xE3\x80\x80\xE3\x80\x80"), (Pieces{"a", "\xE3\x80\x80\xE3\x80\x80"}));
}

TEST(RegexSplitterTest, RewriteOfWhitespaceClasses) {
  const std::string rewritten = rewrite_whitespace_classes(R"([^\s\p{L}]|\S|\\s|[\]\s])");
  EXPECT_EQ(rewritten.find("\\s"), rewritten.find("\\\\s") + 1);  // only the escaped "\\s" stays
  EXPECT_EQ(rewritten.find("\\S"), std::string::npos);
  EXPECT_NE(rewritten.find("[^\\x{9}-\\x{D}"), std::string::npos);
}

TEST(RegexSplitterTest, InvalidUtf8RunsAreIsolatedPieces) {
  const RegexSplitter gpt2(kGpt2Pattern, RegexSplitter::PatternKind::kRegex, "test");
  EXPECT_EQ(split(gpt2,
                  "ab\xFF"
                  "cd"),
            (Pieces{"ab", "\xFF", "cd"}));
  EXPECT_EQ(split(gpt2, "a \xFF\xFE b"), (Pieces{"a", " ", "\xFF\xFE", " b"}));
  EXPECT_EQ(split(gpt2, "x\xE4\xB8"), (Pieces{"x", "\xE4\xB8"}));
}

TEST(RegexSplitterTest, LiteralPatternAndGaps) {
  const RegexSplitter dash("--", RegexSplitter::PatternKind::kLiteral, "test");
  EXPECT_EQ(split(dash, "a--b----c"), (Pieces{"a", "--", "b", "--", "--", "c"}));
  const RegexSplitter digits("[0-9]", RegexSplitter::PatternKind::kRegex, "test");
  EXPECT_EQ(split(digits, "ab12c"), (Pieces{"ab", "1", "2", "c"}));
}

TEST(RegexSplitterTest, BadPatternNamesWhere) {
  try {
    RegexSplitter("(unclosed", RegexSplitter::PatternKind::kRegex, "tokenizer.json: pre_tokenizer");
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("tokenizer.json: pre_tokenizer"), std::string::npos);
  }
}

TEST(RegexSplitterTest, LongInputsDoNotExhaustTheStack) {
  const RegexSplitter cl100k(kCl100kPattern, RegexSplitter::PatternKind::kRegex, "test");
  const std::string spaces(200000, ' ');
  EXPECT_EQ(split(cl100k, spaces + "x"), (Pieces{std::string(199999, ' '), " x"}));
  const std::string newlines = std::string(100000, '\n') + std::string(100000, ' ');
  EXPECT_EQ(split(cl100k, newlines), (Pieces{std::string(100000, '\n'), std::string(100000, ' ')}));
}

TEST(PreTokenizerTest, ByteLevelPrefixSpaceAndSequence) {
  PreTokenizer with_prefix;
  with_prefix.add_byte_level(/*add_prefix_space=*/true, /*use_regex=*/true);
  EXPECT_EQ(with_prefix.pre_tokenize("Hi there"), (Pieces{" Hi", " there"}));
  EXPECT_EQ(with_prefix.pre_tokenize(" Hi"), (Pieces{" Hi"}));  // already starts with a space

  PreTokenizer llama3;  // Split(cl100k) then ByteLevel(use_regex=false)
  llama3.add_split(kCl100kPattern, RegexSplitter::PatternKind::kRegex, "test");
  llama3.add_byte_level(/*add_prefix_space=*/false, /*use_regex=*/false);
  EXPECT_EQ(llama3.pre_tokenize("Hello 2024!"), (Pieces{"Hello", " ", "202", "4", "!"}));

  PreTokenizer two_splits;  // splits compose: each piece of the first is split by the second
  two_splits.add_split(" ", RegexSplitter::PatternKind::kLiteral, "test");
  two_splits.add_split("[0-9]+", RegexSplitter::PatternKind::kRegex, "test");
  two_splits.add_byte_level(/*add_prefix_space=*/true, /*use_regex=*/false);
  EXPECT_EQ(two_splits.pre_tokenize("ab12 c"), (Pieces{" ab", " 12", " ", " c"}));
  EXPECT_TRUE(llama3.has_byte_level());
}

}  // namespace
}  // namespace llmserve
