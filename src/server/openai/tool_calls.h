// Tool calls in chat completions: the model's text ↔ OpenAI's `tool_calls`.
//
// Formats (--tool-call-parser; "auto" picks from the chat template's text):
//   hermes       <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>, one block a call
//                (Hermes, Qwen2/2.5/3 templates);
//   llama3_json  {"name": ..., "parameters": {...}} (optionally after <|python_tag|>), several
//                separated by "; " (Llama 3.1/3.2/3.3 templates);
//   mistral      [TOOL_CALLS][{"name": ..., "arguments": {...}}, ...] (Mistral templates; the
//                marker may have been dropped as a special token, so a leading JSON array of calls
//                counts too).
// parse_tool_calls splits a finished output into content and calls; ToolCallStream does it for a
// stream, holding back only what may still turn out to be a call, and hands each call out once
// its text is complete (OpenAI's delta.tool_calls: index, id, type, function name and arguments).
// A block that does not parse as a call stays content: nothing the model wrote is lost.
//
// tool_call_guide builds the structured-output guide (GuideKind::kToolCall) that forces a call
// for tool_choice "required" or a named function: the format's wrapping around a JSON Schema of
// {name: one of the tools, arguments: that tool's parameters}, so the arguments always parse and
// match the function's schema.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace llmserve::openai {

enum class ToolCallFormat { kNone, kHermes, kLlama3Json, kMistral };

// "none", "hermes", "llama3_json", "mistral"; nullopt for any other name.
std::optional<ToolCallFormat> tool_call_format_from_name(std::string_view name);
std::string_view tool_call_format_name(ToolCallFormat format);
// The format a chat template's text asks for (hermes when it names none).
ToolCallFormat detect_tool_call_format(std::string_view chat_template);

struct ToolCall {
  std::string id;  // "call_" + 24 random hex digits
  std::string name;
  std::string arguments;  // a JSON object's text
};

struct ToolCallOutput {
  std::string content;  // the text outside the calls (trimmed)
  std::vector<ToolCall> calls;
};

ToolCallOutput parse_tool_calls(ToolCallFormat format, std::string_view text);

class ToolCallStream {
 public:
  explicit ToolCallStream(ToolCallFormat format) : format_(format) {}
  // What a piece of output lets the frontend send now: content and completed calls.
  ToolCallOutput push(std::string_view piece);
  // The rest at the end of the output.
  ToolCallOutput finish();
  int num_calls() const { return num_calls_; }

 private:
  ToolCallFormat format_;
  std::string pending_;   // held back: may be (part of) a call
  bool in_call_ = false;  // hermes: inside <tool_call>
  bool decided_ = false;  // llama3 / mistral: whether the output is calls is known
  bool is_calls_ = false;
  int num_calls_ = 0;
};

// The JSON text of a GuideKind::kToolCall guide for `tools` (OpenAI's array of {type:
// "function", function: {name, parameters}}), restricted to `only` when given; `parallel`: one or
// more calls, else exactly one. Throws nothing: `tools` was validated by the caller.
std::string tool_call_guide(ToolCallFormat format, const nlohmann::json& tools,
                            const std::optional<std::string>& only, bool parallel);

}  // namespace llmserve::openai
