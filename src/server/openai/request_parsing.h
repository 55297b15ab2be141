// OpenAI request bodies → GenerateRequest, without a GenerationService: what /v1/completions and
// /v1/chat/completions accept (docs/server.md), checked field by field, the chat messages rendered
// with the model's chat template and the prompt tokenized so that its length is known. The
// frontend (openai_frontend.cpp) calls parse_request with its service's tokenizer and limits; the
// fuzz target (tests/fuzz/openai_request_fuzz.cpp) and the unit tests call it with a tokenizer of
// their own.
//
// Thread-safety: pure functions over their arguments (the tokenizer's encode/decode and the chat
// template's render are const).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "server/generation_service.h"
#include "server/openai/tool_calls.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace llmserve::openai {

// A request the frontend refuses, as OpenAI reports it.
struct ApiError {
  int status = 400;
  std::string message;
  std::string param;  // "" => null
  std::string type = "invalid_request_error";
  std::string code;  // "" => null
};

enum class Api { kCompletions, kChat };

// What parsing needs from the served model.
struct ParseContext {
  const Tokenizer& tokenizer;
  const ChatTemplate* chat_template = nullptr;  // chat requests need one
  std::string bos_token;                        // the template's bos_token / eos_token
  std::string eos_token;
  int32_t max_model_len = 0;
  // A text prompt (completions' string, the rendered chat) longer than this is refused before the
  // tokenizer sees it; GenerationService::max_prompt_bytes() for the served model.
  int64_t max_prompt_bytes = 0;
  // How the model writes tool calls (--tool-call-parser, or detected from the chat template).
  ToolCallFormat tool_call_format = ToolCallFormat::kHermes;
  // The request's raw JSON, when at hand: a JSON Schema is re-read from it in document order (the
  // parsed body's objects sort their keys; the schema's property order is the output's).
  std::string_view raw_body{};
};

// One parsed request: the GenerateRequest and what the reply needs.
struct ParsedRequest {
  Api api = Api::kCompletions;
  GenerateRequest request;
  std::string model;  // as the client named it (echoed back); set by the frontend
  std::string id;
  int64_t created = 0;
  bool is_stream = false;
  bool include_usage = false;
  bool has_logprobs = false;
  std::string echo_text;  // completions with echo: the prompt, sent before the output
  bool is_echo = false;   // completions' echo; with has_logprobs the prompt's logprobs lead too
  // Completions with echo and max_tokens 0 (scoring, as lm-eval-harness asks): the reply is the
  // prompt alone. The engine request samples one token (max_tokens 1), which the reply drops.
  bool is_scoring = false;
  // vLLM's prompt_logprobs: the reply's prompt_logprobs with this many alternatives; -1: none.
  // sampling.prompt_logprobs is the larger of this and, with echo, the logprobs count.
  int32_t prompt_logprobs = -1;
  int32_t prompt_len = 0;
  int32_t n = 1;  // choices per prompt: 1..kMaxChoices engine requests over the same prompt
  // Chat with tools (tool_choice not "none"): the format the reply's tool calls are parsed in.
  ToolCallFormat tool_format = ToolCallFormat::kNone;
  // Completions with an array of prompts: the second and later ones (the first is request.prompt /
  // echo_text / prompt_len). Choice index = prompt index * n + choice.
  struct Prompt {
    std::vector<int32_t> ids;
    std::string echo_text;
  };
  std::vector<Prompt> more_prompts;

  int32_t num_prompt_tokens() const;  // of every prompt (usage.prompt_tokens)
};

inline constexpr int32_t kMaxChoices = 16;  // the most choices (n) one prompt may ask for
inline constexpr size_t kMaxPrompts = 64;   // prompts in one completions request, and choices

// A 400 invalid_request_error naming `param`.
ApiError bad(std::string param, std::string message);

// An engine / service Status as OpenAI reports it (400 naming the sampling field the message
// starts with, 404, 429, 503, 504, 500).
ApiError from_status(const Status& s);

// Fills `parsed.request` (token-id prompt, sampling) and the reply fields from `body`, a JSON
// object of `api`'s request (the model name is the caller's business). Throws ApiError for anything
// the API refuses, naming the param.
void parse_request(const nlohmann::json& body, Api api, const ParseContext& context,
                   ParsedRequest& parsed);

// The chat prompt: body's messages (and tools) rendered with context.chat_template. Throws ApiError
// naming "messages" (or the message's field) when they are malformed or the template fails.
std::string render_chat(const nlohmann::json& body, const ParseContext& context);

// vLLM's /tokenize: {prompt, add_special_tokens (default true)} or {messages, tools,
// add_generation_prompt} (the chat template's text, whose special tokens it holds) → token ids.
// Throws ApiError naming the param.
std::vector<int32_t> parse_tokenize(const nlohmann::json& body, const ParseContext& context);

// vLLM's /detokenize: {tokens: [ids in the vocabulary]} → the text (special tokens kept).
std::string parse_detokenize(const nlohmann::json& body, const ParseContext& context);

}  // namespace llmserve::openai
