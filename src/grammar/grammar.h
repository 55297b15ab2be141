// Grammar: the intermediate form every constraint (JSON Schema, regex, EBNF, choice) compiles to.
//
// A grammar is a list of rules; a rule is a list of alternatives; an alternative is a sequence of
// elements. Elements are terminals over UTF-8 bytes (a byte set, a literal string, a code point
// class) or non-terminals (a reference to a rule, or a repetition of a rule {min,max}). Matching
// is always over bytes, because a model's tokens may split a code point: a code point class is
// lowered to alternatives of byte sequences (flat_grammar.h) before anything runs.
//
// The compilers build grammars through the small API below and never look at the flat form. A
// Grammar is a value: cheap to copy for the sizes schemas produce, immutable once handed to
// CompiledGrammar.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace llmserve::grammar {

// A set of byte values, 256 bits.
class ByteSet {
 public:
  static ByteSet of(uint8_t b) {
    ByteSet s;
    s.add(b);
    return s;
  }
  static ByteSet range(uint8_t lo, uint8_t hi) {
    ByteSet s;
    s.add_range(lo, hi);
    return s;
  }
  void add(uint8_t b) { bits_[b >> 6] |= uint64_t{1} << (b & 63); }
  void add_range(uint8_t lo, uint8_t hi) {
    for (int b = lo; b <= hi; ++b) add(static_cast<uint8_t>(b));
  }
  void add_all(const ByteSet& o) {
    for (int i = 0; i < 4; ++i) bits_[i] |= o.bits_[i];
  }
  bool has(uint8_t b) const { return (bits_[b >> 6] >> (b & 63)) & 1; }
  bool empty() const { return (bits_[0] | bits_[1] | bits_[2] | bits_[3]) == 0; }
  bool operator==(const ByteSet&) const = default;

 private:
  std::array<uint64_t, 4> bits_{};
};

// An inclusive range of Unicode scalar values.
struct CodepointRange {
  uint32_t lo = 0;
  uint32_t hi = 0;
};

// The largest scalar value; surrogates (D800-DFFF) are never produced.
inline constexpr uint32_t kMaxCodepoint = 0x10FFFF;

struct Element {
  enum class Kind { kBytes, kLiteral, kCodepoints, kRule, kRepeat };
  Kind kind = Kind::kBytes;
  ByteSet bytes;                           // kBytes
  std::string literal;                     // kLiteral: raw bytes, non-empty
  std::vector<CodepointRange> codepoints;  // kCodepoints: sorted, disjoint, non-empty
  int32_t rule = -1;                       // kRule, kRepeat
  int32_t min = 0;                         // kRepeat
  int32_t max = -1;                        // kRepeat: -1 = unbounded

  static Element byte_set(const ByteSet& s);
  static Element text(std::string_view bytes);
  // ranges in any order, possibly overlapping; negated = every scalar value not in them.
  static Element codepoint_class(std::vector<CodepointRange> ranges, bool negated = false);
  static Element ref(int32_t rule);
  static Element repeat(int32_t rule, int32_t min, int32_t max);
};

using Sequence = std::vector<Element>;

struct Rule {
  std::string name;
  std::vector<Sequence> alternatives;  // an empty Sequence is the empty string
};

class Grammar {
 public:
  // Adds an empty rule; the name is made unique ("name", "name_2", ...). Returns its id.
  int32_t add_rule(std::string_view name);
  // Adds a rule with these alternatives.
  int32_t add_rule(std::string_view name, std::vector<Sequence> alternatives);
  // -1 when absent.
  int32_t find_rule(std::string_view name) const;

  Rule& rule(int32_t id) { return rules_[static_cast<size_t>(id)]; }
  const Rule& rule(int32_t id) const { return rules_[static_cast<size_t>(id)]; }
  int32_t num_rules() const { return static_cast<int32_t>(rules_.size()); }

  int32_t root() const { return root_; }
  void set_root(int32_t id) { root_ = id; }

  // The grammar in the EBNF dialect of ebnf.h (for tests, logs and docs); parses back to an
  // equivalent grammar.
  std::string to_string() const;

 private:
  std::vector<Rule> rules_;
  int32_t root_ = -1;
};

// Appends the UTF-8 encoding of a scalar value.
void append_utf8(std::string& out, uint32_t cp);

}  // namespace llmserve::grammar
