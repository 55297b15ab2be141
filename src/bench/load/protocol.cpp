#include "bench/load/protocol.h"

#include <nlohmann/json.hpp>

namespace llmserve::bench::load {

using nlohmann::json;

namespace {

constexpr size_t kMaxKeptText = 4096;

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

void add_text(RequestTrace& trace, const std::string& text, int32_t num_tokens,
              Clock::time_point t) {
  if (text.empty() && num_tokens == 0) return;
  trace.piece_times.push_back(t);
  trace.num_piece_tokens += num_tokens;
  if (trace.text.size() < kMaxKeptText)
    trace.text += text.substr(0, kMaxKeptText - trace.text.size());
}

// "error" as Triton ({"error": "msg"}), OpenAI ({"error": {"message": ...}}) or vLLM sends it.
std::string error_message(const json& j) {
  const json& e = j.at("error");
  if (e.is_string()) return e.get<std::string>();
  if (e.is_object() && e.contains("message") && e["message"].is_string())
    return e["message"].get<std::string>();
  return dump(e);
}

void take_openai(Target target, const json& j, Clock::time_point t, RequestTrace& trace) {
  if (j.contains("usage") && j["usage"].is_object()) {
    const json& u = j["usage"];
    if (u.contains("prompt_tokens") && u["prompt_tokens"].is_number_integer()) {
      trace.usage_prompt_tokens = u["prompt_tokens"].get<int32_t>();
    }
    if (u.contains("completion_tokens") && u["completion_tokens"].is_number_integer()) {
      trace.usage_completion_tokens = u["completion_tokens"].get<int32_t>();
    }
  }
  if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty()) return;
  const json& choice = j["choices"][0];
  std::string text;
  if (target == Target::kChat) {
    if (choice.contains("delta") && choice["delta"].contains("content") &&
        choice["delta"]["content"].is_string()) {
      text = choice["delta"]["content"].get<std::string>();
    }
  } else if (choice.contains("text") && choice["text"].is_string()) {
    text = choice["text"].get<std::string>();
  }
  if (!text.empty()) add_text(trace, text, 1, t);
}

int32_t triton_tokens(const json& j) {
  if (j.contains("num_output_tokens") && j["num_output_tokens"].is_number_integer()) {
    return j["num_output_tokens"].get<int32_t>();
  }
  if (j.contains("output_log_probs")) {
    const json& l = j["output_log_probs"];
    if (l.is_array()) return static_cast<int32_t>(l.size());
    if (l.is_number()) return 1;
  }
  return 1;
}

void take_triton(const json& j, Clock::time_point t, RequestTrace& trace) {
  if (!j.contains("text_output")) {
    trace.fail("bad_response", "reply without text_output");
    return;
  }
  const json& out = j["text_output"];
  std::string text = out.is_string() ? out.get<std::string>()
                     : (out.is_array() && !out.empty() && out[0].is_string())
                         ? out[0].get<std::string>()
                         : std::string();
  add_text(trace, text, triton_tokens(j), t);
}

}  // namespace

std::string request_path(Target target, const std::string& model) {
  switch (target) {
    case Target::kCompletions:
      return "/v1/completions";
    case Target::kChat:
      return "/v1/chat/completions";
    case Target::kGenerate:
      return "/v2/models/" + model + "/generate";
    case Target::kGenerateStream:
      return "/v2/models/" + model + "/generate_stream";
    case Target::kGrpcStream:
      return "";
  }
  return "";
}

std::string request_body(Target target, const Prompt& prompt, const LoadOptions& options) {
  json j;
  switch (target) {
    case Target::kCompletions:
    case Target::kChat:
      j["model"] = options.model;
      if (target == Target::kChat) {
        j["messages"] = json::array({{{"role", "user"}, {"content", prompt.text}}});
      } else {
        j["prompt"] = prompt.text;
      }
      j["max_tokens"] = prompt.max_tokens;
      j["stream"] = true;
      j["stream_options"] = {{"include_usage", true}};
      j["temperature"] = options.temperature;
      if (options.ignore_eos) j["ignore_eos"] = true;
      break;
    case Target::kGenerate:
    case Target::kGenerateStream:
    case Target::kGrpcStream:
      j["text_input"] = prompt.text;
      j["max_tokens"] = prompt.max_tokens;
      j["temperature"] = options.temperature;
      if (options.ignore_eos) j["min_tokens"] = prompt.max_tokens;
      if (target == Target::kGenerateStream) j["stream"] = true;
      break;
  }
  for (const auto& [key, value] : options.extra_body.items()) j[key] = value;
  return dump(j);
}

void take_payload(Target target, std::string_view payload, Clock::time_point t,
                  RequestTrace& trace) {
  if (payload == "[DONE]") {
    trace.is_complete = true;
    return;
  }
  json j = json::parse(payload, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    trace.fail("bad_response", "not a JSON object: " + std::string(payload.substr(0, 200)));
    return;
  }
  if (j.contains("error") && !j["error"].is_null()) {
    trace.fail("stream_error", error_message(j));
    return;
  }
  switch (target) {
    case Target::kCompletions:
    case Target::kChat:
      take_openai(target, j, t, trace);
      break;
    case Target::kGenerate:
    case Target::kGenerateStream:
    case Target::kGrpcStream:
      take_triton(j, t, trace);
      break;
  }
}

void take_error_reply(int status, std::string_view body, RequestTrace& trace) {
  std::string message(body.substr(0, 300));
  json j = json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object()) {
    if (j.contains("error"))
      message = error_message(j);
    else if (j.contains("detail"))
      message = j["detail"].is_string() ? j["detail"].get<std::string>() : dump(j["detail"]);
    else if (j.contains("message") && j["message"].is_string())
      message = j["message"].get<std::string>();
  }
  trace.fail("http_" + std::to_string(status), message);
}

}  // namespace llmserve::bench::load
