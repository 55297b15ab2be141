// ChatTemplate: renders OpenAI-style chat messages into a prompt string with a model's Hugging
// Face chat template (the Jinja source in tokenizer_config.json "chat_template"), byte-for-byte as
// transformers' apply_chat_template does (jinja2 with trim_blocks=True, lstrip_blocks=True,
// loop controls, and HF's raise_exception / strftime_now / tojson).
//
// Supported: {{ }}, {% %}, {# #}, whitespace control (- and +); if/elif/else, for (tuple
// targets, "if" filter, else, loop.index/index0/revindex/first/last/length/previtem/nextitem/
// cycle, break/continue), set (names, tuples, namespace attributes, block set), macro,
// generation; expressions, filters, tests and str/dict methods listed in chat_template_builtins.h.
// Rejected at compile() with Error(kInvalidArgument) naming line, column and construct: include,
// import, extends, block, call, filter blocks, raw, with, recursive loops, and syntax errors.
// Known differences from Python: dict keys are strings; upper/lower/title/strip are ASCII-only;
// integers are 64-bit; `extra` objects keep nlohmann::json's (sorted) key order.
//
// Thread-safety: compile() builds an immutable tree; render() is const and may be called
// concurrently from many threads.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace llmserve {

namespace jinja {
struct Node;
}

struct ChatMessage {
  std::string role;
  std::string content;
  std::optional<std::string> name = std::nullopt;          // message.name when present
  std::optional<std::string> tool_call_id = std::nullopt;  // message.tool_call_id when present
  nlohmann::json tool_calls = nullptr;                     // message.tool_calls unless null
};

class ChatTemplate {
 public:
  // Throws Error(kInvalidArgument) naming the line/column and construct for unsupported syntax.
  static ChatTemplate compile(std::string_view source);

  // Globals as transformers provides them: messages (list of dicts), add_generation_prompt,
  // bos_token, eos_token, tools and documents (None unless `extra` has them), raise_exception,
  // strftime_now, plus each key of the `extra` object (e.g. tools, date_string). Throws
  // Error(kInvalidArgument) for a failing template (raise_exception's message alone, otherwise
  // "chat template line L column C: ...").
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                     const std::string& bos_token, const std::string& eos_token,
                     const nlohmann::json& extra = {}) const;

 private:
  explicit ChatTemplate(std::shared_ptr<const std::vector<jinja::Node>> nodes)
      : nodes_(std::move(nodes)) {}

  std::shared_ptr<const std::vector<jinja::Node>> nodes_;
};

// The template used for models whose tokenizer_config.json has none: each message as
// "ROLE:\n<content>\n\n" (role upper-cased), then "ASSISTANT:\n" when add_generation_prompt.
// Identical to models/default's template, so the default model renders the same either way.
std::string default_chat_template();

}  // namespace llmserve
