#include "grammar/regex.h"

#include <fmt/format.h>

#include "grammar/text.h"

namespace llmserve::grammar {
namespace {

// Repetition bounds past this are refused: {0,100000} would expand into as many rules.
constexpr int32_t kMaxRepeat = 10000;

class RegexParser {
 public:
  RegexParser(std::string_view pattern, std::string_view field, Grammar& g, bool json)
      : p_(pattern), field_(field), g_(g), json_(json) {}

  Status parse(int32_t& rule) {
    if (Status s = alternation(rule, true); !s.is_ok()) return s;
    if (i_ < p_.size()) return error("unbalanced ')'");
    return Status::ok();
  }

 private:
  Status error(std::string_view what) const {
    return invalid_argument("{}: regex error at offset {}: {}", field_, i_, what);
  }
  bool peek(char c) const { return i_ < p_.size() && p_[i_] == c; }

  Status alternation(int32_t& rule, bool top) {
    rule = g_.add_rule(top ? "regex" : "regex_group");
    std::vector<Sequence> alts;
    while (true) {
      Sequence seq;
      if (Status s = concat(seq, top); !s.is_ok()) return s;
      alts.push_back(std::move(seq));
      if (!peek('|')) break;
      ++i_;
    }
    g_.rule(rule).alternatives = std::move(alts);
    return Status::ok();
  }

  Status concat(Sequence& seq, bool top) {
    if (top && peek('^')) ++i_;
    while (i_ < p_.size() && p_[i_] != '|' && p_[i_] != ')') {
      if (p_[i_] == '$') {
        if (top && (i_ + 1 == p_.size() || p_[i_ + 1] == '|')) {
          ++i_;
          continue;
        }
        return error("'$' is only supported at the end of the pattern");
      }
      if (p_[i_] == '^') return error("'^' is only supported at the start of the pattern");
      Element atom;
      if (Status s = parse_atom(atom); !s.is_ok()) return s;
      if (Status s = quantifiers(atom); !s.is_ok()) return s;
      seq.push_back(std::move(atom));
    }
    return Status::ok();
  }

  Status quantifiers(Element& atom) {
    while (i_ < p_.size()) {
      int32_t lo = 0, hi = -1;
      char c = p_[i_];
      if (c == '?') {
        hi = 1;
        ++i_;
      } else if (c == '*') {
        ++i_;
      } else if (c == '+') {
        lo = 1;
        ++i_;
      } else if (c == '{') {
        if (Status s = bounds(lo, hi); !s.is_ok()) return s;
      } else {
        return Status::ok();
      }
      if (peek('?')) ++i_;  // lazy: same language
      if (peek('+')) return error("possessive quantifiers are not supported");
      int32_t r =
          atom.kind == Element::Kind::kRule ? atom.rule : g_.add_rule("regex_atom", {{atom}});
      atom = Element::repeat(r, lo, hi);
    }
    return Status::ok();
  }

  Status bounds(int32_t& lo, int32_t& hi) {
    ++i_;  // '{'
    auto number = [&](int32_t& v) {
      size_t start = i_;
      int64_t n = 0;
      while (i_ < p_.size() && std::isdigit(static_cast<unsigned char>(p_[i_]))) {
        n = std::min<int64_t>(n * 10 + (p_[i_++] - '0'), int64_t{1} << 40);
      }
      v = static_cast<int32_t>(std::min<int64_t>(n, kMaxRepeat + 1));
      return i_ > start;
    };
    if (!number(lo)) return error("expected a number after '{'");
    hi = lo;
    if (peek(',')) {
      ++i_;
      if (!number(hi)) hi = -1;
    }
    if (!peek('}')) return error("expected '}'");
    ++i_;
    if (lo > kMaxRepeat || hi > kMaxRepeat) {
      return error(fmt::format("repetition bounds above {} are not supported", kMaxRepeat));
    }
    if (hi >= 0 && hi < lo) return error("repetition {m,n} with n < m");
    return Status::ok();
  }

  Status parse_atom(Element& atom) {
    char c = p_[i_];
    switch (c) {
      case '(': {
        ++i_;
        if (peek('?')) {
          if (p_.substr(i_, 2) == "?:") {
            i_ += 2;
          } else if (p_.substr(i_, 2) == "?<" && p_.substr(i_, 3) != "?<=" &&
                     p_.substr(i_, 3) != "?<!") {
            i_ = p_.find('>', i_);
            if (i_ == std::string_view::npos)
              return i_ = p_.size(), error("unterminated group name");
            ++i_;
          } else if (p_.substr(i_, 3) == "?P<") {
            i_ = p_.find('>', i_);
            if (i_ == std::string_view::npos)
              return i_ = p_.size(), error("unterminated group name");
            ++i_;
          } else {
            return error("lookaround, flags and other (?...) groups are not supported");
          }
        }
        int32_t r;
        if (Status s = alternation(r, false); !s.is_ok()) return s;
        if (!peek(')')) return error("missing ')'");
        ++i_;
        atom = Element::ref(r);
        return Status::ok();
      }
      case '[':
        return parse_class(atom);
      case '.':
        ++i_;
        atom = chars(complement({{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}}));
        return Status::ok();
      case '*':
      case '+':
      case '?':
      case '{':
        return error("nothing to repeat");
      case '\\': {
        ++i_;
        if (i_ >= p_.size()) return error("trailing backslash");
        std::vector<CodepointRange> ranges;
        if (class_escape(p_[i_], ranges)) {
          ++i_;
          atom = chars(std::move(ranges));
          return Status::ok();
        }
        uint32_t cp;
        if (!read_simple_escape(p_, i_, cp)) {
          return error(
              fmt::format("unsupported escape '\\{}' (backreferences and \\b are not "
                          "supported)",
                          p_[i_]));
        }
        atom = chars({{cp, cp}});
        return Status::ok();
      }
      default: {
        uint32_t cp;
        if (!decode_utf8(p_, i_, cp)) return error("invalid UTF-8");
        atom = chars({{cp, cp}});
        return Status::ok();
      }
    }
  }

  Status parse_class(Element& atom) {
    ++i_;  // '['
    bool negated = peek('^');
    if (negated) ++i_;
    std::vector<CodepointRange> ranges;
    while (true) {
      if (i_ >= p_.size()) return error("unterminated character class");
      if (p_[i_] == ']') break;
      uint32_t lo;
      if (Status s = class_char(lo, ranges); !s.is_ok()) return s;
      if (lo == kClassEscape) continue;
      if (peek('-') && i_ + 1 < p_.size() && p_[i_ + 1] != ']') {
        ++i_;
        uint32_t hi;
        if (Status s = class_char(hi, ranges); !s.is_ok()) return s;
        if (hi == kClassEscape) return error("a class escape cannot end a range");
        if (hi < lo) return error("character range out of order");
        ranges.push_back({lo, hi});
      } else {
        ranges.push_back({lo, lo});
      }
    }
    ++i_;  // ']'
    if (negated) ranges = complement(std::move(ranges));
    if (ranges.empty()) return error("the character class matches nothing");
    atom = chars(std::move(ranges));
    return Status::ok();
  }

  static constexpr uint32_t kClassEscape = 0xFFFFFFFF;

  // One member of a class: a code point (cp), or a class escape appended to ranges
  // (cp = kClassEscape).
  Status class_char(uint32_t& cp, std::vector<CodepointRange>& ranges) {
    if (p_[i_] == '\\') {
      ++i_;
      if (i_ >= p_.size()) return error("trailing backslash");
      if (class_escape(p_[i_], ranges)) {
        ++i_;
        cp = kClassEscape;
        return Status::ok();
      }
      if (peek('b')) {
        ++i_;
        cp = '\b';
        return Status::ok();
      }
      if (!read_simple_escape(p_, i_, cp)) return error("unsupported escape in a class");
      return Status::ok();
    }
    if (!decode_utf8(p_, i_, cp)) return error("invalid UTF-8");
    return Status::ok();
  }

  // A set of code points as an element: a class, or in json_string mode a helper rule with the
  // escaped forms of '"', '\' and control characters as extra alternatives.
  Element chars(std::vector<CodepointRange> ranges) {
    Element plain = Element::codepoint_class(std::move(ranges));
    if (!json_) return single_literal(plain);
    std::vector<CodepointRange> safe;
    std::vector<Sequence> escaped;
    for (const auto& r : plain.codepoints) {
      for (uint32_t c = r.lo; c <= std::min<uint32_t>(r.hi, 0x5C); ++c) {
        if (c < 0x20 || c == '"' || c == '\\') escaped.push_back({Element::text(json_escape(c))});
      }
      // The members of r outside the specials, as up to three ranges.
      uint32_t lo = std::max<uint32_t>(r.lo, 0x20);
      for (uint32_t special : {uint32_t{'"'}, uint32_t{'\\'}}) {
        if (lo > r.hi) break;
        if (special >= lo && special <= r.hi) {
          if (special > lo) safe.push_back({lo, special - 1});
          lo = special + 1;
        }
      }
      if (lo <= r.hi) safe.push_back({lo, r.hi});
    }
    if (escaped.empty()) return single_literal(plain);
    if (!safe.empty()) escaped.push_back({Element::codepoint_class(std::move(safe))});
    return Element::ref(g_.add_rule("regex_char", std::move(escaped)));
  }

  // A one-code-point class is written as a literal (reads better in dumps).
  static Element single_literal(const Element& e) {
    if (e.codepoints.size() != 1 || e.codepoints[0].lo != e.codepoints[0].hi) return e;
    std::string s;
    append_utf8(s, e.codepoints[0].lo);
    return Element::text(s);
  }

  static std::string json_escape(uint32_t c) {
    switch (c) {
      case '"':
        return "\\\"";
      case '\\':
        return "\\\\";
      case '\n':
        return "\\n";
      case '\t':
        return "\\t";
      case '\r':
        return "\\r";
      case '\b':
        return "\\b";
      case '\f':
        return "\\f";
      default:
        return fmt::format("\\u{:04x}", c);
    }
  }

  std::string_view p_;
  std::string_view field_;
  Grammar& g_;
  bool json_;
  size_t i_ = 0;
};

}  // namespace

Status add_regex_rule(std::string_view pattern, std::string_view field, Grammar& grammar,
                      int32_t& rule, const RegexOptions& options) {
  return RegexParser(pattern, field, grammar, options.json_string).parse(rule);
}

Status regex_grammar(std::string_view pattern, std::string_view field, Grammar& out) {
  out = Grammar{};
  int32_t rule;
  if (Status s = add_regex_rule(pattern, field, out, rule); !s.is_ok()) return s;
  out.set_root(rule);
  return Status::ok();
}

}  // namespace llmserve::grammar
