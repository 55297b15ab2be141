// Tool-call parsing (src/server/openai/tool_calls.h) for each format, finished and streamed (the
// stream split at every byte must give what the finished parse gives), and the guide that forces
// a call compiled against a real vocabulary: a walk through it produces a parsable call.
#include "server/openai/tool_calls.h"

#include <gtest/gtest.h>

namespace llmserve::openai {
namespace {

using json = nlohmann::json;

TEST(ToolCalls, HermesBlocksAndTextAround) {
  const std::string text =
      "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
      "\"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"time\", \"arguments\": {}}\n"
      "</tool_call>";
  const ToolCallOutput out = parse_tool_calls(ToolCallFormat::kHermes, text);
  ASSERT_EQ(out.calls.size(), 2u);
  EXPECT_EQ(out.calls[0].name, "get_weather");
  EXPECT_EQ(json::parse(out.calls[0].arguments), json::parse(R"({"city": "Paris"})"));
  EXPECT_EQ(out.calls[1].name, "time");
  EXPECT_EQ(out.calls[1].arguments, "{}");
  EXPECT_EQ(out.content, "Let me check.");
  EXPECT_TRUE(out.calls[0].id.starts_with("call_"));
  EXPECT_NE(out.calls[0].id, out.calls[1].id);
}

TEST(ToolCalls, WhatIsNotACallStaysText) {
  for (const std::string& text :
       {std::string("no calls here"), std::string("<tool_call>{not json}</tool_call>"),
        std::string("<tool_call>{\"arguments\": {}}</tool_call>"),
        std::string("unclosed <tool_call>{\"name\": \"f\"")}) {
    const ToolCallOutput out = parse_tool_calls(ToolCallFormat::kHermes, text);
    EXPECT_TRUE(out.calls.empty()) << text;
    EXPECT_EQ(out.content, text);
  }
  EXPECT_EQ(parse_tool_calls(ToolCallFormat::kLlama3Json, "{\"a\": 1} and text").content,
            "{\"a\": 1} and text");
  EXPECT_TRUE(parse_tool_calls(ToolCallFormat::kMistral, "[1, 2]").calls.empty());
}

TEST(ToolCalls, Llama3JsonAndMistral) {
  auto l = parse_tool_calls(ToolCallFormat::kLlama3Json,
                            "<|python_tag|>{\"name\": \"a\", \"parameters\": {\"x\": \"}\"}}; "
                            "{\"name\": \"b\", \"parameters\": {}}");
  ASSERT_EQ(l.calls.size(), 2u);
  EXPECT_EQ(l.calls[0].name, "a");
  EXPECT_EQ(json::parse(l.calls[0].arguments)["x"], "}");
  EXPECT_EQ(l.calls[1].name, "b");
  EXPECT_TRUE(l.content.empty());
  auto m = parse_tool_calls(ToolCallFormat::kMistral,
                            "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {\"n\": 1}}]");
  ASSERT_EQ(m.calls.size(), 1u);
  EXPECT_EQ(json::parse(m.calls[0].arguments)["n"], 1);
  // The marker dropped as a special token: the array alone.
  EXPECT_EQ(parse_tool_calls(ToolCallFormat::kMistral, "[{\"name\": \"f\"}]").calls.size(), 1u);
}

// Streamed one byte at a time, then in two pieces split everywhere: the same content and calls
// as the finished parse, each call handed out once.
TEST(ToolCalls, StreamingMatchesTheFinishedParse) {
  const std::vector<std::pair<ToolCallFormat, std::string>> cases = {
      {ToolCallFormat::kHermes,
       "Sure <tool_call>\n{\"name\": \"f\", \"arguments\": {\"q\": \"<tool\"}}\n</tool_call> ok "
       "<tool_"},
      {ToolCallFormat::kHermes, "plain text with < and <tool and no call"},
      {ToolCallFormat::kLlama3Json, "{\"name\": \"g\", \"parameters\": {\"a\": [1, 2]}}"},
      {ToolCallFormat::kLlama3Json, "  Hello {there}"},
      {ToolCallFormat::kMistral, "[TOOL_CALLS][{\"name\": \"h\", \"arguments\": {}}]"},
      {ToolCallFormat::kMistral, "[TOOL"},
  };
  for (const auto& [format, text] : cases) {
    const ToolCallOutput want = parse_tool_calls(format, text);
    for (size_t split = 0; split <= text.size(); ++split) {
      ToolCallStream stream(format);
      std::string content;
      std::vector<std::string> names;
      auto take = [&](ToolCallOutput o) {
        content += o.content;
        for (const ToolCall& c : o.calls) names.push_back(c.name + c.arguments);
      };
      if (split == 0) {
        for (char c : text) take(stream.push(std::string_view(&c, 1)));
      } else {
        take(stream.push(std::string_view(text).substr(0, split)));
        take(stream.push(std::string_view(text).substr(split)));
      }
      take(stream.finish());
      std::vector<std::string> want_names;
      for (const ToolCall& c : want.calls) want_names.push_back(c.name + c.arguments);
      EXPECT_EQ(names, want_names) << text << " split " << split;
      EXPECT_EQ(stream.num_calls(), static_cast<int>(want.calls.size()));
      if (format == ToolCallFormat::kHermes) {
        // Streamed text keeps the blanks around calls that the finished parse trims.
        const auto squeeze = [](const std::string& s) {
          std::string out;
          for (char c : s) {
            if (c != ' ' && c != '\n') out += c;
          }
          return out;
        };
        EXPECT_EQ(squeeze(content), squeeze(want.content)) << text << " split " << split;
      } else {
        EXPECT_EQ(content, want.content) << text << " split " << split;
      }
    }
  }
}

TEST(ToolCalls, FormatNamesAndDetection) {
  EXPECT_EQ(tool_call_format_from_name("hermes"), ToolCallFormat::kHermes);
  EXPECT_EQ(tool_call_format_from_name("llama3_json"), ToolCallFormat::kLlama3Json);
  EXPECT_EQ(tool_call_format_from_name("mistral"), ToolCallFormat::kMistral);
  EXPECT_FALSE(tool_call_format_from_name("pythonic").has_value());
  EXPECT_EQ(detect_tool_call_format("{{ '<tool_call>' }}"), ToolCallFormat::kHermes);
  EXPECT_EQ(detect_tool_call_format("{{ '[TOOL_CALLS]' }}"), ToolCallFormat::kMistral);
  EXPECT_EQ(detect_tool_call_format("<|python_tag|>"), ToolCallFormat::kLlama3Json);
  EXPECT_EQ(detect_tool_call_format("{{ messages }}"), ToolCallFormat::kHermes);
}

TEST(ToolCalls, GuideNamesOneToolOrAll) {
  const json tools = json::parse(R"([
    {"type": "function", "function": {"name": "a", "parameters": {"type": "object",
      "properties": {"x": {"type": "integer"}}, "required": ["x"]}}},
    {"type": "function", "function": {"name": "b"}}])");
  const json all = json::parse(tool_call_guide(ToolCallFormat::kHermes, tools, std::nullopt, true));
  EXPECT_EQ(all["schema"]["anyOf"].size(), 2u);
  EXPECT_EQ(all["begin"], "<tool_call>\n");
  EXPECT_TRUE(all["parallel"].get<bool>());
  const json one = json::parse(tool_call_guide(ToolCallFormat::kLlama3Json, tools, "b", false));
  EXPECT_EQ(one["schema"]["properties"]["name"]["const"], "b");
  EXPECT_EQ(one["schema"]["properties"]["parameters"], json::parse(R"({"type": "object"})"));
  EXPECT_FALSE(one["parallel"].get<bool>());
}

}  // namespace
}  // namespace llmserve::openai
