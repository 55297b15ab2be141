// BlockPool: see block_pool.h for the block states and the prefix-cache rules.
#include "engine/block_pool.h"

#include <algorithm>
#include <limits>

namespace llmserve {
namespace {

constexpr uint64_t kRootHash = 0;  // the "parent hash" of a sequence's first block

uint64_t mix64(uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// The token ids of a sequence's full block number block_index.
std::span<const int32_t> full_block_tokens(const Sequence& seq, int32_t block_index,
                                           int32_t block_size) {
  return std::span<const int32_t>(seq.token_ids)
      .subspan(static_cast<size_t>(block_index) * block_size, block_size);
}

template <typename... Args>
Status internal_error(fmt::format_string<Args...> f, Args&&... args) {
  return {StatusCode::kInternal, fmt::format(f, std::forward<Args>(args)...)};
}

}  // namespace

uint64_t hash_block_tokens(uint64_t parent_hash, std::span<const int32_t> token_ids) {
  uint64_t h = mix64(parent_hash + 0x9e3779b97f4a7c15ULL);
  for (int32_t token : token_ids) h = mix64(h ^ static_cast<uint32_t>(token));
  return h;
}

Status BlockPool::validate(const BlockPoolConfig& config) {
  if (config.num_blocks <= 0) {
    return invalid_argument("num_blocks must be > 0, got {}", config.num_blocks);
  }
  if (config.block_size <= 0) {
    return invalid_argument("block_size must be > 0, got {}", config.block_size);
  }
  if (static_cast<int64_t>(config.num_blocks) * config.block_size >
      std::numeric_limits<int32_t>::max()) {
    return invalid_argument("num_blocks * block_size must fit int32 token slots, got {} * {}",
                            config.num_blocks, config.block_size);
  }
  if (config.hash_fn == nullptr) return invalid_argument("hash_fn must not be null");
  return Status::ok();
}

BlockPool::BlockPool(const BlockPoolConfig& config)
    : block_size_(config.block_size),
      is_prefix_caching_enabled_(config.enable_prefix_caching),
      hash_fn_(config.hash_fn) {
  if (Status status = validate(config); !status.is_ok()) throw Error(std::move(status));
  blocks_.resize(config.num_blocks);
  for (int32_t id = 0; id < config.num_blocks; ++id) free_block_ids_.push_back(id);
  if (is_prefix_caching_enabled_) {
    block_token_ids_.resize(static_cast<size_t>(config.num_blocks) * block_size_);
  }
}

int32_t BlockPool::num_free_blocks() const {
  return static_cast<int32_t>(free_block_ids_.size()) + num_evictable_;
}

int32_t BlockPool::num_blocks_for(int32_t num_tokens) const {
  return (num_tokens + block_size_ - 1) / block_size_;
}

std::span<const int32_t> BlockPool::cached_token_ids(int32_t block_id) const {
  return std::span<const int32_t>(block_token_ids_)
      .subspan(static_cast<size_t>(block_id) * block_size_, block_size_);
}

PrefixMatch BlockPool::match_prefix(const Sequence& seq) const {
  PrefixMatch match;
  if (!is_prefix_caching_enabled_ || seq.num_tokens() == 0) return match;
  const int32_t max_blocks = (seq.num_tokens() - 1) / block_size_;  // keep the last token
  uint64_t parent_hash = kRootHash ^ seq.prefix_cache_salt;
  for (int32_t i = 0; i < max_blocks; ++i) {
    const std::span<const int32_t> block_tokens = full_block_tokens(seq, i, block_size_);
    const uint64_t hash = hash_fn_(parent_hash, block_tokens);
    const auto it = cached_blocks_.find(hash);
    if (it == cached_blocks_.end()) break;
    const Block& block = blocks_[it->second];
    // The hash only indexes; the content, parent and position decide.
    if (block.parent_hash != parent_hash || block.chain_index != i ||
        !std::ranges::equal(cached_token_ids(it->second), block_tokens)) {
      break;
    }
    match.block_ids.push_back(it->second);
    if (block.ref_count == 0) ++match.num_evictable_blocks;
    parent_hash = hash;
  }
  match.num_tokens = static_cast<int32_t>(match.block_ids.size()) * block_size_;
  return match;
}

bool BlockPool::can_allocate(const PrefixMatch& match, int32_t num_tokens) const {
  const int32_t num_new_blocks =
      num_blocks_for(num_tokens) - static_cast<int32_t>(match.block_ids.size());
  return num_new_blocks <= num_free_blocks() - match.num_evictable_blocks;
}

void BlockPool::allocate(Sequence& seq, const PrefixMatch& match, int32_t num_tokens) {
  if (!seq.block_table.empty() || num_tokens < match.num_tokens || num_tokens > seq.num_tokens()) {
    fail(StatusCode::kInternal, "allocate: sequence {} has blocks or bad num_tokens {}", seq.id,
         num_tokens);
  }
  for (int32_t block_id : match.block_ids) {
    Block& block = blocks_[block_id];
    if (!block.is_cached) fail(StatusCode::kInternal, "allocate: stale PrefixMatch");
    if (block.ref_count == 0) lru_remove(block_id);
    ++block.ref_count;
    seq.block_table.push_back(block_id);
  }
  const int32_t num_needed = num_blocks_for(num_tokens);
  while (static_cast<int32_t>(seq.block_table.size()) < num_needed) {
    seq.block_table.push_back(take_block());
  }
  seq.num_cached_tokens = match.num_tokens;
  seq.num_computed_tokens = match.num_tokens;
  if (is_prefix_caching_enabled_) {
    ++stats_.num_queries;
    stats_.num_query_tokens += seq.num_tokens();
    stats_.num_hit_blocks += static_cast<int64_t>(match.block_ids.size());
    stats_.num_hit_tokens += match.num_tokens;
  }
}

bool BlockPool::can_append(const Sequence& seq, int32_t num_new_tokens) const {
  const int32_t num_new_blocks = num_blocks_for(seq.num_computed_tokens + num_new_tokens) -
                                 static_cast<int32_t>(seq.block_table.size());
  return num_new_blocks <= num_free_blocks();
}

void BlockPool::may_append(Sequence& seq, int32_t num_new_tokens) {
  const int32_t num_needed = num_blocks_for(seq.num_computed_tokens + num_new_tokens);
  while (static_cast<int32_t>(seq.block_table.size()) < num_needed) {
    seq.block_table.push_back(take_block());
  }
}

int32_t BlockPool::num_appendable_tokens(const Sequence& seq) const {
  const int32_t num_slots =
      (static_cast<int32_t>(seq.block_table.size()) + num_free_blocks()) * block_size_;
  return std::max(num_slots - seq.num_computed_tokens, 0);
}

void BlockPool::cache_full_blocks(const Sequence& seq) {
  if (!is_prefix_caching_enabled_) return;
  const int32_t num_full =
      std::min(seq.num_computed_tokens / block_size_, static_cast<int32_t>(seq.block_table.size()));
  // Hashed blocks form a prefix of the table (released ones were hashed before they went); find
  // where it ends (usually at once).
  const int32_t released = seq.num_released_blocks;
  int32_t begin = num_full;
  while (begin > released && !blocks_[seq.block_table[begin - 1]].has_hash) --begin;
  uint64_t parent_hash = begin == 0          ? kRootHash ^ seq.prefix_cache_salt
                         : begin == released ? seq.released_chain_hash
                                             : blocks_[seq.block_table[begin - 1]].hash;
  for (int32_t i = begin; i < num_full; ++i) {
    const int32_t block_id = seq.block_table[i];
    const std::span<const int32_t> block_tokens = full_block_tokens(seq, i, block_size_);
    Block& block = blocks_[block_id];
    block.has_hash = true;
    block.hash = hash_fn_(parent_hash, block_tokens);
    block.parent_hash = parent_hash;
    block.chain_index = i;
    // Identical content computed twice: the first registered block stays the cached one.
    if (cached_blocks_.emplace(block.hash, block_id).second) {
      block.is_cached = true;
      std::ranges::copy(block_tokens,
                        block_token_ids_.begin() + static_cast<size_t>(block_id) * block_size_);
    }
    parent_hash = block.hash;
  }
}

int32_t BlockPool::release_out_of_window(Sequence& seq, int32_t window) {
  if (window <= 0 || seq.block_table.empty()) return 0;
  const int32_t first_visible = seq.num_computed_tokens - window + 1;
  const int32_t end = std::min(first_visible / block_size_,  // blocks wholly below it
                               static_cast<int32_t>(seq.block_table.size()) - 1);
  int32_t released = 0;
  for (int32_t i = seq.num_released_blocks; i < end; ++i) {
    const int32_t block_id = seq.block_table[static_cast<size_t>(i)];
    // The chain continues from the last released block's hash (0 when caching is off).
    seq.released_chain_hash = blocks_[block_id].has_hash ? blocks_[block_id].hash : 0;
    release_block(block_id);
    seq.block_table[static_cast<size_t>(i)] = kReleasedBlock;
    ++released;
  }
  seq.num_released_blocks = std::max(seq.num_released_blocks, end);
  return released;
}

void BlockPool::deallocate(Sequence& seq) {
  for (auto it = seq.block_table.rbegin(); it != seq.block_table.rend(); ++it) {
    if (*it != kReleasedBlock) release_block(*it);
  }
  seq.block_table.clear();
  seq.num_released_blocks = 0;
  seq.released_chain_hash = 0;
}

void BlockPool::trim(Sequence& seq) {
  const int32_t num_needed = num_blocks_for(seq.num_tokens());
  while (static_cast<int32_t>(seq.block_table.size()) > num_needed) {
    release_block(seq.block_table.back());
    seq.block_table.pop_back();
  }
}

int32_t BlockPool::take_block() {
  int32_t block_id = -1;
  if (!free_block_ids_.empty()) {
    block_id = free_block_ids_.front();
    free_block_ids_.pop_front();
  } else if (lru_head_ >= 0) {
    block_id = lru_head_;
    evict(block_id);
  } else {
    fail(StatusCode::kInternal, "BlockPool: out of blocks (caller skipped can_allocate/append)");
  }
  blocks_[block_id].ref_count = 1;
  return block_id;
}

void BlockPool::release_block(int32_t block_id) {
  Block& block = blocks_[block_id];
  if (block.ref_count <= 0) fail(StatusCode::kInternal, "BlockPool: double free of {}", block_id);
  if (--block.ref_count > 0) return;
  if (block.is_cached) {
    lru_push_back(block_id);
  } else {
    block.has_hash = false;
    free_block_ids_.push_back(block_id);
  }
}

void BlockPool::evict(int32_t block_id) {
  Block& block = blocks_[block_id];
  lru_remove(block_id);
  cached_blocks_.erase(block.hash);
  block.is_cached = false;
  block.has_hash = false;
}

void BlockPool::lru_push_back(int32_t block_id) {
  Block& block = blocks_[block_id];
  block.lru_prev = lru_tail_;
  block.lru_next = -1;
  if (lru_tail_ >= 0) {
    blocks_[lru_tail_].lru_next = block_id;
  } else {
    lru_head_ = block_id;
  }
  lru_tail_ = block_id;
  ++num_evictable_;
}

void BlockPool::lru_remove(int32_t block_id) {
  Block& block = blocks_[block_id];
  if (block.lru_prev >= 0) {
    blocks_[block.lru_prev].lru_next = block.lru_next;
  } else {
    lru_head_ = block.lru_next;
  }
  if (block.lru_next >= 0) {
    blocks_[block.lru_next].lru_prev = block.lru_prev;
  } else {
    lru_tail_ = block.lru_prev;
  }
  block.lru_prev = block.lru_next = -1;
  --num_evictable_;
}

Status BlockPool::check_invariants(std::span<const Sequence* const> sequences) const {
  const int32_t n = num_blocks();
  std::vector<int32_t> num_refs(n, 0);
  for (const Sequence* seq : sequences) {
    const auto num_table = static_cast<int32_t>(seq->block_table.size());
    if (seq->num_cached_tokens < 0 || seq->num_cached_tokens > seq->num_computed_tokens ||
        seq->num_computed_tokens > seq->num_tokens()) {
      return internal_error("sequence {}: cached {} / computed {} / tokens {} out of order",
                            seq->id, seq->num_cached_tokens, seq->num_computed_tokens,
                            seq->num_tokens());
    }
    if (num_table < num_blocks_for(seq->num_computed_tokens) ||
        num_table > num_blocks_for(seq->num_tokens())) {
      return internal_error("sequence {}: {} blocks for {} computed of {} tokens", seq->id,
                            num_table, seq->num_computed_tokens, seq->num_tokens());
    }
    if (seq->num_released_blocks < 0 || seq->num_released_blocks > num_table ||
        (num_table > 0 && seq->num_released_blocks == num_table)) {
      return internal_error("sequence {}: {} released blocks of {}", seq->id,
                            seq->num_released_blocks, num_table);
    }
    for (int32_t i = 0; i < num_table; ++i) {
      const int32_t block_id = seq->block_table[static_cast<size_t>(i)];
      if ((block_id == kReleasedBlock) != (i < seq->num_released_blocks)) {
        return internal_error("sequence {}: entry {} is {} with {} released blocks", seq->id, i,
                              block_id, seq->num_released_blocks);
      }
      if (block_id == kReleasedBlock) continue;
      if (block_id < 0 || block_id >= n)
        return internal_error("block id {} out of range", block_id);
      ++num_refs[block_id];
    }
  }
  std::vector<int32_t> num_listed(n, 0);  // on the free list or the LRU list
  for (int32_t block_id : free_block_ids_) {
    ++num_listed[block_id];
    if (blocks_[block_id].is_cached || blocks_[block_id].has_hash) {
      return internal_error("free block {} still carries a hash", block_id);
    }
  }
  int32_t num_lru = 0;
  for (int32_t id = lru_head_, prev = -1; id >= 0; prev = id, id = blocks_[id].lru_next) {
    if (++num_lru > n || blocks_[id].lru_prev != prev) return internal_error("LRU list broken");
    if (!blocks_[id].is_cached) return internal_error("evictable block {} is not cached", id);
    ++num_listed[id];
  }
  if (num_lru != num_evictable_) {
    return internal_error("LRU holds {} blocks, counted {}", num_lru, num_evictable_);
  }
  int32_t num_is_cached = 0;
  for (int32_t id = 0; id < n; ++id) {
    const Block& block = blocks_[id];
    if (block.ref_count != num_refs[id]) {
      return internal_error("block {}: ref_count {} but in {} block tables", id, block.ref_count,
                            num_refs[id]);
    }
    if (num_listed[id] != (block.ref_count == 0 ? 1 : 0)) {
      return internal_error("block {}: ref_count {} but on {} free/LRU lists", id, block.ref_count,
                            num_listed[id]);
    }
    if (block.is_cached) {
      ++num_is_cached;
      const auto it = cached_blocks_.find(block.hash);
      if (it == cached_blocks_.end() || it->second != id) {
        return internal_error("cached block {} is not in the hash map", id);
      }
    }
  }
  if (num_is_cached != num_cached_blocks()) {
    return internal_error("hash map holds {} blocks, {} marked cached", num_cached_blocks(),
                          num_is_cached);
  }
  return Status::ok();
}

}  // namespace llmserve
