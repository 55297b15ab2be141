// GPT-2's byte-level alphabet: every byte 0..255 is written as one printable Unicode character
// (printable Latin-1 bytes stand for themselves, the other 68 are shifted to U+0100..U+0143), so
// that a byte-level BPE vocabulary is a set of ordinary strings. Encoding is total; decoding a
// string that contains a character outside the alphabet fails (the caller decides what then).
// Tables are built once; all functions are thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace llmserve::byte_level {

char32_t byte_to_char(uint8_t byte);
std::optional<uint8_t> char_to_byte(char32_t cp);

// Raw bytes -> byte-level string (UTF-8 of the mapped characters).
std::string encode(std::string_view bytes);
void append_encoded(std::string& out, std::string_view bytes);

// Byte-level string -> raw bytes; nullopt if s is not valid UTF-8 or holds a character outside
// the 256-character alphabet.
std::optional<std::string> decode(std::string_view s);

}  // namespace llmserve::byte_level
