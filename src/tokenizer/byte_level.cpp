// The byte <-> character tables of GPT-2's bytes_to_unicode(). See byte_level.h.
#include "tokenizer/byte_level.h"

#include <array>

#include "tokenizer/utf8.h"

namespace llmserve::byte_level {
namespace {

struct Tables {
  std::array<char32_t, 256> to_char{};
  std::array<std::string, 256> to_utf8;
  std::array<int16_t, 0x144> to_byte{};  // every mapped character is below U+0144

  Tables() {
    to_byte.fill(-1);
    // Bytes that are printable Latin-1 map to themselves; the rest take U+0100.. in byte order.
    auto is_printable = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    char32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
      const char32_t cp = is_printable(b) ? static_cast<char32_t>(b) : next++;
      to_char[b] = cp;
      to_byte[cp] = static_cast<int16_t>(b);
      utf8::append_codepoint(to_utf8[b], cp);
    }
  }
};

const Tables& tables() {
  static const Tables kTables;
  return kTables;
}

}  // namespace

char32_t byte_to_char(uint8_t byte) {
  return tables().to_char[byte];
}

std::optional<uint8_t> char_to_byte(char32_t cp) {
  const auto& t = tables();
  if (cp >= t.to_byte.size() || t.to_byte[cp] < 0) return std::nullopt;
  return static_cast<uint8_t>(t.to_byte[cp]);
}

void append_encoded(std::string& out, std::string_view bytes) {
  const auto& t = tables();
  for (char c : bytes) out += t.to_utf8[static_cast<uint8_t>(c)];
}

std::string encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  append_encoded(out, bytes);
  return out;
}

std::optional<std::string> decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t pos = 0; pos < s.size();) {
    const utf8::Step step = utf8::decode_step(s, pos);
    if (!step.is_valid) return std::nullopt;
    const auto byte = char_to_byte(step.codepoint);
    if (!byte) return std::nullopt;
    out.push_back(static_cast<char>(*byte));
    pos += step.length;
  }
  return out;
}

}  // namespace llmserve::byte_level
