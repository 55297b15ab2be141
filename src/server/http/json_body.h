// Request bodies as JSON, with a nesting limit. nlohmann's parser itself does not recurse, but
// everything that walks a value afterwards does (dump() in error messages, the chat template's
// value conversion, flattening tensor data), so a body nested ~10^4 deep would overflow an I/O
// thread's stack. Every frontend parses its bodies here, before any walk.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace llmserve {

// Arrays and objects nested deeper than this are refused: far beyond any real request (tool
// schemas nest ~10 deep), far below what the recursive walks survive.
inline constexpr int kMaxJsonDepth = 128;

// Parses `body` into `out`. Malformed JSON (or invalid UTF-8, or a number out of range) and
// nesting deeper than kMaxJsonDepth are kInvalidArgument with a message saying which.
Status parse_json(std::string_view body, nlohmann::json& out);

}  // namespace llmserve
