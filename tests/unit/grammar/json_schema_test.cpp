#include "grammar/json_schema.h"

#include <gtest/gtest.h>

#include "grammar_testing.h"

namespace llmserve::grammar {
namespace {

using testing::compile_or_die;
using testing::matches;

std::shared_ptr<const CompiledGrammar> schema(std::string_view text, JsonOptions options = {}) {
  Grammar g;
  Status s = json_schema_grammar(text, "schema", g, options);
  EXPECT_TRUE(s.is_ok()) << s.message();
  return compile_or_die(g);
}

std::string schema_error(std::string_view text) {
  Grammar g;
  Status s = json_schema_grammar(text, "response_format.json_schema.schema", g);
  EXPECT_FALSE(s.is_ok()) << text;
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  return s.message();
}

TEST(JsonGrammar, AnyValue) {
  auto g = compile_or_die(json_value_grammar());
  for (const char* ok : {"1", "-0.5e+10", "\"a\\n\\u00e9\"", "true", "null", "[]", "[1, [2]]", "{}",
                         "{\"a\": {\"b\": [null]}}", "\"\xC3\xA9\"", "{ }"}) {
    EXPECT_TRUE(matches(g, ok)) << ok;
  }
  for (const char* bad : {"", "01", "1.", "+1", "\"\x01\"", "[1,]", "{\"a\"}", "{'a': 1}", "tru",
                          "\"\\x\"", "  1", "[1,  2]", "\"\\ud800\""}) {
    EXPECT_FALSE(matches(g, bad)) << bad;
  }
}

TEST(JsonGrammar, ObjectOnlyAndWhitespacePolicy) {
  auto g = compile_or_die(json_object_grammar());
  EXPECT_TRUE(matches(g, "{\"a\":1}"));
  EXPECT_TRUE(matches(g, "{\"a\": 1, \"b\": 2}"));
  EXPECT_FALSE(matches(g, "[1]"));
  EXPECT_FALSE(matches(g, "{\n\"a\": 1}"));  // newline needs max_whitespace > 1
  JsonOptions pretty;
  pretty.max_whitespace = 3;
  auto p = compile_or_die(json_object_grammar(pretty));
  EXPECT_TRUE(matches(p, "{\n  \"a\": 1\n}"));
  EXPECT_FALSE(matches(p, "{\n    \"a\": 1}"));
  JsonOptions compact;
  compact.max_whitespace = 0;
  EXPECT_FALSE(matches(compile_or_die(json_object_grammar(compact)), "{\"a\": 1}"));
}

TEST(JsonSchema, PropertiesInOrderRequiredAndOptional) {
  auto g = schema(R"({"type":"object","properties":{"b":{"type":"integer"},
      "a":{"type":"string"},"c":{"type":"boolean"}},"required":["a"]})");
  EXPECT_TRUE(matches(g, R"({"a": "x"})"));
  EXPECT_TRUE(matches(g, R"({"b": 1, "a": "x"})"));
  EXPECT_TRUE(matches(g, R"({"b": 1, "a": "x", "c": true})"));
  EXPECT_TRUE(matches(g, R"({"a": "x", "c": false})"));
  EXPECT_FALSE(matches(g, R"({"a": "x", "b": 1})"));  // schema order
  EXPECT_FALSE(matches(g, R"({"b": 1})"));            // a is required
  EXPECT_FALSE(matches(g, R"({"a": "x", "d": 1})"));  // no additional properties by default
  EXPECT_FALSE(matches(g, R"({, "a": "x"})"));
  EXPECT_FALSE(matches(g, R"({"a": 1})"));
}

TEST(JsonSchema, AdditionalProperties) {
  auto any = schema(R"({"type":"object","properties":{"a":{"type":"integer"}},
      "additionalProperties":true})");
  EXPECT_TRUE(matches(any, R"({"a": 1, "z": [1]})"));
  EXPECT_TRUE(matches(any, R"({"z": null})"));
  auto typed = schema(R"({"type":"object","additionalProperties":{"type":"integer"}})");
  EXPECT_TRUE(matches(typed, R"({"x": 1, "y": 2})"));
  EXPECT_FALSE(matches(typed, R"({"x": "1"})"));
  auto bare = schema(R"({"type":"object"})");
  EXPECT_TRUE(matches(bare, R"({"k": {"n": [true]}})"));
}

TEST(JsonSchema, EnumConstAndTypeLists) {
  auto g = schema(R"({"type":"object","properties":{"color":{"enum":["red","gr\"een",3,null]},
      "v":{"const":{"x":[1]}},"n":{"type":["integer","null"]}},"required":["color","v","n"]})");
  EXPECT_TRUE(matches(g, R"({"color": "red", "v": {"x":[1]}, "n": null})"));
  EXPECT_TRUE(matches(g, R"({"color": "gr\"een", "v": {"x":[1]}, "n": -7})"));
  EXPECT_TRUE(matches(g, R"({"color": 3, "v": {"x":[1]}, "n": 0})"));
  EXPECT_FALSE(matches(g, R"({"color": "blue", "v": {"x":[1]}, "n": 0})"));
  EXPECT_FALSE(matches(g, R"({"color": "red", "v": {"x":[1]}, "n": 1.5})"));
}

TEST(JsonSchema, Arrays) {
  auto g = schema(R"({"type":"array","items":{"type":"integer"},"minItems":2,"maxItems":3})");
  EXPECT_FALSE(matches(g, "[1]"));
  EXPECT_TRUE(matches(g, "[1, 2]"));
  EXPECT_TRUE(matches(g, "[1,2,3]"));
  EXPECT_FALSE(matches(g, "[1, 2, 3, 4]"));
  auto tuple = schema(R"({"type":"array","prefixItems":[{"type":"string"},{"type":"boolean"}],
      "items":false,"minItems":1})");
  EXPECT_TRUE(matches(tuple, R"(["a"])"));
  EXPECT_TRUE(matches(tuple, R"(["a", true])"));
  EXPECT_FALSE(matches(tuple, R"(["a", true, 1])"));
  EXPECT_FALSE(matches(tuple, "[]"));
  EXPECT_FALSE(matches(tuple, "[true]"));
  auto open = schema(R"({"type":"array","prefixItems":[{"type":"integer"}]})");
  EXPECT_TRUE(matches(open, R"([1, "x", null])"));
  EXPECT_TRUE(matches(open, "[]"));
}

TEST(JsonSchema, RefsAndRecursion) {
  auto g = schema(R"({"$ref":"#/$defs/node","$defs":{"node":{"type":"object",
      "properties":{"v":{"type":"integer"},"kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},
      "required":["v"]}}})");
  EXPECT_TRUE(matches(g, R"({"v": 1})"));
  EXPECT_TRUE(matches(g, R"({"v": 1, "kids": [{"v": 2, "kids": [{"v": 3}]}, {"v": 4}]})"));
  EXPECT_FALSE(matches(g, R"({"v": 1, "kids": [{"kids": []}]})"));
  auto old = schema(R"({"definitions":{"a":{"type":"boolean"}},"type":"array",
      "items":{"$ref":"#/definitions/a"}})");
  EXPECT_TRUE(matches(old, "[true, false]"));
}

TEST(JsonSchema, AnyOfOneOfAllOf) {
  auto g = schema(R"({"anyOf":[{"type":"integer"},{"type":"string","maxLength":2}]})");
  EXPECT_TRUE(matches(g, "12"));
  EXPECT_TRUE(matches(g, "\"ab\""));
  EXPECT_FALSE(matches(g, "\"abc\""));
  auto one = schema(R"({"oneOf":[{"type":"null"},{"type":"boolean"}]})");
  EXPECT_TRUE(matches(one, "null"));
  auto all = schema(R"({"allOf":[{"type":"boolean"}]})");
  EXPECT_TRUE(matches(all, "true"));
  EXPECT_FALSE(matches(all, "1"));
}

TEST(JsonSchema, Strings) {
  auto len = schema(R"({"type":"string","minLength":2,"maxLength":3})");
  EXPECT_FALSE(matches(len, "\"a\""));
  EXPECT_TRUE(matches(len, "\"ab\""));
  EXPECT_TRUE(matches(len, "\"\\n\xC3\xA9\""));  // escapes and code points count as one
  EXPECT_FALSE(matches(len, "\"abcd\""));
  auto pat = schema(R"({"type":"string","pattern":"^[a-c]+\"x\\d$"})");
  EXPECT_TRUE(matches(pat, R"("ab\"x1")"));
  EXPECT_FALSE(matches(pat, R"("ab"x1")"));
  EXPECT_FALSE(matches(pat, R"("abx1")"));
  auto date = schema(R"({"type":"string","format":"date"})");
  EXPECT_TRUE(matches(date, "\"2024-02-28\""));
  EXPECT_FALSE(matches(date, "\"2024-02-30\""));
  EXPECT_FALSE(matches(date, "\"2024-13-01\""));
  auto dt = schema(R"({"type":"string","format":"date-time"})");
  EXPECT_TRUE(matches(dt, "\"2024-01-31T23:59:59.5+01:00\""));
  auto uuid = schema(R"({"type":"string","format":"uuid"})");
  EXPECT_TRUE(matches(uuid, "\"123e4567-e89b-12d3-a456-426614174000\""));
  EXPECT_FALSE(matches(uuid, "\"123e4567\""));
  auto email = schema(R"({"type":"string","format":"email"})");
  EXPECT_TRUE(matches(email, "\"a.b+c@example.co\""));
  EXPECT_FALSE(matches(email, "\"a@b\""));
}

TEST(JsonSchema, IntegerRangesAndNumberSigns) {
  auto g = schema(R"({"type":"integer","minimum":-15,"exclusiveMaximum":120})");
  for (int v = -200; v <= 200; ++v) {
    EXPECT_EQ(matches(g, std::to_string(v)), v >= -15 && v < 120) << v;
  }
  EXPECT_FALSE(matches(g, "-0"));
  EXPECT_FALSE(matches(g, "007"));
  auto pos = schema(R"({"type":"integer","minimum":1})");
  EXPECT_TRUE(matches(pos, "123456789012"));
  EXPECT_FALSE(matches(pos, "0"));
  auto nonneg = schema(R"({"type":"number","minimum":0})");
  EXPECT_TRUE(matches(nonneg, "0.5"));
  EXPECT_FALSE(matches(nonneg, "-0.5"));
  auto nonpos = schema(R"({"type":"number","maximum":0})");
  EXPECT_TRUE(matches(nonpos, "-2e3"));
  EXPECT_TRUE(matches(nonpos, "0"));
  EXPECT_FALSE(matches(nonpos, "2"));
}

TEST(JsonSchema, ErrorsNameTheField) {
  EXPECT_EQ(schema_error(R"({"type":"object","properties":{"age":{"type":"integr"}}})"),
            "response_format.json_schema.schema.properties.age.type: unknown type 'integr'");
  EXPECT_EQ(schema_error(R"({"type":"array","items":{"type":"string","format":"uri"}})"),
            "response_format.json_schema.schema.items.format: format 'uri' is not supported "
            "(supported: date, time, date-time, uuid, email, ipv4)");
  EXPECT_EQ(schema_error(R"({"type":"array","uniqueItems":true})"),
            "response_format.json_schema.schema.uniqueItems: keyword 'uniqueItems' is not "
            "supported");
  EXPECT_EQ(schema_error(R"({"$ref":"#/$defs/missing"})"),
            "response_format.json_schema.schema.$ref: '#/$defs/missing' does not resolve");
  EXPECT_EQ(schema_error(R"({"$ref":"https://example.com/s.json"})"),
            "response_format.json_schema.schema.$ref: only local references (#/$defs/..., "
            "#/definitions/...) are supported, got 'https://example.com/s.json'");
  EXPECT_EQ(schema_error(R"({"allOf":[{"type":"string"},{"minLength":1}]})"),
            "response_format.json_schema.schema.allOf: only allOf with one schema is supported");
  EXPECT_EQ(schema_error(R"({"type":"number","minimum":1.5})"),
            "response_format.json_schema.schema.minimum: only minimum: 0 and maximum: 0 are "
            "supported on numbers (use type integer for other bounds)");
  EXPECT_EQ(schema_error(R"js({"properties":{"p":{"type":"string","pattern":"a(?=b)"}}})js"),
            "response_format.json_schema.schema.properties.p.pattern: regex error at offset 2: "
            "lookaround, flags and other (?...) groups are not supported");
  EXPECT_EQ(schema_error(R"({"type":"object","required":["x"],"properties":{}})"),
            "response_format.json_schema.schema.required: 'x' is required but not in properties "
            "and additionalProperties is false");
  EXPECT_TRUE(schema_error("{").starts_with("response_format.json_schema.schema: invalid JSON"));
  EXPECT_EQ(schema_error("false"),
            "response_format.json_schema.schema: the schema false matches nothing");
}

}  // namespace
}  // namespace llmserve::grammar
