// UTF-8 decoding per Unicode 15 §3.9 (Table 3-7, well-formed byte sequences) with the "maximal
// subpart" replacement practice. See utf8.h.
#include "tokenizer/utf8.h"

#include <cstdint>

namespace llmserve::utf8 {
namespace {

// Number of bytes of the sequence a lead byte announces; 0 for bytes that cannot start one.
int sequence_length(uint8_t lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

// The allowed range of the second byte depends on the lead byte (Table 3-7); later bytes are
// always 80..BF.
bool second_byte_ok(uint8_t lead, uint8_t b) {
  switch (lead) {
    case 0xE0:
      return b >= 0xA0 && b <= 0xBF;
    case 0xED:
      return b >= 0x80 && b <= 0x9F;
    case 0xF0:
      return b >= 0x90 && b <= 0xBF;
    case 0xF4:
      return b >= 0x80 && b <= 0x8F;
    default:
      return b >= 0x80 && b <= 0xBF;
  }
}

}  // namespace

Step decode_step(std::string_view s, std::size_t pos) {
  const auto lead = static_cast<uint8_t>(s[pos]);
  Step step;
  const int need = sequence_length(lead);
  if (need == 1) return {lead, 1, true, false};
  if (need == 0) return step;  // a lone invalid byte is its own maximal subpart
  char32_t cp = lead & (need == 2 ? 0x1F : need == 3 ? 0x0F : 0x07);
  std::size_t i = 1;
  for (; i < static_cast<std::size_t>(need); ++i) {
    if (pos + i >= s.size()) {
      step.length = i;
      step.is_truncated = true;
      return step;
    }
    const auto b = static_cast<uint8_t>(s[pos + i]);
    const bool ok = i == 1 ? second_byte_ok(lead, b) : (b >= 0x80 && b <= 0xBF);
    if (!ok) {
      step.length = i;
      return step;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  return {cp, i, true, false};
}

bool is_valid(std::string_view s) {
  for (std::size_t pos = 0; pos < s.size();) {
    if (static_cast<uint8_t>(s[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const Step step = decode_step(s, pos);
    if (!step.is_valid) return false;
    pos += step.length;
  }
  return true;
}

std::string to_valid_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t pos = 0; pos < s.size();) {
    if (static_cast<uint8_t>(s[pos]) < 0x80) {
      out.push_back(s[pos++]);
      continue;
    }
    const Step step = decode_step(s, pos);
    if (step.is_valid) {
      out.append(s.substr(pos, step.length));
    } else {
      out.append(kReplacement);
    }
    pos += step.length;
  }
  return out;
}

std::size_t incomplete_tail_length(std::string_view s) {
  // A truncated sequence is at most 3 bytes long, so only the last 3 start positions matter.
  const std::size_t first = s.size() > 3 ? s.size() - 3 : 0;
  for (std::size_t pos = first; pos < s.size(); ++pos) {
    if (sequence_length(static_cast<uint8_t>(s[pos])) < 2) continue;
    const Step step = decode_step(s, pos);
    if (step.is_truncated) return s.size() - pos;
  }
  return 0;
}

void append_codepoint(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool is_whitespace(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

}  // namespace llmserve::utf8
