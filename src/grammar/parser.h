// The byte-level parser: a set of parse heads over a FlatGrammar, advanced one byte at a time.
//
// A head is a position (a kBytes item: the next byte must be in its set) plus a call stack. Stacks
// are persistent linked frames, hash-consed in a StackPool, so heads share their common tails
// and two heads with equal stacks have equal ids; a whole parse state is then a small sorted
// vector of (position, frame id) pairs that can be compared and hashed (the matcher caches masks
// by it). Calls in tail position push no frame, so repetition written as right recursion (what
// flat_grammar.h produces) keeps the stack flat.
//
// Frame 0 is the bottom. Reaching the end of the outermost rule with frame 0 sets at_bottom:
// for a matcher, the document is complete; for the precomputation of one position
// (compiled_grammar.h), the rule was left and what follows depends on the caller.
//
// The grammar must be free of left recursion (flatten() checks), or closure would not end.
#pragma once

#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "grammar/flat_grammar.h"

namespace llmserve::grammar {

struct Head {
  int32_t pos = 0;
  int32_t stack = 0;
  bool operator==(const Head&) const = default;
  auto operator<=>(const Head&) const = default;
};

struct ParseState {
  std::vector<Head> heads;  // sorted, distinct
  bool at_bottom = false;
  bool alive() const { return at_bottom || !heads.empty(); }
  bool operator==(const ParseState&) const = default;
};

class StackPool {
 public:
  StackPool();
  // The frame "return to pos, then continue with parent", created once.
  int32_t push(int32_t return_pos, int32_t parent);
  int32_t return_pos(int32_t frame) const { return frames_[static_cast<size_t>(frame)].ret; }
  int32_t parent(int32_t frame) const { return frames_[static_cast<size_t>(frame)].parent; }
  size_t size() const { return frames_.size(); }

 private:
  struct Frame {
    int32_t ret;
    int32_t parent;
  };
  std::vector<Frame> frames_;
  std::unordered_map<uint64_t, int32_t> index_;
};

// Scratch space for closures; one per thread of use, reusable across states and pools.
class Parser {
 public:
  explicit Parser(const FlatGrammar& grammar) : g_(&grammar) {}

  // The state at the start of `rule`, returning into `stack` when it ends.
  void start(int32_t rule, int32_t stack, StackPool& pool, ParseState& out);
  // The state of one head (a kBytes position) alone.
  void from_head(Head head, StackPool& pool, ParseState& out);
  // Consumes one byte. out is alive() iff the byte is allowed.
  void advance(const ParseState& in, uint8_t byte, StackPool& pool, ParseState& out);
  // Consumes several bytes; false (and out unspecified) as soon as the state dies.
  bool advance_all(const ParseState& in, std::string_view bytes, StackPool& pool, ParseState& out);

 private:
  void begin(ParseState& out);
  void add(int32_t pos, int32_t stack);
  void run(StackPool& pool, ParseState& out);

  const FlatGrammar* g_;
  std::vector<Head> work_;
  // Visited (pos, stack) pairs of the current closure: open addressing, cleared by stamping.
  std::vector<uint64_t> keys_;
  std::vector<uint32_t> stamps_;
  uint32_t stamp_ = 0;
  size_t used_ = 0;
  ParseState tmp_[2];
};

}  // namespace llmserve::grammar
