// Evaluator of the chat-template syntax tree: renders a parsed template against a set of global
// variables. Scoping follows Jinja: a for loop's body and a macro call get their own scope (a
// `set` inside them does not leak out; namespace() objects are how templates carry state out of
// a loop); if blocks do not. Undefined names evaluate to Undefined (falsy, prints ""); using an
// attribute or operator on one throws. break/continue are supported (transformers enables
// jinja2.ext.loopcontrols).
//
// Errors throw Error(kInvalidArgument) naming the line and column of the failing expression;
// raise_exception(msg) throws Error(kInvalidArgument, msg) with the template's message alone.
//
// Thread-safety: an Evaluator is used by one render at a time; the tree it reads is immutable.
#pragma once

#include <string>

#include "tokenizer/chat_template_parser.h"
#include "tokenizer/chat_template_value.h"

namespace llmserve::jinja {

std::string render_template(const NodeList& nodes, const ValueDict& globals);

}  // namespace llmserve::jinja
