// Value formatting, comparison and JSON conversion with Python's observable behaviour.
#include "tokenizer/chat_template_value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "common/status.h"

namespace llmserve::jinja {

const Value* ValueDict::find(std::string_view key) const {
  for (const auto& [k, v] : items) {
    if (k == key) return &v;
  }
  return nullptr;
}

void ValueDict::set(std::string key, Value value) {
  for (auto& [k, v] : items) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  items.emplace_back(std::move(key), std::move(value));
}

const Value* CallArgs::get(std::size_t index, std::string_view name) const {
  if (index < positional.size()) return &positional[index];
  for (const auto& [k, v] : keyword) {
    if (k == name) return &v;
  }
  return nullptr;
}

Value Value::undefined(std::string name) {
  Value v;
  v.string_ = std::move(name);
  return v;
}

Value Value::none() {
  Value v;
  v.kind_ = ValueKind::kNone;
  return v;
}

Value Value::from_bool(bool value) {
  Value v;
  v.kind_ = ValueKind::kBool;
  v.bool_ = value;
  return v;
}

Value Value::from_int(int64_t value) {
  Value v;
  v.kind_ = ValueKind::kInt;
  v.int_ = value;
  return v;
}

Value Value::from_float(double value) {
  Value v;
  v.kind_ = ValueKind::kFloat;
  v.float_ = value;
  return v;
}

Value Value::from_string(std::string value) {
  Value v;
  v.kind_ = ValueKind::kString;
  v.string_ = std::move(value);
  return v;
}

Value Value::from_list(ValueList items) {
  Value v;
  v.kind_ = ValueKind::kList;
  v.list_ = std::make_shared<ValueList>(std::move(items));
  return v;
}

Value Value::from_tuple(ValueList items) {
  Value v = from_list(std::move(items));
  v.is_tuple_ = true;
  return v;
}

Value Value::from_dict(ValueDict dict) {
  Value v;
  v.kind_ = ValueKind::kDict;
  v.dict_ = std::make_shared<ValueDict>(std::move(dict));
  return v;
}

Value Value::from_function(std::string name, NativeFunction function) {
  Value v;
  v.kind_ = ValueKind::kFunction;
  v.string_ = std::move(name);
  v.function_ = std::make_shared<NativeFunction>(std::move(function));
  return v;
}

Value Value::from_json(const nlohmann::json& json) {
  switch (json.type()) {
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
      return none();
    case nlohmann::json::value_t::boolean:
      return from_bool(json.get<bool>());
    case nlohmann::json::value_t::number_integer:
      return from_int(json.get<int64_t>());
    case nlohmann::json::value_t::number_unsigned:
      return from_int(static_cast<int64_t>(json.get<uint64_t>()));
    case nlohmann::json::value_t::number_float:
      return from_float(json.get<double>());
    case nlohmann::json::value_t::string:
      return from_string(json.get<std::string>());
    case nlohmann::json::value_t::binary:
      fail(StatusCode::kInvalidArgument, "chat template: binary JSON values are not supported");
    case nlohmann::json::value_t::array: {
      ValueList items;
      for (const auto& item : json) items.push_back(from_json(item));
      return from_list(std::move(items));
    }
    case nlohmann::json::value_t::object: {
      ValueDict dict;
      for (const auto& [key, item] : json.items()) dict.items.emplace_back(key, from_json(item));
      return from_dict(std::move(dict));
    }
  }
  return none();
}

bool Value::is_number() const {
  return kind_ == ValueKind::kInt || kind_ == ValueKind::kFloat || kind_ == ValueKind::kBool;
}

int64_t Value::as_int() const {
  if (kind_ == ValueKind::kBool) return bool_ ? 1 : 0;
  if (kind_ == ValueKind::kFloat) return static_cast<int64_t>(float_);
  return int_;
}

double Value::as_float() const {
  if (kind_ == ValueKind::kFloat) return float_;
  return static_cast<double>(as_int());
}

bool Value::is_truthy() const {
  switch (kind_) {
    case ValueKind::kUndefined:
    case ValueKind::kNone:
      return false;
    case ValueKind::kBool:
      return bool_;
    case ValueKind::kInt:
      return int_ != 0;
    case ValueKind::kFloat:
      return float_ != 0;
    case ValueKind::kString:
      return !string_.empty();
    case ValueKind::kList:
      return !list_->empty();
    case ValueKind::kDict:
      return !dict_->items.empty();
    case ValueKind::kFunction:
      return true;
  }
  return false;
}

std::string format_python_float(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buf[64];
  // Shortest round-trip digits in scientific form, then laid out as Python's repr does.
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific);
  std::string sci(buf, end);
  const bool is_negative = sci[0] == '-';
  if (is_negative) sci.erase(0, 1);
  const std::size_t e_pos = sci.find('e');
  std::string digits = sci.substr(0, e_pos);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  const int exponent = std::stoi(sci.substr(e_pos + 1));
  std::string out = is_negative ? "-" : "";
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) {
      out += "0." + std::string(static_cast<std::size_t>(-exponent - 1), '0') + digits;
    } else if (static_cast<int>(digits.size()) <= exponent + 1) {
      out +=
          digits + std::string(static_cast<std::size_t>(exponent + 1) - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, static_cast<std::size_t>(exponent + 1)) + "." +
             digits.substr(static_cast<std::size_t>(exponent + 1));
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char exp_buf[16];
  std::snprintf(exp_buf, sizeof(exp_buf), "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
  return out + exp_buf;
}

namespace {

std::string repr_string(const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos;
  const bool has_double = s.find('"') != std::string::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\\') {
      out += "\\\\";
    } else if (c == quote) {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  out += quote;
  return out;
}

}  // namespace

std::string Value::to_str() const {
  switch (kind_) {
    case ValueKind::kUndefined:
      return "";
    case ValueKind::kString:
      return string_;
    default:
      return repr();
  }
}

std::string Value::repr() const {
  switch (kind_) {
    case ValueKind::kUndefined:
      return "Undefined";
    case ValueKind::kNone:
      return "None";
    case ValueKind::kBool:
      return bool_ ? "True" : "False";
    case ValueKind::kInt:
      return std::to_string(int_);
    case ValueKind::kFloat:
      return format_python_float(float_);
    case ValueKind::kString:
      return repr_string(string_);
    case ValueKind::kList: {
      std::string out = is_tuple_ ? "(" : "[";
      for (std::size_t i = 0; i < list_->size(); ++i) {
        if (i > 0) out += ", ";
        out += (*list_)[i].repr();
      }
      if (is_tuple_) return out + (list_->size() == 1 ? ",)" : ")");
      return out + "]";
    }
    case ValueKind::kDict: {
      std::string out = "{";
      for (std::size_t i = 0; i < dict_->items.size(); ++i) {
        if (i > 0) out += ", ";
        out += repr_string(dict_->items[i].first) + ": " + dict_->items[i].second.repr();
      }
      out += "}";
      return dict_->is_namespace ? "<Namespace " + out + ">" : out;
    }
    case ValueKind::kFunction:
      return "<function " + string_ + ">";
  }
  return "";
}

std::string Value::type_name() const {
  switch (kind_) {
    case ValueKind::kUndefined:
      return "Undefined";
    case ValueKind::kNone:
      return "NoneType";
    case ValueKind::kBool:
      return "bool";
    case ValueKind::kInt:
      return "int";
    case ValueKind::kFloat:
      return "float";
    case ValueKind::kString:
      return "str";
    case ValueKind::kList:
      return "list";
    case ValueKind::kDict:
      return "dict";
    case ValueKind::kFunction:
      return "function";
  }
  return "";
}

bool values_equal(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.kind() == ValueKind::kFloat || b.kind() == ValueKind::kFloat) {
      return a.as_float() == b.as_float();
    }
    return a.as_int() == b.as_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case ValueKind::kUndefined:
    case ValueKind::kNone:
      return true;
    case ValueKind::kString:
      return a.as_string() == b.as_string();
    case ValueKind::kList: {
      if (a.list().size() != b.list().size()) return false;
      for (std::size_t i = 0; i < a.list().size(); ++i) {
        if (!values_equal(a.list()[i], b.list()[i])) return false;
      }
      return true;
    }
    case ValueKind::kDict: {
      if (a.dict().items.size() != b.dict().items.size()) return false;
      for (const auto& [key, value] : a.dict().items) {
        const Value* other = b.dict().find(key);
        if (other == nullptr || !values_equal(value, *other)) return false;
      }
      return true;
    }
    case ValueKind::kFunction:
      return &a.function() == &b.function();
    case ValueKind::kBool:
    case ValueKind::kInt:
    case ValueKind::kFloat:
      return false;  // handled above
  }
  return false;
}

int compare_values(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    const double x = a.as_float();
    const double y = b.as_float();
    if (a.kind() != ValueKind::kFloat && b.kind() != ValueKind::kFloat) {
      return a.as_int() < b.as_int() ? -1 : (a.as_int() > b.as_int() ? 1 : 0);
    }
    return x < y ? -1 : (x > y ? 1 : 0);
  }
  if (a.is_string() && b.is_string()) {
    const int c = a.as_string().compare(b.as_string());
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (a.is_list() && b.is_list()) {
    const std::size_t n = std::min(a.list().size(), b.list().size());
    for (std::size_t i = 0; i < n; ++i) {
      if (const int c = compare_values(a.list()[i], b.list()[i]); c != 0) return c;
    }
    return a.list().size() < b.list().size() ? -1 : (a.list().size() > b.list().size() ? 1 : 0);
  }
  fail(StatusCode::kInvalidArgument, "chat template: cannot compare {} with {}", a.type_name(),
       b.type_name());
}

namespace {

void dump_json_string(const std::string& s, std::string& out) {
  out += '"';
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (u < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", u);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

void newline_indent(const JsonDumpOptions& options, int depth, std::string& out) {
  out += '\n';
  for (int i = 0; i < depth; ++i) out += options.indent;
}

void dump_json_to(const Value& value, const JsonDumpOptions& options, int depth, std::string& out) {
  switch (value.kind()) {
    case ValueKind::kNone:
      out += "null";
      return;
    case ValueKind::kBool:
      out += value.as_bool() ? "true" : "false";
      return;
    case ValueKind::kInt:
      out += std::to_string(value.as_int());
      return;
    case ValueKind::kFloat: {
      const double d = value.as_float();
      if (std::isnan(d))
        out += "NaN";
      else if (std::isinf(d))
        out += d > 0 ? "Infinity" : "-Infinity";
      else
        out += format_python_float(d);
      return;
    }
    case ValueKind::kString:
      dump_json_string(value.as_string(), out);
      return;
    case ValueKind::kList: {
      const ValueList& items = value.list();
      if (items.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += options.item_separator;
        if (options.has_indent) newline_indent(options, depth + 1, out);
        dump_json_to(items[i], options, depth + 1, out);
      }
      if (options.has_indent) newline_indent(options, depth, out);
      out += ']';
      return;
    }
    case ValueKind::kDict: {
      std::vector<const std::pair<std::string, Value>*> items;
      for (const auto& item : value.dict().items) items.push_back(&item);
      if (options.sort_keys) {
        std::stable_sort(items.begin(), items.end(),
                         [](const auto* a, const auto* b) { return a->first < b->first; });
      }
      if (items.empty()) {
        out += "{}";
        return;
      }
      out += '{';
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i > 0) out += options.item_separator;
        if (options.has_indent) newline_indent(options, depth + 1, out);
        dump_json_string(items[i]->first, out);
        out += options.key_separator;
        dump_json_to(items[i]->second, options, depth + 1, out);
      }
      if (options.has_indent) newline_indent(options, depth, out);
      out += '}';
      return;
    }
    case ValueKind::kUndefined:
    case ValueKind::kFunction:
      fail(StatusCode::kInvalidArgument, "chat template: tojson: {} is not JSON serializable",
           value.type_name());
  }
}

}  // namespace

std::string dump_json(const Value& value, const JsonDumpOptions& options) {
  std::string out;
  dump_json_to(value, options, 0, out);
  return out;
}

std::vector<std::string> split_code_points(std::string_view s) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < s.size()) {
    const auto lead = static_cast<unsigned char>(s[i]);
    std::size_t len = 1;
    if (lead >= 0xF0)
      len = 4;
    else if (lead >= 0xE0)
      len = 3;
    else if (lead >= 0xC0)
      len = 2;
    std::size_t n = 1;
    while (n < len && i + n < s.size() && (static_cast<unsigned char>(s[i + n]) & 0xC0) == 0x80)
      ++n;
    out.emplace_back(s.substr(i, n));
    i += n;
  }
  return out;
}

}  // namespace llmserve::jinja
