// Value: the dynamically typed value of the chat-template (Jinja) evaluator, with Python's
// semantics where templates can observe them: str() and repr() formatting (True, None, 1.0,
// ['a', 'b']), truthiness, equality (1 == 1.0 == True), and json.dumps as Hugging Face's tojson
// filter calls it (ensure_ascii=False, optional indent / separators / sort_keys).
//
// Lists and dicts are shared by reference like Python objects (namespace() attributes are set
// through the shared dict). Dicts keep insertion order and have string keys only. Undefined is
// Jinja's default Undefined: it prints as "", is falsy, iterates as empty, and carries the name
// it was looked up by for error messages. Strings are UTF-8; length, indexing and slicing count
// code points, as Python does (case mapping lives in chat_template_case.h).
//
// Thread-safety: a Value is not synchronised; each render builds its own.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace llmserve::jinja {

class Value;

using ValueList = std::vector<Value>;

struct ValueDict {
  std::vector<std::pair<std::string, Value>> items;
  bool is_namespace = false;  // made by namespace(): printed differently, still a mapping here

  const Value* find(std::string_view key) const;
  void set(std::string key, Value value);
};

// Arguments of a call: f(a, b, key=c).
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;

  // The argument at `index` or named `name`; nullptr when absent.
  const Value* get(std::size_t index, std::string_view name) const;
};

using NativeFunction = std::function<Value(const CallArgs&)>;

enum class ValueKind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kFunction };

class Value {
 public:
  Value() = default;  // undefined
  static Value undefined(std::string name);
  static Value none();
  static Value from_bool(bool value);
  static Value from_int(int64_t value);
  static Value from_float(double value);
  static Value from_string(std::string value);
  static Value from_list(ValueList items);
  // A Python tuple: a list that prints as (a, b).
  static Value from_tuple(ValueList items);
  static Value from_dict(ValueDict dict);
  static Value from_function(std::string name, NativeFunction function);
  static Value from_json(const nlohmann::json& json);

  ValueKind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == ValueKind::kUndefined; }
  bool is_none() const { return kind_ == ValueKind::kNone; }
  bool is_string() const { return kind_ == ValueKind::kString; }
  bool is_list() const { return kind_ == ValueKind::kList; }
  bool is_dict() const { return kind_ == ValueKind::kDict; }
  bool is_function() const { return kind_ == ValueKind::kFunction; }
  bool is_tuple() const { return is_tuple_; }
  // int, float or bool (Python's bool is an int).
  bool is_number() const;

  bool as_bool() const { return bool_; }
  int64_t as_int() const;   // int or bool
  double as_float() const;  // int, float or bool
  const std::string& as_string() const { return string_; }
  // The name an undefined value was looked up by ("" if unknown).
  const std::string& undefined_name() const { return string_; }
  ValueList& list() const { return *list_; }
  ValueDict& dict() const { return *dict_; }
  const NativeFunction& function() const { return *function_; }

  bool is_truthy() const;
  // Python's str(): strings as-is, None -> "None", [1, 'a'] -> "[1, 'a']"; undefined -> "".
  std::string to_str() const;
  // Python's repr(): strings quoted.
  std::string repr() const;
  std::string type_name() const;

 private:
  ValueKind kind_ = ValueKind::kUndefined;
  bool bool_ = false;
  bool is_tuple_ = false;
  int64_t int_ = 0;
  double float_ = 0;
  std::string string_;
  std::shared_ptr<ValueList> list_;
  std::shared_ptr<ValueDict> dict_;
  std::shared_ptr<NativeFunction> function_;
};

bool values_equal(const Value& a, const Value& b);
// -1, 0, 1 for numbers, strings and lists; throws Error(kInvalidArgument) for other pairs.
int compare_values(const Value& a, const Value& b);

// json.dumps(value, ensure_ascii=False, indent=..., separators=..., sort_keys=...).
struct JsonDumpOptions {
  bool has_indent = false;
  std::string indent;                 // one level of indentation
  std::string item_separator = ", ";  // "," when indented, as Python picks
  std::string key_separator = ": ";
  bool sort_keys = false;
};
std::string dump_json(const Value& value, const JsonDumpOptions& options);

// Python's float repr: 1.0, 0.1, 1e+16, 1.5e-05, inf, nan.
std::string format_python_float(double value);

// UTF-8 code points of s, each as its own string (invalid bytes stand alone).
std::vector<std::string> split_code_points(std::string_view s);

}  // namespace llmserve::jinja
