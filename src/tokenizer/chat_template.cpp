// ChatTemplate: builds the globals transformers passes to a chat template and runs the evaluator.
#include "tokenizer/chat_template.h"

#include "common/status.h"
#include "tokenizer/chat_template_builtins.h"
#include "tokenizer/chat_template_evaluator.h"
#include "tokenizer/chat_template_parser.h"

namespace llmserve {

ChatTemplate ChatTemplate::compile(std::string_view source) {
  return ChatTemplate(std::make_shared<const jinja::NodeList>(jinja::parse_template(source)));
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages,
                                 bool add_generation_prompt, const std::string& bos_token,
                                 const std::string& eos_token, const nlohmann::json& extra) const {
  using jinja::Value;
  jinja::ValueDict globals = jinja::make_global_functions();
  // transformers always passes tools= and documents= (None unless given).
  globals.set("tools", Value::none());
  globals.set("documents", Value::none());
  if (!extra.is_null()) {
    if (!extra.is_object())
      fail(StatusCode::kInvalidArgument, "chat template: extra context must be a JSON object");
    for (const auto& [key, value] : extra.items()) globals.set(key, Value::from_json(value));
  }
  jinja::ValueList message_values;
  for (const ChatMessage& message : messages) {
    jinja::ValueDict dict;
    dict.set("role", Value::from_string(message.role));
    dict.set("content", Value::from_string(message.content));
    if (message.name) dict.set("name", Value::from_string(*message.name));
    if (message.tool_call_id) dict.set("tool_call_id", Value::from_string(*message.tool_call_id));
    if (!message.tool_calls.is_null()) dict.set("tool_calls", Value::from_json(message.tool_calls));
    message_values.push_back(Value::from_dict(std::move(dict)));
  }
  globals.set("messages", Value::from_list(std::move(message_values)));
  globals.set("add_generation_prompt", Value::from_bool(add_generation_prompt));
  globals.set("bos_token", Value::from_string(bos_token));
  globals.set("eos_token", Value::from_string(eos_token));
  return jinja::render_template(*nodes_, globals);
}

std::string default_chat_template() {
  return "{% for message in messages %}{{ message['role'] | upper }}:\n"
         "{{ message['content'] }}\n\n"
         "{% endfor %}{% if add_generation_prompt %}ASSISTANT:\n{% endif %}";
}

}  // namespace llmserve
