// Case mapping for the chat-template language: Python's str.upper/lower/capitalize/title (and
// jinja2's title filter) for ASCII, Latin-1, Latin Extended-A, Greek (with the final-sigma rule)
// and Cyrillic, 'ß' upper-casing to "SS"; characters of other scripts pass through unchanged.
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace llmserve::jinja {

// kTitle: str.title() (a word starts after any uncased character); kJinjaTitle: jinja2's title
// filter (a word starts after [-\s({[<]).
enum class CaseChange { kUpper, kLower, kCapitalize, kTitle, kJinjaTitle };
std::string change_case(std::string_view s, CaseChange change);

}  // namespace llmserve::jinja
