// Lexer of the chat-template (Jinja) language: source text -> a flat token stream of template
// text, tag delimiters and expression tokens, with Jinja's whitespace control already applied the
// way Hugging Face configures it (trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=
// False):
//   - "{%-", "{{-", "{#-" strip all whitespace before the tag; "-%}", "-}}", "-#}" after it;
//   - lstrip_blocks: spaces/tabs between a line start and "{%" or "{#" are removed ("{%+" keeps);
//   - trim_blocks: one newline right after "%}" or "#}" is removed ("+%}" keeps);
//   - "\r\n" and "\r" become "\n", and one trailing newline of the source is dropped.
// Comments are dropped here. "{% raw %}" is not supported (rejected by the parser).
// Errors throw Error(kInvalidArgument) naming line and column.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace llmserve::jinja {

enum class TokenKind {
  kText,
  kVariableBegin,  // {{
  kVariableEnd,    // }}
  kBlockBegin,     // {%
  kBlockEnd,       // %}
  kName,
  kString,  // text holds the decoded string
  kInteger,
  kFloat,
  kOperator,
  kEof,
};

struct SourcePos {
  int line = 1;
  int column = 1;
};

struct Token {
  TokenKind kind = TokenKind::kEof;
  std::string text;
  SourcePos pos;
};

std::vector<Token> tokenize_template(std::string_view source);

}  // namespace llmserve::jinja
