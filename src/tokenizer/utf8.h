// UTF-8 scanning shared by the tokenizer: one decoding step with the exact validity rules of the
// Unicode standard (no overlongs, no surrogates, nothing past U+10FFFF), lossy conversion that
// replaces each maximal invalid subpart with U+FFFD (what Rust's String::from_utf8_lossy, and so
// Hugging Face's ByteLevel decoder, and WHATWG's TextDecoder do), and the length of an incomplete
// but still valid character at the end of a buffer (what a streaming decoder must hold back).
// Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace llmserve::utf8 {

inline constexpr char32_t kReplacementChar = 0xFFFD;
inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// One step of decoding at s[pos] (pos < s.size()).
struct Step {
  char32_t codepoint = kReplacementChar;  // kReplacementChar when !is_valid
  std::size_t length = 1;  // bytes consumed: the character, or the maximal invalid subpart
  bool is_valid = false;
  bool is_truncated = false;  // invalid only because s ends inside an otherwise valid sequence
};
Step decode_step(std::string_view s, std::size_t pos);

bool is_valid(std::string_view s);

// s with every maximal invalid subpart replaced by U+FFFD.
std::string to_valid_lossy(std::string_view s);

// Bytes at the end of s that start a valid sequence which s cuts short (0..3).
std::size_t incomplete_tail_length(std::string_view s);

void append_codepoint(std::string& out, char32_t cp);

// Unicode White_Space (the set Rust's char::is_whitespace and Oniguruma's \s use).
bool is_whitespace(char32_t cp);

}  // namespace llmserve::utf8
