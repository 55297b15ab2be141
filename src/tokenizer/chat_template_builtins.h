// The chat-template (Jinja) library: filters, tests, methods of str/dict values and the global
// functions Hugging Face templates call, each with the behaviour of jinja2 3.1 plus
// transformers' overrides (tojson = json.dumps(ensure_ascii=False, ...), raise_exception,
// strftime_now). Unknown names throw Error(kInvalidArgument) naming them.
//
// Filters: trim upper lower capitalize title string replace center indent tojson safe length count
//   int float abs round default/d first last list reverse join items selectattr rejectattr select
//   reject map sort dictsort unique sum min max.
// Tests: defined undefined none boolean true false integer float number string mapping iterable
//   sequence callable even odd divisibleby eq/equalto/== ne/!= lt/< le/<= gt/> ge/>= in lower upper
//   sameas.
// str methods: strip lstrip rstrip split rsplit(no maxsplit) splitlines startswith endswith upper
//   lower title capitalize replace find count join isdigit isspace isalpha isalnum; "fmt" % args.
// dict methods: items keys values get. list.append/extend/pop/insert are refused, as transformers'
//   ImmutableSandboxedEnvironment refuses them.
//
// Thread-safety: pure functions of their arguments, except strftime_now (reads the clock).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "tokenizer/chat_template_value.h"

namespace llmserve::jinja {

// Thrown by raise_exception(msg): render() turns it into Error(kInvalidArgument, msg).
struct TemplateRaise {
  std::string message;
};

Value apply_filter(std::string_view name, const Value& value, const CallArgs& args);
bool apply_test(std::string_view name, const Value& value, const CallArgs& args);
// value.name(args) for Python's str and dict methods; nullopt when the type has no such method.
std::optional<Value> call_method(const Value& object, std::string_view name, const CallArgs& args);
// range, namespace, dict, raise_exception, strftime_now.
ValueDict make_global_functions();

// String helpers shared with the evaluator (Python semantics, ASCII case and whitespace).
std::string python_strip(std::string_view s, const Value* chars, bool is_left, bool is_right);
Value python_slice(const Value& object, const Value& start, const Value& stop, const Value& step);
Value python_index(const Value& object, const Value& index);
ValueList iterate(const Value& value);
// Python's "format" % args for %s %r %d %i %f %F %e %g %x %X %o %% with flags, width, precision.
std::string percent_format(const std::string& format, const Value& args);

}  // namespace llmserve::jinja
