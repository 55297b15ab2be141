// UTF-8 decoding steps, lossy replacement (maximal subparts, as WHATWG / Rust from_utf8_lossy)
// and the incomplete-tail rule the streaming decoder relies on.
#include "tokenizer/utf8.h"

#include <gtest/gtest.h>

namespace llmserve {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

TEST(Utf8Test, ValidSequencesPassThrough) {
  const std::string text = "a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80";  // a é 中 😀
  EXPECT_TRUE(utf8::is_valid(text));
  EXPECT_EQ(utf8::to_valid_lossy(text), text);
  const utf8::Step step = utf8::decode_step(text, 6);
  EXPECT_TRUE(step.is_valid);
  EXPECT_EQ(step.codepoint, 0x1F600u);
  EXPECT_EQ(step.length, 4u);
}

TEST(Utf8Test, EachMaximalInvalidSubpartBecomesOneReplacement) {
  // Examples from Unicode §3.9 "U+FFFD substitution of maximal subparts".
  EXPECT_EQ(utf8::to_valid_lossy("\xE2\x82"), kFffd);                      // truncated 3-byte
  EXPECT_EQ(utf8::to_valid_lossy("\xC0\x80"), kFffd + kFffd);              // overlong lead C0
  EXPECT_EQ(utf8::to_valid_lossy("\xED\xA0\x80"), kFffd + kFffd + kFffd);  // surrogate
  EXPECT_EQ(utf8::to_valid_lossy("\xF4\x90\x80\x80"), kFffd + kFffd + kFffd + kFffd);  // > U+10FFFF
  EXPECT_EQ(utf8::to_valid_lossy("\xF0\x9F\x98"
                                 "A"),
            kFffd + "A");  // cut 4-byte
  EXPECT_EQ(utf8::to_valid_lossy("a\xFF"
                                 "b"),
            "a" + kFffd + "b");
  EXPECT_EQ(utf8::to_valid_lossy("\x80\x80"), kFffd + kFffd);  // lone continuations
  EXPECT_FALSE(utf8::is_valid("\xE2\x82"));
}

TEST(Utf8Test, IncompleteTailIsOnlyAValidButTruncatedSequence) {
  EXPECT_EQ(utf8::incomplete_tail_length("abc"), 0u);
  EXPECT_EQ(utf8::incomplete_tail_length("a\xF0"), 1u);
  EXPECT_EQ(utf8::incomplete_tail_length("a\xF0\x9F"), 2u);
  EXPECT_EQ(utf8::incomplete_tail_length("a\xF0\x9F\x98"), 3u);
  EXPECT_EQ(utf8::incomplete_tail_length("a\xF0\x9F\x98\x80"), 0u);
  EXPECT_EQ(utf8::incomplete_tail_length("a\xFF"), 0u);      // can never complete
  EXPECT_EQ(utf8::incomplete_tail_length("a\xE0\x80"), 0u);  // E0 80 is already invalid
  EXPECT_EQ(utf8::incomplete_tail_length("\x80"), 0u);
}

TEST(Utf8Test, WhitespaceIsUnicodeWhiteSpace) {
  for (char32_t cp : {0x09u, 0x0Au, 0x0Du, 0x20u, 0x85u, 0xA0u, 0x2003u, 0x2028u, 0x3000u}) {
    EXPECT_TRUE(utf8::is_whitespace(cp)) << std::hex << static_cast<uint32_t>(cp);
  }
  for (char32_t cp : {0x41u, 0x180Eu, 0x200Bu, 0xFEFFu}) {
    EXPECT_FALSE(utf8::is_whitespace(cp)) << std::hex << static_cast<uint32_t>(cp);
  }
}

}  // namespace
}  // namespace llmserve
