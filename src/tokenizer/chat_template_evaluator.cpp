// Tree-walking evaluation of statements and expressions, with Python's operator semantics.
#include "tokenizer/chat_template_evaluator.h"

#include <cmath>
#include <memory>

#include "common/status.h"
#include "tokenizer/chat_template_builtins.h"

namespace llmserve::jinja {
namespace {

// Variables of one scope; lookups fall back to the parent. Scopes are shared_ptr-owned so that a
// macro can tell whether the scope it was defined in still exists when it is called.
struct Scope : std::enable_shared_from_this<Scope> {
  Scope(const Scope* parent_scope, ValueDict variables)
      : parent(parent_scope), vars(std::move(variables)) {}

  const Scope* parent = nullptr;
  ValueDict vars;

  const Value* lookup(std::string_view name) const {
    for (const Scope* s = this; s != nullptr; s = s->parent) {
      if (const Value* v = s->vars.find(name)) return v;
    }
    return nullptr;
  }
};

enum class Flow { kNormal, kBreak, kContinue };

[[noreturn]] void type_error(std::string_view op, const Value& a, const Value& b) {
  fail(StatusCode::kInvalidArgument, "unsupported operand type(s) for {}: '{}' and '{}'", op,
       a.type_name(), b.type_name());
}

void check_defined(const Value& v) {
  if (v.is_undefined()) {
    fail(StatusCode::kInvalidArgument, "'{}' is undefined",
         v.undefined_name().empty() ? "value" : v.undefined_name());
  }
}

Value repeat(const Value& seq, int64_t n) {
  if (seq.is_string()) {
    std::string out;
    for (int64_t i = 0; i < n; ++i) out += seq.as_string();
    return Value::from_string(out);
  }
  ValueList out;
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq.list().begin(), seq.list().end());
  return Value::from_list(std::move(out));
}

Value arithmetic(const std::string& op, const Value& a, const Value& b) {
  check_defined(a);
  check_defined(b);
  if (a.is_number() && b.is_number()) {
    const bool is_float = a.kind() == ValueKind::kFloat || b.kind() == ValueKind::kFloat;
    const int64_t x = a.as_int();
    const int64_t y = b.as_int();
    const double fx = a.as_float();
    const double fy = b.as_float();
    if (op == "+") return is_float ? Value::from_float(fx + fy) : Value::from_int(x + y);
    if (op == "-") return is_float ? Value::from_float(fx - fy) : Value::from_int(x - y);
    if (op == "*") return is_float ? Value::from_float(fx * fy) : Value::from_int(x * y);
    if (op == "**") {
      if (!is_float && y >= 0) {
        int64_t r = 1;
        for (int64_t i = 0; i < y; ++i) r *= x;
        return Value::from_int(r);
      }
      return Value::from_float(std::pow(fx, fy));
    }
    if (fy == 0) fail(StatusCode::kInvalidArgument, "division by zero");
    if (op == "/") return Value::from_float(fx / fy);
    if (op == "//") {
      if (is_float) return Value::from_float(std::floor(fx / fy));
      int64_t q = x / y;
      if ((x % y != 0) && ((x < 0) != (y < 0))) --q;
      return Value::from_int(q);
    }
    if (op == "%") {
      if (is_float) {
        double r = std::fmod(fx, fy);
        if (r != 0 && ((r < 0) != (fy < 0))) r += fy;
        return Value::from_float(r);
      }
      int64_t r = x % y;
      if (r != 0 && ((r < 0) != (y < 0))) r += y;
      return Value::from_int(r);
    }
  }
  if (op == "%" && a.is_string()) return Value::from_string(percent_format(a.as_string(), b));
  if (op == "+" && a.is_string() && b.is_string())
    return Value::from_string(a.as_string() + b.as_string());
  if (op == "+" && a.is_list() && b.is_list()) {
    ValueList out = a.list();
    out.insert(out.end(), b.list().begin(), b.list().end());
    return Value::from_list(std::move(out));
  }
  if (op == "*" && (a.is_string() || a.is_list()) && b.kind() == ValueKind::kInt)
    return repeat(a, b.as_int());
  if (op == "*" && (b.is_string() || b.is_list()) && a.kind() == ValueKind::kInt)
    return repeat(b, a.as_int());
  type_error(op, a, b);
}

bool contains(const Value& container, const Value& item) {
  if (container.is_string()) {
    if (!item.is_string()) {
      fail(StatusCode::kInvalidArgument, "'in <string>' requires string as left operand, not {}",
           item.type_name());
    }
    return container.as_string().find(item.as_string()) != std::string::npos;
  }
  if (container.is_dict())
    return item.is_string() && container.dict().find(item.as_string()) != nullptr;
  for (const Value& v : iterate(container)) {
    if (values_equal(v, item)) return true;
  }
  return false;
}

bool compare(const std::string& op, const Value& left, const Value& right) {
  if (op == "==") return values_equal(left, right);
  if (op == "!=") return !values_equal(left, right);
  if (op == "<") return compare_values(left, right) < 0;
  if (op == ">") return compare_values(left, right) > 0;
  if (op == "<=") return compare_values(left, right) <= 0;
  if (op == ">=") return compare_values(left, right) >= 0;
  if (op == "in") return contains(right, left);
  return !contains(right, left);  // "not in"
}

class Evaluator {
 public:
  std::string render(const NodeList& nodes, Scope& scope) {
    std::string out;
    exec_list(nodes, scope, out);
    return out;
  }

  SourcePos current_pos() const { return pos_; }

 private:
  Flow exec_list(const NodeList& nodes, Scope& scope, std::string& out) {
    for (const Node& node : nodes) {
      if (const Flow flow = exec(node, scope, out); flow != Flow::kNormal) return flow;
    }
    return Flow::kNormal;
  }

  Flow exec(const Node& node, Scope& scope, std::string& out) {
    pos_ = node.pos;
    switch (node.kind) {
      case NodeKind::kText:
        out += node.text;
        return Flow::kNormal;
      case NodeKind::kOutput:
        out += eval(*node.expr, scope).to_str();
        return Flow::kNormal;
      case NodeKind::kIf:
        for (const auto& [condition, body] : node.branches) {
          if (eval(*condition, scope).is_truthy()) return exec_list(body, scope, out);
        }
        return exec_list(node.else_body, scope, out);
      case NodeKind::kFor:
        exec_for(node, scope, out);
        return Flow::kNormal;
      case NodeKind::kSet:
        assign(node, eval(*node.expr, scope), scope);
        return Flow::kNormal;
      case NodeKind::kSetBlock: {
        std::string captured;
        exec_list(node.body, scope, captured);
        scope.vars.set(node.targets[0], Value::from_string(captured));
        return Flow::kNormal;
      }
      case NodeKind::kMacro:
        scope.vars.set(node.text, make_macro(node, scope));
        return Flow::kNormal;
      case NodeKind::kBreak:
        return Flow::kBreak;
      case NodeKind::kContinue:
        return Flow::kContinue;
    }
    return Flow::kNormal;
  }

  void assign(const Node& node, const Value& value, Scope& scope) {
    if (node.is_attr_target) {
      const Value* target = scope.lookup(node.targets[0]);
      if (target == nullptr || !target->is_dict() || !target->dict().is_namespace) {
        fail(StatusCode::kInvalidArgument, "cannot assign attribute on non-namespace object '{}'",
             node.targets[0]);
      }
      target->dict().set(node.targets[1], value);
      return;
    }
    bind_targets(node.targets, value, scope);
  }

  static void bind_targets(const std::vector<std::string>& targets, const Value& value,
                           Scope& scope) {
    if (targets.size() == 1) {
      scope.vars.set(targets[0], value);
      return;
    }
    const ValueList items = iterate(value);
    if (items.size() != targets.size()) {
      fail(StatusCode::kInvalidArgument, "cannot unpack {} values into {} names", items.size(),
           targets.size());
    }
    for (std::size_t i = 0; i < targets.size(); ++i) scope.vars.set(targets[i], items[i]);
  }

  void exec_for(const Node& node, Scope& scope, std::string& out) {
    const Value iterable = eval(*node.expr, scope);
    if (iterable.is_none()) fail(StatusCode::kInvalidArgument, "'NoneType' object is not iterable");
    ValueList items = iterate(iterable);
    const auto body_scope_ptr = std::make_shared<Scope>(&scope, ValueDict{});
    Scope& body_scope = *body_scope_ptr;
    if (node.filter) {
      ValueList kept;
      for (const Value& item : items) {
        bind_targets(node.targets, item, body_scope);
        if (eval(*node.filter, body_scope).is_truthy()) kept.push_back(item);
      }
      items = std::move(kept);
    }
    if (items.empty()) {
      exec_list(node.else_body, scope, out);
      return;
    }
    const auto length = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < length; ++i) {
      ValueDict loop;
      loop.set("index", Value::from_int(i + 1));
      loop.set("index0", Value::from_int(i));
      loop.set("revindex", Value::from_int(length - i));
      loop.set("revindex0", Value::from_int(length - i - 1));
      loop.set("first", Value::from_bool(i == 0));
      loop.set("last", Value::from_bool(i == length - 1));
      loop.set("length", Value::from_int(length));
      loop.set("depth", Value::from_int(1));
      loop.set("depth0", Value::from_int(0));
      loop.set("previtem",
               i > 0 ? items[static_cast<std::size_t>(i - 1)] : Value::undefined("previtem"));
      loop.set("nextitem", i + 1 < length ? items[static_cast<std::size_t>(i + 1)]
                                          : Value::undefined("nextitem"));
      loop.set("cycle", Value::from_function("cycle", [i](const CallArgs& args) {
                 if (args.positional.empty())
                   fail(StatusCode::kInvalidArgument, "no items for cycling given");
                 return args.positional[static_cast<std::size_t>(i) % args.positional.size()];
               }));
      body_scope.vars.set("loop", Value::from_dict(std::move(loop)));
      bind_targets(node.targets, items[static_cast<std::size_t>(i)], body_scope);
      if (exec_list(node.body, body_scope, out) == Flow::kBreak) break;
    }
  }

  // The macro holds its definition scope weakly: a scope that held a strong reference to itself
  // would never be freed.
  Value make_macro(const Node& node, Scope& definition_scope) {
    std::weak_ptr<Scope> weak_scope = definition_scope.weak_from_this();
    return Value::from_function(node.text, [this, &node, weak_scope](const CallArgs& args) {
      const std::shared_ptr<Scope> definition = weak_scope.lock();
      if (!definition)
        fail(StatusCode::kInvalidArgument, "macro '{}' called outside the block that defined it",
             node.text);
      const auto call_scope_ptr = std::make_shared<Scope>(definition.get(), ValueDict{});
      Scope& call_scope = *call_scope_ptr;
      for (std::size_t i = 0; i < node.params.size(); ++i) {
        const auto& [param, default_value] = node.params[i];
        if (const Value* given = args.get(i, param)) {
          call_scope.vars.set(param, *given);
        } else if (default_value) {
          call_scope.vars.set(param, eval(*default_value, call_scope));
        } else {
          call_scope.vars.set(param, Value::undefined(param));
        }
      }
      if (args.positional.size() > node.params.size()) {
        fail(StatusCode::kInvalidArgument, "macro '{}' takes {} arguments, got {}", node.text,
             node.params.size(), args.positional.size());
      }
      const SourcePos saved = pos_;
      std::string out;
      exec_list(node.body, call_scope, out);
      pos_ = saved;
      return Value::from_string(out);
    });
  }

  CallArgs eval_args(const Expr& expr, Scope& scope) {
    CallArgs args;
    for (std::size_t i = 1; i < expr.args.size(); ++i)
      args.positional.push_back(eval(*expr.args[i], scope));
    for (const auto& [key, value] : expr.kwargs)
      args.keyword.emplace_back(key, eval(*value, scope));
    return args;
  }

  Value get_attr(const Value& object, const std::string& name) {
    if (object.is_undefined()) check_defined(object);
    if (object.is_dict()) {
      if (const Value* found = object.dict().find(name)) return *found;
    }
    return Value::undefined(name);
  }

  Value eval(const Expr& expr, Scope& scope) {
    pos_ = expr.pos;
    switch (expr.kind) {
      case ExprKind::kLiteral:
        return expr.literal;
      case ExprKind::kName: {
        const Value* v = scope.lookup(expr.name);
        return v != nullptr ? *v : Value::undefined(expr.name);
      }
      case ExprKind::kList: {
        ValueList items;
        for (const auto& arg : expr.args) items.push_back(eval(*arg, scope));
        return expr.is_tuple ? Value::from_tuple(std::move(items))
                             : Value::from_list(std::move(items));
      }
      case ExprKind::kDict: {
        ValueDict dict;
        for (std::size_t i = 0; i + 1 < expr.args.size(); i += 2) {
          const Value key = eval(*expr.args[i], scope);
          if (!key.is_string())
            fail(StatusCode::kInvalidArgument, "dict keys must be strings, got {}",
                 key.type_name());
          dict.set(key.as_string(), eval(*expr.args[i + 1], scope));
        }
        return Value::from_dict(std::move(dict));
      }
      case ExprKind::kAttr:
        return get_attr(eval(*expr.args[0], scope), expr.name);
      case ExprKind::kItem: {
        const Value object = eval(*expr.args[0], scope);
        check_defined(object);
        return python_index(object, eval(*expr.args[1], scope));
      }
      case ExprKind::kSlice: {
        const Value object = eval(*expr.args[0], scope);
        check_defined(object);
        auto part = [&](std::size_t i) {
          return expr.args[i] ? eval(*expr.args[i], scope) : Value::none();
        };
        return python_slice(object, part(1), part(2), part(3));
      }
      case ExprKind::kCall:
        return eval_call(expr, scope);
      case ExprKind::kFilter: {
        const Value value = eval(*expr.args[0], scope);
        const CallArgs args = eval_args(expr, scope);
        pos_ = expr.pos;
        return apply_filter(expr.name, value, args);
      }
      case ExprKind::kTest: {
        const Value value = eval(*expr.args[0], scope);
        const CallArgs args = eval_args(expr, scope);
        pos_ = expr.pos;
        return Value::from_bool(apply_test(expr.name, value, args) != expr.is_negated);
      }
      case ExprKind::kUnary: {
        const Value v = eval(*expr.args[0], scope);
        if (expr.name == "not") return Value::from_bool(!v.is_truthy());
        check_defined(v);
        if (!v.is_number())
          fail(StatusCode::kInvalidArgument, "bad operand type for unary {}: '{}'", expr.name,
               v.type_name());
        if (expr.name == "+") return v.kind() == ValueKind::kBool ? Value::from_int(v.as_int()) : v;
        return v.kind() == ValueKind::kFloat ? Value::from_float(-v.as_float())
                                             : Value::from_int(-v.as_int());
      }
      case ExprKind::kBinary:
        return eval_binary(expr, scope);
      case ExprKind::kCompare: {
        Value left = eval(*expr.args[0], scope);
        for (std::size_t i = 0; i < expr.ops.size(); ++i) {
          Value right = eval(*expr.args[i + 1], scope);
          pos_ = expr.pos;
          if (!compare(expr.ops[i], left, right)) return Value::from_bool(false);
          left = std::move(right);
        }
        return Value::from_bool(true);
      }
      case ExprKind::kCondition:
        if (eval(*expr.args[0], scope).is_truthy()) return eval(*expr.args[1], scope);
        return expr.args[2] ? eval(*expr.args[2], scope) : Value::undefined("");
    }
    return Value::undefined("");
  }

  Value eval_call(const Expr& expr, Scope& scope) {
    const Expr& callee = *expr.args[0];
    if (callee.kind == ExprKind::kAttr) {
      const Value object = eval(*callee.args[0], scope);
      check_defined(object);
      const CallArgs args = eval_args(expr, scope);
      pos_ = expr.pos;
      if (std::optional<Value> result = call_method(object, callee.name, args)) return *result;
      return call_value(get_attr(object, callee.name), args);
    }
    const Value function = eval(callee, scope);
    const CallArgs args = eval_args(expr, scope);
    pos_ = expr.pos;
    return call_value(function, args);
  }

  Value call_value(const Value& function, const CallArgs& args) {
    check_defined(function);
    if (!function.is_function())
      fail(StatusCode::kInvalidArgument, "'{}' object is not callable", function.type_name());
    return function.function()(args);
  }

  Value eval_binary(const Expr& expr, Scope& scope) {
    const std::string& op = expr.name;
    const Value left = eval(*expr.args[0], scope);
    if (op == "and") return left.is_truthy() ? eval(*expr.args[1], scope) : left;
    if (op == "or") return left.is_truthy() ? left : eval(*expr.args[1], scope);
    const Value right = eval(*expr.args[1], scope);
    pos_ = expr.pos;
    if (op == "~") return Value::from_string(left.to_str() + right.to_str());
    return arithmetic(op, left, right);
  }

  SourcePos pos_;
};

}  // namespace

std::string render_template(const NodeList& nodes, const ValueDict& globals) {
  const auto global_scope = std::make_shared<Scope>(nullptr, globals);
  const auto root_ptr = std::make_shared<Scope>(global_scope.get(), ValueDict{});
  Scope& root = *root_ptr;
  Evaluator evaluator;
  try {
    return evaluator.render(nodes, root);
  } catch (const TemplateRaise& raise) {
    throw Error(StatusCode::kInvalidArgument, raise.message);
  } catch (const Error& error) {
    const SourcePos pos = evaluator.current_pos();
    std::string_view message = error.what();
    constexpr std::string_view kPrefix = "chat template: ";
    if (message.starts_with(kPrefix)) message.remove_prefix(kPrefix.size());
    throw Error(error.code(),
                fmt::format("chat template line {} column {}: {}", pos.line, pos.column, message));
  } catch (const std::exception& error) {
    // A library failure (a number out of range, say) is still the template's fault.
    const SourcePos pos = evaluator.current_pos();
    throw Error(StatusCode::kInvalidArgument, fmt::format("chat template line {} column {}: {}",
                                                          pos.line, pos.column, error.what()));
  }
}

}  // namespace llmserve::jinja
