// Recursive-descent parser over the lexer's token stream; mirrors jinja2/parser.py closely so
// precedence and test-argument rules match the reference.
#include "tokenizer/chat_template_parser.h"

#include <initializer_list>

#include "common/status.h"

namespace llmserve::jinja {
namespace {

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  NodeList parse() {
    std::string stopped_at;
    NodeList nodes = parse_body({}, stopped_at);
    return nodes;
  }

 private:
  const Token& peek(std::size_t ahead = 0) const {
    return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)];
  }
  const Token& next() { return tokens_[std::min(pos_++, tokens_.size() - 1)]; }

  [[noreturn]] void error(const Token& at, std::string_view what) const {
    fail(StatusCode::kInvalidArgument, "chat template line {} column {}: {}", at.pos.line,
         at.pos.column, what);
  }

  bool is_op(std::string_view op, std::size_t ahead = 0) const {
    return peek(ahead).kind == TokenKind::kOperator && peek(ahead).text == op;
  }
  bool is_name(std::string_view name, std::size_t ahead = 0) const {
    return peek(ahead).kind == TokenKind::kName && peek(ahead).text == name;
  }
  bool skip_op(std::string_view op) {
    if (!is_op(op)) return false;
    ++pos_;
    return true;
  }
  bool skip_name(std::string_view name) {
    if (!is_name(name)) return false;
    ++pos_;
    return true;
  }
  void expect_op(std::string_view op) {
    if (!skip_op(op)) error(peek(), fmt::format("expected '{}', got '{}'", op, peek().text));
  }
  std::string expect_name() {
    if (peek().kind != TokenKind::kName)
      error(peek(), fmt::format("expected a name, got '{}'", peek().text));
    return next().text;
  }
  void expect_block_end() {
    if (peek().kind != TokenKind::kBlockEnd) {
      error(peek(), fmt::format("expected '%}}', got '{}'", peek().text));
    }
    ++pos_;
  }

  // Parses nodes until a block tag named in end_names (consumed up to and including its name).
  NodeList parse_body(std::initializer_list<std::string_view> end_names, std::string& stopped_at) {
    NodeList nodes;
    while (true) {
      const Token& token = peek();
      switch (token.kind) {
        case TokenKind::kText: {
          Node node;
          node.kind = NodeKind::kText;
          node.pos = token.pos;
          node.text = token.text;
          nodes.push_back(std::move(node));
          ++pos_;
          break;
        }
        case TokenKind::kVariableBegin: {
          ++pos_;
          Node node;
          node.kind = NodeKind::kOutput;
          node.pos = token.pos;
          node.expr = parse_tuple();
          if (peek().kind != TokenKind::kVariableEnd) {
            error(peek(), fmt::format("expected '}}}}', got '{}'", peek().text));
          }
          ++pos_;
          nodes.push_back(std::move(node));
          break;
        }
        case TokenKind::kBlockBegin: {
          const Token& name = peek(1);
          for (const std::string_view end : end_names) {
            if (name.kind == TokenKind::kName && name.text == end) {
              pos_ += 2;
              stopped_at = name.text;
              return nodes;
            }
          }
          ++pos_;
          parse_statement(nodes);
          break;
        }
        case TokenKind::kEof: {
          if (end_names.size() > 0) {
            error(token,
                  fmt::format("unexpected end of template, expected '{}'", *(end_names.end() - 1)));
          }
          return nodes;
        }
        default:
          error(token, fmt::format("unexpected '{}'", token.text));
      }
    }
  }

  void parse_statement(NodeList& nodes) {
    const Token& tag = peek();
    if (tag.kind != TokenKind::kName) error(tag, "expected a statement name");
    const std::string name = next().text;
    Node node;
    node.pos = tag.pos;
    if (name == "if") {
      parse_if(node);
    } else if (name == "for") {
      parse_for(node);
    } else if (name == "set") {
      parse_set(node);
    } else if (name == "macro") {
      parse_macro(node);
    } else if (name == "break" || name == "continue") {
      node.kind = name == "break" ? NodeKind::kBreak : NodeKind::kContinue;
      expect_block_end();
    } else if (name == "generation") {
      expect_block_end();
      std::string stopped_at;
      NodeList body = parse_body({"endgeneration"}, stopped_at);
      expect_block_end();
      for (Node& child : body) nodes.push_back(std::move(child));
      return;
    } else {
      error(tag, fmt::format("unsupported tag '{}'", name));
    }
    nodes.push_back(std::move(node));
  }

  void parse_if(Node& node) {
    node.kind = NodeKind::kIf;
    while (true) {
      ExprPtr condition = parse_expression();
      expect_block_end();
      std::string stopped_at;
      NodeList body = parse_body({"elif", "else", "endif"}, stopped_at);
      node.branches.emplace_back(std::move(condition), std::move(body));
      if (stopped_at == "elif") continue;
      if (stopped_at == "else") {
        expect_block_end();
        node.else_body = parse_body({"endif"}, stopped_at);
      }
      expect_block_end();
      return;
    }
  }

  void parse_for(Node& node) {
    node.kind = NodeKind::kFor;
    node.targets.push_back(expect_name());
    while (skip_op(",")) {
      if (peek().kind != TokenKind::kName || is_name("in")) break;
      node.targets.push_back(expect_name());
    }
    if (!skip_name("in")) error(peek(), "expected 'in' in for loop");
    node.expr = parse_tuple(/*with_condexpr=*/false);
    if (skip_name("if")) node.filter = parse_expression(/*with_condexpr=*/false);
    if (is_name("recursive")) error(peek(), "unsupported recursive for loop");
    expect_block_end();
    std::string stopped_at;
    node.body = parse_body({"else", "endfor"}, stopped_at);
    if (stopped_at == "else") {
      expect_block_end();
      node.else_body = parse_body({"endfor"}, stopped_at);
    }
    expect_block_end();
  }

  void parse_set(Node& node) {
    node.targets.push_back(expect_name());
    if (skip_op(".")) {
      node.is_attr_target = true;
      node.targets.push_back(expect_name());
    } else {
      while (skip_op(",")) node.targets.push_back(expect_name());
    }
    if (skip_op("=")) {
      node.kind = NodeKind::kSet;
      node.expr = parse_tuple();
      expect_block_end();
      return;
    }
    if (node.is_attr_target || node.targets.size() != 1) error(peek(), "expected '=' in set");
    if (skip_op("|")) error(peek(), "unsupported filtered block set");
    node.kind = NodeKind::kSetBlock;
    expect_block_end();
    std::string stopped_at;
    node.body = parse_body({"endset"}, stopped_at);
    expect_block_end();
  }

  void parse_macro(Node& node) {
    node.kind = NodeKind::kMacro;
    node.text = expect_name();
    expect_op("(");
    while (!skip_op(")")) {
      if (!node.params.empty()) expect_op(",");
      if (skip_op(")")) break;
      std::string param = expect_name();
      ExprPtr default_value;
      if (skip_op("=")) default_value = parse_expression();
      node.params.emplace_back(std::move(param), std::move(default_value));
    }
    expect_block_end();
    std::string stopped_at;
    node.body = parse_body({"endmacro"}, stopped_at);
    if (peek().kind == TokenKind::kName) ++pos_;  // {% endmacro name %}
    expect_block_end();
  }

  ExprPtr make(ExprKind kind, SourcePos pos) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->pos = pos;
    return e;
  }

  ExprPtr make_binary(std::string op, ExprPtr left, ExprPtr right) {
    auto e = make(ExprKind::kBinary, left->pos);
    e->name = std::move(op);
    e->args.push_back(std::move(left));
    e->args.push_back(std::move(right));
    return e;
  }

  // expression (',' expression)* -> a list literal when there are commas (Python tuple).
  ExprPtr parse_tuple(bool with_condexpr = true) {
    const SourcePos pos = peek().pos;
    ExprPtr first = parse_expression(with_condexpr);
    if (!is_op(",")) return first;
    auto list = make(ExprKind::kList, pos);
    list->is_tuple = true;
    list->args.push_back(std::move(first));
    while (skip_op(",")) {
      if (peek().kind == TokenKind::kBlockEnd || peek().kind == TokenKind::kVariableEnd ||
          is_op(")"))
        break;
      list->args.push_back(parse_expression(with_condexpr));
    }
    return list;
  }

  ExprPtr parse_expression(bool with_condexpr = true) {
    ExprPtr expr = parse_or();
    if (!with_condexpr) return expr;
    while (is_name("if")) {
      const SourcePos pos = next().pos;
      auto cond = make(ExprKind::kCondition, pos);
      cond->args.push_back(parse_or());
      cond->args.push_back(std::move(expr));
      cond->args.push_back(skip_name("else") ? parse_expression() : nullptr);
      expr = std::move(cond);
    }
    return expr;
  }

  ExprPtr parse_or() {
    ExprPtr left = parse_and();
    while (skip_name("or")) left = make_binary("or", std::move(left), parse_and());
    return left;
  }

  ExprPtr parse_and() {
    ExprPtr left = parse_not();
    while (skip_name("and")) left = make_binary("and", std::move(left), parse_not());
    return left;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      auto e = make(ExprKind::kUnary, next().pos);
      e->name = "not";
      e->args.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    ExprPtr first = parse_math1();
    ExprPtr chain;
    while (true) {
      std::string op;
      if (peek().kind == TokenKind::kOperator &&
          (peek().text == "==" || peek().text == "!=" || peek().text == "<" || peek().text == ">" ||
           peek().text == "<=" || peek().text == ">=")) {
        op = next().text;
      } else if (skip_name("in")) {
        op = "in";
      } else if (is_name("not") && is_name("in", 1)) {
        pos_ += 2;
        op = "not in";
      } else {
        return chain ? std::move(chain) : std::move(first);
      }
      if (!chain) {
        chain = make(ExprKind::kCompare, first->pos);
        chain->args.push_back(std::move(first));
      }
      chain->ops.push_back(std::move(op));
      chain->args.push_back(parse_math1());
    }
  }

  ExprPtr parse_math1() {
    ExprPtr left = parse_concat();
    while (is_op("+") || is_op("-")) {
      std::string op = next().text;
      left = make_binary(op, std::move(left), parse_concat());
    }
    return left;
  }

  ExprPtr parse_concat() {
    ExprPtr left = parse_math2();
    while (skip_op("~")) left = make_binary("~", std::move(left), parse_math2());
    return left;
  }

  ExprPtr parse_math2() {
    ExprPtr left = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = next().text;
      left = make_binary(op, std::move(left), parse_pow());
    }
    return left;
  }

  ExprPtr parse_pow() {
    ExprPtr left = parse_unary(true);
    while (skip_op("**")) left = make_binary("**", std::move(left), parse_unary(true));
    return left;
  }

  ExprPtr parse_unary(bool with_filter) {
    ExprPtr node;
    if (is_op("-") || is_op("+")) {
      const Token& op = next();
      node = make(ExprKind::kUnary, op.pos);
      node->name = op.text;
      node->args.push_back(parse_unary(false));
    } else {
      node = parse_primary();
    }
    node = parse_postfix(std::move(node));
    if (with_filter) node = parse_filter_expr(std::move(node));
    return node;
  }

  ExprPtr parse_primary() {
    const Token& token = peek();
    switch (token.kind) {
      case TokenKind::kName: {
        ++pos_;
        auto e = make(ExprKind::kLiteral, token.pos);
        if (token.text == "true" || token.text == "True")
          e->literal = Value::from_bool(true);
        else if (token.text == "false" || token.text == "False")
          e->literal = Value::from_bool(false);
        else if (token.text == "none" || token.text == "None")
          e->literal = Value::none();
        else {
          e->kind = ExprKind::kName;
          e->name = token.text;
        }
        return e;
      }
      case TokenKind::kString: {
        std::string value;
        while (peek().kind == TokenKind::kString) value += next().text;
        auto e = make(ExprKind::kLiteral, token.pos);
        e->literal = Value::from_string(std::move(value));
        return e;
      }
      case TokenKind::kInteger:
      case TokenKind::kFloat: {
        ++pos_;
        auto e = make(ExprKind::kLiteral, token.pos);
        try {
          e->literal = token.kind == TokenKind::kInteger ? Value::from_int(std::stoll(token.text))
                                                         : Value::from_float(std::stod(token.text));
        } catch (const std::exception&) {
          error(token, fmt::format("number out of range: {}", token.text));
        }
        return e;
      }
      case TokenKind::kOperator:
        if (token.text == "(") {
          ++pos_;
          if (skip_op(")")) {
            auto empty = make(ExprKind::kList, token.pos);
            empty->is_tuple = true;
            return empty;
          }
          ExprPtr inner = parse_tuple();
          expect_op(")");
          return inner;
        }
        if (token.text == "[") {
          ++pos_;
          auto e = make(ExprKind::kList, token.pos);
          while (!skip_op("]")) {
            if (!e->args.empty()) expect_op(",");
            if (skip_op("]")) break;
            e->args.push_back(parse_expression());
          }
          return e;
        }
        if (token.text == "{") {
          ++pos_;
          auto e = make(ExprKind::kDict, token.pos);
          while (!skip_op("}")) {
            if (!e->args.empty()) expect_op(",");
            if (skip_op("}")) break;
            e->args.push_back(parse_expression());
            expect_op(":");
            e->args.push_back(parse_expression());
          }
          return e;
        }
        break;
      default:
        break;
    }
    error(token, fmt::format("unexpected '{}' in expression", token.text));
  }

  ExprPtr parse_postfix(ExprPtr node) {
    while (true) {
      if (is_op(".")) {
        const SourcePos pos = next().pos;
        if (peek().kind == TokenKind::kInteger) {
          auto e = make(ExprKind::kItem, pos);
          auto index = make(ExprKind::kLiteral, pos);
          index->literal = Value::from_int(std::stoll(next().text));
          e->args.push_back(std::move(node));
          e->args.push_back(std::move(index));
          node = std::move(e);
          continue;
        }
        auto e = make(ExprKind::kAttr, pos);
        e->name = expect_name();
        e->args.push_back(std::move(node));
        node = std::move(e);
      } else if (is_op("[")) {
        node = parse_subscript(std::move(node));
      } else if (is_op("(")) {
        auto e = make(ExprKind::kCall, next().pos);
        e->args.push_back(std::move(node));
        parse_call_args(*e);
        node = std::move(e);
      } else {
        return node;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr node) {
    const SourcePos pos = next().pos;  // '['
    ExprPtr parts[3];
    int num_colons = 0;
    while (!is_op("]")) {
      if (skip_op(":")) {
        if (++num_colons > 2) error(peek(), "too many ':' in slice");
        continue;
      }
      if (parts[num_colons]) error(peek(), "unexpected expression in subscript");
      parts[num_colons] = parse_expression();
    }
    expect_op("]");
    if (num_colons == 0) {
      if (!parts[0]) error(peek(), "empty subscript");
      auto e = make(ExprKind::kItem, pos);
      e->args.push_back(std::move(node));
      e->args.push_back(std::move(parts[0]));
      return e;
    }
    auto e = make(ExprKind::kSlice, pos);
    e->args.push_back(std::move(node));
    for (auto& part : parts) e->args.push_back(std::move(part));
    return e;
  }

  // '(' already consumed by the caller for calls; consumes through ')'.
  void parse_call_args(Expr& call) {
    // args[0] is the callee, or the value filtered or tested.
    bool is_first = true;
    while (!skip_op(")")) {
      if (!is_first) {
        expect_op(",");
        if (skip_op(")")) break;
      }
      is_first = false;
      if (peek().kind == TokenKind::kName && is_op("=", 1)) {
        std::string key = next().text;
        ++pos_;
        call.kwargs.emplace_back(std::move(key), parse_expression());
      } else {
        if (!call.kwargs.empty()) error(peek(), "positional argument after keyword argument");
        call.args.push_back(parse_expression());
      }
    }
  }

  ExprPtr parse_filter_expr(ExprPtr node) {
    while (true) {
      if (is_op("|")) {
        const SourcePos pos = next().pos;
        auto e = make(ExprKind::kFilter, pos);
        e->name = expect_name();
        e->args.push_back(std::move(node));
        if (skip_op("(")) parse_call_args(*e);
        node = std::move(e);
      } else if (is_name("is")) {
        const SourcePos pos = next().pos;
        auto e = make(ExprKind::kTest, pos);
        e->is_negated = skip_name("not");
        e->name = expect_name();
        e->args.push_back(std::move(node));
        const Token& t = peek();
        if (skip_op("(")) {
          parse_call_args(*e);
        } else if ((t.kind == TokenKind::kName || t.kind == TokenKind::kString ||
                    t.kind == TokenKind::kInteger || t.kind == TokenKind::kFloat || is_op("[") ||
                    is_op("{")) &&
                   !is_name("else") && !is_name("or") && !is_name("and")) {
          if (is_name("is")) error(t, "cannot chain multiple tests with 'is'");
          e->args.push_back(parse_postfix(parse_primary()));
        }
        node = std::move(e);
      } else {
        return node;
      }
    }
  }

  std::vector<Token> tokens_;
  std::size_t pos_ = 0;
};

}  // namespace

NodeList parse_template(std::string_view source) {
  return Parser(tokenize_template(source)).parse();
}

}  // namespace llmserve::jinja
