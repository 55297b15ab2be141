// GrammarMatcher: one request's position in a CompiledGrammar, advanced token by token.
//
// accept_token() runs the token's bytes through the byte-level parser (parser.h); a token whose
// bytes the grammar cannot take leaves the state unchanged and returns false. A stop token is
// accepted only where the grammar may end, and terminates the matcher: nothing is accepted after
// it. Special tokens (no bytes) are never accepted.
//
// fill_next_token_bitmask() ORs the precomputed accepted sets of the state's positions, then
// checks each position's uncertain tokens against the real stack (compiled_grammar.h). Masks are
// cached per parse state: inside a string or a number the state repeats from step to step (stack
// frames are hash-consed, calls in tail position push none), so most steps of a document cost a
// copy.
//
// rollback(n) undoes the last n accepted tokens, up to max_rollback_tokens back (for speculative
// decoding); the history keeps only that many states.
//
// Not thread-safe; cheap to create (one parse closure at the root). The mask layout is the one a
// sampler uploads: (vocab_size + 31) / 32 uint32 words, bit i % 32 of word i / 32 = token i.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "grammar/compiled_grammar.h"
#include "grammar/parser.h"

namespace llmserve::grammar {

class GrammarMatcher {
 public:
  explicit GrammarMatcher(std::shared_ptr<const CompiledGrammar> grammar,
                          int max_rollback_tokens = 16);

  bool accept_token(int32_t id);
  // Feeds raw bytes (no tokenizer involved): all or nothing, like accept_token. For tests and
  // for forcing text (e.g. a tool call's prefix).
  bool accept_bytes(std::string_view bytes);
  // mask.size() must be at least mask_words(); words past the vocabulary's last token are zeroed.
  void fill_next_token_bitmask(std::span<uint32_t> mask) const;
  bool can_terminate() const { return !terminated_ && state_.at_bottom; }
  bool is_terminated() const { return terminated_; }
  // Undoes the last num_tokens accept_token/accept_bytes calls that succeeded; at most
  // max_rollback_tokens() (and at most as many as were accepted). Throws Error(kOutOfRange)
  // beyond that.
  void rollback(int num_tokens);
  int max_rollback_tokens() const { return max_rollback_; }
  void reset();

  int32_t mask_words() const { return grammar_->tokenizer().mask_words(); }
  const CompiledGrammar& grammar() const { return *grammar_; }

 private:
  struct Saved {
    ParseState state;
    bool terminated;
  };
  void push_history();
  bool token_allowed(Head head, const std::string& bytes) const;
  void compute_mask(std::vector<uint32_t>& mask) const;

  std::shared_ptr<const CompiledGrammar> grammar_;
  int max_rollback_;
  // Frames only grow; states in the history stay valid.
  mutable StackPool pool_;
  mutable Parser parser_;
  ParseState state_;
  bool terminated_ = false;
  std::deque<Saved> history_;
  mutable ParseState scratch_[2];
  // Masks by parse state (the heads' raw bytes plus at_bottom), bounded.
  mutable std::unordered_map<std::string, std::vector<uint32_t>> mask_cache_;
};

}  // namespace llmserve::grammar
