// FlatGrammar: a Grammar lowered to what the byte-level parser walks.
//
// Every alternative of every rule becomes a run of items in one array, ended by kEnd: kBytes
// (one byte out of a set), kRef (call a rule). A parser position is an index into that array.
// Lowering removes everything else:
//   - literals become one kBytes item per byte;
//   - code point classes become their UTF-8 byte sequences, split into alternatives of the
//     enclosing rule (so a string body stays one rule) or, when that would multiply a rule past a
//     bound, a helper rule;
//   - x{m,n} becomes m copies of x (x's elements inlined when x is one short alternative) then a
//     chain of optional helper rules, x{m,} a right-recursive helper star ::= x star | "". The
//     alternatives of x are copied into the helper so the recursion is a tail call: the parser
//     does not grow its stack per repetition and the precomputed token sets of the helper's
//     positions see whole runs of x (compiled_grammar.h).
// Then it is checked: every rule reachable from the root must derive some finite string, and no
// rule may call itself without consuming a byte first (left recursion; the parser would loop).
// Errors name the rule.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "grammar/grammar.h"

namespace llmserve::grammar {

struct FlatGrammar {
  enum class Op : uint8_t { kBytes, kRef, kEnd };
  struct Item {
    Op op = Op::kEnd;
    int32_t arg = 0;  // kBytes: index into sets; kRef: the rule called; kEnd: the rule ended
  };
  std::vector<Item> items;
  std::vector<ByteSet> sets;
  std::vector<std::vector<int32_t>> starts;  // per rule: the first item of each alternative
  std::vector<std::string> names;            // per rule
  int32_t root = -1;
  // Per rule: the bytes that can come right after the rule in some derivation from the root,
  // and whether the document can end right after it. Used to discard tokens early.
  std::vector<ByteSet> follow;
  std::vector<bool> follow_end;

  int32_t num_rules() const { return static_cast<int32_t>(starts.size()); }
};

// Lowers and checks. kInvalidArgument naming the rule for a grammar no parser can run.
Status flatten(const Grammar& grammar, FlatGrammar& out);

}  // namespace llmserve::grammar
