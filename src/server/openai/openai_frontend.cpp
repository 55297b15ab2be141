// OpenAI /v1/models, /v1/completions, /v1/chat/completions: parse → GenerationService::start →
// GenerationPump → one JSON reply or SSE chunks ending in [DONE] (docs/server.md).
#include "server/openai/openai_frontend.h"

#include "server/http/json_body.h"

#include <chrono>
#include <random>

#include <fmt/format.h>

#include "common/logging.h"
#include "server/http/generation_pump.h"

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

ApiError bad(std::string param, std::string message) {
  return ApiError{400, std::move(message), std::move(param), "invalid_request_error", ""};
}

// The sampling fields the engine names first in its messages ("temperature must be ...").
const char* const kSamplingFields[] = {"temperature",
                                       "top_k",
                                       "top_p",
                                       "min_p",
                                       "repetition_penalty",
                                       "presence_penalty",
                                       "frequency_penalty",
                                       "seed",
                                       "max_tokens",
                                       "min_tokens",
                                       "stop_token_ids",
                                       "stop",
                                       "logprobs"};

ApiError from_status(const Status& s) {
  switch (s.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kOutOfRange:
    case StatusCode::kFailedPrecondition: {
      std::string param;
      for (const char* f : kSamplingFields) {
        const std::string name(f);
        if (s.message().rfind(name + " ", 0) == 0 || s.message().rfind(name + "[", 0) == 0) {
          param = name;
          break;
        }
      }
      if (param.empty() && s.message().find("prompt") != std::string::npos) param = "prompt";
      return ApiError{400, s.message(), param, "invalid_request_error", ""};
    }
    case StatusCode::kNotFound:
      return ApiError{404, s.message(), "", "invalid_request_error", ""};
    case StatusCode::kResourceExhausted:
      return ApiError{429, "the server is overloaded: " + s.message(), "", "rate_limit_exceeded",
                      "rate_limit_exceeded"};
    case StatusCode::kUnavailable:
      return ApiError{503, s.message(), "", "service_unavailable", ""};
    case StatusCode::kDeadlineExceeded:
      return ApiError{504, s.message(), "", "timeout", ""};
    case StatusCode::kCancelled:
      return ApiError{400, s.message(), "", "invalid_request_error", "cancelled"};
    default:
      return ApiError{500, s.message(), "", "server_error", ""};
  }
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

// Typed optional fields: absent or null leaves `out` as is; a wrong type is a 400 naming the field.
bool get_float(const json& body, const char* key, float& out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return false;
  if (!it->is_number()) throw bad(key, fmt::format("'{}' must be a number", key));
  out = it->get<float>();
  return true;
}

// v as an int64, or a 400 naming `key`: an integral float (2.0) counts, a fraction or a value
// beyond int64 (which a plain cast would wrap or make undefined) does not.
int64_t as_int64(const json& v, const char* key) {
  if (v.is_number_float()) {
    const double d = v.get<double>();
    // 2^63 is exactly representable; every double below it in magnitude converts defined.
    if (!(d >= -0x1p63 && d < 0x1p63) || d != static_cast<double>(static_cast<int64_t>(d))) {
      throw bad(key, fmt::format("'{}' must be an integer", key));
    }
    return static_cast<int64_t>(d);
  }
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
    throw bad(key, fmt::format("'{}' is out of range: {}", key, v.get<uint64_t>()));
  }
  if (!v.is_number_integer()) throw bad(key, fmt::format("'{}' must be an integer", key));
  return v.get<int64_t>();
}

bool get_int(const json& body, const char* key, int64_t& out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return false;
  out = as_int64(*it, key);
  return true;
}

bool get_bool(const json& body, const char* key, bool& out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return false;
  if (!it->is_boolean()) throw bad(key, fmt::format("'{}' must be a boolean", key));
  out = it->get<bool>();
  return true;
}

int32_t to_int32(const char* key, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi)
    throw bad(key, fmt::format("'{}' must be in [{}, {}], got {}", key, lo, hi, v));
  return static_cast<int32_t>(v);
}

}  // namespace

struct OpenAIFrontend::Parsed {
  Api api = Api::kCompletions;
  GenerateRequest request;
  std::string model;  // as the client named it (echoed back)
  std::string id;
  int64_t created = 0;
  bool is_stream = false;
  bool include_usage = false;
  bool has_logprobs = false;
  std::string echo_text;  // completions with echo: the prompt, sent before the output
  int32_t prompt_len = 0;
};

OpenAIFrontend::OpenAIFrontend(GenerationService& service, const http::ServingState& state,
                               kserve::ServedModel model)
    : service_(service), state_(state), model_(std::move(model)), created_(unix_now()) {
  const Tokenizer& tok = service_.tokenizer();
  std::string source = tok.chat_template();
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

std::string OpenAIFrontend::render_chat(const json& body) const {
  auto it = body.find("messages");
  if (it == body.end() || it->is_null()) throw bad("messages", "'messages' is a required property");
  if (!it->is_array() || it->empty()) throw bad("messages", "'messages' must be a non-empty array");
  std::vector<ChatMessage> messages;
  for (size_t i = 0; i < it->size(); ++i) {
    const json& m = (*it)[i];
    const std::string where = fmt::format("messages[{}]", i);
    if (!m.is_object()) throw bad(where, fmt::format("'{}' must be an object", where));
    ChatMessage msg;
    auto role = m.find("role");
    if (role == m.end() || !role->is_string())
      throw bad(where + ".role", fmt::format("'{}.role' must be a string", where));
    msg.role = role->get<std::string>();
    auto content = m.find("content");
    if (content == m.end() || content->is_null()) {
      // e.g. an assistant message with tool_calls only
    } else if (content->is_string()) {
      msg.content = content->get<std::string>();
    } else if (content->is_array()) {
      for (const json& part : *content) {
        auto type = part.is_object() ? part.find("type") : part.end();
        if (!part.is_object() || type == part.end() || *type != "text" || !part.contains("text") ||
            !part["text"].is_string()) {
          throw bad(where + ".content",
                    fmt::format("'{}.content' parts must be {{\"type\": \"text\", \"text\": ...}}; "
                                "other content types are not supported",
                                where));
        }
        msg.content += part["text"].get<std::string>();
      }
    } else {
      throw bad(where + ".content",
                fmt::format("'{}.content' must be a string or an array of text parts", where));
    }
    if (auto name = m.find("name"); name != m.end() && name->is_string())
      msg.name = name->get<std::string>();
    if (auto t = m.find("tool_call_id"); t != m.end() && t->is_string())
      msg.tool_call_id = t->get<std::string>();
    if (auto t = m.find("tool_calls"); t != m.end() && !t->is_null()) msg.tool_calls = *t;
    messages.push_back(std::move(msg));
  }
  bool add_generation_prompt = true;
  get_bool(body, "add_generation_prompt", add_generation_prompt);
  json extra = json::object();
  if (auto tools = body.find("tools"); tools != body.end() && !tools->is_null())
    extra["tools"] = *tools;
  try {
    return chat_template_->render(messages, add_generation_prompt, bos_token_, eos_token_, extra);
  } catch (const std::exception& e) {
    throw bad("messages", fmt::format("cannot apply the chat template: {}", e.what()));
  }
}

void OpenAIFrontend::parse(const json& body, Api api, Parsed& p) const {
  const Tokenizer& tok = service_.tokenizer();
  SamplingParams& sp = p.request.sampling;
  const int32_t max_model_len = service_.engine().max_model_len();

  // Prompt → token ids, so that the length is known here.
  std::vector<int32_t> ids;
  const char* prompt_param = api == Api::kChat ? "messages" : "prompt";
  if (api == Api::kChat) {
    const std::string text = render_chat(body);
    // The template already holds whatever special tokens the model wants.
    ids =
        tok.encode(text, EncodeOptions{.add_special_tokens = false, .parse_special_tokens = true});
  } else {
    auto it = body.find("prompt");
    if (it == body.end() || it->is_null()) throw bad("prompt", "'prompt' is a required property");
    const json* prompt = &*it;
    if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string())
      prompt = &(*prompt)[0];
    if (prompt->is_string()) {
      p.echo_text = prompt->get<std::string>();
      ids = tok.encode(p.echo_text, EncodeOptions{});
    } else if (prompt->is_array() && !prompt->empty() && (*prompt)[0].is_number_integer()) {
      for (const json& v : *prompt) {
        if (!v.is_number_integer()) throw bad("prompt", "'prompt' token ids must all be integers");
        const int64_t id = v.get<int64_t>();
        if (id < 0 || id >= tok.vocab_size()) {
          throw bad("prompt", fmt::format("'prompt' token id {} is outside the vocabulary [0, {})",
                                          id, tok.vocab_size()));
        }
        ids.push_back(static_cast<int32_t>(id));
      }
      p.echo_text = tok.decode(ids);
    } else if (prompt->is_array() && prompt->size() > 1) {
      throw bad("prompt", "batched prompts are not supported: send one prompt per request");
    } else {
      throw bad("prompt",
                "'prompt' must be a string, an array of one string, or an array of token ids");
    }
  }
  if (ids.empty()) throw bad(prompt_param, fmt::format("'{}' must not be empty", prompt_param));
  p.prompt_len = static_cast<int32_t>(ids.size());
  if (p.prompt_len >= max_model_len) {
    throw bad(
        prompt_param,
        fmt::format("This model's maximum context length (max_model_len) is {} tokens, but the "
                    "prompt has {} tokens; shorten the {}",
                    max_model_len, p.prompt_len, prompt_param));
  }
  p.request.prompt = std::move(ids);
  p.request.add_special_tokens = false;

  // n, best_of, logit_bias, suffix: only the defaults.
  if (int64_t n = 1; get_int(body, "n", n) && n != 1) {
    throw bad("n", fmt::format("only n=1 is supported, got n={}", n));
  }
  if (int64_t b = 1; get_int(body, "best_of", b) && b != 1) {
    throw bad("best_of", fmt::format("only best_of=1 is supported, got {}", b));
  }
  if (auto lb = body.find("logit_bias");
      lb != body.end() && !lb->is_null() && !(lb->is_object() && lb->empty())) {
    throw bad("logit_bias", "'logit_bias' is not currently supported");
  }
  if (auto sfx = body.find("suffix"); sfx != body.end() && !sfx->is_null() &&
                                      !(sfx->is_string() && sfx->get<std::string>().empty())) {
    throw bad("suffix", "'suffix' is not currently supported");
  }

  // Length.
  int64_t max_tokens = 0;
  const char* max_param = "max_tokens";
  bool has_max = false;
  if (api == Api::kChat && get_int(body, "max_completion_tokens", max_tokens)) {
    has_max = true;
    max_param = "max_completion_tokens";
  } else {
    has_max = get_int(body, "max_tokens", max_tokens);
  }
  const int32_t room = max_model_len - p.prompt_len;
  if (has_max) {
    if (max_tokens <= 0)
      throw bad(max_param, fmt::format("'{}' must be at least 1, got {}", max_param, max_tokens));
    if (max_tokens > room) {
      throw bad(
          max_param,
          fmt::format(
              "This model's maximum context length (max_model_len) is {} tokens; the prompt has "
              "{} tokens, so '{}' can be at most {}, got {}",
              max_model_len, p.prompt_len, max_param, room, max_tokens));
    }
    sp.max_tokens = static_cast<int32_t>(max_tokens);
  } else {
    sp.max_tokens = api == Api::kChat ? room : std::min<int32_t>(16, room);
  }
  if (int64_t v = 0; get_int(body, "min_tokens", v))
    sp.min_tokens = to_int32("min_tokens", v, 0, sp.max_tokens);

  // Sampling.
  get_float(body, "temperature", sp.temperature);
  get_float(body, "top_p", sp.top_p);
  if (int64_t v = 0; get_int(body, "top_k", v)) sp.top_k = to_int32("top_k", v, -1, INT32_MAX);
  get_float(body, "min_p", sp.min_p);
  get_float(body, "repetition_penalty", sp.repetition_penalty);
  get_float(body, "presence_penalty", sp.presence_penalty);
  get_float(body, "frequency_penalty", sp.frequency_penalty);
  if (auto seed = body.find("seed"); seed != body.end() && !seed->is_null()) {
    if (seed->is_number_unsigned()) {
      sp.seed = seed->get<uint64_t>();
    } else if (seed->is_number_integer()) {
      sp.seed = static_cast<uint64_t>(seed->get<int64_t>());  // OpenAI allows negative seeds
    } else {
      throw bad("seed", "'seed' must be an integer");
    }
  }
  get_bool(body, "ignore_eos", sp.ignore_eos);
  get_bool(body, "skip_special_tokens", p.request.skip_special_tokens);
  get_bool(body, "include_stop_str_in_output", p.request.include_stop_str_in_output);
  if (auto stop = body.find("stop"); stop != body.end() && !stop->is_null()) {
    if (stop->is_string()) {
      if (!stop->get<std::string>().empty()) sp.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      for (const json& s : *stop) {
        if (!s.is_string()) throw bad("stop", "'stop' must be a string or an array of strings");
        if (!s.get<std::string>().empty()) sp.stop.push_back(s.get<std::string>());
      }
    } else {
      throw bad("stop", "'stop' must be a string or an array of strings");
    }
  }
  if (auto ids = body.find("stop_token_ids"); ids != body.end() && !ids->is_null()) {
    if (!ids->is_array())
      throw bad("stop_token_ids", "'stop_token_ids' must be an array of integers");
    for (const json& v : *ids) {
      if (!v.is_number_integer())
        throw bad("stop_token_ids", "'stop_token_ids' must be an array of integers");
      sp.stop_token_ids.push_back(
          to_int32("stop_token_ids", as_int64(v, "stop_token_ids"), 0, INT32_MAX));
    }
  }

  // Logprobs.
  if (api == Api::kChat) {
    bool logprobs = false;
    get_bool(body, "logprobs", logprobs);
    int64_t top = 0;
    const bool has_top = get_int(body, "top_logprobs", top);
    if (has_top && !logprobs)
      throw bad("top_logprobs", "'top_logprobs' needs 'logprobs' to be true");
    if (logprobs) sp.logprobs = to_int32("top_logprobs", top, 0, 20);
  } else {
    if (int64_t lp = 0; get_int(body, "logprobs", lp)) sp.logprobs = to_int32("logprobs", lp, 0, 5);
  }
  p.has_logprobs = sp.has_logprobs();

  // Echo (completions only).
  bool echo = false;
  if (api == Api::kCompletions) get_bool(body, "echo", echo);
  if (echo && p.has_logprobs) {
    throw bad(
        "echo",
        "'echo' together with 'logprobs' is not supported (prompt logprobs are not computed)");
  }
  if (!echo) p.echo_text.clear();

  // Streaming.
  get_bool(body, "stream", p.is_stream);
  if (auto so = body.find("stream_options"); so != body.end() && !so->is_null()) {
    if (!so->is_object()) throw bad("stream_options", "'stream_options' must be an object");
    if (!p.is_stream)
      throw bad("stream_options", "'stream_options' is only allowed when 'stream' is true");
    get_bool(*so, "include_usage", p.include_usage);
  }

  if (Status s = sp.validate(tok.vocab_size()); !s.is_ok()) throw from_status(s);
}

void OpenAIFrontend::generate(const ExchangePtr& ex, Api api) {
  const auto arrival = Clock::now();
  auto parsed = std::make_shared<Parsed>();
  Parsed& p = *parsed;
  p.api = api;
  p.request.arrival = arrival;
  p.request.model = model_.name;
  p.request.protocol = "openai";
  p.id = random_id(api == Api::kChat ? "chatcmpl-" : "cmpl-");
  p.created = unix_now();

  std::shared_ptr<GenerationHandle> handle;
  Status status;
  try {
    if (!state_.accepts_requests()) {
      throw ApiError{503,
                     state_.is_draining ? "the server is shutting down" : "the model is not ready",
                     "", "service_unavailable", ""};
    }
    json body;
    if (Status s = parse_json(ex->request().body, body); !s.is_ok()) throw bad("", s.message());
    if (!body.is_object()) throw bad("", "the request body must be a JSON object");
    auto model = body.find("model");
    if (model == body.end() || model->is_null())
      throw bad("model", "'model' is a required property");
    if (!model->is_string()) throw bad("model", "'model' must be a string");
    p.model = model->get<std::string>();
    if (!model_.is_name(p.model)) {
      throw ApiError{404, fmt::format("The model `{}` does not exist.", p.model), "model",
                     "invalid_request_error", "model_not_found"};
    }
    parse(body, api, p);
    status = service_.start(p.request, handle);
    if (!status.is_ok()) throw from_status(status);
  } catch (const ApiError& e) {
    if (status.is_ok())
      status = Status(e.status == 503 ? StatusCode::kUnavailable : StatusCode::kInvalidArgument,
                      e.message);
    RequestRecord record = service_.make_rejected_record(p.request, status);
    respond_api_error(*ex, e);
    service_.finish(record);
    return;
  } catch (const std::exception& e) {
    status = Status(StatusCode::kInternal, e.what());
    RequestRecord record = service_.make_rejected_record(p.request, status);
    respond_api_error(*ex, ApiError{500, e.what(), "", "server_error", ""});
    service_.finish(record);
    return;
  }
  LOG_DEBUG("openai request {}: {} tokens in, max_tokens {}", handle->id(),
            handle->prompt_token_ids().size(), p.request.sampling.max_tokens);
  if (p.is_stream) {
    reply_stream(ex, parsed, handle);
  } else {
    reply_unary(ex, parsed, handle);
  }
}

namespace {

const char* finish_name(FinishReason r) {
  return r == FinishReason::kLength ? "length" : "stop";
}

json usage_object(int32_t prompt, int32_t completion) {
  return json{{"prompt_tokens", prompt},
              {"completion_tokens", completion},
              {"total_tokens", prompt + completion}};
}

// Logprobs accumulated in the wire format of either API.
struct LogprobsBuilder {
  const Tokenizer& tok;
  bool is_chat = false;
  size_t text_offset = 0;  // completions: where the next token's text starts
  json completion = json{{"tokens", json::array()},
                         {"token_logprobs", json::array()},
                         {"top_logprobs", json::array()},
                         {"text_offset", json::array()}};
  json chat = json{{"content", json::array()}};

  std::string piece(int32_t id) const { return tok.decode(std::span<const int32_t>(&id, 1)); }
  static json bytes_of(const std::string& s) {
    json b = json::array();
    for (unsigned char c : s) b.push_back(static_cast<int>(c));
    return b;
  }
  void add(const std::vector<SampleResult>& results) {
    for (const SampleResult& r : results) {
      const std::string text = piece(r.token_id);
      if (is_chat) {
        json top = json::array();
        for (const TokenLogprob& t : r.top_logprobs) {
          const std::string s = piece(t.token_id);
          top.push_back({{"token", s}, {"logprob", t.logprob}, {"bytes", bytes_of(s)}});
        }
        chat["content"].push_back({{"token", text},
                                   {"logprob", r.logprob},
                                   {"bytes", bytes_of(text)},
                                   {"top_logprobs", std::move(top)}});
      } else {
        json top = json::object();
        for (const TokenLogprob& t : r.top_logprobs) top[piece(t.token_id)] = t.logprob;
        if (!top.contains(text)) top[text] = r.logprob;
        completion["tokens"].push_back(text);
        completion["token_logprobs"].push_back(r.logprob);
        completion["top_logprobs"].push_back(std::move(top));
        completion["text_offset"].push_back(text_offset);
        text_offset += text.size();
      }
    }
  }
  json value() const { return is_chat ? chat : completion; }
};

}  // namespace

void OpenAIFrontend::reply_unary(const ExchangePtr& ex, std::shared_ptr<Parsed> parsed,
                                 std::shared_ptr<GenerationHandle> handle) {
  auto text = std::make_shared<std::string>(parsed->echo_text);
  auto logprobs = std::make_shared<LogprobsBuilder>(
      LogprobsBuilder{service_.tokenizer(), parsed->api == Api::kChat, parsed->echo_text.size()});
  http::GenerationPump::start(
      ex, handle, [this, ex, parsed, handle, text, logprobs](GenerateChunk& chunk) {
        const auto start = Clock::now();
        *text += chunk.text;
        if (parsed->has_logprobs) logprobs->add(chunk.logprobs);
        if (!chunk.is_final()) return;
        RequestRecord& record = handle->record();
        if (chunk.finish_reason == FinishReason::kError ||
            chunk.finish_reason == FinishReason::kCancelled) {
          respond_api_error(*ex, from_status(chunk.error.is_ok() ? Status(StatusCode::kCancelled,
                                                                          "request cancelled")
                                                                 : chunk.error));
        } else {
          const Parsed& p = *parsed;
          json choice = {{"index", 0}};
          if (p.api == Api::kChat) {
            choice["message"] = {{"role", "assistant"}, {"content", *text}};
          } else {
            choice["text"] = *text;
          }
          choice["logprobs"] = p.has_logprobs ? logprobs->value() : json(nullptr);
          choice["finish_reason"] = finish_name(chunk.finish_reason);
          json body = {{"id", p.id},
                       {"object", p.api == Api::kChat ? "chat.completion" : "text_completion"},
                       {"created", p.created},
                       {"model", p.model},
                       {"system_fingerprint", nullptr},
                       {"choices", json::array({std::move(choice)})},
                       {"usage", usage_object(p.prompt_len, chunk.num_generated_tokens)}};
          http::respond_json(*ex, 200, dump(body));
        }
        record.output_duration += Clock::now() - start;
        service_.finish(record);
      });
}

void OpenAIFrontend::reply_stream(const ExchangePtr& ex, std::shared_ptr<Parsed> parsed,
                                  std::shared_ptr<GenerationHandle> handle) {
  ex->start_sse();
  const Parsed& p = *parsed;
  const bool is_chat = p.api == Api::kChat;
  // Every chunk but the usage one.
  auto make_chunk = [parsed, is_chat](json choice) {
    const Parsed& p = *parsed;
    return json{{"id", p.id},
                {"object", is_chat ? "chat.completion.chunk" : "text_completion"},
                {"created", p.created},
                {"model", p.model},
                {"system_fingerprint", nullptr},
                {"choices", json::array({std::move(choice)})}};
  };
  if (is_chat) {
    ex->send_event(dump(make_chunk(json{{"index", 0},
                                        {"delta", {{"role", "assistant"}, {"content", ""}}},
                                        {"logprobs", nullptr},
                                        {"finish_reason", nullptr}})));
  }
  auto pending_echo = std::make_shared<std::string>(p.echo_text);
  auto text_offset = std::make_shared<size_t>(p.echo_text.size());
  http::GenerationPump::start(
      ex, handle,
      [this, ex, parsed, handle, make_chunk, is_chat, pending_echo,
       text_offset](GenerateChunk& chunk) {
        const auto start = Clock::now();
        const Parsed& p = *parsed;
        RequestRecord& record = handle->record();
        const bool is_failed = chunk.finish_reason == FinishReason::kError ||
                               chunk.finish_reason == FinishReason::kCancelled;
        std::string piece = std::move(*pending_echo) + chunk.text;
        pending_echo->clear();
        if (!is_failed &&
            (!piece.empty() || chunk.is_final() || (p.has_logprobs && !chunk.logprobs.empty()))) {
          json choice = {{"index", 0}};
          if (is_chat) {
            choice["delta"] =
                piece.empty() && chunk.is_final() ? json::object() : json{{"content", piece}};
          } else {
            choice["text"] = piece;
          }
          if (p.has_logprobs && !chunk.logprobs.empty()) {
            LogprobsBuilder lb{service_.tokenizer(), is_chat, *text_offset};
            lb.add(chunk.logprobs);
            *text_offset = lb.text_offset;
            choice["logprobs"] = lb.value();
          } else {
            choice["logprobs"] = nullptr;
          }
          choice["finish_reason"] =
              chunk.is_final() ? json(finish_name(chunk.finish_reason)) : json(nullptr);
          ex->send_event(dump(make_chunk(std::move(choice))));
        }
        if (chunk.is_final()) {
          if (is_failed) {
            if (!ex->is_client_gone()) {
              ex->send_event(dump(error_body(from_status(
                  chunk.error.is_ok() ? Status(StatusCode::kCancelled, "request cancelled")
                                      : chunk.error))));
            }
          } else if (p.include_usage) {
            ex->send_event(
                dump(json{{"id", p.id},
                          {"object", is_chat ? "chat.completion.chunk" : "text_completion"},
                          {"created", p.created},
                          {"model", p.model},
                          {"system_fingerprint", nullptr},
                          {"choices", json::array()},
                          {"usage", usage_object(p.prompt_len, chunk.num_generated_tokens)}}));
          }
          ex->send_event("[DONE]");
          ex->end();
        }
        record.output_duration += Clock::now() - start;
        if (chunk.is_final()) service_.finish(record);
      });
}

}  // namespace llmserve::openai
