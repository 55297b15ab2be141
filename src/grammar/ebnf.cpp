#include "grammar/ebnf.h"

#include <cctype>
#include <map>

#include <fmt/format.h>

#include "grammar/flat_grammar.h"
#include "grammar/text.h"

namespace llmserve::grammar {
namespace {

constexpr int32_t kMaxRepeat = 10000;

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
}

class EbnfParser {
 public:
  EbnfParser(std::string_view text, std::string_view field, Grammar& g)
      : s_(text), field_(field), g_(g) {}

  Status parse() {
    skip_space();
    while (i_ < s_.size()) {
      std::string name = read_name();
      if (name.empty()) return error("expected a rule name");
      skip_space();
      if (s_.substr(i_, 3) != "::=") return error("expected '::='");
      i_ += 3;
      int32_t id = rule_id(name);
      if (defined_.count(name)) return error(fmt::format("rule '{}' is defined twice", name));
      defined_[name] = true;
      std::vector<Sequence> alts;
      if (Status st = alternatives(alts, 0); !st.is_ok()) return st;
      g_.rule(id).alternatives = std::move(alts);
    }
    for (const auto& [name, pos] : first_use_) {
      if (!defined_.count(name)) {
        i_ = pos;
        return error(fmt::format("rule '{}' is not defined", name));
      }
    }
    auto root = names_.find("root");
    if (root == names_.end() || !defined_.count("root")) {
      return invalid_argument("{}: the grammar has no rule named 'root'", field_);
    }
    g_.set_root(root->second);
    return Status::ok();
  }

 private:
  Status error(std::string_view what) const {
    size_t line = 1, col = 1;
    for (size_t k = 0; k < i_ && k < s_.size(); ++k) {
      if (s_[k] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return invalid_argument("{}: line {}, column {}: {}", field_, line, col, what);
  }

  void skip_space() {
    while (i_ < s_.size()) {
      if (std::isspace(static_cast<unsigned char>(s_[i_]))) {
        ++i_;
      } else if (s_[i_] == '#') {
        while (i_ < s_.size() && s_[i_] != '\n') ++i_;
      } else {
        break;
      }
    }
  }

  std::string read_name() {
    size_t start = i_;
    while (i_ < s_.size() && is_name_char(s_[i_])) ++i_;
    return std::string(s_.substr(start, i_ - start));
  }

  // True when a `name ::=` starts here: the end of the current rule's body.
  bool at_rule_start() const {
    size_t k = i_;
    while (k < s_.size() && is_name_char(s_[k])) ++k;
    if (k == i_) return false;
    while (k < s_.size() && (s_[k] == ' ' || s_[k] == '\t' || s_[k] == '\n' || s_[k] == '\r')) ++k;
    return s_.substr(k, 3) == "::=";
  }

  int32_t rule_id(const std::string& name) {
    auto [it, inserted] = names_.try_emplace(name, -1);
    if (inserted) it->second = g_.add_rule(name);
    return it->second;
  }

  Status alternatives(std::vector<Sequence>& alts, int depth) {
    while (true) {
      Sequence seq;
      if (Status st = sequence(seq, depth); !st.is_ok()) return st;
      alts.push_back(std::move(seq));
      if (i_ < s_.size() && s_[i_] == '|') {
        ++i_;
        continue;
      }
      return Status::ok();
    }
  }

  Status sequence(Sequence& seq, int depth) {
    while (true) {
      skip_space();
      if (i_ >= s_.size() || s_[i_] == '|' || s_[i_] == ')') break;
      if (depth == 0 && at_rule_start()) break;
      Element e;
      if (Status st = atom(e, depth); !st.is_ok()) return st;
      if (Status st = quantifiers(e); !st.is_ok()) return st;
      seq.push_back(std::move(e));
    }
    if (i_ < s_.size() && s_[i_] == ')' && depth == 0) return error("unbalanced ')'");
    return Status::ok();
  }

  Status atom(Element& e, int depth) {
    char c = s_[i_];
    if (c == '"' || c == '\'') return literal(e);
    if (c == '[') return char_class(e);
    if (c == '.') {
      ++i_;
      e = Element::codepoint_class({{0, kMaxCodepoint}});
      return Status::ok();
    }
    if (c == '(') {
      ++i_;
      std::vector<Sequence> alts;
      if (Status st = alternatives(alts, depth + 1); !st.is_ok()) return st;
      if (i_ >= s_.size() || s_[i_] != ')') return error("missing ')'");
      ++i_;
      e = Element::ref(g_.add_rule("group", std::move(alts)));
      return Status::ok();
    }
    if (is_name_char(c)) {
      size_t at = i_;
      std::string name = read_name();
      first_use_.try_emplace(name, at);
      e = Element::ref(rule_id(name));
      return Status::ok();
    }
    return error(fmt::format("unexpected '{}'", c));
  }

  Status escape(uint32_t& cp) {
    ++i_;  // backslash
    if (!read_simple_escape(s_, i_, cp)) return error("unknown escape");
    return Status::ok();
  }

  Status literal(Element& e) {
    char quote = s_[i_++];
    std::string bytes;
    while (true) {
      if (i_ >= s_.size() || s_[i_] == '\n') return error("unterminated string");
      if (s_[i_] == quote) break;
      uint32_t cp;
      if (s_[i_] == '\\') {
        if (Status st = escape(cp); !st.is_ok()) return st;
      } else if (!decode_utf8(s_, i_, cp)) {
        return error("invalid UTF-8");
      }
      append_utf8(bytes, cp);
    }
    ++i_;
    // An empty literal is the empty sequence: a group with one empty alternative.
    e = bytes.empty() ? Element::ref(g_.add_rule("empty", {{}})) : Element::text(bytes);
    return Status::ok();
  }

  Status char_class(Element& e) {
    ++i_;
    bool negated = i_ < s_.size() && s_[i_] == '^';
    if (negated) ++i_;
    std::vector<CodepointRange> ranges;
    auto member = [&](uint32_t& cp) -> Status {
      if (i_ >= s_.size()) return error("unterminated character class");
      if (s_[i_] == '\\') return escape(cp);
      if (!decode_utf8(s_, i_, cp)) return error("invalid UTF-8");
      return Status::ok();
    };
    while (true) {
      if (i_ >= s_.size()) return error("unterminated character class");
      if (s_[i_] == ']') break;
      uint32_t lo, hi;
      if (Status st = member(lo); !st.is_ok()) return st;
      hi = lo;
      if (i_ + 1 < s_.size() && s_[i_] == '-' && s_[i_ + 1] != ']') {
        ++i_;
        if (Status st = member(hi); !st.is_ok()) return st;
        if (hi < lo) return error("character range out of order");
      }
      ranges.push_back({lo, hi});
    }
    ++i_;
    e = Element::codepoint_class(std::move(ranges), negated);
    if (e.codepoints.empty()) return error("the character class matches nothing");
    return Status::ok();
  }

  Status quantifiers(Element& e) {
    while (i_ < s_.size()) {
      int32_t lo = 0, hi = -1;
      char c = s_[i_];
      if (c == '?') {
        hi = 1;
      } else if (c == '+') {
        lo = 1;
      } else if (c != '*' && c != '{') {
        return Status::ok();
      }
      if (c == '{') {
        if (Status st = bounds(lo, hi); !st.is_ok()) return st;
      } else {
        ++i_;
      }
      int32_t r = e.kind == Element::Kind::kRule ? e.rule : g_.add_rule("item", {{e}});
      e = Element::repeat(r, lo, hi);
    }
    return Status::ok();
  }

  Status bounds(int32_t& lo, int32_t& hi) {
    ++i_;
    auto number = [&](int32_t& v) {
      size_t start = i_;
      int64_t n = 0;
      while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) {
        n = std::min<int64_t>(n * 10 + (s_[i_++] - '0'), kMaxRepeat + 1);
      }
      v = static_cast<int32_t>(n);
      return i_ > start;
    };
    skip_space();
    if (!number(lo)) return error("expected a number after '{'");
    skip_space();
    hi = lo;
    if (i_ < s_.size() && s_[i_] == ',') {
      ++i_;
      skip_space();
      if (!number(hi)) hi = -1;
      skip_space();
    }
    if (i_ >= s_.size() || s_[i_] != '}') return error("expected '}'");
    ++i_;
    if (lo > kMaxRepeat || hi > kMaxRepeat) {
      return error(fmt::format("repetition bounds above {} are not supported", kMaxRepeat));
    }
    if (hi >= 0 && hi < lo) return error("repetition {m,n} with n < m");
    return Status::ok();
  }

  std::string_view s_;
  std::string_view field_;
  Grammar& g_;
  size_t i_ = 0;
  std::map<std::string, int32_t> names_;
  std::map<std::string, bool> defined_;
  std::map<std::string, size_t> first_use_;
};

}  // namespace

Status ebnf_grammar(std::string_view text, std::string_view field, Grammar& out) {
  out = Grammar{};
  if (Status st = EbnfParser(text, field, out).parse(); !st.is_ok()) return st;
  // Structural problems (left recursion, rules that never finish) are found by the lowering;
  // report them now, under this field, rather than at compile time.
  FlatGrammar flat;
  if (Status st = flatten(out, flat); !st.is_ok()) {
    return invalid_argument("{}: {}", field, st.message());
  }
  return Status::ok();
}

Status choice_grammar(const std::vector<std::string>& choices, std::string_view field,
                      Grammar& out) {
  out = Grammar{};
  if (choices.empty()) return invalid_argument("{}: needs at least one choice", field);
  std::vector<Sequence> alts;
  for (const auto& c : choices) {
    alts.push_back(c.empty() ? Sequence{} : Sequence{Element::text(c)});
  }
  out.set_root(out.add_rule("root", std::move(alts)));
  return Status::ok();
}

}  // namespace llmserve::grammar
