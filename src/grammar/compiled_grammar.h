// CompiledGrammar: a Grammar lowered for one vocabulary, with each position's tokens decided once.
//
// For every parser position (a kBytes item of the flat grammar) the vocabulary splits three ways
// when the parse starts at that position with nothing known about the stack below its rule:
//   accepted   some path consumes the whole token inside the rule (or leaves the rule exactly at
//              the token's end): allowed whatever the caller is;
//   rejected   every path dies inside the rule: never allowed;
//   uncertain  some path leaves the rule with bytes of the token still to match, and the next
//              byte can follow the rule somewhere in the grammar (FlatGrammar::follow): only the
//              actual stack can tell.
// The idea is XGrammar's (context-independent tokens). A matcher's step then ORs the accepted
// sets of its heads' positions and checks only the uncertain tokens against its real stack,
// instead of walking the vocabulary. The split is computed with one preorder walk of the
// vocabulary trie per position, skipping rejected subtrees.
//
// Cost: positions whose byte set is narrow (literal keys, punctuation) visit a few trie nodes;
// positions inside an open string visit most of the trie once (~10 ms for GPT-2's 50k tokens).
// compile() decides up to CompileOptions::eager_positions positions up front; the rest (huge
// bounded repetitions) are decided on first use, under a lock. Accepted sets are stored as a list
// of ids when short and as a bitmask otherwise.
//
// Thread-safety: immutable after compile() apart from the lazily filled tables, which are
// published once under a mutex; share it across requests and threads (std::shared_ptr).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "grammar/flat_grammar.h"
#include "grammar/grammar.h"
#include "grammar/tokenizer_info.h"

namespace llmserve::grammar {

struct PositionTokens {
  std::vector<int32_t> accepted_ids;    // either this...
  std::vector<uint32_t> accepted_mask;  // ...or this (mask_words() words), never both
  std::vector<int32_t> uncertain;       // sorted ids
};

struct CompileOptions {
  int32_t eager_positions = 4096;
};

class CompiledGrammar {
 public:
  // kInvalidArgument (naming the rule) for a grammar the parser cannot run.
  static Status compile(const Grammar& grammar, std::shared_ptr<const TokenizerInfo> tokenizer,
                        std::shared_ptr<const CompiledGrammar>& out,
                        const CompileOptions& options = {});

  const FlatGrammar& flat() const { return flat_; }
  const TokenizerInfo& tokenizer() const { return *tokenizer_; }
  // The split of the vocabulary at a kBytes position.
  const PositionTokens& tokens_at(int32_t pos) const;
  // The rule each item belongs to.
  int32_t rule_of(int32_t pos) const { return rule_of_[static_cast<size_t>(pos)]; }

  // Next-token masks by parse state, shared by every matcher of this grammar (thread-safe): the
  // requests of one schema pass through the same states, and a state the per-position tables
  // leave uncertain costs up to milliseconds to decide (docs/performance.md). `key` spells the
  // state without a matcher's own stack-frame ids (GrammarMatcher). Bounded by kSharedMaskBytes
  // of masks (~650 states at GPT-2's 50k-token vocabulary, ~260 at Llama 3's 128k), dropped all
  // at once when full; so the 64 grammars StructuredOutputs caches hold at most 256 MB of masks.
  // Null when absent.
  static constexpr size_t kSharedMaskBytes = size_t{4} << 20;
  std::shared_ptr<const std::vector<uint32_t>> shared_mask(const std::string& key) const;
  void share_mask(std::string key, std::shared_ptr<const std::vector<uint32_t>> mask) const;

  CompiledGrammar(FlatGrammar flat, std::shared_ptr<const TokenizerInfo> tokenizer);

 private:
  std::unique_ptr<PositionTokens> compute(int32_t pos) const;

  FlatGrammar flat_;
  std::shared_ptr<const TokenizerInfo> tokenizer_;
  std::vector<int32_t> rule_of_;
  mutable std::mutex mu_;
  mutable std::vector<std::unique_ptr<PositionTokens>> tables_;
  mutable std::vector<std::atomic<const PositionTokens*>> published_;
  mutable std::mutex masks_mu_;
  mutable std::unordered_map<std::string, std::shared_ptr<const std::vector<uint32_t>>> masks_;
};

}  // namespace llmserve::grammar
