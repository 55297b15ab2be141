// OpenAIFrontend: the OpenAI-compatible API over the one GenerationService (docs/server.md). It
// registers its routes on a Router:
//   GET  /v1/models                 the served name and its aliases
//   GET  /v1/models/{model}
//   POST /v1/completions            prompt: string | [string] (one) | [int] token ids
//   POST /v1/chat/completions       messages rendered with the model's chat template
// Both POST routes stream (SSE `data: <json>`, then `data: [DONE]`) when "stream" is true, with an
// optional usage chunk (stream_options.include_usage). Unknown request fields are ignored (vLLM
// style). Errors use OpenAI's envelope {"error":{"message","type","param","code"}}: 400
// invalid_request_error naming the param, 404 model_not_found, 429 + Retry-After when the engine
// queue is full, 503 + Retry-After when not ready or draining. (401 for a wrong API key comes from
// the Router, in Triton's {"error": "..."} form.)
//
// Thread-safety: handlers run on the connections' I/O threads concurrently; the frontend's state
// is immutable after construction (the compiled chat template's render() is const).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "server/generation_service.h"
#include "server/http/router.h"
#include "server/http/serving_state.h"
#include "server/kserve/kserve_frontend.h"
#include "server/openai/request_parsing.h"
#include "tokenizer/chat_template.h"

namespace llmserve::openai {

class OpenAIFrontend {
 public:
  // Compiles the tokenizer's chat template once (default_chat_template() when it has none, or
  // when it does not compile, with a warning).
  // tool_call_format: how the model writes tool calls; nullopt detects it from the chat template.
  OpenAIFrontend(GenerationService& service, const http::ServingState& state,
                 kserve::ServedModel model,
                 std::optional<ToolCallFormat> tool_call_format = std::nullopt);
  void add_routes(http::Router& router);

 private:
  using ExchangePtr = std::shared_ptr<http::HttpExchange>;

  void list_models(const ExchangePtr& ex) const;
  void get_model(const ExchangePtr& ex) const;
  void generate(const ExchangePtr& ex, Api api);
  // vLLM's /tokenize and /detokenize (no generation: nothing is recorded in the metrics).
  void tokenize(const ExchangePtr& ex, bool is_detokenize) const;
  // The request body as a JSON object naming a served model; throws ApiError otherwise.
  nlohmann::json model_body(const ExchangePtr& ex, std::string& model) const;
  // What parse_request needs: the service's tokenizer and limits, the compiled template.
  ParseContext parse_context() const;
  // One engine request per choice (prompts x n); the reply gathers them in index order.
  struct ChoiceStart {
    std::shared_ptr<GenerationHandle> handle;
    std::string echo_text;  // what the choice's text starts with (completions' echo)
  };
  void reply_unary(const ExchangePtr& ex, std::shared_ptr<ParsedRequest> parsed,
                   std::vector<ChoiceStart> starts);
  void reply_stream(const ExchangePtr& ex, std::shared_ptr<ParsedRequest> parsed,
                    std::vector<ChoiceStart> starts);
  nlohmann::json model_card(const std::string& name) const;

  GenerationService& service_;
  const http::ServingState& state_;
  kserve::ServedModel model_;
  std::optional<ChatTemplate> chat_template_;
  ToolCallFormat tool_call_format_ = ToolCallFormat::kHermes;
  std::string bos_token_;
  std::string eos_token_;
  int64_t created_ = 0;  // load time, seconds since the epoch
};

}  // namespace llmserve::openai
