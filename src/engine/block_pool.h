// BlockPool: the paged KV cache's bookkeeping: which of num_blocks fixed-size blocks (block_size
// token slots each) each sequence holds, and which full blocks can be reused by a later prompt
// with the same prefix. It moves no KV data; the model runner reads block tables and slots.
//
// Every block is in exactly one state:
//   in use     ref_count > 0: in that many block tables (more than one only via prefix reuse)
//   free       ref_count == 0, no content worth keeping, on the free list
//   evictable  ref_count == 0, cached (content known by hash), on the LRU list
// so ref_count == 0 <=> the block is free or evictable, and num_free_blocks() counts both:
// allocation takes a free block first and evicts the least recently released cached block only
// when the free list is empty.
//
// Prefix caching: a FULL block is named by a 64-bit chain hash, hash(parent block's hash, its
// block_size token ids), so one hash stands for the whole prefix up to that block; a sequence's
// first block's parent is its prefix_cache_salt (0 for most). Blocks are
// registered after their KV is computed (cache_full_blocks). A hit is checked against the stored
// token ids, parent hash and position in the chain, so a collision at one level never reuses
// wrong KV; a false hit would need two different prefixes with equal 64-bit chain hashes. If
// identical content is computed twice concurrently, the first registered block stays the cached one
// and the other is freed normally. A prompt never reuses the block holding its last token, so at
// least one token is computed and the runner has logits to sample from.
//
// Thread-safety: none; the engine thread owns it (through the Scheduler).
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "engine/sequence.h"

namespace llmserve {

// hash(parent_hash, token ids of one full block). Replaceable for tests (forced collisions).
using BlockHashFn = uint64_t (*)(uint64_t parent_hash, std::span<const int32_t> token_ids);
uint64_t hash_block_tokens(uint64_t parent_hash, std::span<const int32_t> token_ids);

struct BlockPoolConfig {
  int32_t num_blocks = 0;
  int32_t block_size = 16;
  bool enable_prefix_caching = true;
  BlockHashFn hash_fn = &hash_block_tokens;
};

// Cumulative prefix-cache counters (only counted while prefix caching is on).
struct PrefixCacheStats {
  int64_t num_queries = 0;       // sequences looked up at admission
  int64_t num_query_tokens = 0;  // their tokens
  int64_t num_hit_blocks = 0;    // blocks reused
  int64_t num_hit_tokens = 0;    // tokens whose KV was reused
};

// The cached blocks a sequence could reuse: a snapshot, valid until the pool next changes.
struct PrefixMatch {
  std::vector<int32_t> block_ids;    // reusable blocks for the sequence's first full blocks
  int32_t num_tokens = 0;            // block_ids.size() * block_size
  int32_t num_evictable_blocks = 0;  // of block_ids, those with ref_count 0 (reuse takes them
                                     // out of num_free_blocks())
};

class BlockPool {
 public:
  // Names the offending field; the constructor throws Error(kInvalidArgument) with it.
  static Status validate(const BlockPoolConfig& config);
  explicit BlockPool(const BlockPoolConfig& config);

  int32_t block_size() const { return block_size_; }
  int32_t num_blocks() const { return static_cast<int32_t>(blocks_.size()); }
  int32_t num_free_blocks() const;  // free + evictable: what allocation can take
  int32_t num_used_blocks() const { return num_blocks() - num_free_blocks(); }
  int32_t num_evictable_blocks() const { return num_evictable_; }
  int32_t num_cached_blocks() const { return static_cast<int32_t>(cached_blocks_.size()); }
  int32_t ref_count(int32_t block_id) const { return blocks_.at(block_id).ref_count; }
  bool is_cached(int32_t block_id) const { return blocks_.at(block_id).is_cached; }
  bool is_prefix_caching_enabled() const { return is_prefix_caching_enabled_; }
  const PrefixCacheStats& prefix_cache_stats() const { return stats_; }
  // Blocks needed to hold num_tokens tokens: ceil(num_tokens / block_size).
  int32_t num_blocks_for(int32_t num_tokens) const;

  // Longest run of cached full blocks matching seq's tokens, leaving its last token uncomputed.
  PrefixMatch match_prefix(const Sequence& seq) const;
  // Whether a sequence with an empty block table can hold its first num_tokens tokens (the
  // match included) after reusing match.
  bool can_allocate(const PrefixMatch& match, int32_t num_tokens) const;
  // Admits seq's blocks: the match's, then fresh ones up to num_tokens tokens. Sets
  // num_cached_tokens = num_computed_tokens = match.num_tokens. Requires can_allocate.
  void allocate(Sequence& seq, const PrefixMatch& match, int32_t num_tokens);
  // Whether seq can grow by num_new_tokens past num_computed_tokens (a decode or a chunk that
  // crosses a block boundary needs fresh blocks).
  bool can_append(const Sequence& seq, int32_t num_new_tokens) const;
  // Adds the blocks (if any) that growing by num_new_tokens needs. Requires can_append.
  void may_append(Sequence& seq, int32_t num_new_tokens);
  // How many tokens past num_computed_tokens seq could hold with the blocks available now.
  int32_t num_appendable_tokens(const Sequence& seq) const;
  // Releases seq's blocks past what its tokens need (num_blocks_for(num_tokens())): those a
  // speculative step took for drafts that were rejected. They hold no computed token.
  void trim(Sequence& seq);
  // Registers seq's newly full, computed blocks in the prefix cache. Call after each step.
  void cache_full_blocks(const Sequence& seq);
  // Sliding window (window > 0 positions, every layer): releases seq's blocks whose positions no
  // later query sees — the next query is at num_computed_tokens and sees back to
  // num_computed_tokens - window + 1 — marking their entries kReleasedBlock (sequence.h). The
  // block holding the latest position stays. Call after cache_full_blocks, so a released block
  // is already in the prefix cache (it stays there, evictable, for later prompts). Returns how
  // many blocks it released.
  int32_t release_out_of_window(Sequence& seq, int32_t window);
  // Releases seq's blocks (tail first, so a prefix outlives its tail in the cache) and clears
  // its block_table (and its released-block count). Cached blocks that drop to ref_count 0 become
  // evictable, others free. The token counts are left to the caller: a preemption resets them, a
  // finished sequence keeps them for usage reporting (num_cached_tokens).
  void deallocate(Sequence& seq);

  // Checks the state above against the block tables of all live sequences; kInternal if broken.
  Status check_invariants(std::span<const Sequence* const> sequences) const;

 private:
  struct Block {
    int32_t ref_count = 0;
    bool has_hash = false;   // hash/parent_hash describe this block's full, computed content
    bool is_cached = false;  // cached_blocks_[hash] == this block; token ids kept for checks
    uint64_t hash = 0;
    uint64_t parent_hash = 0;
    int32_t chain_index = 0;  // position of the block in its chain (0 = first block)
    int32_t lru_prev = -1;    // LRU links while evictable
    int32_t lru_next = -1;
  };

  std::span<const int32_t> cached_token_ids(int32_t block_id) const;
  int32_t take_block();  // a free block, else the least recently released evictable one
  void release_block(int32_t block_id);
  void evict(int32_t block_id);
  void lru_push_back(int32_t block_id);
  void lru_remove(int32_t block_id);

  int32_t block_size_;
  bool is_prefix_caching_enabled_;
  BlockHashFn hash_fn_;
  std::vector<Block> blocks_;
  std::vector<int32_t> block_token_ids_;  // num_blocks * block_size, for cached blocks' checks
  std::deque<int32_t> free_block_ids_;
  int32_t lru_head_ = -1;  // least recently released evictable block
  int32_t lru_tail_ = -1;
  int32_t num_evictable_ = 0;
  std::unordered_map<uint64_t, int32_t> cached_blocks_;  // chain hash -> block id
  PrefixCacheStats stats_;
};

}  // namespace llmserve
