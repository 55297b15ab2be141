#include "grammar/parser.h"

#include <algorithm>

namespace llmserve::grammar {

StackPool::StackPool() {
  frames_.push_back({-1, -1});
}

int32_t StackPool::push(int32_t return_pos, int32_t parent) {
  uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(return_pos)) << 32) |
                 static_cast<uint32_t>(parent);
  auto [it, inserted] = index_.try_emplace(key, static_cast<int32_t>(frames_.size()));
  if (inserted) frames_.push_back({return_pos, parent});
  return it->second;
}

void Parser::begin(ParseState& out) {
  out.heads.clear();
  out.at_bottom = false;
  work_.clear();
  if (++stamp_ == 0) {  // wrapped: forget every old stamp
    std::fill(stamps_.begin(), stamps_.end(), 0);
    stamp_ = 1;
  }
  used_ = 0;
  if (keys_.empty()) {
    keys_.resize(64);
    stamps_.assign(64, 0);
  }
}

void Parser::add(int32_t pos, int32_t stack) {
  uint64_t key =
      (static_cast<uint64_t>(static_cast<uint32_t>(pos)) << 32) | static_cast<uint32_t>(stack);
  if ((used_ + 1) * 2 > keys_.size()) {
    // Grow, re-inserting this closure's keys.
    std::vector<uint64_t> old_keys;
    for (size_t i = 0; i < keys_.size(); ++i) {
      if (stamps_[i] == stamp_) old_keys.push_back(keys_[i]);
    }
    keys_.assign(keys_.size() * 2, 0);
    stamps_.assign(keys_.size(), 0);
    size_t mask = keys_.size() - 1;
    for (uint64_t k : old_keys) {
      size_t i = (k * 0x9E3779B97F4A7C15ULL) >> 20 & mask;
      while (stamps_[i] == stamp_) i = (i + 1) & mask;
      keys_[i] = k;
      stamps_[i] = stamp_;
    }
  }
  size_t mask = keys_.size() - 1;
  size_t i = (key * 0x9E3779B97F4A7C15ULL) >> 20 & mask;
  while (stamps_[i] == stamp_) {
    if (keys_[i] == key) return;
    i = (i + 1) & mask;
  }
  keys_[i] = key;
  stamps_[i] = stamp_;
  ++used_;
  work_.push_back({pos, stack});
}

void Parser::run(StackPool& pool, ParseState& out) {
  using Op = FlatGrammar::Op;
  while (!work_.empty()) {
    Head h = work_.back();
    work_.pop_back();
    const auto& item = g_->items[static_cast<size_t>(h.pos)];
    switch (item.op) {
      case Op::kBytes:
        out.heads.push_back(h);
        break;
      case Op::kRef: {
        int32_t next = h.pos + 1;
        // A call in tail position returns straight to our caller: no frame.
        int32_t child = g_->items[static_cast<size_t>(next)].op == Op::kEnd
                            ? h.stack
                            : pool.push(next, h.stack);
        for (int32_t s : g_->starts[static_cast<size_t>(item.arg)]) add(s, child);
        break;
      }
      case Op::kEnd:
        if (h.stack == 0) {
          out.at_bottom = true;
        } else {
          add(pool.return_pos(h.stack), pool.parent(h.stack));
        }
        break;
    }
  }
  std::sort(out.heads.begin(), out.heads.end());
}

void Parser::start(int32_t rule, int32_t stack, StackPool& pool, ParseState& out) {
  begin(out);
  for (int32_t s : g_->starts[static_cast<size_t>(rule)]) add(s, stack);
  run(pool, out);
}

void Parser::from_head(Head head, StackPool& pool, ParseState& out) {
  begin(out);
  add(head.pos, head.stack);
  run(pool, out);
}

void Parser::advance(const ParseState& in, uint8_t byte, StackPool& pool, ParseState& out) {
  begin(out);
  for (const Head& h : in.heads) {
    const auto& item = g_->items[static_cast<size_t>(h.pos)];
    if (g_->sets[static_cast<size_t>(item.arg)].has(byte)) add(h.pos + 1, h.stack);
  }
  run(pool, out);
}

bool Parser::advance_all(const ParseState& in, std::string_view bytes, StackPool& pool,
                         ParseState& out) {
  if (bytes.empty()) {
    out = in;
    return in.alive();
  }
  const ParseState* cur = &in;
  for (size_t i = 0; i < bytes.size(); ++i) {
    ParseState& next = i + 1 == bytes.size() ? out : tmp_[i & 1];
    advance(*cur, static_cast<uint8_t>(bytes[i]), pool, next);
    if (next.heads.empty() && (i + 1 < bytes.size() || !next.at_bottom)) return false;
    cur = &next;
  }
  return true;
}

}  // namespace llmserve::grammar
