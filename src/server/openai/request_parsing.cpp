// OpenAI request parsing (request_parsing.h): typed field readers, the chat template's rendering
// and every check of /v1/completions and /v1/chat/completions bodies.
#include "server/openai/request_parsing.h"
#include "server/openai/structured_request.h"

#include <algorithm>
#include <charconv>
#include <vector>

#include <fmt/format.h>

#include "server/status_table.h"

namespace llmserve::openai {

using nlohmann::json;

namespace {

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
                                       "logprobs",
                                       "prompt_logprobs",
                                       "ignore_eos",
                                       "bad_words"};

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

// A text prompt that cannot fit max_model_len tokens is refused by its size, before the tokenizer
// spends time on it (GenerationService::start's cap, as a 400 naming the param).
void check_prompt_bytes(const std::string& text, const char* param, const char* what,
                        const ParseContext& context) {
  if (static_cast<int64_t>(text.size()) <= context.max_prompt_bytes) return;
  throw bad(param, fmt::format("{} is {} bytes, more than max_model_len ({} tokens) can hold ({} "
                               "bytes at most)",
                               what, text.size(), context.max_model_len, context.max_prompt_bytes));
}

// The first prompt's ids (`first`, before it moves into the request) and the others'.
std::vector<const std::vector<int32_t>*> all_prompt_ids(const std::vector<int32_t>& first,
                                                        const ParsedRequest& p) {
  std::vector<const std::vector<int32_t>*> all = {&first};
  for (const ParsedRequest::Prompt& more : p.more_prompts) all.push_back(&more.ids);
  return all;
}

}  // namespace

int32_t ParsedRequest::num_prompt_tokens() const {
  int32_t total = prompt_len;
  for (const Prompt& more : more_prompts) total += static_cast<int32_t>(more.ids.size());
  return total;
}

ApiError bad(std::string param, std::string message) {
  return ApiError{400, std::move(message), std::move(param), "invalid_request_error", ""};
}

ApiError from_status(const Status& s) {
  const ProtocolStatus& p = protocol_status(s.code());
  ApiError e{p.openai_http, s.message(), "", p.openai_type, p.openai_code};
  if (s.code() == StatusCode::kResourceExhausted)
    e.message = "the server is overloaded: " + e.message;
  if (e.status == 400 && s.code() != StatusCode::kCancelled) {  // name the param when we can
    for (const char* f : kSamplingFields) {
      const std::string name(f);
      if (s.message().rfind(name + " ", 0) == 0 || s.message().rfind(name + "[", 0) == 0) {
        e.param = name;
        break;
      }
    }
    // A guide that does not compile: its message starts with the field (structured_request.h).
    for (const char* f : {"response_format", "guided_json", "guided_regex", "guided_choice",
                          "guided_grammar", "tool_choice"}) {
      const std::string name(f);
      if (e.param.empty() && s.message().rfind(name, 0) == 0 &&
          (s.message().size() == name.size() ||
           std::string_view(".:[ ").find(s.message()[name.size()]) != std::string_view::npos)) {
        e.param = name;
      }
    }
    if (e.param.empty() && s.message().find("prompt") != std::string::npos) e.param = "prompt";
  }
  return e;
}

std::string render_chat(const json& body, const ParseContext& context) {
  if (context.chat_template == nullptr) throw bad("messages", "the model has no chat template");
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
    return context.chat_template->render(messages, add_generation_prompt, context.bos_token,
                                         context.eos_token, extra);
  } catch (const std::exception& e) {
    throw bad("messages", fmt::format("cannot apply the chat template: {}", e.what()));
  }
}

void parse_request(const json& body, Api api, const ParseContext& context, ParsedRequest& p) {
  const Tokenizer& tok = context.tokenizer;
  SamplingParams& sp = p.request.sampling;
  const int32_t max_model_len = context.max_model_len;

  // Prompt → token ids, so that the length is known here.
  std::vector<int32_t> ids;
  const char* prompt_param = api == Api::kChat ? "messages" : "prompt";
  if (api == Api::kChat) {
    const std::string text = render_chat(body, context);
    check_prompt_bytes(text, "messages", "the chat prompt rendered from 'messages'", context);
    // The template already holds whatever special tokens the model wants.
    ids =
        tok.encode(text, EncodeOptions{.add_special_tokens = false, .parse_special_tokens = true});
  } else {
    auto it = body.find("prompt");
    if (it == body.end() || it->is_null()) throw bad("prompt", "'prompt' is a required property");
    const json& prompt = *it;
    const auto is_ids = [](const json& v) {
      return v.is_array() && !v.empty() &&
             std::all_of(v.begin(), v.end(), [](const json& x) { return x.is_number_integer(); });
    };
    // One prompt: a string, or token ids; several: an array of those.
    std::vector<const json*> prompts;
    if (prompt.is_string() || is_ids(prompt)) {
      prompts.push_back(&prompt);
    } else if (prompt.is_array() && !prompt.empty()) {
      if (prompt.size() > kMaxPrompts) {
        throw bad("prompt", fmt::format("'prompt' holds {} prompts, at most {} are accepted",
                                        prompt.size(), kMaxPrompts));
      }
      for (const json& v : prompt) {
        if (!v.is_string() && !is_ids(v)) {
          throw bad("prompt",
                    "'prompt' must be a string, token ids, or an array of strings or of token-id "
                    "arrays");
        }
        prompts.push_back(&v);
      }
    } else {
      throw bad("prompt",
                "'prompt' must be a string, token ids, or an array of strings or of token-id "
                "arrays");
    }
    const auto read = [&](const json& v, std::vector<int32_t>& out, std::string& echo) {
      if (v.is_string()) {
        echo = v.get<std::string>();
        check_prompt_bytes(echo, "prompt", "the prompt", context);
        out = tok.encode(echo, EncodeOptions{});
        return;
      }
      for (const json& x : v) {
        const int64_t id = x.get<int64_t>();
        if (id < 0 || id >= tok.vocab_size()) {
          throw bad("prompt", fmt::format("'prompt' token id {} is outside the vocabulary [0, {})",
                                          id, tok.vocab_size()));
        }
        out.push_back(static_cast<int32_t>(id));
      }
      echo = tok.decode(out);
    };
    read(*prompts[0], ids, p.echo_text);
    for (size_t i = 1; i < prompts.size(); ++i) {
      ParsedRequest::Prompt& more = p.more_prompts.emplace_back();
      read(*prompts[i], more.ids, more.echo_text);
    }
  }
  int32_t longest = 0;  // of the prompts, which all share max_tokens
  for (const std::vector<int32_t>* prompt_ids : all_prompt_ids(ids, p)) {
    if (prompt_ids->empty())
      throw bad(prompt_param, fmt::format("'{}' must not be empty", prompt_param));
    const auto len = static_cast<int32_t>(prompt_ids->size());
    if (len >= max_model_len) {
      throw bad(prompt_param,
                fmt::format("This model's maximum context length (max_model_len) is {} tokens, "
                            "but the prompt has {} tokens; shorten the {}",
                            max_model_len, len, prompt_param));
    }
    longest = std::max(longest, len);
  }
  p.prompt_len = static_cast<int32_t>(ids.size());
  p.request.prompt = std::move(ids);
  p.request.add_special_tokens = false;

  // n choices (each its own engine request); best_of only as n (no ranking of choices).
  if (int64_t n = 1; get_int(body, "n", n)) p.n = to_int32("n", n, 1, kMaxChoices);
  if ((p.more_prompts.size() + 1) * static_cast<size_t>(p.n) > kMaxPrompts) {
    throw bad("n", fmt::format("{} prompts x n {} are more than {} choices",
                               p.more_prompts.size() + 1, p.n, kMaxPrompts));
  }
  if (int64_t b = 1; get_int(body, "best_of", b) && b != p.n) {
    throw bad("best_of",
              fmt::format("best_of must equal n ({}) (choices are not ranked), got {}", p.n, b));
  }
  // logit_bias: {"<token id>": bias in [-100, 100], ...}; the ids' range is checked with the
  // vocabulary in SamplingParams::validate.
  if (auto lb = body.find("logit_bias"); lb != body.end() && !lb->is_null()) {
    if (!lb->is_object())
      throw bad("logit_bias", "'logit_bias' must be an object of token ids to numbers");
    for (const auto& [key, value] : lb->items()) {
      int32_t token = -1;
      const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), token);
      if (ec != std::errc() || end != key.data() + key.size() || token < 0) {
        throw bad(
            "logit_bias",
            fmt::format("'logit_bias' keys must be token ids (integers >= 0), got \"{}\"", key));
      }
      if (!value.is_number()) {
        throw bad("logit_bias", fmt::format("'logit_bias' of token {} must be a number", token));
      }
      sp.logit_bias.push_back({token, value.get<float>()});
    }
  }
  parse_guide(body, context, p.request.guide);
  parse_tool_choice(body, api == Api::kChat, context, p);
  if (auto sfx = body.find("suffix"); sfx != body.end() && !sfx->is_null() &&
                                      !(sfx->is_string() && sfx->get<std::string>().empty())) {
    throw bad("suffix", "'suffix' is not currently supported");
  }

  // Echo (completions only): read first, since with it max_tokens may be 0.
  if (api == Api::kCompletions) get_bool(body, "echo", p.is_echo);
  if (!p.is_echo) {
    p.echo_text.clear();
    for (ParsedRequest::Prompt& more : p.more_prompts) more.echo_text.clear();
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
  const int32_t room = max_model_len - longest;
  if (has_max) {
    if (max_tokens < 0 || (max_tokens == 0 && !p.is_echo)) {
      throw bad(max_param,
                fmt::format("'{}' must be at least 1{}, got {}", max_param,
                            api == Api::kCompletions ? " (0 only with 'echo')" : "", max_tokens));
    }
    if (max_tokens > room) {
      throw bad(
          max_param,
          fmt::format(
              "This model's maximum context length (max_model_len) is {} tokens; the prompt has "
              "{} tokens, so '{}' can be at most {}, got {}",
              max_model_len, longest, max_param, room, max_tokens));
    }
    p.is_scoring = max_tokens == 0;
    sp.max_tokens = std::max<int32_t>(1, static_cast<int32_t>(max_tokens));
  } else {
    sp.max_tokens = api == Api::kChat ? room : std::min<int32_t>(16, room);
  }
  if (int64_t v = 0; get_int(body, "min_tokens", v))
    sp.min_tokens = to_int32("min_tokens", v, 0, p.is_scoring ? 0 : sp.max_tokens);

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
  // vLLM's scheduling priority: lower values are admitted first (default 0).
  if (int64_t v = 0; get_int(body, "priority", v))
    p.request.priority = to_int32("priority", v, INT32_MIN, INT32_MAX);
  // llmserve's: false keeps this request out of speculative decoding (--speculative).
  get_bool(body, "speculative", p.request.speculative);
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
  // vLLM's bad_words: strings never to generate (GenerationService::start tokenizes them).
  if (auto words = body.find("bad_words"); words != body.end() && !words->is_null()) {
    if (!words->is_array()) throw bad("bad_words", "'bad_words' must be an array of strings");
    for (const json& w : *words) {
      if (!w.is_string() || w.get<std::string>().find_first_not_of(' ') == std::string::npos)
        throw bad("bad_words", "'bad_words' must be an array of non-empty strings");
      p.request.bad_words.push_back(w.get<std::string>());
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

  // Prompt logprobs: vLLM's prompt_logprobs, and the echoed prompt's with echo + logprobs.
  get_bool(body, "stream", p.is_stream);
  if (int64_t k = 0; get_int(body, "prompt_logprobs", k)) {
    p.prompt_logprobs = to_int32("prompt_logprobs", k, 0, kMaxLogprobs);
    if (p.is_stream) {
      throw bad("prompt_logprobs",
                "'prompt_logprobs' is not available when 'stream' is true (vLLM's rule)");
    }
  }
  sp.prompt_logprobs = std::max(p.prompt_logprobs, p.is_echo ? sp.logprobs : -1);

  // Streaming.
  if (auto so = body.find("stream_options"); so != body.end() && !so->is_null()) {
    if (!so->is_object()) throw bad("stream_options", "'stream_options' must be an object");
    if (!p.is_stream)
      throw bad("stream_options", "'stream_options' is only allowed when 'stream' is true");
    get_bool(*so, "include_usage", p.include_usage);
  }

  if (Status s = sp.validate(tok.vocab_size()); !s.is_ok()) throw from_status(s);
}

std::vector<int32_t> parse_tokenize(const json& body, const ParseContext& context) {
  const Tokenizer& tok = context.tokenizer;
  if (body.contains("messages")) {
    const std::string text = render_chat(body, context);
    check_prompt_bytes(text, "messages", "the chat prompt rendered from 'messages'", context);
    return tok.encode(text,
                      EncodeOptions{.add_special_tokens = false, .parse_special_tokens = true});
  }
  auto it = body.find("prompt");
  if (it == body.end() || it->is_null())
    throw bad("prompt", "'prompt' (or 'messages') is a required property");
  if (!it->is_string()) throw bad("prompt", "'prompt' must be a string");
  const std::string& text = it->get_ref<const std::string&>();
  check_prompt_bytes(text, "prompt", "the prompt", context);
  bool add_special_tokens = true;
  get_bool(body, "add_special_tokens", add_special_tokens);
  return tok.encode(text, EncodeOptions{.add_special_tokens = add_special_tokens});
}

std::string parse_detokenize(const json& body, const ParseContext& context) {
  const Tokenizer& tok = context.tokenizer;
  auto it = body.find("tokens");
  if (it == body.end() || it->is_null()) throw bad("tokens", "'tokens' is a required property");
  if (!it->is_array()) throw bad("tokens", "'tokens' must be an array of token ids");
  std::vector<int32_t> ids;
  ids.reserve(it->size());
  for (const json& v : *it) {
    if (!v.is_number_integer()) throw bad("tokens", "'tokens' must all be integers");
    const int64_t id = v.get<int64_t>();
    if (id < 0 || id >= tok.vocab_size()) {
      throw bad("tokens", fmt::format("'tokens' id {} is outside the vocabulary [0, {})", id,
                                      tok.vocab_size()));
    }
    ids.push_back(static_cast<int32_t>(id));
  }
  return tok.decode(ids);
}

}  // namespace llmserve::openai
