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

}  // namespace llmserve::openai
