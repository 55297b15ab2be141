// JSON → Grammar: any JSON value, any JSON object, and JSON Schema.
//
// Output shape. Documents are compact JSON with bounded optional whitespace: at most
// JsonOptions::max_whitespace bytes of [ \t\n] after '{', '[', ',' and ':' and before '}' and
// ']' (default 1, and with 1 only a space: `{"a": 1, "b": [2, 3]}`); no leading or trailing
// whitespace. Unbounded whitespace lets a model emit newlines forever; this bound is what vLLM's
// default whitespace pattern and OpenAI's outputs look like. Strings are any JSON string (escapes
// included; \u escapes never name a surrogate, so a string's length is its code point count),
// numbers are -?(0|[1-9][0-9]{0,19})(.[0-9]{1,20})?([eE][+-]?[0-9]{1,2})? (always finite as a
// double).
//
// JSON Schema support (docs/grammar.md has the full table): type (one or a list), enum, const,
// properties (emitted in schema order: pass the schema as text so the order survives),
// required, additionalProperties (false / true / a schema; absent means false when "properties"
// is present — OpenAI strict mode and vLLM's XGrammar backend — and any members otherwise),
// items, prefixItems, minItems, maxItems, minLength, maxLength, pattern, format (date, time,
// date-time, uuid, email, ipv4), minimum / maximum / exclusiveMinimum / exclusiveMaximum for
// integers (any int64 bounds) and 0 bounds for numbers, $ref to #/$defs/... and
// #/definitions/... (recursion allowed), anyOf and oneOf (as alternatives; a document may match
// several oneOf branches), allOf with one schema. Annotations (title, description, default,
// examples, $schema, $id, $comment, deprecated, readOnly, writeOnly) are ignored. Any other
// validation keyword we know of (not, if, uniqueItems, multipleOf, patternProperties, ...) is
// refused with kInvalidArgument naming it: a schema is honoured or refused, never loosened.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "grammar/grammar.h"

namespace llmserve::grammar {

struct JsonOptions {
  // Whitespace bytes allowed at each place JSON allows whitespace: 0 = none, 1 = one space,
  // n > 1 = up to n of space, tab and newline (room for pretty-printing shallow documents).
  int max_whitespace = 1;
};

// Any JSON value / any JSON object (OpenAI's response_format {"type": "json_object"}).
Grammar json_value_grammar(const JsonOptions& options = {});
Grammar json_object_grammar(const JsonOptions& options = {});

// field names the schema in error messages, e.g. "response_format.json_schema.schema":
//   "response_format.json_schema.schema.properties.age.type: unknown type 'integr'".
Status json_schema_grammar_from_json(const nlohmann::ordered_json& schema, std::string_view field,
                                     Grammar& out, const JsonOptions& options = {});
// The same from the schema's text (keeps the properties' order); a parse error names field.
Status json_schema_grammar(std::string_view schema_text, std::string_view field, Grammar& out,
                           const JsonOptions& options = {});

}  // namespace llmserve::grammar
