#include "grammar/grammar.h"

#include <algorithm>

#include <fmt/format.h>

namespace llmserve::grammar {

Element Element::byte_set(const ByteSet& s) {
  Element e;
  e.kind = Kind::kBytes;
  e.bytes = s;
  return e;
}

Element Element::text(std::string_view bytes) {
  Element e;
  e.kind = Kind::kLiteral;
  e.literal = std::string(bytes);
  return e;
}

Element Element::codepoint_class(std::vector<CodepointRange> ranges, bool negated) {
  std::sort(ranges.begin(), ranges.end(),
            [](const CodepointRange& a, const CodepointRange& b) { return a.lo < b.lo; });
  std::vector<CodepointRange> merged;
  for (const auto& r : ranges) {
    if (!merged.empty() && r.lo <= merged.back().hi + 1) {
      merged.back().hi = std::max(merged.back().hi, r.hi);
    } else {
      merged.push_back(r);
    }
  }
  if (negated) {
    std::vector<CodepointRange> complement;
    uint32_t next = 0;
    for (const auto& r : merged) {
      if (r.lo > next) complement.push_back({next, r.lo - 1});
      next = r.hi + 1;
    }
    if (next <= kMaxCodepoint) complement.push_back({next, kMaxCodepoint});
    merged = std::move(complement);
  }
  Element e;
  e.kind = Kind::kCodepoints;
  e.codepoints = std::move(merged);
  return e;
}

Element Element::ref(int32_t rule) {
  Element e;
  e.kind = Kind::kRule;
  e.rule = rule;
  return e;
}

Element Element::repeat(int32_t rule, int32_t min, int32_t max) {
  Element e;
  e.kind = Kind::kRepeat;
  e.rule = rule;
  e.min = min;
  e.max = max;
  return e;
}

int32_t Grammar::add_rule(std::string_view name) {
  std::string unique(name);
  for (int n = 2; find_rule(unique) >= 0; ++n) unique = fmt::format("{}_{}", name, n);
  rules_.push_back(Rule{std::move(unique), {}});
  return num_rules() - 1;
}

int32_t Grammar::add_rule(std::string_view name, std::vector<Sequence> alternatives) {
  int32_t id = add_rule(name);
  rules_.back().alternatives = std::move(alternatives);
  return id;
}

int32_t Grammar::find_rule(std::string_view name) const {
  for (size_t i = 0; i < rules_.size(); ++i) {
    if (rules_[i].name == name) return static_cast<int32_t>(i);
  }
  return -1;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

namespace {

// Bytes and code points are written as \xHH / \uHHHH / \UHHHHHHHH outside printable ASCII so the
// dump survives any terminal, and re-parses (ebnf.h accepts the same escapes).
std::string escape_char(uint32_t c, bool in_class) {
  if (c == '\\' || (in_class ? (c == ']' || c == '-' || c == '^') : c == '"')) {
    return fmt::format("\\{}", static_cast<char>(c));
  }
  if (c >= 0x20 && c < 0x7F) return std::string(1, static_cast<char>(c));
  if (c <= 0xFF) return fmt::format("\\x{:02X}", c);
  if (c <= 0xFFFF) return fmt::format("\\u{:04X}", c);
  return fmt::format("\\U{:08X}", c);
}

std::string element_string(const Grammar& g, const Element& e) {
  switch (e.kind) {
    case Element::Kind::kBytes: {
      // Byte sets print as byte classes, [\x00-\xFF] style (ebnf.h reads "[...]" of bytes only
      // when every member is below 0x80; a dump is for reading first).
      std::string out = "[";
      for (int b = 0; b < 256; ++b) {
        if (!e.bytes.has(static_cast<uint8_t>(b))) continue;
        int end = b;
        while (end + 1 < 256 && e.bytes.has(static_cast<uint8_t>(end + 1))) ++end;
        out += escape_char(static_cast<uint32_t>(b), true);
        if (end > b) out += "-" + escape_char(static_cast<uint32_t>(end), true);
        b = end;
      }
      return out + "]";
    }
    case Element::Kind::kLiteral: {
      std::string out = "\"";
      for (char c : e.literal) out += escape_char(static_cast<uint8_t>(c), false);
      return out + "\"";
    }
    case Element::Kind::kCodepoints: {
      std::string out = "[";
      for (const auto& r : e.codepoints) {
        out += escape_char(r.lo, true);
        if (r.hi > r.lo) out += "-" + escape_char(r.hi, true);
      }
      return out + "]";
    }
    case Element::Kind::kRule:
      return g.rule(e.rule).name;
    case Element::Kind::kRepeat:
      if (e.max < 0) return fmt::format("{}{{{},}}", g.rule(e.rule).name, e.min);
      return fmt::format("{}{{{},{}}}", g.rule(e.rule).name, e.min, e.max);
  }
  return {};
}

}  // namespace

std::string Grammar::to_string() const {
  std::string out;
  for (int32_t id = 0; id < num_rules(); ++id) {
    const Rule& r = rule(id);
    out += r.name + " ::=";
    for (size_t a = 0; a < r.alternatives.size(); ++a) {
      if (a > 0) out += " |";
      if (r.alternatives[a].empty()) out += " \"\"";
      for (const auto& e : r.alternatives[a]) out += " " + element_string(*this, e);
    }
    out += "\n";
  }
  return out;
}

}  // namespace llmserve::grammar
