#include "server/openai/tool_calls.h"

#include <random>

#include <fmt/format.h>

namespace llmserve::openai {
namespace {

using json = nlohmann::json;

constexpr std::string_view kHermesOpen = "<tool_call>";
constexpr std::string_view kHermesClose = "</tool_call>";
constexpr std::string_view kPythonTag = "<|python_tag|>";
constexpr std::string_view kMistralMarker = "[TOOL_CALLS]";

std::string new_call_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("call_{:012x}{:012x}", rng() & 0xffffffffffffull, rng() & 0xffffffffffffull);
}

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

// One call from a JSON object {name, arguments | parameters}; nullopt if it is not one.
std::optional<ToolCall> call_of(const json& v) {
  if (!v.is_object()) return std::nullopt;
  auto name = v.find("name");
  if (name == v.end() || !name->is_string()) return std::nullopt;
  auto args = v.find("arguments");
  if (args == v.end()) args = v.find("parameters");
  json arguments = args == v.end() ? json::object() : *args;
  if (arguments.is_string()) {  // some models write the arguments as a JSON string
    arguments = json::parse(arguments.get<std::string>(), nullptr, /*allow_exceptions=*/false);
  }
  if (!arguments.is_object()) return std::nullopt;
  return ToolCall{new_call_id(), name->get<std::string>(), arguments.dump()};
}

// The length of the JSON object or array that text starts with (strings and escapes respected),
// or 0 when it does not end in text.
size_t json_extent(std::string_view text) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) return i + 1;
    }
  }
  return 0;
}

// llama3_json: objects separated by ';' (after an optional <|python_tag|>); all or nothing.
std::optional<std::vector<ToolCall>> llama3_calls(std::string_view text) {
  text = trim(text);
  if (text.substr(0, kPythonTag.size()) == kPythonTag) text = trim(text.substr(kPythonTag.size()));
  std::vector<ToolCall> calls;
  while (!text.empty()) {
    const size_t n = text.front() == '{' ? json_extent(text) : 0;
    if (n == 0) return std::nullopt;
    auto call = call_of(json::parse(text.substr(0, n), nullptr, /*allow_exceptions=*/false));
    if (!call) return std::nullopt;
    calls.push_back(std::move(*call));
    text = trim(text.substr(n));
    if (!text.empty() && text.front() == ';') text = trim(text.substr(1));
  }
  if (calls.empty()) return std::nullopt;
  return calls;
}

// mistral: [TOOL_CALLS] then an array of calls (or the array alone); all or nothing.
std::optional<std::vector<ToolCall>> mistral_calls(std::string_view text) {
  text = trim(text);
  if (text.substr(0, kMistralMarker.size()) == kMistralMarker)
    text = trim(text.substr(kMistralMarker.size()));
  if (text.empty() || text.front() != '[' || json_extent(text) != text.size()) return std::nullopt;
  const json list = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!list.is_array() || list.empty()) return std::nullopt;
  std::vector<ToolCall> calls;
  for (const json& v : list) {
    auto call = call_of(v);
    if (!call) return std::nullopt;
    calls.push_back(std::move(*call));
  }
  return calls;
}

// How many bytes at the end of text could begin `marker` (to hold back while streaming).
size_t partial_suffix(std::string_view text, std::string_view marker) {
  for (size_t n = std::min(text.size(), marker.size() - 1); n > 0; --n) {
    if (text.substr(text.size() - n) == marker.substr(0, n)) return n;
  }
  return 0;
}

}  // namespace

std::optional<ToolCallFormat> tool_call_format_from_name(std::string_view name) {
  if (name == "none") return ToolCallFormat::kNone;
  if (name == "hermes") return ToolCallFormat::kHermes;
  if (name == "llama3_json") return ToolCallFormat::kLlama3Json;
  if (name == "mistral") return ToolCallFormat::kMistral;
  return std::nullopt;
}

std::string_view tool_call_format_name(ToolCallFormat format) {
  switch (format) {
    case ToolCallFormat::kNone:
      return "none";
    case ToolCallFormat::kHermes:
      return "hermes";
    case ToolCallFormat::kLlama3Json:
      return "llama3_json";
    case ToolCallFormat::kMistral:
      return "mistral";
  }
  return "none";
}

ToolCallFormat detect_tool_call_format(std::string_view chat_template) {
  if (chat_template.find("[TOOL_CALLS]") != std::string_view::npos) return ToolCallFormat::kMistral;
  if (chat_template.find("<tool_call>") != std::string_view::npos) return ToolCallFormat::kHermes;
  if (chat_template.find("<|python_tag|>") != std::string_view::npos ||
      chat_template.find("\"parameters\"") != std::string_view::npos) {
    return ToolCallFormat::kLlama3Json;
  }
  return ToolCallFormat::kHermes;
}

ToolCallOutput parse_tool_calls(ToolCallFormat format, std::string_view text) {
  ToolCallOutput out;
  if (format == ToolCallFormat::kLlama3Json || format == ToolCallFormat::kMistral) {
    auto calls = format == ToolCallFormat::kMistral ? mistral_calls(text) : llama3_calls(text);
    if (calls) {
      out.calls = std::move(*calls);
    } else {
      out.content = std::string(text);
    }
    return out;
  }
  if (format == ToolCallFormat::kNone) {
    out.content = std::string(text);
    return out;
  }
  std::string content;
  size_t at = 0;
  while (at < text.size()) {
    const size_t open = text.find(kHermesOpen, at);
    const size_t close =
        open == std::string_view::npos ? open : text.find(kHermesClose, open + kHermesOpen.size());
    if (close == std::string_view::npos) {
      content += text.substr(at);
      break;
    }
    content += text.substr(at, open - at);
    const std::string_view body =
        trim(text.substr(open + kHermesOpen.size(), close - open - kHermesOpen.size()));
    auto call = call_of(json::parse(body, nullptr, /*allow_exceptions=*/false));
    if (call) {
      out.calls.push_back(std::move(*call));
    } else {
      content += text.substr(open, close + kHermesClose.size() - open);
    }
    at = close + kHermesClose.size();
  }
  out.content = std::string(out.calls.empty() ? std::string_view(content) : trim(content));
  return out;
}

ToolCallOutput ToolCallStream::push(std::string_view piece) {
  ToolCallOutput out;
  pending_ += piece;
  if (format_ == ToolCallFormat::kNone) {
    out.content = std::move(pending_);
    pending_.clear();
    return out;
  }
  if (format_ != ToolCallFormat::kHermes) {
    // The output is calls or text as a whole: decided by its first non-blank characters.
    if (!decided_) {
      const std::string_view t = trim(pending_);
      if (t.empty()) return out;
      const std::string_view marker =
          format_ == ToolCallFormat::kMistral ? kMistralMarker : kPythonTag;
      const bool may_be_marker = marker.substr(0, std::min(marker.size(), t.size())) ==
                                 t.substr(0, std::min(marker.size(), t.size()));
      if (may_be_marker && t.size() < marker.size()) return out;  // not known yet
      is_calls_ = may_be_marker || t.front() == (format_ == ToolCallFormat::kMistral ? '[' : '{');
      decided_ = true;
    }
    if (!is_calls_) {
      out.content = std::move(pending_);
      pending_.clear();
    }
    return out;  // calls: all at finish()
  }
  // hermes: text streams until a <tool_call>; a call is handed out once it closes.
  while (true) {
    if (!in_call_) {
      const size_t open = pending_.find(kHermesOpen);
      if (open == std::string::npos) {
        const size_t hold = partial_suffix(pending_, kHermesOpen);
        out.content += pending_.substr(0, pending_.size() - hold);
        pending_.erase(0, pending_.size() - hold);
        return out;
      }
      out.content += pending_.substr(0, open);
      pending_.erase(0, open);
      in_call_ = true;
    }
    const size_t close = pending_.find(kHermesClose);
    if (close == std::string::npos) return out;
    const std::string block = pending_.substr(0, close + kHermesClose.size());
    pending_.erase(0, block.size());
    in_call_ = false;
    ToolCallOutput parsed = parse_tool_calls(ToolCallFormat::kHermes, block);
    out.content += parsed.content;
    for (ToolCall& c : parsed.calls) out.calls.push_back(std::move(c));
    num_calls_ += static_cast<int>(parsed.calls.size());
  }
}

ToolCallOutput ToolCallStream::finish() {
  ToolCallOutput out;
  if (format_ == ToolCallFormat::kHermes || format_ == ToolCallFormat::kNone || !is_calls_) {
    out.content = std::move(pending_);  // an unclosed <tool_call> stays text
  } else {
    out = parse_tool_calls(format_, pending_);
    num_calls_ += static_cast<int>(out.calls.size());
  }
  pending_.clear();
  return out;
}

std::string tool_call_guide(ToolCallFormat format, const json& tools,
                            const std::optional<std::string>& only, bool parallel) {
  const char* args_key = format == ToolCallFormat::kLlama3Json ? "parameters" : "arguments";
  nlohmann::ordered_json alternatives = nlohmann::ordered_json::array();
  for (const json& tool : tools) {
    const json& fn = tool["function"];
    const std::string name = fn["name"].get<std::string>();
    if (only && *only != name) continue;
    nlohmann::ordered_json params = nlohmann::ordered_json::object();
    if (auto p = fn.find("parameters"); p != fn.end() && !p->is_null()) {
      params = nlohmann::ordered_json::parse(p->dump());
    }
    if (params.empty()) params = {{"type", "object"}};
    nlohmann::ordered_json call;
    call["type"] = "object";
    call["properties"] = {{"name", {{"const", name}}}, {args_key, params}};
    call["required"] = {"name", args_key};
    call["additionalProperties"] = false;
    alternatives.push_back(std::move(call));
  }
  nlohmann::ordered_json guide;
  guide["schema"] =
      alternatives.size() == 1 ? alternatives[0] : nlohmann::ordered_json{{"anyOf", alternatives}};
  switch (format) {
    case ToolCallFormat::kLlama3Json:
      guide["separator"] = "; ";
      break;
    case ToolCallFormat::kMistral:
      guide["begin"] = "[TOOL_CALLS][";
      guide["separator"] = ", ";
      guide["end"] = "]";
      break;
    default:  // hermes
      guide["begin"] = "<tool_call>\n";
      guide["separator"] = "\n</tool_call>\n<tool_call>\n";
      guide["end"] = "\n</tool_call>";
      break;
  }
  guide["parallel"] = parallel;
  return guide.dump();
}

}  // namespace llmserve::openai
