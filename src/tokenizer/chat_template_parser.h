// Parser of the chat-template (Jinja) language: tokens -> an immutable syntax tree.
//
// Statements: if/elif/else, for (tuple targets, "if" filter, else, loop controls break/continue),
// set (names, tuples, "ns.attr", and block "{% set x %}...{% endset %}"), macro (with defaults),
// generation (Hugging Face's assistant-mask extension; rendered as its body). Anything else
// (include, import, extends, block, call, filter, raw, with, recursive loops, ...) is rejected
// with Error(kInvalidArgument) naming line, column and the construct.
// Expressions follow Jinja's precedence: ternary < or < and < not < comparisons/in < + - < ~ <
// * / // % < ** < unary - + < filters/tests < postfix (.attr [item] [a:b:c] (call)) < primary.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/chat_template_lexer.h"
#include "tokenizer/chat_template_value.h"

namespace llmserve::jinja {

enum class ExprKind {
  kLiteral,   // literal
  kName,      // name
  kList,      // args
  kDict,      // args: key, value, key, value, ...
  kAttr,      // args[0] . name
  kItem,      // args[0] [ args[1] ]
  kSlice,     // args[0] [ args[1] : args[2] : args[3] ], missing parts null
  kCall,      // args[0] ( args[1..], kwargs )
  kFilter,    // args[0] | name ( args[1..], kwargs )
  kTest,      // args[0] is [not] name ( args[1..] ); is_negated
  kUnary,     // name in {"-", "+", "not"} applied to args[0]
  kBinary,    // args[0] name args[1]; name an operator, "and", "or", "~", "+", ...
  kCompare,   // args[0] ops[0] args[1] ops[1] args[2] ...: Python's chained comparison
  kCondition  // args[1] if args[0] else args[2] (args[2] may be null)
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  ExprKind kind = ExprKind::kLiteral;
  SourcePos pos;
  Value literal;
  std::string name;
  bool is_negated = false;
  bool is_tuple = false;         // kList written as a tuple: (a, b)
  std::vector<std::string> ops;  // kCompare: "==", "!=", "<", ">", "<=", ">=", "in", "not in"
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
};

enum class NodeKind { kText, kOutput, kIf, kFor, kSet, kSetBlock, kMacro, kBreak, kContinue };

struct Node;
using NodeList = std::vector<Node>;

struct Node {
  NodeKind kind = NodeKind::kText;
  SourcePos pos;
  std::string text;                  // kText; kMacro: macro name
  ExprPtr expr;                      // kOutput, kSet value, kFor iterable
  ExprPtr filter;                    // kFor "if" filter
  std::vector<std::string> targets;  // kFor/kSet names; kSet "ns.attr" as {"ns", "attr"} + is_attr
  bool is_attr_target = false;
  std::vector<std::pair<ExprPtr, NodeList>> branches;   // kIf: (condition, body)
  NodeList body;                                        // kFor, kSetBlock, kMacro
  NodeList else_body;                                   // kIf, kFor
  std::vector<std::pair<std::string, ExprPtr>> params;  // kMacro: (name, default or null)
};

// Throws Error(kInvalidArgument) naming line, column and construct.
NodeList parse_template(std::string_view source);

}  // namespace llmserve::jinja
