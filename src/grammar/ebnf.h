// EBNF → Grammar, in the GBNF dialect llama.cpp and XGrammar accept (vLLM's guided_grammar):
//
//   # a comment, to the end of the line
//   root   ::= object                      the rule named "root" is where matching starts
//   object ::= "{" ws ( pair ( "," ws pair )* )? "}"
//   pair   ::= string ":" ws value
//   string ::= "\"" [^"\\]* "\""
//   ws     ::= [ \t\n]{0,2}
//
// Rule names are [A-Za-z0-9_-]+ (and '.'); a rule's body runs until the next `name ::=` (so
// alternatives may span lines). Elements: "literal" and 'literal' (UTF-8 text with the escapes
// \n \t \r \f \v \0 \\ \" \' \xHH \uHHHH \UHHHHHHHH), [character classes] of code points with
// ranges, [^...] negation and the same escapes, `.` (any code point), rule names (defined
// before or after use), ( groups ), alternation |, and the quantifiers ? * + {m} {m,} {m,n}.
// Errors (kInvalidArgument) read "<field>: line L, column C: ...": unknown rules, a missing root,
// unbalanced brackets, left recursion (rewrite `a ::= a "x" | "y"` as `a ::= "y" "x"*`).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "grammar/grammar.h"

namespace llmserve::grammar {

Status ebnf_grammar(std::string_view text, std::string_view field, Grammar& out);

// One of these strings exactly (vLLM's guided_choice). At least one; strings may be empty.
Status choice_grammar(const std::vector<std::string>& choices, std::string_view field,
                      Grammar& out);

}  // namespace llmserve::grammar
