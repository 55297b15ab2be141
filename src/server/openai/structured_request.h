// The structured-output fields of an OpenAI request → SamplingParams::grammar:
//   response_format {"type": "text" | "json_object" | "json_schema", "json_schema": {"name",
//   "schema", "strict", "description"}} (OpenAI), and vLLM's extras guided_json (a schema, as an
//   object or a string), guided_regex, guided_choice (an array of strings), guided_grammar
//   (GBNF-style EBNF). At most one of them constrains a request.
#pragma once

#include <nlohmann/json.hpp>

#include "server/openai/request_parsing.h"
#include "server/structured_output.h"

namespace llmserve::openai {

// Fills `guide` (GenerationService::start compiles it; its errors name guide.field). Throws
// ApiError (400 naming the field) for a malformed field or two guides at once.
void parse_guide(const nlohmann::json& body, const ParseContext& context, Guide& guide);

// tools, tool_choice ("none" | "auto" | "required" | {"type": "function", "function": {"name"}})
// and parallel_tool_calls (default true) of a chat request: p.tool_format (the reply's calls are
// parsed unless there are no tools or tool_choice is "none") and, for "required" or a named
// function, p.request.guide forcing a call in context.tool_call_format. Throws ApiError naming
// the field (tools on completions, a malformed tool, an unknown function, a second guide).
void parse_tool_choice(const nlohmann::json& body, bool is_chat, const ParseContext& context,
                       ParsedRequest& p);

}  // namespace llmserve::openai
