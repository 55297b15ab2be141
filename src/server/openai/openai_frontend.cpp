// OpenAI /v1/models, /v1/completions, /v1/chat/completions: parse (request_parsing.h) →
// GenerationService::start → GenerationPump (server/generation_pump.h) → one JSON reply or SSE
// chunks ending in [DONE] (docs/server.md).
#include "server/openai/openai_frontend.h"

#include "server/http/json_body.h"

#include <chrono>
#include <random>

#include <fmt/format.h>

#include "common/logging.h"
#include "server/http/exchange_pump.h"
#include "server/openai/logprobs.h"

namespace llmserve::openai {

using nlohmann::json;

namespace {

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json error_body(const ApiError& e) {
  return json{{"error",
               {{"message", e.message},
                {"type", e.type},
                {"param", e.param.empty() ? json(nullptr) : json(e.param)},
                {"code", e.code.empty() ? json(nullptr) : json(e.code)}}}};
}

void respond_api_error(http::HttpExchange& ex, const ApiError& e) {
  http::Headers extra;
  if (e.status == 429 || e.status == 503) extra.emplace_back("Retry-After", "1");
  http::respond_json(ex, e.status, dump(error_body(e)), std::move(extra));
}

std::string random_id(const char* prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{}{:016x}{:016x}", prefix, rng(), rng());
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

OpenAIFrontend::OpenAIFrontend(GenerationService& service, const http::ServingState& state,
                               kserve::ServedModel model,
                               std::optional<ToolCallFormat> tool_call_format)
    : service_(service), state_(state), model_(std::move(model)), created_(unix_now()) {
  const Tokenizer& tok = service_.tokenizer();
  std::string source = tok.chat_template();
  tool_call_format_ = tool_call_format.value_or(detect_tool_call_format(source));
  if (!source.empty()) {
    try {
      chat_template_.emplace(ChatTemplate::compile(source));
    } catch (const std::exception& e) {
      LOG_WARN("the model's chat template does not compile ({}); using the default template",
               e.what());
    }
  }
  if (!chat_template_) chat_template_.emplace(ChatTemplate::compile(default_chat_template()));
  if (auto id = tok.bos_token_id()) bos_token_ = tok.id_to_token(*id);
  if (auto id = tok.eos_token_id()) eos_token_ = tok.id_to_token(*id);
}

ParseContext OpenAIFrontend::parse_context() const {
  return ParseContext{.tokenizer = service_.tokenizer(),
                      .chat_template = &*chat_template_,
                      .bos_token = bos_token_,
                      .eos_token = eos_token_,
                      .max_model_len = service_.engine().max_model_len(),
                      .max_prompt_bytes = service_.max_prompt_bytes(),
                      .tool_call_format = tool_call_format_};
}

json OpenAIFrontend::model_card(const std::string& name) const {
  return json{{"id", name}, {"object", "model"}, {"created", created_}, {"owned_by", "llmserve"}};
}

void OpenAIFrontend::add_routes(http::Router& router) {
  // 401/404/405 under /v1/ in OpenAI's envelope, as the official clients expect.
  router.set_error_body("/v1/", [](int status, const std::string& message) {
    const char* code = status == 401   ? "invalid_api_key"
                       : status == 404 ? "unknown_url"
                                       : "method_not_allowed";
    return dump(error_body(ApiError{status, message, "", "invalid_request_error", code}));
  });
  router.add("GET", "/v1/models", [this](const ExchangePtr& ex) { list_models(ex); });
  router.add("GET", "/v1/models/{model}", [this](const ExchangePtr& ex) { get_model(ex); });
  router.add("POST", "/v1/completions",
             [this](const ExchangePtr& ex) { generate(ex, Api::kCompletions); });
  router.add("POST", "/v1/chat/completions",
             [this](const ExchangePtr& ex) { generate(ex, Api::kChat); });
  // vLLM's tokenizer routes: errors in OpenAI's envelope too.
  const auto plain_error = [](int status, const std::string& message) {
    return dump(error_body(ApiError{status, message, "", "invalid_request_error", ""}));
  };
  router.set_error_body("/tokenize", plain_error);
  router.set_error_body("/detokenize", plain_error);
  router.add("POST", "/tokenize", [this](const ExchangePtr& ex) { tokenize(ex, false); });
  router.add("POST", "/detokenize", [this](const ExchangePtr& ex) { tokenize(ex, true); });
}

json OpenAIFrontend::model_body(const ExchangePtr& ex, std::string& model) const {
  json body;
  if (Status s = parse_json(ex->request().body, body); !s.is_ok()) throw bad("", s.message());
  if (!body.is_object()) throw bad("", "the request body must be a JSON object");
  auto it = body.find("model");
  if (it == body.end() || it->is_null()) throw bad("model", "'model' is a required property");
  if (!it->is_string()) throw bad("model", "'model' must be a string");
  model = it->get<std::string>();
  if (!model_.is_name(model)) {
    throw ApiError{404, fmt::format("The model `{}` does not exist.", model), "model",
                   "invalid_request_error", "model_not_found"};
  }
  return body;
}

void OpenAIFrontend::tokenize(const ExchangePtr& ex, bool is_detokenize) const {
  try {
    std::string model;
    const json body = model_body(ex, model);
    const ParseContext context = parse_context();
    if (is_detokenize) {
      http::respond_json(*ex, 200, dump(json{{"prompt", parse_detokenize(body, context)}}));
      return;
    }
    const std::vector<int32_t> ids = parse_tokenize(body, context);
    http::respond_json(
        *ex, 200,
        dump(json{
            {"count", ids.size()}, {"max_model_len", context.max_model_len}, {"tokens", ids}}));
  } catch (const ApiError& e) {
    respond_api_error(*ex, e);
  } catch (const std::exception& e) {
    respond_api_error(*ex, ApiError{500, e.what(), "", "server_error", ""});
  }
}

void OpenAIFrontend::list_models(const ExchangePtr& ex) const {
  json data = json::array();
  data.push_back(model_card(model_.name));
  for (const auto& alias : model_.aliases) data.push_back(model_card(alias));
  http::respond_json(*ex, 200, dump(json{{"object", "list"}, {"data", std::move(data)}}));
}

void OpenAIFrontend::get_model(const ExchangePtr& ex) const {
  const std::string& name = ex->request().param("model");
  if (!model_.is_name(name)) {
    return respond_api_error(*ex, ApiError{404, fmt::format("The model `{}` does not exist.", name),
                                           "model", "invalid_request_error", "model_not_found"});
  }
  http::respond_json(*ex, 200, dump(model_card(name)));
}

void OpenAIFrontend::generate(const ExchangePtr& ex, Api api) {
  const auto arrival = Clock::now();
  auto parsed = std::make_shared<ParsedRequest>();
  ParsedRequest& p = *parsed;
  p.api = api;
  p.request.arrival = arrival;
  p.request.model = model_.name;
  p.request.protocol = "openai";
  p.id = random_id(api == Api::kChat ? "chatcmpl-" : "cmpl-");
  p.created = unix_now();

  std::vector<ChoiceStart> starts;
  Status status;
  try {
    if (!state_.accepts_requests()) {
      throw ApiError{503,
                     state_.is_draining ? "the server is shutting down" : "the model is not ready",
                     "", "service_unavailable", ""};
    }
    const json body = model_body(ex, p.model);
    ParseContext context = parse_context();
    context.raw_body = ex->request().body;
    parse_request(body, api, context, p);
    // n choices of a prompt are n engine requests over it: prefix caching shares its KV. A
    // request seed gives choice i the seed + i, so the choices differ and each is reproducible.
    for (size_t b = 0; b <= p.more_prompts.size(); ++b) {
      for (int32_t i = 0; i < p.n; ++i) {
        GenerateRequest choice = p.request;
        if (b > 0) choice.prompt = p.more_prompts[b - 1].ids;
        if (choice.sampling.seed && i > 0) *choice.sampling.seed += static_cast<uint64_t>(i);
        ChoiceStart& start = starts.emplace_back();
        start.echo_text = b > 0 ? p.more_prompts[b - 1].echo_text : p.echo_text;
        status = service_.start(choice, start.handle);
        if (!status.is_ok()) throw from_status(status);  // started ones are cancelled as they go
      }
    }
  } catch (const ApiError& e) {
    if (status.is_ok())
      status = Status(e.status == 503 ? StatusCode::kUnavailable : StatusCode::kInvalidArgument,
                      e.message);
    respond_api_error(*ex, e);
    service_.reject(p.request, status);
    return;
  } catch (const std::exception& e) {
    respond_api_error(*ex, ApiError{500, e.what(), "", "server_error", ""});
    service_.reject(p.request, Status(StatusCode::kInternal, e.what()));
    return;
  }
  LOG_DEBUG("openai request {}: {} tokens in, max_tokens {}, {} choices", starts[0].handle->id(),
            p.num_prompt_tokens(), p.request.sampling.max_tokens, starts.size());
  if (p.is_stream) {
    reply_stream(ex, parsed, std::move(starts));
  } else {
    reply_unary(ex, parsed, std::move(starts));
  }
}

namespace {

const char* finish_name(FinishReason r, bool has_tool_calls = false) {
  if (r == FinishReason::kLength) return "length";
  return has_tool_calls ? "tool_calls" : "stop";
}

// OpenAI's tool_calls entries; `first_index` numbers them within the choice (streams).
json tool_calls_json(const std::vector<ToolCall>& calls, size_t first_index, bool with_index) {
  json list = json::array();
  for (size_t k = 0; k < calls.size(); ++k) {
    json c = {{"id", calls[k].id},
              {"type", "function"},
              {"function", {{"name", calls[k].name}, {"arguments", calls[k].arguments}}}};
    if (with_index) c["index"] = first_index + k;
    list.push_back(std::move(c));
  }
  return list;
}

json usage_object(int32_t prompt, int32_t completion) {
  return json{{"prompt_tokens", prompt},
              {"completion_tokens", completion},
              {"total_tokens", prompt + completion}};
}

// The choices of one request, read by one pump each on the exchange's strand (so no lock): the
// reply goes out once every choice ended, or at the first failure, which cancels the others.
struct Choices {
  std::vector<std::shared_ptr<GenerationPump>> pumps;
  int32_t remaining = 0;
  int32_t completion_tokens = 0;
  bool is_answered = false;

  void cancel_all() {
    for (auto& p : pumps) p->cancel();
  }
};

bool is_failure_reason(FinishReason r) {
  return r == FinishReason::kError || r == FinishReason::kCancelled;
}

bool is_failure(const GenerateChunk& chunk) {
  return is_failure_reason(chunk.finish_reason);
}

// The prompt's scores a choice's first chunk carries (RequestOutput::prompt_logprobs), if the
// request asked for them and they are all there.
bool has_prompt_scores(const ParsedRequest& p, const GenerateChunk& chunk,
                       const GenerationHandle& generation) {
  return p.request.sampling.has_prompt_logprobs() && !is_failure(chunk) &&
         chunk.prompt_logprobs.size() + 1 == generation.prompt_token_ids().size();
}

// A scoring request (echo, max_tokens 0) ends at its prompt: the engine's one token is dropped.
FinishReason reply_finish(const ParsedRequest& p, FinishReason engine_finish) {
  return p.is_scoring && !is_failure_reason(engine_finish) ? FinishReason::kLength : engine_finish;
}

ApiError failure_error(const GenerateChunk& chunk) {
  return from_status(chunk.error.is_ok() ? Status(StatusCode::kCancelled, "request cancelled")
                                         : chunk.error);
}

}  // namespace

void OpenAIFrontend::reply_unary(const ExchangePtr& ex, std::shared_ptr<ParsedRequest> parsed,
                                 std::vector<ChoiceStart> starts) {
  struct Choice {
    std::string text;
    LogprobsBuilder logprobs;
    json prompt_logprobs = nullptr;  // vLLM's, when asked for
    FinishReason finish = FinishReason::kNone;
  };
  auto choices = std::make_shared<Choices>();
  auto state = std::make_shared<std::vector<Choice>>();
  for (const ChoiceStart& start : starts) {
    state->push_back(
        Choice{start.echo_text, LogprobsBuilder{service_.tokenizer(), parsed->api == Api::kChat}});
  }
  choices->remaining = static_cast<int32_t>(starts.size());
  for (size_t i = 0; i < starts.size(); ++i) {
    choices->pumps.push_back(http::pump_generation(
        ex, std::move(starts[i].handle),
        [this, ex, parsed, choices, state, i](GenerateChunk& chunk, GenerationHandle& generation) {
          const auto start = Clock::now();
          const ParsedRequest& p = *parsed;
          Choice& c = (*state)[i];
          if (has_prompt_scores(p, chunk, generation)) {
            const std::vector<int32_t>& ids = generation.prompt_token_ids();
            if (p.is_echo && p.has_logprobs)
              c.logprobs.add_prompt(ids, chunk.prompt_logprobs, p.request.sampling.logprobs);
            if (p.prompt_logprobs >= 0) {
              c.prompt_logprobs = prompt_logprobs_json(service_.tokenizer(), ids,
                                                       chunk.prompt_logprobs, p.prompt_logprobs);
            }
          }
          if (!p.is_scoring) {
            c.text += chunk.text;
            if (p.has_logprobs) c.logprobs.add(chunk.logprobs);
          }
          if (!chunk.is_final()) return;
          choices->remaining--;
          if (!p.is_scoring) choices->completion_tokens += chunk.num_generated_tokens;
          c.finish = reply_finish(p, chunk.finish_reason);
          if (is_failure(chunk) && !choices->is_answered) {
            choices->is_answered = true;
            choices->cancel_all();
            respond_api_error(*ex, failure_error(chunk));
          } else if (choices->remaining == 0 && !choices->is_answered) {
            choices->is_answered = true;
            json list = json::array();
            for (size_t j = 0; j < state->size(); ++j) {
              const Choice& cj = (*state)[j];
              json choice = {{"index", j}};
              bool has_calls = false;
              if (p.api == Api::kChat) {
                ToolCallOutput out = parse_tool_calls(p.tool_format, cj.text);
                has_calls = !out.calls.empty();
                choice["message"] = {{"role", "assistant"}, {"content", out.content}};
                if (has_calls) {
                  if (out.content.empty()) choice["message"]["content"] = nullptr;
                  choice["message"]["tool_calls"] = tool_calls_json(out.calls, 0, false);
                }
              } else {
                choice["text"] = cj.text;
              }
              choice["logprobs"] = p.has_logprobs ? cj.logprobs.value() : json(nullptr);
              choice["finish_reason"] = finish_name(cj.finish, has_calls);
              if (p.prompt_logprobs >= 0 && p.api == Api::kCompletions)
                choice["prompt_logprobs"] = cj.prompt_logprobs;
              list.push_back(std::move(choice));
            }
            json body = {
                {"id", p.id},
                {"object", p.api == Api::kChat ? "chat.completion" : "text_completion"},
                {"created", p.created},
                {"model", p.model},
                {"system_fingerprint", nullptr},
                {"choices", std::move(list)},
                {"usage", usage_object(p.num_prompt_tokens(), choices->completion_tokens)}};
            // vLLM's chat puts the (one) prompt's logprobs beside the choices.
            if (p.prompt_logprobs >= 0 && p.api == Api::kChat)
              body["prompt_logprobs"] = (*state)[0].prompt_logprobs;
            http::respond_json(*ex, 200, dump(body));
          }
          generation.record().output_duration += Clock::now() - start;
        }));
  }
}

void OpenAIFrontend::reply_stream(const ExchangePtr& ex, std::shared_ptr<ParsedRequest> parsed,
                                  std::vector<ChoiceStart> starts) {
  ex->start_sse();
  const ParsedRequest& p = *parsed;
  const bool is_chat = p.api == Api::kChat;
  // Every chunk but the usage one.
  auto make_chunk = [parsed, is_chat](json choice) {
    const ParsedRequest& p = *parsed;
    return json{{"id", p.id},
                {"object", is_chat ? "chat.completion.chunk" : "text_completion"},
                {"created", p.created},
                {"model", p.model},
                {"system_fingerprint", nullptr},
                {"choices", json::array({std::move(choice)})}};
  };
  if (is_chat) {
    for (size_t i = 0; i < starts.size(); ++i) {
      ex->send_event(dump(make_chunk(json{{"index", i},
                                          {"delta", {{"role", "assistant"}, {"content", ""}}},
                                          {"logprobs", nullptr},
                                          {"finish_reason", nullptr}})));
    }
  }
  auto choices = std::make_shared<Choices>();
  choices->remaining = static_cast<int32_t>(starts.size());
  for (size_t i = 0; i < starts.size(); ++i) {
    auto pending_echo = std::make_shared<std::string>(starts[i].echo_text);
    auto text_offset = std::make_shared<size_t>(0);
    auto tools = std::make_shared<ToolCallStream>(p.tool_format);
    choices->pumps.push_back(http::pump_generation(
        ex, std::move(starts[i].handle),
        [this, ex, parsed, make_chunk, is_chat, pending_echo, text_offset, tools, choices, i](
            GenerateChunk& chunk, GenerationHandle& generation) {
          const auto start = Clock::now();
          const ParsedRequest& p = *parsed;
          RequestRecord& record = generation.record();
          if (choices->is_answered) return;  // a sibling failed: the stream has ended
          const bool is_failed = is_failure(chunk);
          // Echo: the prompt (and with logprobs its scores) leads the first chunk, as vLLM sends
          // it; a scoring request's one generated token is dropped.
          std::string piece = std::move(*pending_echo) + (p.is_scoring ? "" : chunk.text);
          pending_echo->clear();
          LogprobsBuilder logprobs{service_.tokenizer(), is_chat, *text_offset};
          bool has_logprobs = false;
          if (p.is_echo && p.has_logprobs && has_prompt_scores(p, chunk, generation)) {
            logprobs.add_prompt(generation.prompt_token_ids(), chunk.prompt_logprobs,
                                p.request.sampling.logprobs);
            has_logprobs = true;
          }
          if (p.has_logprobs && !p.is_scoring && !chunk.logprobs.empty()) {
            logprobs.add(chunk.logprobs);
            has_logprobs = true;
          }
          *text_offset = logprobs.text_offset();
          // Chat with tools: text that may be a call is held back; finished calls go out as
          // delta.tool_calls.
          std::vector<ToolCall> calls;
          const int calls_before = tools->num_calls();
          if (is_chat && p.tool_format != ToolCallFormat::kNone) {
            ToolCallOutput out = tools->push(piece);
            if (chunk.is_final()) {
              ToolCallOutput rest = tools->finish();
              out.content += rest.content;
              for (ToolCall& c : rest.calls) out.calls.push_back(std::move(c));
            }
            piece = std::move(out.content);
            calls = std::move(out.calls);
          }
          if (!is_failed &&
              (!piece.empty() || !calls.empty() || chunk.is_final() || has_logprobs)) {
            json choice = {{"index", i}};
            if (is_chat) {
              choice["delta"] = json::object();
              if (!piece.empty() || (calls.empty() && !chunk.is_final()))
                choice["delta"]["content"] = piece;
              if (!calls.empty()) {
                choice["delta"]["tool_calls"] =
                    tool_calls_json(calls, static_cast<size_t>(calls_before), true);
              }
            } else {
              choice["text"] = piece;
            }
            choice["logprobs"] = has_logprobs ? logprobs.value() : json(nullptr);
            choice["finish_reason"] = chunk.is_final()
                                          ? json(finish_name(reply_finish(p, chunk.finish_reason),
                                                             tools->num_calls() > 0))
                                          : json(nullptr);
            ex->send_event(dump(make_chunk(std::move(choice))));
          }
          if (chunk.is_final()) {
            choices->remaining--;
            if (!p.is_scoring) choices->completion_tokens += chunk.num_generated_tokens;
            if (is_failed) {
              choices->is_answered = true;
              choices->cancel_all();
              if (!ex->is_client_gone()) ex->send_event(dump(error_body(failure_error(chunk))));
            } else if (choices->remaining == 0) {
              choices->is_answered = true;
              if (p.include_usage) {
                ex->send_event(dump(json{
                    {"id", p.id},
                    {"object", is_chat ? "chat.completion.chunk" : "text_completion"},
                    {"created", p.created},
                    {"model", p.model},
                    {"system_fingerprint", nullptr},
                    {"choices", json::array()},
                    {"usage", usage_object(p.num_prompt_tokens(), choices->completion_tokens)}}));
              }
            }
            if (choices->is_answered) {
              ex->send_event("[DONE]");
              ex->end();
            }
          }
          record.output_duration += Clock::now() - start;
        }));
  }
}

}  // namespace llmserve::openai
