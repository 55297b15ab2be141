// Small text helpers shared by the regex and EBNF parsers: UTF-8 decoding and the escapes both
// dialects accept.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "grammar/grammar.h"

namespace llmserve::grammar {

// Decodes the code point at s[i] and advances i; false (i unchanged) on invalid UTF-8.
bool decode_utf8(std::string_view s, size_t& i, uint32_t& cp);

// The value of a hex digit, or -1.
int hex_digit(char c);

// Reads exactly `digits` hex digits at s[i] (advancing i); false if they are not there.
bool read_hex(std::string_view s, size_t& i, int digits, uint32_t& value);

// The escapes common to both dialects, after the backslash at s[i-1]: n t r f v 0, xHH, uHHHH,
// u{H..} (regex) and UHHHHHHHH (EBNF), and any other ASCII punctuation or the backslash itself
// as itself. Returns false for letters and digits it does not know (the caller decides: \d is a
// class in a regex).
bool read_simple_escape(std::string_view s, size_t& i, uint32_t& cp);

// ECMAScript's \d \w \s sets (and the complements for \D \W \S); false for other letters.
bool class_escape(char c, std::vector<CodepointRange>& ranges);

// The complement of ranges over all scalar values.
std::vector<CodepointRange> complement(std::vector<CodepointRange> ranges);

}  // namespace llmserve::grammar
