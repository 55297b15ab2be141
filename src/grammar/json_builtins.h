// The JSON building blocks shared by json_value_grammar and the JSON Schema compiler: whitespace,
// strings, numbers, any value, created in a Grammar on first use (so a schema's grammar holds
// only what it uses), plus integer ranges as alternatives of digit classes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "grammar/grammar.h"
#include "grammar/json_schema.h"

namespace llmserve::grammar {

class JsonBuiltins {
 public:
  JsonBuiltins(Grammar& g, const JsonOptions& options) : g_(g), options_(options) {}

  // Appends optional whitespace (nothing when max_whitespace is 0).
  void ws(Sequence& seq);
  int32_t string();     // "..." any JSON string
  int32_t json_char();  // one code point inside a string: unescaped or an escape
  int32_t number();
  int32_t integer();
  int32_t boolean();
  int32_t null();
  int32_t value();
  int32_t object();  // any members
  int32_t array();   // any items
  // An integer in [lo, hi] (either side open when absent), as JSON text.
  int32_t integer_range(std::optional<int64_t> lo, std::optional<int64_t> hi);

  Grammar& grammar() { return g_; }

 private:
  int32_t escape();
  int32_t regex(std::string_view name, std::string_view pattern);

  Grammar& g_;
  JsonOptions options_;
  int32_t ws_ = -1, string_ = -1, char_ = -1, escape_ = -1, number_ = -1, integer_ = -1,
          boolean_ = -1, null_ = -1, value_ = -1, object_ = -1, array_ = -1;
};

}  // namespace llmserve::grammar
