#include "grammar/compiled_grammar.h"

#include <algorithm>
#include <atomic>
#include <thread>

#include "grammar/parser.h"

namespace llmserve::grammar {

CompiledGrammar::CompiledGrammar(FlatGrammar flat, std::shared_ptr<const TokenizerInfo> tokenizer)
    : flat_(std::move(flat)),
      tokenizer_(std::move(tokenizer)),
      rule_of_(flat_.items.size()),
      tables_(flat_.items.size()),
      published_(flat_.items.size()) {
  // Items of a rule's alternative run up to its kEnd, which names the rule.
  for (size_t i = flat_.items.size(); i-- > 0;) {
    const auto& item = flat_.items[i];
    rule_of_[i] = item.op == FlatGrammar::Op::kEnd ? item.arg : rule_of_[i + 1];
  }
}

Status CompiledGrammar::compile(const Grammar& grammar,
                                std::shared_ptr<const TokenizerInfo> tokenizer,
                                std::shared_ptr<const CompiledGrammar>& out,
                                const CompileOptions& options) {
  FlatGrammar flat;
  if (Status s = flatten(grammar, flat); !s.is_ok()) return s;
  auto compiled = std::make_shared<CompiledGrammar>(std::move(flat), std::move(tokenizer));
  std::vector<int32_t> eager;
  for (size_t pos = 0; pos < compiled->flat_.items.size() &&
                       static_cast<int32_t>(eager.size()) < options.eager_positions;
       ++pos) {
    if (compiled->flat_.items[pos].op == FlatGrammar::Op::kBytes)
      eager.push_back(static_cast<int32_t>(pos));
  }
  // Positions are independent (each walk has its own parser and stack pool over the shared,
  // read-only vocabulary trie): computed by a few short-lived threads, then published in one
  // pass. Not OpenMP: a team started from a request thread stays behind, and its idle workers
  // throttled the engine's own OpenMP team (12 % off the next decode steps on 2 cores).
  std::vector<std::unique_ptr<PositionTokens>> computed(eager.size());
  std::atomic<size_t> next{0};
  const auto work = [&] {
    for (size_t i = next++; i < eager.size(); i = next++) computed[i] = compiled->compute(eager[i]);
  };
  const size_t helpers =
      std::min<size_t>(std::max(1u, std::thread::hardware_concurrency()) - 1, eager.size() / 4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < helpers; ++t) threads.emplace_back(work);
  work();
  for (std::thread& t : threads) t.join();
  for (size_t i = 0; i < eager.size(); ++i) {
    const auto pos = static_cast<size_t>(eager[i]);
    compiled->tables_[pos] = std::move(computed[i]);
    compiled->published_[pos].store(compiled->tables_[pos].get(), std::memory_order_release);
  }
  out = std::move(compiled);
  return Status::ok();
}

const PositionTokens& CompiledGrammar::tokens_at(int32_t pos) const {
  auto& slot = published_[static_cast<size_t>(pos)];
  if (const PositionTokens* t = slot.load(std::memory_order_acquire)) return *t;
  // Computed outside the lock, so matchers needing other positions are not held up; two
  // threads racing for one position compute it twice and the first to publish wins.
  std::unique_ptr<PositionTokens> fresh = compute(pos);
  std::lock_guard<std::mutex> lock(mu_);
  if (const PositionTokens* t = slot.load(std::memory_order_relaxed)) return *t;
  tables_[static_cast<size_t>(pos)] = std::move(fresh);
  slot.store(tables_[static_cast<size_t>(pos)].get(), std::memory_order_release);
  return *tables_[static_cast<size_t>(pos)];
}

std::unique_ptr<PositionTokens> CompiledGrammar::compute(int32_t pos) const {
  const TokenizerInfo& tok = *tokenizer_;
  auto trie = tok.trie();
  auto trie_tokens = tok.trie_tokens();
  const ByteSet& follow = flat_.follow[static_cast<size_t>(rule_of(pos))];

  StackPool pool;
  Parser parser(flat_);
  // levels[d]: the state after the first d bytes of the current trie branch; uncertain[d]: some
  // path already left the rule before byte d with a byte that may follow it.
  std::vector<ParseState> levels(static_cast<size_t>(tok.max_token_length()) + 1);
  std::vector<char> uncertain(levels.size());
  parser.from_head(Head{pos, 0}, pool, levels[0]);

  std::vector<int32_t> accepted;
  auto result = std::make_unique<PositionTokens>();
  auto add_tokens = [&](const TokenizerInfo::TrieNode& node, std::vector<int32_t>& to) {
    for (int32_t t = node.tokens_begin; t < node.tokens_end; ++t) {
      to.push_back(trie_tokens[static_cast<size_t>(t)]);
    }
  };
  for (int32_t i = 1; i < static_cast<int32_t>(trie.size());) {
    const auto& node = trie[static_cast<size_t>(i)];
    auto d = static_cast<size_t>(node.depth);
    const ParseState& parent = levels[d - 1];
    bool unsure = uncertain[d - 1] || (parent.at_bottom && follow.has(node.byte));
    ParseState& cur = levels[d];
    if (parent.heads.empty()) {
      cur.heads.clear();
      cur.at_bottom = false;
    } else {
      parser.advance(parent, node.byte, pool, cur);
    }
    if (!cur.alive()) {
      if (unsure) {
        for (int32_t j = i; j < node.subtree_end; ++j) {
          add_tokens(trie[static_cast<size_t>(j)], result->uncertain);
        }
      }
      i = node.subtree_end;
      continue;
    }
    uncertain[d] = unsure;
    // Alive here: the token ending at this node either stays inside the rule or leaves it
    // exactly at its last byte; either way its caller cannot reject it.
    add_tokens(node, accepted);
    ++i;
  }
  std::sort(result->uncertain.begin(), result->uncertain.end());
  if (accepted.size() < static_cast<size_t>(tok.mask_words())) {
    std::sort(accepted.begin(), accepted.end());
    result->accepted_ids = std::move(accepted);
  } else {
    result->accepted_mask.assign(static_cast<size_t>(tok.mask_words()), 0);
    for (int32_t id : accepted) {
      result->accepted_mask[static_cast<size_t>(id) >> 5] |= uint32_t{1} << (id & 31);
    }
  }
  return result;
}

std::shared_ptr<const std::vector<uint32_t>> CompiledGrammar::shared_mask(
    const std::string& key) const {
  const std::lock_guard lock(masks_mu_);
  const auto it = masks_.find(key);
  return it == masks_.end() ? nullptr : it->second;
}

void CompiledGrammar::share_mask(std::string key,
                                 std::shared_ptr<const std::vector<uint32_t>> mask) const {
  const std::lock_guard lock(masks_mu_);
  const size_t bytes = mask->size() * sizeof(uint32_t);
  if ((masks_.size() + 1) * bytes > kSharedMaskBytes) masks_.clear();
  masks_.emplace(std::move(key), std::move(mask));
}

}  // namespace llmserve::grammar
