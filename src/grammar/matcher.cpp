#include "grammar/matcher.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

namespace llmserve::grammar {
namespace {

// Enough for the few distinct states of a document's strings and numbers; cleared when full.
constexpr size_t kMaskCacheEntries = 64;

std::string state_key(const ParseState& s) {
  std::string key(s.heads.size() * sizeof(Head) + 1, '\0');
  if (!s.heads.empty()) std::memcpy(key.data(), s.heads.data(), s.heads.size() * sizeof(Head));
  key.back() = s.at_bottom ? '\1' : '\0';
  return key;
}

// The state spelled without the pool's frame ids, so equal states of two matchers (each with its
// own StackPool) have equal keys: each head as its position and its stack's return positions down
// to the bottom, the heads sorted, then at_bottom.
std::string shared_state_key(const ParseState& s, const StackPool& pool) {
  std::vector<std::string> heads;
  heads.reserve(s.heads.size());
  for (const Head& h : s.heads) {
    std::string one(reinterpret_cast<const char*>(&h.pos), sizeof h.pos);
    for (int32_t f = h.stack; f != 0; f = pool.parent(f)) {
      const int32_t ret = pool.return_pos(f);
      one.append(reinterpret_cast<const char*>(&ret), sizeof ret);
    }
    const int32_t end = -1;  // ends the head
    one.append(reinterpret_cast<const char*>(&end), sizeof end);
    heads.push_back(std::move(one));
  }
  std::sort(heads.begin(), heads.end());
  std::string key;
  for (const std::string& one : heads) key += one;
  key += s.at_bottom ? '\1' : '\0';
  return key;
}

}  // namespace

GrammarMatcher::GrammarMatcher(std::shared_ptr<const CompiledGrammar> grammar,
                               int max_rollback_tokens)
    : grammar_(std::move(grammar)),
      max_rollback_(std::max(0, max_rollback_tokens)),
      parser_(grammar_->flat()) {
  reset();
}

void GrammarMatcher::reset() {
  terminated_ = false;
  history_.clear();
  parser_.start(grammar_->flat().root, 0, pool_, state_);
}

void GrammarMatcher::push_history() {
  if (max_rollback_ == 0) return;
  if (history_.size() == static_cast<size_t>(max_rollback_)) history_.pop_front();
  history_.push_back({state_, terminated_});
}

bool GrammarMatcher::accept_token(int32_t id) {
  const TokenizerInfo& tok = grammar_->tokenizer();
  if (terminated_ || id < 0 || id >= tok.vocab_size()) return false;
  if (tok.is_stop_token(id)) {
    if (!state_.at_bottom) return false;
    push_history();
    terminated_ = true;
    return true;
  }
  const std::string& bytes = tok.token_bytes(id);
  if (bytes.empty()) return false;
  return accept_bytes(bytes);
}

bool GrammarMatcher::accept_bytes(std::string_view bytes) {
  if (terminated_ || bytes.empty()) return false;
  if (!parser_.advance_all(state_, bytes, pool_, scratch_[0])) return false;
  push_history();
  std::swap(state_, scratch_[0]);
  return true;
}

void GrammarMatcher::rollback(int num_tokens) {
  if (num_tokens < 0 || static_cast<size_t>(num_tokens) > history_.size()) {
    throw Error(StatusCode::kOutOfRange,
                fmt::format("rollback of {} tokens, but only {} can be undone", num_tokens,
                            history_.size()));
  }
  if (num_tokens == 0) return;
  history_.resize(history_.size() - static_cast<size_t>(num_tokens) + 1);
  state_ = std::move(history_.back().state);
  terminated_ = history_.back().terminated;
  history_.pop_back();
}

bool GrammarMatcher::token_allowed(Head head, const std::string& bytes) const {
  parser_.from_head(head, pool_, scratch_[1]);
  return parser_.advance_all(scratch_[1], bytes, pool_, scratch_[0]);
}

void GrammarMatcher::compute_mask(std::vector<uint32_t>& mask) const {
  const TokenizerInfo& tok = grammar_->tokenizer();
  mask.assign(static_cast<size_t>(tok.mask_words()), 0);
  // Heads are sorted by position: each position's accepted set is applied once.
  int32_t last_pos = -1;
  for (const Head& h : state_.heads) {
    if (h.pos == last_pos) continue;
    last_pos = h.pos;
    const PositionTokens& t = grammar_->tokens_at(h.pos);
    if (!t.accepted_mask.empty()) {
      for (size_t w = 0; w < mask.size(); ++w) mask[w] |= t.accepted_mask[w];
    } else {
      for (int32_t id : t.accepted_ids) mask[static_cast<size_t>(id) >> 5] |= 1u << (id & 31);
    }
  }
  for (const Head& h : state_.heads) {
    for (int32_t id : grammar_->tokens_at(h.pos).uncertain) {
      uint32_t bit = 1u << (id & 31);
      uint32_t& word = mask[static_cast<size_t>(id) >> 5];
      if ((word & bit) == 0 && token_allowed(h, tok.token_bytes(id))) word |= bit;
    }
  }
  if (state_.at_bottom) {
    for (int32_t id : tok.stop_token_ids()) mask[static_cast<size_t>(id) >> 5] |= 1u << (id & 31);
  }
}

void GrammarMatcher::fill_next_token_bitmask(std::span<uint32_t> mask) const {
  auto words = static_cast<size_t>(mask_words());
  if (mask.size() < words) {
    throw Error(
        StatusCode::kInvalidArgument,
        fmt::format("token bitmask has {} words, the vocabulary needs {}", mask.size(), words));
  }
  std::fill(mask.begin() + static_cast<std::ptrdiff_t>(words), mask.end(), 0u);
  if (terminated_) {
    std::fill(mask.begin(), mask.begin() + static_cast<std::ptrdiff_t>(words), 0u);
    return;
  }
  std::string key = state_key(state_);
  auto it = mask_cache_.find(key);
  if (it == mask_cache_.end()) {
    if (mask_cache_.size() >= kMaskCacheEntries) mask_cache_.clear();
    it = mask_cache_.emplace(std::move(key), std::vector<uint32_t>{}).first;
    // Another matcher of this grammar may have decided the state already.
    std::string shared_key = shared_state_key(state_, pool_);
    if (auto shared = grammar_->shared_mask(shared_key)) {
      it->second = *shared;
    } else {
      compute_mask(it->second);
      grammar_->share_mask(std::move(shared_key),
                           std::make_shared<const std::vector<uint32_t>>(it->second));
    }
  }
  std::copy(it->second.begin(), it->second.end(), mask.begin());
}

}  // namespace llmserve::grammar
