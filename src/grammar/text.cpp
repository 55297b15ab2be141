#include "grammar/text.h"

#include <cctype>

namespace llmserve::grammar {

bool decode_utf8(std::string_view s, size_t& i, uint32_t& cp) {
  auto b0 = static_cast<uint8_t>(s[i]);
  int len = b0 < 0x80 ? 1 : (b0 >> 5) == 6 ? 2 : (b0 >> 4) == 14 ? 3 : (b0 >> 3) == 30 ? 4 : 0;
  if (len == 0 || i + static_cast<size_t>(len) > s.size()) return false;
  uint32_t v = len == 1 ? b0 : len == 2 ? (b0 & 0x1F) : len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
  for (int k = 1; k < len; ++k) {
    auto b = static_cast<uint8_t>(s[i + static_cast<size_t>(k)]);
    if ((b & 0xC0) != 0x80) return false;
    v = (v << 6) | (b & 0x3F);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (v < kMin[len] || v > kMaxCodepoint || (v >= 0xD800 && v <= 0xDFFF)) return false;
  cp = v;
  i += static_cast<size_t>(len);
  return true;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool read_hex(std::string_view s, size_t& i, int digits, uint32_t& value) {
  uint32_t v = 0;
  for (int k = 0; k < digits; ++k) {
    if (i + static_cast<size_t>(k) >= s.size()) return false;
    int d = hex_digit(s[i + static_cast<size_t>(k)]);
    if (d < 0) return false;
    v = v * 16 + static_cast<uint32_t>(d);
  }
  i += static_cast<size_t>(digits);
  value = v;
  return true;
}

bool read_simple_escape(std::string_view s, size_t& i, uint32_t& cp) {
  if (i >= s.size()) return false;
  char c = s[i++];
  switch (c) {
    case 'n':
      cp = '\n';
      return true;
    case 't':
      cp = '\t';
      return true;
    case 'r':
      cp = '\r';
      return true;
    case 'f':
      cp = '\f';
      return true;
    case 'v':
      cp = '\v';
      return true;
    case '0':
      cp = 0;
      return true;
    case 'x':
      return read_hex(s, i, 2, cp);
    case 'U':
      return read_hex(s, i, 8, cp) && cp <= kMaxCodepoint;
    case 'u':
      if (i < s.size() && s[i] == '{') {
        size_t j = i + 1;
        uint32_t v = 0;
        int n = 0;
        while (j < s.size() && hex_digit(s[j]) >= 0 && n < 6)
          v = v * 16 + static_cast<uint32_t>(hex_digit(s[j++])), ++n;
        if (n == 0 || j >= s.size() || s[j] != '}' || v > kMaxCodepoint) return false;
        i = j + 1;
        cp = v;
        return true;
      }
      return read_hex(s, i, 4, cp);
    default:
      if (static_cast<uint8_t>(c) < 0x80 && !std::isalnum(static_cast<unsigned char>(c))) {
        cp = static_cast<uint8_t>(c);
        return true;
      }
      --i;
      return false;
  }
}

bool class_escape(char c, std::vector<CodepointRange>& ranges) {
  std::vector<CodepointRange> r;
  switch (c) {
    case 'd':
    case 'D':
      r = {{'0', '9'}};
      break;
    case 'w':
    case 'W':
      r = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
      break;
    case 's':
    case 'S':
      r = {{'\t', '\r'},     {' ', ' '},       {0xA0, 0xA0},     {0x1680, 0x1680},
           {0x2000, 0x200A}, {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F},
           {0x3000, 0x3000}, {0xFEFF, 0xFEFF}};
      break;
    default:
      return false;
  }
  if (std::isupper(static_cast<unsigned char>(c))) r = complement(std::move(r));
  ranges.insert(ranges.end(), r.begin(), r.end());
  return true;
}

std::vector<CodepointRange> complement(std::vector<CodepointRange> ranges) {
  return Element::codepoint_class(std::move(ranges), true).codepoints;
}

}  // namespace llmserve::grammar
