// Regular expressions → Grammar, for guided_regex, JSON Schema "pattern" and string formats.
//
// The dialect is the common subset of ECMAScript (with the u flag) and Python `re`:
//   literals (any UTF-8 text), escapes \n \t \r \f \v \0 \xHH \uHHHH \u{H...} and \ before any
//   punctuation; classes [abc] [^a-z] with ranges and escapes inside; \d \w \s and \D \W \S
//   (ECMAScript's sets: \s includes the Unicode spaces); . (any code point but \n \r U+2028
//   U+2029); groups ( ), (?: ), (?<name> ), (?P<name> ); alternation |; quantifiers ? * + {m}
//   {m,} {m,n}, with a lazy ? suffix accepted and ignored (laziness does not change the set of
//   matching strings).
// The whole string must match: ^ at the start and $ at the end of the pattern (or of a top-level
// alternative) are accepted and implied. Refused with kInvalidArgument naming the offset:
// backreferences, lookaround, \b \B, anchors elsewhere, flags groups, possessive quantifiers.
//
// json_string mode produces the bytes of the matching strings as they appear between the quotes
// of a JSON string: '"' and '\' become \" and \\, control characters become \n \t \r \b \f or
// \u00XX escapes, so a JSON parser decodes exactly a matching string.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "grammar/grammar.h"

namespace llmserve::grammar {

struct RegexOptions {
  bool json_string = false;
};

// Adds the rules for `pattern` to `grammar`; `rule` receives the rule matching it. Errors read
// "<field>: regex error at offset N: ...".
Status add_regex_rule(std::string_view pattern, std::string_view field, Grammar& grammar,
                      int32_t& rule, const RegexOptions& options = {});

// A grammar whose root matches `pattern`.
Status regex_grammar(std::string_view pattern, std::string_view field, Grammar& out);

}  // namespace llmserve::grammar
