// Filters and tests of the chat-template language (jinja2 3.1 semantics; tojson as transformers
// overrides it).
#include <algorithm>
#include <cctype>
#include <cmath>

#include "common/status.h"
#include "tokenizer/chat_template_builtins.h"
#include "tokenizer/chat_template_case.h"

namespace llmserve::jinja {
namespace {

Value length_of(const Value& value) {
  switch (value.kind()) {
    case ValueKind::kUndefined:
      return Value::from_int(0);
    case ValueKind::kString:
      return Value::from_int(static_cast<int64_t>(split_code_points(value.as_string()).size()));
    case ValueKind::kList:
      return Value::from_int(static_cast<int64_t>(value.list().size()));
    case ValueKind::kDict:
      return Value::from_int(static_cast<int64_t>(value.dict().items.size()));
    case ValueKind::kNone:
    case ValueKind::kBool:
    case ValueKind::kInt:
    case ValueKind::kFloat:
    case ValueKind::kFunction:
      break;
  }
  fail(StatusCode::kInvalidArgument, "chat template: object of type '{}' has no len()",
       value.type_name());
}

// Attribute lookup for selectattr/map/join(attribute=...): "a.b" walks nested dicts.
Value attribute_of(const Value& item, const std::string& path) {
  Value current = item;
  std::size_t begin = 0;
  while (begin <= path.size()) {
    const std::size_t dot = path.find('.', begin);
    const std::string part =
        path.substr(begin, dot == std::string::npos ? std::string::npos : dot - begin);
    bool is_index = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    current = python_index(current,
                           is_index ? Value::from_int(std::stoll(part)) : Value::from_string(part));
    if (dot == std::string::npos) break;
    begin = dot + 1;
  }
  return current;
}

std::string json_indent(const Value& indent) {
  if (indent.is_string()) return indent.as_string();
  return std::string(static_cast<std::size_t>(std::max<int64_t>(0, indent.as_int())), ' ');
}

Value to_json_filter(const Value& value, const CallArgs& args) {
  JsonDumpOptions options;
  if (const Value* indent = args.get(0, "indent"); indent != nullptr && !indent->is_none()) {
    options.has_indent = true;
    options.indent = json_indent(*indent);
    options.item_separator = ",";
  }
  if (const Value* ensure_ascii = args.get(99, "ensure_ascii");
      ensure_ascii != nullptr && ensure_ascii->is_truthy()) {
    fail(StatusCode::kInvalidArgument, "chat template: tojson(ensure_ascii=True) is not supported");
  }
  if (const Value* separators = args.get(99, "separators");
      separators != nullptr && !separators->is_none()) {
    if (!separators->is_list() || separators->list().size() != 2) {
      fail(StatusCode::kInvalidArgument, "chat template: tojson separators must be a pair");
    }
    options.item_separator = separators->list()[0].to_str();
    options.key_separator = separators->list()[1].to_str();
  }
  if (const Value* sort_keys = args.get(99, "sort_keys"); sort_keys != nullptr) {
    options.sort_keys = sort_keys->is_truthy();
  }
  return Value::from_string(dump_json(value, options));
}

Value int_filter(const Value& value, const CallArgs& args) {
  const Value* fallback = args.get(0, "default");
  const Value result_default = fallback != nullptr ? *fallback : Value::from_int(0);
  if (value.is_number()) return Value::from_int(value.as_int());
  if (value.is_string()) {
    const std::string s = python_strip(value.as_string(), nullptr, true, true);
    try {
      std::size_t used = 0;
      const long long i = std::stoll(s, &used, 10);
      if (used == s.size()) return Value::from_int(i);
      const double d = std::stod(s, &used);
      if (used == s.size() && std::isfinite(d)) return Value::from_int(static_cast<int64_t>(d));
    } catch (const std::exception&) {
    }
  }
  return result_default;
}

Value float_filter(const Value& value, const CallArgs& args) {
  const Value* fallback = args.get(0, "default");
  if (value.is_number()) return Value::from_float(value.as_float());
  if (value.is_string()) {
    const std::string s = python_strip(value.as_string(), nullptr, true, true);
    try {
      std::size_t used = 0;
      const double d = std::stod(s, &used);
      if (used == s.size()) return Value::from_float(d);
    } catch (const std::exception&) {
    }
  }
  return fallback != nullptr ? *fallback : Value::from_float(0.0);
}

CallArgs shift_args(const CallArgs& args, std::size_t skip) {
  CallArgs rest;
  for (std::size_t i = skip; i < args.positional.size(); ++i)
    rest.positional.push_back(args.positional[i]);
  rest.keyword = args.keyword;
  return rest;
}

// select/reject/selectattr/rejectattr.
Value select_items(const Value& value, const CallArgs& args, bool has_attribute, bool is_select) {
  std::size_t next = 0;
  std::string attribute;
  if (has_attribute) {
    if (args.positional.empty() || !args.positional[0].is_string()) {
      fail(StatusCode::kInvalidArgument,
           "chat template: selectattr/rejectattr need an attribute name");
    }
    attribute = args.positional[next++].as_string();
  }
  std::string test;
  if (next < args.positional.size()) test = args.positional[next++].to_str();
  const CallArgs test_args = shift_args(args, next);
  ValueList out;
  for (const Value& item : iterate(value)) {
    const Value subject = has_attribute ? attribute_of(item, attribute) : item;
    const bool is_match = test.empty() ? subject.is_truthy() : apply_test(test, subject, test_args);
    if (is_match == is_select) out.push_back(item);
  }
  return Value::from_list(std::move(out));
}

Value map_items(const Value& value, const CallArgs& args) {
  ValueList out;
  if (const Value* attribute = args.get(99, "attribute"); attribute != nullptr) {
    const Value* fallback = args.get(99, "default");
    for (const Value& item : iterate(value)) {
      Value v = attribute_of(item, attribute->to_str());
      if (v.is_undefined() && fallback != nullptr) v = *fallback;
      out.push_back(v);
    }
    return Value::from_list(std::move(out));
  }
  if (args.positional.empty())
    fail(StatusCode::kInvalidArgument, "chat template: map needs a filter name");
  const std::string filter = args.positional[0].to_str();
  const CallArgs rest = shift_args(args, 1);
  for (const Value& item : iterate(value)) out.push_back(apply_filter(filter, item, rest));
  return Value::from_list(std::move(out));
}

Value indent_filter(const Value& value, const CallArgs& args) {
  const Value* width = args.get(0, "width");
  std::string pad = width == nullptr ? "    " : json_indent(*width);
  const Value* first = args.get(1, "first");
  const Value* blank = args.get(2, "blank");
  const std::string s = value.to_str();
  std::string out;
  std::size_t begin = 0;
  bool is_first_line = true;
  while (true) {
    const std::size_t nl = s.find('\n', begin);
    const std::string line =
        s.substr(begin, nl == std::string::npos ? std::string::npos : nl - begin);
    const bool wants_pad = is_first_line
                               ? (first != nullptr && first->is_truthy())
                               : (!line.empty() || (blank != nullptr && blank->is_truthy()));
    if (wants_pad) out += pad;
    out += line;
    if (nl == std::string::npos) break;
    out += '\n';
    begin = nl + 1;
    is_first_line = false;
  }
  return Value::from_string(out);
}

Value sort_filter(const Value& value, const CallArgs& args) {
  ValueList items = iterate(value);
  const Value* reverse = args.get(0, "reverse");
  const Value* case_sensitive = args.get(1, "case_sensitive");
  const Value* attribute = args.get(2, "attribute");
  auto key = [&](const Value& v) {
    Value k = attribute != nullptr ? attribute_of(v, attribute->to_str()) : v;
    if (k.is_string() && !(case_sensitive != nullptr && case_sensitive->is_truthy())) {
      k = Value::from_string(change_case(k.as_string(), CaseChange::kLower));
    }
    return k;
  };
  std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
    return compare_values(key(a), key(b)) < 0;
  });
  if (reverse != nullptr && reverse->is_truthy()) std::reverse(items.begin(), items.end());
  return Value::from_list(std::move(items));
}

Value abs_filter(const Value& value) {
  if (value.kind() == ValueKind::kFloat) return Value::from_float(std::fabs(value.as_float()));
  if (value.is_number()) return Value::from_int(std::llabs(value.as_int()));
  fail(StatusCode::kInvalidArgument, "chat template: abs of '{}'", value.type_name());
}

// Python's round(): half to even on the exact binary value; ints stay ints.
Value round_filter(const Value& value, const CallArgs& args) {
  const Value* precision_arg = args.get(0, "precision");
  const int64_t precision = precision_arg != nullptr ? precision_arg->as_int() : 0;
  if (value.kind() != ValueKind::kFloat && precision >= 0) return Value::from_int(value.as_int());
  if (precision < 0) {
    const double scale = std::pow(10.0, static_cast<double>(-precision));
    return Value::from_float(std::nearbyint(value.as_float() / scale) * scale);
  }
  char buf[512];
  std::snprintf(buf, sizeof(buf), "%.*f", static_cast<int>(std::min<int64_t>(precision, 300)),
                value.as_float());
  return Value::from_float(std::strtod(buf, nullptr));
}

Value default_filter(const Value& value, const CallArgs& args) {
  const Value* fallback = args.get(0, "default_value");
  const Value* boolean = args.get(1, "boolean");
  const bool use_default =
      value.is_undefined() || (boolean != nullptr && boolean->is_truthy() && !value.is_truthy());
  if (!use_default) return value;
  return fallback != nullptr ? *fallback : Value::from_string("");
}

Value reverse_filter(const Value& value) {
  ValueList items = iterate(value);
  std::reverse(items.begin(), items.end());
  if (!value.is_string()) return Value::from_list(std::move(items));
  std::string s;
  for (const Value& c : items) s += c.as_string();
  return Value::from_string(s);
}

Value join_filter(const Value& value, const CallArgs& args) {
  const Value* separator = args.get(0, "d");
  const Value* attribute = args.get(1, "attribute");
  std::string out;
  bool is_first = true;
  for (const Value& item : iterate(value)) {
    if (!is_first && separator != nullptr) out += separator->to_str();
    out += (attribute != nullptr ? attribute_of(item, attribute->to_str()) : item).to_str();
    is_first = false;
  }
  return Value::from_string(out);
}

Value items_filter(const Value& value) {
  if (value.is_undefined()) return Value::from_list({});
  if (!value.is_dict())
    fail(StatusCode::kInvalidArgument, "chat template: items of '{}'", value.type_name());
  return *call_method(value, "items", {});
}

// Python's str.center: the odd space goes right unless both length and width are odd.
Value center_filter(const Value& value, const CallArgs& args) {
  const Value* width_arg = args.get(0, "width");
  const std::string s = value.to_str();
  const auto width = static_cast<std::size_t>(width_arg != nullptr ? width_arg->as_int() : 80);
  const std::size_t length = split_code_points(s).size();
  if (length >= width) return Value::from_string(s);
  const std::size_t pad = width - length;
  const std::size_t left = pad / 2 + (pad & width & 1);
  return Value::from_string(std::string(left, ' ') + s + std::string(pad - left, ' '));
}

Value dictsort_filter(const Value& value, const CallArgs& args) {
  if (!value.is_dict())
    fail(StatusCode::kInvalidArgument, "chat template: dictsort of '{}'", value.type_name());
  const Value* case_sensitive = args.get(0, "case_sensitive");
  const Value* by = args.get(1, "by");
  const Value* reverse = args.get(2, "reverse");
  const bool is_by_value = by != nullptr && by->to_str() == "value";
  ValueList items = call_method(value, "items", {})->list();
  auto key = [&](const Value& pair) {
    Value k = pair.list()[is_by_value ? 1 : 0];
    if (k.is_string() && !(case_sensitive != nullptr && case_sensitive->is_truthy())) {
      k = Value::from_string(change_case(k.as_string(), CaseChange::kLower));
    }
    return k;
  };
  std::stable_sort(items.begin(), items.end(), [&](const Value& a, const Value& b) {
    return compare_values(key(a), key(b)) < 0;
  });
  if (reverse != nullptr && reverse->is_truthy()) std::reverse(items.begin(), items.end());
  return Value::from_list(std::move(items));
}

Value unique_filter(const Value& value) {
  ValueList out;
  for (const Value& item : iterate(value)) {
    if (std::none_of(out.begin(), out.end(),
                     [&](const Value& o) { return values_equal(o, item); })) {
      out.push_back(item);
    }
  }
  return Value::from_list(std::move(out));
}

Value sum_filter(const Value& value, const CallArgs& args) {
  Value total = args.get(1, "start") != nullptr ? *args.get(1, "start") : Value::from_int(0);
  const Value* attribute = args.get(0, "attribute");
  for (const Value& item : iterate(value)) {
    const Value v = attribute != nullptr ? attribute_of(item, attribute->to_str()) : item;
    total = total.kind() == ValueKind::kFloat || v.kind() == ValueKind::kFloat
                ? Value::from_float(total.as_float() + v.as_float())
                : Value::from_int(total.as_int() + v.as_int());
  }
  return total;
}

Value extreme_filter(const Value& value, bool is_min) {
  const ValueList items = iterate(value);
  if (items.empty()) return Value::undefined("");
  Value best = items.front();
  for (const Value& item : items) {
    const int c = compare_values(item, best);
    if (is_min ? c < 0 : c > 0) best = item;
  }
  return best;
}

Value first_or_last(const Value& value, bool is_first) {
  const ValueList items = iterate(value);
  if (items.empty()) return Value::undefined("");
  return is_first ? items.front() : items.back();
}

Value string_value(std::string s) {
  return Value::from_string(std::move(s));
}

}  // namespace

Value apply_filter(std::string_view name, const Value& value, const CallArgs& args) {
  if (name == "trim")
    return string_value(python_strip(value.to_str(), args.get(0, "chars"), true, true));
  if (name == "upper") return string_value(change_case(value.to_str(), CaseChange::kUpper));
  if (name == "lower") return string_value(change_case(value.to_str(), CaseChange::kLower));
  if (name == "capitalize")
    return string_value(change_case(value.to_str(), CaseChange::kCapitalize));
  if (name == "title") return string_value(change_case(value.to_str(), CaseChange::kJinjaTitle));
  if (name == "string") return string_value(value.to_str());
  if (name == "replace") return *call_method(string_value(value.to_str()), "replace", args);
  if (name == "center") return center_filter(value, args);
  if (name == "indent") return indent_filter(value, args);
  if (name == "tojson") return to_json_filter(value, args);
  if (name == "safe") return value;
  if (name == "length" || name == "count") return length_of(value);
  if (name == "int") return int_filter(value, args);
  if (name == "float") return float_filter(value, args);
  if (name == "abs") return abs_filter(value);
  if (name == "round") return round_filter(value, args);
  if (name == "default" || name == "d") return default_filter(value, args);
  if (name == "first" || name == "last") return first_or_last(value, name == "first");
  if (name == "list") return Value::from_list(iterate(value));
  if (name == "reverse") return reverse_filter(value);
  if (name == "join") return join_filter(value, args);
  if (name == "items") return items_filter(value);
  if (name == "selectattr" || name == "rejectattr")
    return select_items(value, args, true, name == "selectattr");
  if (name == "select" || name == "reject")
    return select_items(value, args, false, name == "select");
  if (name == "map") return map_items(value, args);
  if (name == "sort") return sort_filter(value, args);
  if (name == "dictsort") return dictsort_filter(value, args);
  if (name == "unique") return unique_filter(value);
  if (name == "sum") return sum_filter(value, args);
  if (name == "min" || name == "max") return extreme_filter(value, name == "min");
  fail(StatusCode::kInvalidArgument, "chat template: unknown filter '{}'", name);
}

bool apply_test(std::string_view name, const Value& value, const CallArgs& args) {
  const Value* a0 = args.get(0, "");
  auto need_arg = [&]() -> const Value& {
    if (a0 == nullptr)
      fail(StatusCode::kInvalidArgument, "chat template: test '{}' needs an argument", name);
    return *a0;
  };
  if (name == "defined") return !value.is_undefined();
  if (name == "undefined") return value.is_undefined();
  if (name == "none") return value.is_none();
  if (name == "boolean") return value.kind() == ValueKind::kBool;
  if (name == "true") return value.kind() == ValueKind::kBool && value.as_bool();
  if (name == "false") return value.kind() == ValueKind::kBool && !value.as_bool();
  if (name == "integer") return value.kind() == ValueKind::kInt;
  if (name == "float") return value.kind() == ValueKind::kFloat;
  if (name == "number") return value.is_number();
  if (name == "string") return value.is_string();
  if (name == "mapping") return value.is_dict() && !value.dict().is_namespace;
  if (name == "iterable" || name == "sequence") {
    return value.is_undefined() || value.is_string() || value.is_list() || value.is_dict();
  }
  if (name == "callable") return value.is_function();
  if (name == "even" || name == "odd") {
    if (!value.is_number())
      fail(StatusCode::kInvalidArgument, "chat template: '{}' test on '{}'", name,
           value.type_name());
    const int64_t r = value.as_int() % 2;
    return name == "even" ? r == 0 : r != 0;
  }
  if (name == "divisibleby") {
    const int64_t d = need_arg().as_int();
    if (d == 0) fail(StatusCode::kInvalidArgument, "chat template: divisibleby(0)");
    return value.as_int() % d == 0;
  }
  if (name == "eq" || name == "equalto" || name == "==") return values_equal(value, need_arg());
  if (name == "ne" || name == "!=") return !values_equal(value, need_arg());
  if (name == "lt" || name == "lessthan" || name == "<")
    return compare_values(value, need_arg()) < 0;
  if (name == "le" || name == "<=") return compare_values(value, need_arg()) <= 0;
  if (name == "gt" || name == "greaterthan" || name == ">")
    return compare_values(value, need_arg()) > 0;
  if (name == "ge" || name == ">=") return compare_values(value, need_arg()) >= 0;
  if (name == "in") {
    const Value& container = need_arg();
    if (container.is_string())
      return value.is_string() &&
             container.as_string().find(value.as_string()) != std::string::npos;
    for (const Value& item : iterate(container)) {
      if (values_equal(item, value)) return true;
    }
    return false;
  }
  if (name == "lower" || name == "upper") {
    const std::string s = value.to_str();
    bool has_cased = false;
    for (const char c : s) {
      if (std::isalpha(static_cast<unsigned char>(c))) {
        has_cased = true;
        if (name == "lower" ? std::isupper(static_cast<unsigned char>(c))
                            : std::islower(static_cast<unsigned char>(c)))
          return false;
      }
    }
    return has_cased;
  }
  if (name == "sameas") {
    const Value& other = need_arg();
    if (value.is_list() && other.is_list()) return &value.list() == &other.list();
    if (value.is_dict() && other.is_dict()) return &value.dict() == &other.dict();
    return value.kind() == other.kind() && values_equal(value, other);
  }
  fail(StatusCode::kInvalidArgument, "chat template: unknown test '{}'", name);
}

}  // namespace llmserve::jinja
