// Python-level operations of the chat-template language: str/dict methods, indexing, slicing,
// iteration, and the global functions (range, namespace, dict, raise_exception, strftime_now).
#include <algorithm>
#include <cctype>
#include <ctime>

#include "common/status.h"
#include "tokenizer/chat_template_builtins.h"
#include "tokenizer/chat_template_case.h"

namespace llmserve::jinja {
namespace {

constexpr std::string_view kWhitespace = " \t\n\r\v\f\x1c\x1d\x1e\x1f";

const std::string& require_string(const Value* v, std::string_view what) {
  if (v == nullptr || !v->is_string()) {
    fail(StatusCode::kInvalidArgument, "chat template: {} expects a string argument", what);
  }
  return v->as_string();
}

int64_t optional_int(const Value* v, int64_t fallback) {
  if (v == nullptr || v->is_none()) return fallback;
  if (!v->is_number()) fail(StatusCode::kInvalidArgument, "chat template: expected an integer");
  return v->as_int();
}

std::vector<std::string> split_whitespace(std::string_view s, int64_t max_split) {
  std::vector<std::string> parts;
  std::size_t i = 0;
  while (true) {
    while (i < s.size() && kWhitespace.find(s[i]) != std::string_view::npos) ++i;
    if (i >= s.size()) break;
    if (max_split >= 0 && static_cast<int64_t>(parts.size()) == max_split) {
      parts.emplace_back(s.substr(i));
      break;
    }
    std::size_t j = i;
    while (j < s.size() && kWhitespace.find(s[j]) == std::string_view::npos) ++j;
    parts.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return parts;
}

std::vector<std::string> split_on(std::string_view s, std::string_view sep, int64_t max_split) {
  if (sep.empty()) fail(StatusCode::kInvalidArgument, "chat template: split: empty separator");
  std::vector<std::string> parts;
  std::size_t i = 0;
  while (max_split < 0 || static_cast<int64_t>(parts.size()) < max_split) {
    const std::size_t j = s.find(sep, i);
    if (j == std::string_view::npos) break;
    parts.emplace_back(s.substr(i, j - i));
    i = j + sep.size();
  }
  parts.emplace_back(s.substr(i));
  return parts;
}

bool matches_affix(const std::string& s, const Value& affix, bool is_prefix) {
  auto one = [&](const Value& v) {
    const std::string& a = require_string(&v, is_prefix ? "startswith" : "endswith");
    if (a.size() > s.size()) return false;
    return is_prefix ? s.compare(0, a.size(), a) == 0
                     : s.compare(s.size() - a.size(), a.size(), a) == 0;
  };
  if (affix.is_list()) {
    return std::any_of(affix.list().begin(), affix.list().end(), one);
  }
  return one(affix);
}

std::string replace_all(const std::string& s, const std::string& old_text,
                        const std::string& new_text, int64_t count) {
  std::string out;
  if (old_text.empty()) {
    const std::vector<std::string> chars = split_code_points(s);
    int64_t n = 0;
    for (const std::string& c : chars) {
      if (count < 0 || n++ < count) out += new_text;
      out += c;
    }
    if (count < 0 || n < count) out += new_text;
    return out;
  }
  std::size_t i = 0;
  int64_t n = 0;
  while (count < 0 || n < count) {
    const std::size_t j = s.find(old_text, i);
    if (j == std::string::npos) break;
    out.append(s, i, j - i);
    out += new_text;
    i = j + old_text.size();
    ++n;
  }
  out.append(s, i, std::string::npos);
  return out;
}

std::optional<Value> string_method(const std::string& s, std::string_view name,
                                   const CallArgs& args) {
  const Value* a0 = args.get(0, "");
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    return Value::from_string(python_strip(s, a0, name != "rstrip", name != "lstrip"));
  }
  if (name == "upper") return Value::from_string(change_case(s, CaseChange::kUpper));
  if (name == "lower") return Value::from_string(change_case(s, CaseChange::kLower));
  if (name == "title") return Value::from_string(change_case(s, CaseChange::kTitle));
  if (name == "capitalize") return Value::from_string(change_case(s, CaseChange::kCapitalize));
  if (name == "split" || name == "rsplit") {
    const Value* sep = args.get(0, "sep");
    const int64_t max_split = optional_int(args.get(1, "maxsplit"), -1);
    if (name == "rsplit" && max_split >= 0) {
      fail(StatusCode::kInvalidArgument, "chat template: rsplit with maxsplit is not supported");
    }
    std::vector<std::string> parts = sep == nullptr || sep->is_none()
                                         ? split_whitespace(s, max_split)
                                         : split_on(s, require_string(sep, "split"), max_split);
    ValueList items;
    for (auto& part : parts) items.push_back(Value::from_string(std::move(part)));
    return Value::from_list(std::move(items));
  }
  if (name == "startswith" || name == "endswith") {
    if (a0 == nullptr)
      fail(StatusCode::kInvalidArgument, "chat template: {} needs an argument", name);
    return Value::from_bool(matches_affix(s, *a0, name == "startswith"));
  }
  if (name == "replace") {
    return Value::from_string(replace_all(s, require_string(a0, "replace"),
                                          require_string(args.get(1, ""), "replace"),
                                          optional_int(args.get(2, "count"), -1)));
  }
  if (name == "find" || name == "count") {
    const std::string& needle = require_string(a0, name);
    if (name == "find") {
      const std::size_t at = s.find(needle);
      if (at == std::string::npos) return Value::from_int(-1);
      return Value::from_int(static_cast<int64_t>(split_code_points(s.substr(0, at)).size()));
    }
    if (needle.empty())
      return Value::from_int(static_cast<int64_t>(split_code_points(s).size()) + 1);
    int64_t n = 0;
    for (std::size_t at = s.find(needle); at != std::string::npos;
         at = s.find(needle, at + needle.size()))
      ++n;
    return Value::from_int(n);
  }
  if (name == "join") {
    if (a0 == nullptr) fail(StatusCode::kInvalidArgument, "chat template: join needs an argument");
    std::string out;
    bool is_first = true;
    for (const Value& item : iterate(*a0)) {
      if (!item.is_string())
        fail(StatusCode::kInvalidArgument, "chat template: str.join expects strings");
      if (!is_first) out += s;
      out += item.as_string();
      is_first = false;
    }
    return Value::from_string(out);
  }
  if (name == "splitlines") {
    ValueList items;
    for (auto& part : split_on(s, "\n", -1)) items.push_back(Value::from_string(std::move(part)));
    if (!items.empty() && items.back().as_string().empty()) items.pop_back();
    return Value::from_list(std::move(items));
  }
  if (name == "isdigit" || name == "isspace" || name == "isalpha" || name == "isalnum") {
    if (s.empty()) return Value::from_bool(false);
    return Value::from_bool(std::all_of(s.begin(), s.end(), [&](char ch) {
      const auto c = static_cast<unsigned char>(ch);
      if (name == "isdigit") return std::isdigit(c) != 0;
      if (name == "isspace") return kWhitespace.find(ch) != std::string_view::npos;
      if (name == "isalpha") return std::isalpha(c) != 0;
      return std::isalnum(c) != 0;
    }));
  }
  return std::nullopt;
}

std::optional<Value> dict_method(const ValueDict& dict, std::string_view name,
                                 const CallArgs& args) {
  if (name == "items" || name == "keys" || name == "values") {
    ValueList items;
    for (const auto& [key, value] : dict.items) {
      if (name == "items")
        items.push_back(Value::from_tuple({Value::from_string(key), value}));
      else if (name == "keys")
        items.push_back(Value::from_string(key));
      else
        items.push_back(value);
    }
    return Value::from_list(std::move(items));
  }
  if (name == "get") {
    const Value* key = args.get(0, "key");
    if (key == nullptr) fail(StatusCode::kInvalidArgument, "chat template: get needs a key");
    const Value* found = key->is_string() ? dict.find(key->as_string()) : nullptr;
    if (found != nullptr) return *found;
    const Value* fallback = args.get(1, "default");
    return fallback != nullptr ? *fallback : Value::none();
  }
  return std::nullopt;
}

std::string strftime_now(const std::string& format) {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char buf[512];
  const std::size_t n = std::strftime(buf, sizeof(buf), format.c_str(), &local);
  return std::string(buf, n);
}

}  // namespace

std::string python_strip(std::string_view s, const Value* chars, bool is_left, bool is_right) {
  const std::string_view set = chars == nullptr || chars->is_none()
                                   ? kWhitespace
                                   : std::string_view(require_string(chars, "strip"));
  std::size_t begin = 0;
  std::size_t end = s.size();
  if (is_left) {
    while (begin < end && set.find(s[begin]) != std::string_view::npos) ++begin;
  }
  if (is_right) {
    while (end > begin && set.find(s[end - 1]) != std::string_view::npos) --end;
  }
  return std::string(s.substr(begin, end - begin));
}

std::string percent_format(const std::string& format, const Value& args) {
  const ValueList values = args.is_tuple() ? args.list() : ValueList{args};
  std::size_t next = 0;
  std::string out;
  for (std::size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    std::size_t j = i + 1;
    while (j < format.size() && std::string_view("-+ 0#").find(format[j]) != std::string_view::npos)
      ++j;
    while (j < format.size() && std::isdigit(static_cast<unsigned char>(format[j]))) ++j;
    if (j < format.size() && format[j] == '.') {
      ++j;
      while (j < format.size() && std::isdigit(static_cast<unsigned char>(format[j]))) ++j;
    }
    if (j >= format.size()) fail(StatusCode::kInvalidArgument, "chat template: incomplete format");
    const char conversion = format[j];
    const std::string spec = format.substr(i, j - i);
    i = j;
    if (conversion == '%') {
      out += '%';
      continue;
    }
    if (next >= values.size())
      fail(StatusCode::kInvalidArgument, "chat template: not enough arguments for format string");
    const Value& v = values[next++];
    char buf[512];
    switch (conversion) {
      case 's':
      case 'r': {
        std::string text = conversion == 's' ? v.to_str() : v.repr();
        const std::size_t flags_end = std::min(spec.find_first_not_of("-+ 0#", 1), spec.size());
        const bool is_left = spec.find('-') < flags_end;
        const std::size_t dot = spec.find('.');
        const std::string width_text =
            spec.substr(flags_end, (dot == std::string::npos ? spec.size() : dot) - flags_end);
        if (dot != std::string::npos) {
          const std::size_t precision =
              dot + 1 < spec.size() ? std::stoul(spec.substr(dot + 1)) : 0;
          const std::vector<std::string> chars = split_code_points(text);
          if (chars.size() > precision) {
            text.clear();
            for (std::size_t k = 0; k < precision; ++k) text += chars[k];
          }
        }
        const std::size_t width = width_text.empty() ? 0 : std::stoul(width_text);
        const std::size_t length = split_code_points(text).size();
        const std::string pad(width > length ? width - length : 0, ' ');
        out += is_left ? text + pad : pad + text;
        break;
      }
      case 'd':
      case 'i':
      case 'x':
      case 'X':
      case 'o':
        if (!v.is_number())
          fail(StatusCode::kInvalidArgument, "chat template: %{} format: a number is required",
               conversion);
        std::snprintf(buf, sizeof(buf),
                      (spec + "ll" + (conversion == 'i' ? 'd' : conversion)).c_str(),
                      static_cast<long long>(v.as_int()));
        out += buf;
        break;
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G':
        if (!v.is_number())
          fail(StatusCode::kInvalidArgument, "chat template: %{} format: a number is required",
               conversion);
        std::snprintf(buf, sizeof(buf), (spec + conversion).c_str(), v.as_float());
        out += buf;
        break;
      default:
        fail(StatusCode::kInvalidArgument, "chat template: unsupported format character '{}'",
             conversion);
    }
  }
  if (next < values.size())
    fail(StatusCode::kInvalidArgument,
         "chat template: not all arguments converted during string formatting");
  return out;
}

ValueList iterate(const Value& value) {
  switch (value.kind()) {
    case ValueKind::kUndefined:
      return {};
    case ValueKind::kList:
      return value.list();
    case ValueKind::kDict: {
      ValueList keys;
      for (const auto& item : value.dict().items) keys.push_back(Value::from_string(item.first));
      return keys;
    }
    case ValueKind::kString: {
      ValueList chars;
      for (auto& c : split_code_points(value.as_string()))
        chars.push_back(Value::from_string(std::move(c)));
      return chars;
    }
    case ValueKind::kNone:
    case ValueKind::kBool:
    case ValueKind::kInt:
    case ValueKind::kFloat:
    case ValueKind::kFunction:
      break;
  }
  fail(StatusCode::kInvalidArgument, "chat template: '{}' object is not iterable",
       value.type_name());
}

Value python_index(const Value& object, const Value& index) {
  if (object.is_dict()) {
    if (!index.is_string()) return Value::undefined("");
    const Value* found = object.dict().find(index.as_string());
    return found != nullptr ? *found : Value::undefined(index.as_string());
  }
  if (object.is_list() || object.is_string()) {
    if (index.is_string()) {
      return object.is_string() ? Value::undefined(index.as_string())
                                : Value::undefined(index.as_string());
    }
    if (!index.is_number()) return Value::undefined("");
    const ValueList items = object.is_list() ? ValueList{} : iterate(object);
    const ValueList& seq = object.is_list() ? object.list() : items;
    int64_t i = index.as_int();
    const auto n = static_cast<int64_t>(seq.size());
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value::undefined("");
    return seq[static_cast<std::size_t>(i)];
  }
  return Value::undefined(index.is_string() ? index.as_string() : "");
}

Value python_slice(const Value& object, const Value& start, const Value& stop, const Value& step) {
  if (!object.is_list() && !object.is_string()) {
    fail(StatusCode::kInvalidArgument, "chat template: cannot slice '{}'", object.type_name());
  }
  const ValueList items = object.is_list() ? object.list() : iterate(object);
  const auto n = static_cast<int64_t>(items.size());
  const int64_t s = step.is_undefined() || step.is_none() ? 1 : step.as_int();
  if (s == 0) fail(StatusCode::kInvalidArgument, "chat template: slice step cannot be zero");
  auto bound = [&](const Value& v, int64_t fallback) {
    if (v.is_undefined() || v.is_none()) return fallback;
    int64_t i = v.as_int();
    if (i < 0) i += n;
    if (s > 0) return std::clamp<int64_t>(i, 0, n);
    return std::clamp<int64_t>(i, -1, n - 1);
  };
  const int64_t begin = bound(start, s > 0 ? 0 : n - 1);
  const int64_t end = bound(stop, s > 0 ? n : -1);
  ValueList out;
  for (int64_t i = begin; s > 0 ? i < end : i > end; i += s)
    out.push_back(items[static_cast<std::size_t>(i)]);
  if (object.is_list()) return Value::from_list(std::move(out));
  std::string str;
  for (const Value& c : out) str += c.as_string();
  return Value::from_string(str);
}

std::optional<Value> call_method(const Value& object, std::string_view name, const CallArgs& args) {
  if (object.is_string()) return string_method(object.as_string(), name, args);
  if (object.is_dict() && !object.dict().is_namespace)
    return dict_method(object.dict(), name, args);
  if (object.is_list() &&
      (name == "append" || name == "extend" || name == "pop" || name == "insert")) {
    fail(StatusCode::kInvalidArgument,
         "chat template: list.{} is not allowed (Hugging Face renders in an immutable sandbox)",
         name);
  }
  return std::nullopt;
}

ValueDict make_global_functions() {
  ValueDict globals;
  globals.set("range", Value::from_function("range", [](const CallArgs& args) {
                int64_t start = 0;
                int64_t stop = 0;
                int64_t step = 1;
                if (args.positional.size() == 1) {
                  stop = args.positional[0].as_int();
                } else if (args.positional.size() >= 2) {
                  start = args.positional[0].as_int();
                  stop = args.positional[1].as_int();
                  if (args.positional.size() >= 3) step = args.positional[2].as_int();
                }
                if (step == 0)
                  fail(StatusCode::kInvalidArgument,
                       "chat template: range() step must not be zero");
                ValueList items;
                for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
                  if (items.size() > 100000)
                    fail(StatusCode::kInvalidArgument, "chat template: range too long");
                  items.push_back(Value::from_int(i));
                }
                return Value::from_list(std::move(items));
              }));
  auto make_dict = [](bool is_namespace) {
    return [is_namespace](const CallArgs& args) {
      ValueDict dict;
      dict.is_namespace = is_namespace;
      for (const Value& positional : args.positional) {
        if (!positional.is_dict())
          fail(StatusCode::kInvalidArgument, "chat template: expected a mapping");
        for (const auto& [k, v] : positional.dict().items) dict.set(k, v);
      }
      for (const auto& [k, v] : args.keyword) dict.set(k, v);
      return Value::from_dict(std::move(dict));
    };
  };
  globals.set("namespace", Value::from_function("namespace", make_dict(true)));
  globals.set("dict", Value::from_function("dict", make_dict(false)));
  globals.set("raise_exception",
              Value::from_function("raise_exception", [](const CallArgs& args) -> Value {
                const Value* message = args.get(0, "message");
                throw TemplateRaise{message != nullptr ? message->to_str() : ""};
              }));
  globals.set("strftime_now", Value::from_function("strftime_now", [](const CallArgs& args) {
                return Value::from_string(
                    strftime_now(require_string(args.get(0, "format"), "strftime_now")));
              }));
  return globals;
}

}  // namespace llmserve::jinja
