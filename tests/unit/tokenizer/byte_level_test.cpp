// GPT-2's byte <-> character alphabet.
#include "tokenizer/byte_level.h"

#include <gtest/gtest.h>

#include <set>

namespace llmserve {
namespace {

TEST(ByteLevelTest, KnownCharacters) {
  EXPECT_EQ(byte_level::byte_to_char(' '), 0x120u);   // 'Ġ'
  EXPECT_EQ(byte_level::byte_to_char('\n'), 0x10Au);  // 'Ċ'
  EXPECT_EQ(byte_level::byte_to_char(0), 0x100u);
  EXPECT_EQ(byte_level::byte_to_char('!'), static_cast<char32_t>('!'));
  EXPECT_EQ(byte_level::byte_to_char(0x7F), 0x121u);  // after the 33 bytes 0..0x20
  EXPECT_EQ(byte_level::byte_to_char(0xAD), 0x143u);  // the last unprintable byte
  EXPECT_EQ(byte_level::byte_to_char(0xE9), 0xE9u);   // printable Latin-1 maps to itself
  EXPECT_EQ(byte_level::encode(" hi"), "\xC4\xA0hi");
}

TEST(ByteLevelTest, AllBytesRoundTripThroughDistinctCharacters) {
  std::string all;
  std::set<char32_t> chars;
  for (int b = 0; b < 256; ++b) {
    all.push_back(static_cast<char>(b));
    chars.insert(byte_level::byte_to_char(static_cast<uint8_t>(b)));
    EXPECT_EQ(byte_level::char_to_byte(byte_level::byte_to_char(static_cast<uint8_t>(b))), b);
  }
  EXPECT_EQ(chars.size(), 256u);
  const std::string encoded = byte_level::encode(all);
  EXPECT_EQ(byte_level::decode(encoded), all);
}

TEST(ByteLevelTest, DecodeRejectsCharactersOutsideTheAlphabet) {
  EXPECT_FALSE(byte_level::decode(" ").has_value());  // raw space is not in the alphabet
  EXPECT_FALSE(byte_level::decode("\xE4\xB8\xAD").has_value());
  EXPECT_FALSE(byte_level::decode("\xFF").has_value());
}

}  // namespace
}  // namespace llmserve
