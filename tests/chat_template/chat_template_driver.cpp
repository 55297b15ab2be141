// chat_template_driver: renders one template over many cases, for the differential test.
//
// Usage: chat_template_driver < request.json > results.json
// request: {"template": "...", "cases": [{"messages": [{"role", "content", "name"?,
//           "tool_call_id"?, "tool_calls"?}], "add_generation_prompt": bool, "bos_token": "...",
//           "eos_token": "...", "extra": {...}}]}
// results: {"compile_error": "..."} or {"results": [{"output": "..."} | {"error": "..."}]}, one
// per case in order. Exit status 0 unless the request itself is malformed.
#include <iostream>
#include <iterator>
#include <string>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "tokenizer/chat_template.h"

namespace {

using llmserve::ChatMessage;
using llmserve::ChatTemplate;
using Json = nlohmann::json;

std::vector<ChatMessage> parse_messages(const Json& messages) {
  std::vector<ChatMessage> out;
  for (const Json& m : messages) {
    ChatMessage message;
    message.role = m.at("role").get<std::string>();
    message.content = m.at("content").get<std::string>();
    if (m.contains("name")) message.name = m["name"].get<std::string>();
    if (m.contains("tool_call_id")) message.tool_call_id = m["tool_call_id"].get<std::string>();
    if (m.contains("tool_calls")) message.tool_calls = m["tool_calls"];
    out.push_back(std::move(message));
  }
  return out;
}

Json render_case(const ChatTemplate& chat_template, const Json& c) {
  try {
    return {{"output", chat_template.render(parse_messages(c.at("messages")),
                                            c.value("add_generation_prompt", false),
                                            c.value("bos_token", std::string()),
                                            c.value("eos_token", std::string()),
                                            c.value("extra", Json::object()))}};
  } catch (const llmserve::Error& e) {
    return {{"error", e.what()}};
  }
}

}  // namespace

int main() {
  const std::string input((std::istreambuf_iterator<char>(std::cin)),
                          std::istreambuf_iterator<char>());
  Json request;
  try {
    request = Json::parse(input);
  } catch (const std::exception& e) {
    std::cerr << "chat_template_driver: bad request JSON: " << e.what() << "\n";
    return 2;
  }
  Json response;
  try {
    const ChatTemplate chat_template =
        ChatTemplate::compile(request.at("template").get<std::string>());
    Json results = Json::array();
    for (const Json& c : request.at("cases")) results.push_back(render_case(chat_template, c));
    response["results"] = std::move(results);
  } catch (const llmserve::Error& e) {
    response = {{"compile_error", e.what()}};
  }
  std::cout << response.dump(-1, ' ', false, Json::error_handler_t::replace) << "\n";
  return 0;
}
