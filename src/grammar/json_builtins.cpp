#include "grammar/json_builtins.h"

#include <algorithm>

#include "common/status.h"
#include "grammar/regex.h"

namespace llmserve::grammar {
namespace {

// The largest magnitude an open-ended integer may reach: 19 digits keeps every value finite and
// integral as a double, which is what JSON Schema validators check.
constexpr int kMaxIntegerDigits = 19;

Sequence digits_class(char lo, char hi) {
  return {Element::byte_set(ByteSet::range(static_cast<uint8_t>(lo), static_cast<uint8_t>(hi)))};
}

// Decimal strings of equal length n between a and b (inclusive, a <= b, no leading zeros unless
// n == 1), as alternatives of byte-class sequences: split on the first differing digit.
void same_length_range(const std::string& a, const std::string& b, Sequence prefix,
                       std::vector<Sequence>& out) {
  if (a.empty()) {
    out.push_back(std::move(prefix));
    return;
  }
  auto append = [](Sequence s, const Sequence& tail) {
    s.insert(s.end(), tail.begin(), tail.end());
    return s;
  };
  if (a[0] == b[0]) {
    same_length_range(a.substr(1), b.substr(1), append(prefix, digits_class(a[0], a[0])), out);
    return;
  }
  std::string rest_a = a.substr(1), rest_b = b.substr(1);
  bool a_low = rest_a.find_first_not_of('0') == std::string::npos;
  bool b_high = rest_b.find_first_not_of('9') == std::string::npos;
  char mid_lo = a_low ? a[0] : static_cast<char>(a[0] + 1);
  char mid_hi = b_high ? b[0] : static_cast<char>(b[0] - 1);
  if (!a_low) {
    same_length_range(rest_a, std::string(rest_a.size(), '9'),
                      append(prefix, digits_class(a[0], a[0])), out);
  }
  if (mid_lo <= mid_hi) {
    Sequence s = append(prefix, digits_class(mid_lo, mid_hi));
    for (size_t i = 0; i < rest_a.size(); ++i) s = append(s, digits_class('0', '9'));
    out.push_back(std::move(s));
  }
  if (!b_high) {
    same_length_range(std::string(rest_b.size(), '0'), rest_b,
                      append(prefix, digits_class(b[0], b[0])), out);
  }
}

uint64_t pow10(int n) {
  uint64_t v = 1;
  for (int i = 0; i < n; ++i) v *= 10;
  return v;
}

// Non-negative integers in [lo, hi] (hi absent: up to kMaxIntegerDigits digits).
void nonnegative_range(uint64_t lo, std::optional<uint64_t> hi, Sequence prefix,
                       std::vector<Sequence>& out) {
  int lo_digits = static_cast<int>(std::to_string(lo).size());
  int hi_digits = hi ? static_cast<int>(std::to_string(*hi).size()) : kMaxIntegerDigits;
  for (int n = lo_digits; n <= hi_digits; ++n) {
    uint64_t a = n == lo_digits ? lo : pow10(n - 1);
    std::string sa = std::to_string(a);
    std::string sb =
        hi && n == hi_digits ? std::to_string(*hi) : std::string(static_cast<size_t>(n), '9');
    if (hi && *hi < a) break;
    same_length_range(sa, sb, prefix, out);
  }
}

}  // namespace

void JsonBuiltins::ws(Sequence& seq) {
  if (options_.max_whitespace <= 0) return;
  if (ws_ < 0) {
    if (options_.max_whitespace == 1) {
      ws_ = g_.add_rule("ws", {{Element::text(" ")}, {}});
    } else {
      ByteSet space;
      for (char c : {' ', '\t', '\n'}) space.add(static_cast<uint8_t>(c));
      int32_t one = g_.add_rule("ws_char", {{Element::byte_set(space)}});
      ws_ = g_.add_rule("ws", {{Element::repeat(one, 0, options_.max_whitespace)}});
    }
  }
  seq.push_back(Element::ref(ws_));
}

int32_t JsonBuiltins::regex(std::string_view name, std::string_view pattern) {
  int32_t r;
  // The patterns are ours; an error is a bug.
  if (Status s = add_regex_rule(pattern, name, g_, r); !s.is_ok()) throw Error(s);
  return g_.add_rule(name, {{Element::ref(r)}});
}

int32_t JsonBuiltins::escape() {
  if (escape_ < 0) {
    // \u escapes never name a surrogate (D800-DFFF): a lone one is not a character, and a pair
    // would count as two code points here but one for a validator's minLength/maxLength.
    escape_ = regex("json_escape",
                    R"(["\\/bfnrt]|u([0-9a-cA-Ce-fE-F][0-9a-fA-F]{3}|[dD][0-7][0-9a-fA-F]{2}))");
  }
  return escape_;
}

int32_t JsonBuiltins::string() {
  if (string_ < 0) {
    // body ::= char body | "\" escape body | '"': the closing quote is inside the body's rule, so
    // a token ending with it is decided by the precomputation (compiled_grammar.h).
    int32_t body = g_.add_rule("string_body");
    auto unescaped = Element::codepoint_class({{0, 0x1F}, {'"', '"'}, {'\\', '\\'}}, true);
    g_.rule(body).alternatives = {{unescaped, Element::ref(body)},
                                  {Element::text("\\"), Element::ref(escape()), Element::ref(body)},
                                  {Element::text("\"")}};
    string_ = g_.add_rule("string", {{Element::text("\""), Element::ref(body)}});
  }
  return string_;
}

int32_t JsonBuiltins::json_char() {
  if (char_ < 0) {
    auto unescaped = Element::codepoint_class({{0, 0x1F}, {'"', '"'}, {'\\', '\\'}}, true);
    char_ =
        g_.add_rule("string_char", {{unescaped}, {Element::text("\\"), Element::ref(escape())}});
  }
  return char_;
}

int32_t JsonBuiltins::number() {
  if (number_ < 0) {
    number_ = regex("number", R"(-?(0|[1-9][0-9]{0,18})(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,2})?)");
  }
  return number_;
}

int32_t JsonBuiltins::integer() {
  if (integer_ < 0) integer_ = regex("integer", R"(-?(0|[1-9][0-9]{0,18}))");
  return integer_;
}

int32_t JsonBuiltins::boolean() {
  if (boolean_ < 0)
    boolean_ = g_.add_rule("boolean", {{Element::text("true")}, {Element::text("false")}});
  return boolean_;
}

int32_t JsonBuiltins::null() {
  if (null_ < 0) null_ = g_.add_rule("null", {{Element::text("null")}});
  return null_;
}

int32_t JsonBuiltins::value() {
  if (value_ < 0) {
    value_ = g_.add_rule("value");
    g_.rule(value_).alternatives = {{Element::ref(object())},  {Element::ref(array())},
                                    {Element::ref(string())},  {Element::ref(number())},
                                    {Element::ref(boolean())}, {Element::ref(null())}};
  }
  return value_;
}

int32_t JsonBuiltins::object() {
  if (object_ < 0) {
    // object ::= "{" ws "}" | "{" ws member rest;  rest ::= ws "," ws member rest | ws "}"
    object_ = g_.add_rule("object");
    int32_t rest = g_.add_rule("object_rest");
    Sequence member{Element::ref(string())};
    ws(member);
    member.push_back(Element::text(":"));
    ws(member);
    member.push_back(Element::ref(value()));
    Sequence empty{Element::text("{")}, open{Element::text("{")}, more, close;
    ws(empty);
    empty.push_back(Element::text("}"));
    ws(open);
    open.insert(open.end(), member.begin(), member.end());
    open.push_back(Element::ref(rest));
    ws(more);
    more.push_back(Element::text(","));
    ws(more);
    more.insert(more.end(), member.begin(), member.end());
    more.push_back(Element::ref(rest));
    ws(close);
    close.push_back(Element::text("}"));
    g_.rule(object_).alternatives = {empty, open};
    g_.rule(rest).alternatives = {more, close};
  }
  return object_;
}

int32_t JsonBuiltins::array() {
  if (array_ < 0) {
    array_ = g_.add_rule("array");
    int32_t rest = g_.add_rule("array_rest");
    Sequence empty{Element::text("[")}, open{Element::text("[")}, more, close;
    ws(empty);
    empty.push_back(Element::text("]"));
    ws(open);
    open.push_back(Element::ref(value()));
    open.push_back(Element::ref(rest));
    ws(more);
    more.push_back(Element::text(","));
    ws(more);
    more.push_back(Element::ref(value()));
    more.push_back(Element::ref(rest));
    ws(close);
    close.push_back(Element::text("]"));
    g_.rule(array_).alternatives = {empty, open};
    g_.rule(rest).alternatives = {more, close};
  }
  return array_;
}

int32_t JsonBuiltins::integer_range(std::optional<int64_t> lo, std::optional<int64_t> hi) {
  // Magnitudes past 18 digits are clamped so the arithmetic stays in 64 bits.
  constexpr int64_t kClamp = 999999999999999999;
  if (lo) lo = std::clamp<int64_t>(*lo, -kClamp, kClamp);
  if (hi) hi = std::clamp<int64_t>(*hi, -kClamp, kClamp);
  std::vector<Sequence> alts;
  Sequence minus{Element::text("-")};
  // Negative part: -[max(1, -hi), -lo].
  if (!lo || *lo < 0) {
    uint64_t from = hi && *hi < 0 ? static_cast<uint64_t>(-*hi) : 1;
    std::optional<uint64_t> to;
    if (lo) to = static_cast<uint64_t>(-*lo);
    nonnegative_range(from, to, minus, alts);
  }
  // Non-negative part: [max(0, lo), hi].
  if (!hi || *hi >= 0) {
    uint64_t from = lo && *lo > 0 ? static_cast<uint64_t>(*lo) : 0;
    std::optional<uint64_t> to;
    if (hi) to = static_cast<uint64_t>(*hi);
    nonnegative_range(from, to, {}, alts);
  }
  return g_.add_rule("integer_range", std::move(alts));
}

}  // namespace llmserve::grammar
