// Case mapping with Python's results for the scripts chat templates meet (see the header).
#include "tokenizer/chat_template_case.h"

#include <vector>

#include "tokenizer/chat_template_value.h"
#include "tokenizer/utf8.h"

namespace llmserve::jinja {
namespace {

char32_t decode_code_point(std::string_view c) {
  const auto b0 = static_cast<unsigned char>(c[0]);
  if (c.size() == 1) return b0;
  char32_t cp = c.size() == 2 ? (b0 & 0x1F) : (c.size() == 3 ? (b0 & 0x0F) : (b0 & 0x07));
  for (std::size_t i = 1; i < c.size(); ++i)
    cp = (cp << 6) | (static_cast<unsigned char>(c[i]) & 0x3F);
  return cp;
}

// Latin Extended-A pairs: even code point upper in these ranges, odd upper elsewhere.
bool is_even_upper_block(char32_t cp) {
  return (cp >= 0x100 && cp <= 0x137) || (cp >= 0x14A && cp <= 0x177);
}
bool is_odd_upper_block(char32_t cp) {
  return (cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E);
}

char32_t to_upper(char32_t cp) {
  if (cp >= 'a' && cp <= 'z') return cp - 0x20;
  if ((cp >= 0xE0 && cp <= 0xFE && cp != 0xF7)) return cp - 0x20;
  if (cp == 0xFF) return 0x178;
  if (is_even_upper_block(cp) && (cp % 2) == 1) return cp - 1;
  if (is_odd_upper_block(cp) && (cp % 2) == 0) return cp - 1;
  if (cp >= 0x3B1 && cp <= 0x3C9) return cp == 0x3C2 ? 0x3A3 : cp - 0x20;
  if (cp == 0x3AC) return 0x386;
  if (cp >= 0x3AD && cp <= 0x3AF) return cp - 0x25;
  if (cp == 0x3CC) return 0x38C;
  if (cp == 0x3CD || cp == 0x3CE) return cp - 0x3F;
  if (cp >= 0x430 && cp <= 0x44F) return cp - 0x20;
  if (cp >= 0x450 && cp <= 0x45F) return cp - 0x50;
  return cp;
}

char32_t to_lower(char32_t cp) {
  if (cp >= 'A' && cp <= 'Z') return cp + 0x20;
  if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) return cp + 0x20;
  if (cp == 0x178) return 0xFF;
  if (is_even_upper_block(cp) && (cp % 2) == 0) return cp + 1;
  if (is_odd_upper_block(cp) && (cp % 2) == 1) return cp + 1;
  if (cp >= 0x391 && cp <= 0x3A9 && cp != 0x3A2) return cp + 0x20;
  if (cp == 0x386) return 0x3AC;
  if (cp >= 0x388 && cp <= 0x38A) return cp + 0x25;
  if (cp == 0x38C) return 0x3CC;
  if (cp == 0x38E || cp == 0x38F) return cp + 0x3F;
  if (cp >= 0x410 && cp <= 0x42F) return cp + 0x20;
  if (cp >= 0x400 && cp <= 0x40F) return cp + 0x50;
  return cp;
}

bool is_cased(char32_t cp) {
  return to_upper(cp) != cp || to_lower(cp) != cp || cp == 0xDF;
}

void append_upper(char32_t cp, std::string& out) {
  if (cp == 0xDF) {
    out += "SS";  // Python: 'ß'.upper() == 'SS'
    return;
  }
  utf8::append_codepoint(out, to_upper(cp));
}

}  // namespace

std::string change_case(std::string_view s, CaseChange change) {
  std::string out;
  out.reserve(s.size());
  bool is_previous_cased = false;  // kTitle: the previous character was a cased letter
  bool is_word_start = true;       // kJinjaTitle
  bool is_first = true;
  const std::vector<std::string> chars = split_code_points(s);
  std::vector<char32_t> cps;
  for (const std::string& c : chars) cps.push_back(decode_code_point(c));
  for (std::size_t i = 0; i < chars.size(); ++i) {
    const std::string& c = chars[i];
    const char32_t cp = cps[i];
    bool wants_upper = false;
    switch (change) {
      case CaseChange::kUpper:
        wants_upper = true;
        break;
      case CaseChange::kLower:
        break;
      case CaseChange::kCapitalize:
        wants_upper = is_first;
        break;
      case CaseChange::kTitle:
        wants_upper = !is_previous_cased;
        is_previous_cased = is_cased(cp);
        break;
      case CaseChange::kJinjaTitle: {
        const bool is_separator =
            std::string_view("-({[< \t\n\r\v\f").find(c) != std::string_view::npos;
        wants_upper = is_word_start;
        is_word_start = is_separator;
        break;
      }
    }
    is_first = false;
    if (wants_upper) {
      append_upper(cp, out);
    } else if (cp == 0x3A3 && i > 0 && is_cased(cps[i - 1]) &&
               (i + 1 == cps.size() || !is_cased(cps[i + 1]))) {
      utf8::append_codepoint(out, 0x3C2);  // Python's Final_Sigma rule
    } else {
      utf8::append_codepoint(out, to_lower(cp));
    }
  }
  return out;
}

}  // namespace llmserve::jinja
