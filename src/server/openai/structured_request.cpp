#include "server/openai/structured_request.h"

#include <string>
#include <vector>

namespace llmserve::openai {
namespace {

using json = nlohmann::json;

// A guide and the top-level request field it came from (ApiError::param).
struct Found {
  Guide guide;
  std::string param;
};

// The JSON Schema at `path` of the request in document order: re-read from the raw body when the
// context has it (the parsed body's objects sort their keys, and the schema's property order is
// the order the output's members come in), else the parsed value as it is.
std::string schema_text(const json& parsed, const ParseContext& context,
                        const std::vector<std::string>& path) {
  if (!context.raw_body.empty()) {
    const auto ordered =
        nlohmann::ordered_json::parse(context.raw_body, nullptr, /*allow_exceptions=*/false);
    const nlohmann::ordered_json* node = &ordered;
    for (const std::string& key : path) {
      if (!node->is_object()) break;
      auto it = node->find(key);
      if (it == node->end()) break;
      node = &*it;
    }
    if (node != &ordered) return node->dump();
  }
  return parsed.dump();
}

void add_response_format(const json& body, const ParseContext& context, std::vector<Found>& out) {
  auto rf = body.find("response_format");
  if (rf == body.end() || rf->is_null()) return;
  const auto type = rf->is_object() ? rf->find("type") : rf->end();
  if (!rf->is_object() || type == rf->end() || !type->is_string())
    throw bad("response_format", "'response_format' must be an object with a string 'type'");
  const std::string t = type->get<std::string>();
  if (t == "text") return;
  if (t == "json_object") {
    out.push_back({{GuideKind::kJsonObject, "", "response_format"}, "response_format"});
    return;
  }
  if (t != "json_schema") {
    throw bad("response_format",
              fmt::format("response_format type '{}' is not supported (text, json_object, "
                          "json_schema)",
                          t));
  }
  const auto js = rf->find("json_schema");
  if (js == rf->end() || !js->is_object()) {
    throw bad("response_format",
              "'response_format.json_schema' must be an object when type is 'json_schema'");
  }
  if (auto name = js->find("name"); name != js->end() && !name->is_string())
    throw bad("response_format", "'response_format.json_schema.name' must be a string");
  if (auto strict = js->find("strict");
      strict != js->end() && !strict->is_null() && !strict->is_boolean()) {
    throw bad("response_format", "'response_format.json_schema.strict' must be a boolean");
  }
  const auto schema = js->find("schema");
  if (schema == js->end() || schema->is_null()) {
    // OpenAI makes it optional; without one, any JSON object.
    out.push_back({{GuideKind::kJsonObject, "", "response_format.json_schema"}, "response_format"});
    return;
  }
  if (!schema->is_object() && !schema->is_boolean())
    throw bad("response_format", "'response_format.json_schema.schema' must be a JSON Schema");
  out.push_back({{GuideKind::kJsonSchema,
                  schema_text(*schema, context, {"response_format", "json_schema", "schema"}),
                  "response_format.json_schema.schema"},
                 "response_format"});
}

void add_guided(const json& body, const ParseContext& context, std::vector<Found>& out) {
  if (auto g = body.find("guided_json"); g != body.end() && !g->is_null()) {
    if (g->is_string()) {
      out.push_back(
          {{GuideKind::kJsonSchema, g->get<std::string>(), "guided_json"}, "guided_json"});
    } else if (g->is_object() || g->is_boolean()) {
      out.push_back(
          {{GuideKind::kJsonSchema, schema_text(*g, context, {"guided_json"}), "guided_json"},
           "guided_json"});
    } else {
      throw bad("guided_json", "'guided_json' must be a JSON Schema (an object or its text)");
    }
  }
  if (auto g = body.find("guided_regex"); g != body.end() && !g->is_null()) {
    if (!g->is_string()) throw bad("guided_regex", "'guided_regex' must be a string");
    out.push_back({{GuideKind::kRegex, g->get<std::string>(), "guided_regex"}, "guided_regex"});
  }
  if (auto g = body.find("guided_choice"); g != body.end() && !g->is_null()) {
    if (!g->is_array()) throw bad("guided_choice", "'guided_choice' must be an array of strings");
    out.push_back({{GuideKind::kChoice, g->dump(), "guided_choice"}, "guided_choice"});
  }
  if (auto g = body.find("guided_grammar"); g != body.end() && !g->is_null()) {
    if (!g->is_string()) throw bad("guided_grammar", "'guided_grammar' must be a string");
    out.push_back(
        {{GuideKind::kGrammar, g->get<std::string>(), "guided_grammar"}, "guided_grammar"});
  }
}

// tools: [{"type": "function", "function": {"name", "description"?, "parameters"?}}, ...].
void check_tools(const json& tools) {
  if (!tools.is_array()) throw bad("tools", "'tools' must be an array of tools");
  for (size_t i = 0; i < tools.size(); ++i) {
    const json& t = tools[i];
    const std::string at = fmt::format("tools[{}]", i);
    if (!t.is_object() || t.value("type", "") != "function")
      throw bad("tools", fmt::format("'{}' must be an object with type 'function'", at));
    auto fn = t.find("function");
    if (fn == t.end() || !fn->is_object() || !fn->contains("name") || !(*fn)["name"].is_string())
      throw bad("tools", fmt::format("'{}.function' must be an object with a string 'name'", at));
    if (auto p = fn->find("parameters"); p != fn->end() && !p->is_null() && !p->is_object())
      throw bad("tools", fmt::format("'{}.function.parameters' must be a JSON Schema object", at));
  }
}

}  // namespace

void parse_tool_choice(const json& body, bool is_chat, const ParseContext& context,
                       ParsedRequest& p) {
  auto tools = body.find("tools");
  const bool has_tools = tools != body.end() && !tools->is_null();
  if (has_tools && !is_chat) throw bad("tools", "'tools' is a chat completions field");
  if (has_tools) check_tools(*tools);
  bool parallel = true;
  if (auto pc = body.find("parallel_tool_calls"); pc != body.end() && !pc->is_null()) {
    if (!pc->is_boolean())
      throw bad("parallel_tool_calls", "'parallel_tool_calls' must be a boolean");
    parallel = pc->get<bool>();
  }
  std::string choice = "auto";
  std::optional<std::string> named;
  if (auto tc = body.find("tool_choice"); tc != body.end() && !tc->is_null()) {
    if (tc->is_string() && (*tc == "none" || *tc == "auto" || *tc == "required")) {
      choice = tc->get<std::string>();
    } else if (tc->is_object() && tc->value("type", "") == "function" && tc->contains("function") &&
               (*tc)["function"].is_object() && (*tc)["function"].contains("name") &&
               (*tc)["function"]["name"].is_string()) {
      choice = "named";
      named = (*tc)["function"]["name"].get<std::string>();
    } else {
      throw bad("tool_choice",
                "'tool_choice' must be 'none', 'auto', 'required' or {\"type\": \"function\", "
                "\"function\": {\"name\": ...}}");
    }
  }
  if (!has_tools || tools->empty()) {
    if (choice == "required" || choice == "named")
      throw bad("tool_choice", "tool_choice needs a non-empty 'tools' to choose from");
    return;
  }
  if (choice == "none") return;
  p.tool_format = context.tool_call_format;
  if (choice == "auto") return;
  if (named) {
    bool found = false;
    for (const json& t : *tools) found = found || t["function"]["name"] == *named;
    if (!found)
      throw bad("tool_choice",
                fmt::format("tool_choice names '{}', which is not in 'tools'", *named));
  }
  if (p.request.guide.kind != GuideKind::kNone) {
    throw bad("tool_choice", fmt::format("tool_choice '{}' and '{}' both constrain the output",
                                         choice, p.request.guide.field));
  }
  const ToolCallFormat format = context.tool_call_format == ToolCallFormat::kNone
                                    ? ToolCallFormat::kHermes
                                    : context.tool_call_format;
  p.tool_format = format;
  p.request.guide = {GuideKind::kToolCall,
                     tool_call_guide(format, *tools, named, parallel && !named), "tool_choice"};
}

void parse_guide(const json& body, const ParseContext& context, Guide& guide) {
  std::vector<Found> guides;
  add_response_format(body, context, guides);
  add_guided(body, context, guides);
  if (guides.empty()) return;
  if (guides.size() > 1) {
    throw bad(guides[1].param,
              fmt::format("'{}' and '{}' both constrain the output; give at most one",
                          guides[0].param, guides[1].param));
  }
  guide = std::move(guides[0].guide);
}

}  // namespace llmserve::openai
