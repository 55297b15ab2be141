// BlockPool unit tests: ref counts, the free/evictable states, hash-chain prefix reuse, collision
// safety, LRU eviction order and slot mapping. block_size 4 keeps the block tables readable.
#include "engine/block_pool.h"

#include <numeric>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "backend/forward_batch.h"

namespace llmserve {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int32_t kBlockSize = 4;

std::vector<int32_t> tokens_from(int32_t first, int32_t n) {
  std::vector<int32_t> tokens(n);
  std::iota(tokens.begin(), tokens.end(), first);
  return tokens;
}

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

BlockPool make_pool(int32_t num_blocks, bool enable_prefix_caching = true,
                    BlockHashFn hash_fn = &hash_block_tokens) {
  return BlockPool(BlockPoolConfig{.num_blocks = num_blocks,
                                   .block_size = kBlockSize,
                                   .enable_prefix_caching = enable_prefix_caching,
                                   .hash_fn = hash_fn});
}

// Admits seq whole (after prefix reuse), "computes" it and registers its full blocks, as one
// scheduler step would.
void prefill(BlockPool& pool, Sequence& seq) {
  const PrefixMatch match = pool.match_prefix(seq);
  ASSERT_TRUE(pool.can_allocate(match, seq.num_tokens()));
  pool.allocate(seq, match, seq.num_tokens());
  seq.num_computed_tokens = seq.num_tokens();
  pool.cache_full_blocks(seq);
}

void expect_invariants(const BlockPool& pool, std::vector<const Sequence*> live) {
  const Status status = pool.check_invariants(live);
  EXPECT_TRUE(status.is_ok()) << status.to_string();
}

TEST(BlockPoolTest, AllocateAndDeallocateCountReferences) {
  BlockPool pool = make_pool(8, /*enable_prefix_caching=*/false);
  Sequence a(1, tokens_from(100, 10), 4);
  const PrefixMatch match = pool.match_prefix(a);
  EXPECT_TRUE(match.block_ids.empty());
  ASSERT_TRUE(pool.can_allocate(match, 10));
  pool.allocate(a, match, 10);
  EXPECT_THAT(a.block_table, ElementsAre(0, 1, 2));
  EXPECT_EQ(pool.ref_count(0), 1);
  EXPECT_EQ(pool.ref_count(3), 0);
  EXPECT_EQ(pool.num_used_blocks(), 3);
  EXPECT_EQ(pool.num_free_blocks(), 5);
  expect_invariants(pool, {&a});

  pool.deallocate(a);
  EXPECT_TRUE(a.block_table.empty());
  EXPECT_EQ(pool.num_free_blocks(), 8);
  EXPECT_EQ(pool.ref_count(0), 0);
  expect_invariants(pool, {});
}

TEST(BlockPoolTest, CanAllocateCountsWholePool) {
  BlockPool pool = make_pool(3, false);
  Sequence a(1, tokens_from(0, 12), 1);
  Sequence b(2, tokens_from(0, 13), 1);
  EXPECT_TRUE(pool.can_allocate(pool.match_prefix(a), 12));   // 3 blocks
  EXPECT_FALSE(pool.can_allocate(pool.match_prefix(b), 13));  // 4 blocks
  EXPECT_TRUE(pool.can_allocate(pool.match_prefix(b), 12));   // a first chunk fits
}

TEST(BlockPoolTest, AppendNeedsABlockOnlyWhenCrossingABoundary) {
  BlockPool pool = make_pool(3, false);
  Sequence a(1, tokens_from(0, 9), 4);
  pool.allocate(a, {}, 7);  // 2 blocks, positions 0..6 computed next
  a.num_computed_tokens = 7;
  EXPECT_EQ(pool.num_appendable_tokens(a), 1 + 4);  // slack in block 1 + one free block
  EXPECT_TRUE(pool.can_append(a, 1));
  pool.may_append(a, 1);  // position 7 still fits block 1
  EXPECT_EQ(a.block_table.size(), 2u);
  a.num_computed_tokens = 8;
  EXPECT_TRUE(pool.can_append(a, 1));
  pool.may_append(a, 1);  // position 8 opens block 2
  EXPECT_THAT(a.block_table, ElementsAre(0, 1, 2));
  a.num_computed_tokens = 9;
  EXPECT_EQ(pool.num_free_blocks(), 0);
  EXPECT_TRUE(pool.can_append(a, 3));   // positions 9..11 fit block 2
  EXPECT_FALSE(pool.can_append(a, 4));  // position 12 would need block 3
  EXPECT_EQ(pool.num_appendable_tokens(a), 3);
  pool.deallocate(a);
}

TEST(BlockPoolTest, SlotMappingFollowsBlockTable) {
  const std::vector<int32_t> block_table = {5, 2, 7};
  EXPECT_EQ(slot_of(block_table, kBlockSize, 0), 20);
  EXPECT_EQ(slot_of(block_table, kBlockSize, 3), 23);
  EXPECT_EQ(slot_of(block_table, kBlockSize, 4), 8);
  EXPECT_EQ(slot_of(block_table, kBlockSize, 9), 29);
  ForwardBatch batch;  // the runner's batch uses the same slots
  const std::vector<int32_t> tokens = {1, 2, 3, 4};
  batch.add_sequence(tokens.data(), 4, 2, block_table, kBlockSize, LogitRows::kLast);
  EXPECT_THAT(batch.slot_mapping, ElementsAre(22, 23, 8, 9));
}

TEST(BlockPoolTest, ForwardBatchLogitRowsAreASuffixOfEachSequence) {
  const std::vector<int32_t> table = {0, 1, 2};
  const std::vector<int32_t> tokens = {1, 2, 3, 4, 5};
  ForwardBatch batch;
  batch.add_sequence(tokens.data(), 5, 0, table, kBlockSize, LogitRows::kLast, 0, 2);  // 0..4
  batch.add_sequence(tokens.data(), 3, 0, table, kBlockSize, LogitRows::kNone, 0, 2);  // 5..7
  batch.add_sequence(tokens.data(), 2, 0, table, kBlockSize, LogitRows::kAll);         // 8..9
  batch.add_sequence(tokens.data(), 2, 0, table, kBlockSize, LogitRows::kNone);        // 10..11
  EXPECT_THAT(batch.logits_indices, ElementsAre(2, 3, 4, 6, 7, 8, 9));
  // More rows than new tokens, or extra rows beside kAll, are the caller's bug.
  EXPECT_THROW(batch.add_sequence(tokens.data(), 2, 0, table, kBlockSize, LogitRows::kLast, 0, 2),
               Error);
  EXPECT_THROW(batch.add_sequence(tokens.data(), 2, 0, table, kBlockSize, LogitRows::kAll, 0, 1),
               Error);
}

TEST(BlockPoolTest, PrefixReuseFollowsTheHashChain) {
  BlockPool pool = make_pool(16);
  Sequence a(1, tokens_from(1, 10), 1);  // [1..4][5..8][9 10]
  prefill(pool, a);
  EXPECT_EQ(pool.num_cached_blocks(), 2);

  Sequence b(2, concat(tokens_from(1, 8), {50, 51, 52}), 1);
  const PrefixMatch match = pool.match_prefix(b);
  EXPECT_THAT(match.block_ids, ElementsAre(a.block_table[0], a.block_table[1]));
  EXPECT_EQ(match.num_tokens, 8);
  EXPECT_EQ(match.num_evictable_blocks, 0);  // a still holds them
  prefill(pool, b);
  EXPECT_EQ(b.num_cached_tokens, 8);
  EXPECT_EQ(b.block_table[0], a.block_table[0]);
  EXPECT_NE(b.block_table[2], a.block_table[2]);
  EXPECT_EQ(pool.ref_count(a.block_table[0]), 2);
  EXPECT_EQ(pool.ref_count(a.block_table[2]), 1);

  // Same tokens, other position in the chain: no hit.
  Sequence c(3, concat(tokens_from(5, 4), {0, 0}), 1);
  EXPECT_TRUE(pool.match_prefix(c).block_ids.empty());
  // Diverging in the second block: only the first is reused.
  Sequence d(4, concat(tokens_from(1, 4), tokens_from(90, 6)), 1);
  EXPECT_EQ(pool.match_prefix(d).num_tokens, 4);

  const PrefixCacheStats& stats = pool.prefix_cache_stats();
  EXPECT_EQ(stats.num_queries, 2);
  EXPECT_EQ(stats.num_query_tokens, 21);
  EXPECT_EQ(stats.num_hit_blocks, 2);
  EXPECT_EQ(stats.num_hit_tokens, 8);
  expect_invariants(pool, {&a, &b});
  pool.deallocate(b);
  pool.deallocate(a);
  expect_invariants(pool, {});
}

// Sequences with different prefix_cache_salt never share blocks (a LongRoPE prompt past the
// original context has other KV for the same tokens); equal salts do.
TEST(BlockPoolTest, SaltedSequencesHaveTheirOwnChains) {
  BlockPool pool = make_pool(16);
  Sequence a(1, tokens_from(1, 10), 1);
  prefill(pool, a);
  Sequence b(2, tokens_from(1, 10), 1);
  b.prefix_cache_salt = 7;
  EXPECT_TRUE(pool.match_prefix(b).block_ids.empty());
  prefill(pool, b);
  EXPECT_NE(b.block_table[0], a.block_table[0]);
  Sequence c(3, tokens_from(1, 10), 1);
  c.prefix_cache_salt = 7;
  EXPECT_THAT(pool.match_prefix(c).block_ids, ElementsAre(b.block_table[0], b.block_table[1]));
  Sequence d(4, tokens_from(1, 10), 1);
  EXPECT_THAT(pool.match_prefix(d).block_ids, ElementsAre(a.block_table[0], a.block_table[1]));
  expect_invariants(pool, {&a, &b});
  pool.deallocate(b);
  pool.deallocate(a);
  expect_invariants(pool, {});
}

TEST(BlockPoolTest, NeverReusesTheBlockHoldingTheLastToken) {
  BlockPool pool = make_pool(16);
  Sequence a(1, tokens_from(1, 8), 1);
  prefill(pool, a);
  Sequence same(2, tokens_from(1, 8), 1);
  EXPECT_EQ(pool.match_prefix(same).num_tokens, 4);  // block 1 holds token 8: recompute it
  Sequence longer(3, tokens_from(1, 9), 1);
  EXPECT_EQ(pool.match_prefix(longer).num_tokens, 8);
  pool.deallocate(a);
}

TEST(BlockPoolTest, ReleasedBlocksStayCachedAndCountAsFree) {
  BlockPool pool = make_pool(3);
  Sequence a(1, tokens_from(1, 9), 1);  // 2 full blocks + 1 partial
  prefill(pool, a);
  pool.deallocate(a);
  EXPECT_EQ(pool.num_free_blocks(), 3);
  EXPECT_EQ(pool.num_used_blocks(), 0);
  EXPECT_EQ(pool.num_evictable_blocks(), 2);  // the partial block went back to the free list
  EXPECT_EQ(pool.num_cached_blocks(), 2);
  expect_invariants(pool, {});

  // Reusing the 2 evictable blocks takes them out of the free count: 1 block left for the rest.
  Sequence b(2, concat(tokens_from(1, 8), {60, 61, 62, 63}), 1);
  const PrefixMatch match = pool.match_prefix(b);
  EXPECT_EQ(match.num_evictable_blocks, 2);
  EXPECT_TRUE(pool.can_allocate(match, 12));
  Sequence too_long(3, concat(tokens_from(1, 8), tokens_from(60, 8)), 1);
  EXPECT_FALSE(pool.can_allocate(pool.match_prefix(too_long), 16));
  prefill(pool, b);
  EXPECT_EQ(b.num_cached_tokens, 8);
  EXPECT_EQ(pool.num_evictable_blocks(), 0);
  EXPECT_EQ(pool.num_free_blocks(), 0);
  EXPECT_EQ(pool.ref_count(b.block_table[0]), 1);
  expect_invariants(pool, {&b});
  pool.deallocate(b);
}

TEST(BlockPoolTest, EvictsLeastRecentlyReleasedTailFirst) {
  BlockPool pool = make_pool(4);
  Sequence a(1, tokens_from(10, 9), 1);
  prefill(pool, a);
  EXPECT_THAT(a.block_table, ElementsAre(0, 1, 2));
  pool.deallocate(a);  // 2 -> free list; 1 then 0 -> LRU (a's tail is older)

  Sequence b(2, tokens_from(50, 9), 1);
  prefill(pool, b);  // free blocks 3 and 2 first, then evicts block 1 (a's second block)
  EXPECT_THAT(b.block_table, ElementsAre(3, 2, 1));
  EXPECT_FALSE(pool.is_cached(1));
  EXPECT_TRUE(pool.is_cached(0));
  EXPECT_EQ(pool.match_prefix(Sequence(3, tokens_from(10, 9), 1)).num_tokens, 4);
  pool.deallocate(b);  // partial block 1 -> free list; 2 then 3 -> LRU behind a's block 0

  Sequence c(4, tokens_from(200, 12), 1);
  prefill(pool, c);  // free block 1, then a's block 0, then b's tail (block 2)
  EXPECT_THAT(c.block_table, ElementsAre(1, 0, 2));
  EXPECT_EQ(pool.match_prefix(Sequence(5, tokens_from(10, 9), 1)).num_tokens, 0);
  EXPECT_EQ(pool.match_prefix(Sequence(6, tokens_from(50, 9), 1)).num_tokens, 4);
  expect_invariants(pool, {&c});
  pool.deallocate(c);
  expect_invariants(pool, {});
}

TEST(BlockPoolTest, DisabledPrefixCachingNeverHitsNorCounts) {
  BlockPool pool = make_pool(8, false);
  Sequence a(1, tokens_from(1, 9), 1);
  prefill(pool, a);
  pool.deallocate(a);
  EXPECT_EQ(pool.num_cached_blocks(), 0);
  EXPECT_EQ(pool.num_evictable_blocks(), 0);
  Sequence b(2, tokens_from(1, 9), 1);
  EXPECT_TRUE(pool.match_prefix(b).block_ids.empty());
  EXPECT_EQ(pool.prefix_cache_stats().num_queries, 0);
  expect_invariants(pool, {});
}

// Every block collides, and with the root's parent hash (0) too: only the stored content, parent
// hash and chain position tell blocks apart.
uint64_t constant_hash(uint64_t, std::span<const int32_t>) {
  return 0;
}

TEST(BlockPoolTest, CollidingHashesNeverReuseOtherContent) {
  BlockPool pool = make_pool(16, true, &constant_hash);
  Sequence a(1, tokens_from(1, 9), 1);
  prefill(pool, a);
  EXPECT_EQ(pool.num_cached_blocks(), 1);  // block 1 collides with block 0: not registered

  Sequence other_first_block(2, tokens_from(7, 9), 1);
  EXPECT_TRUE(pool.match_prefix(other_first_block).block_ids.empty());
  Sequence other_second_block(3, concat(tokens_from(1, 4), tokens_from(70, 5)), 1);
  EXPECT_EQ(pool.match_prefix(other_second_block).num_tokens, 4);
  Sequence repeated(4, {1, 2, 3, 4, 1, 2, 3, 4, 0}, 1);  // same tokens, next position
  EXPECT_EQ(pool.match_prefix(repeated).num_tokens, 4);
  pool.deallocate(a);  // the hashed-but-unregistered block goes back to the free list
  EXPECT_EQ(pool.num_evictable_blocks(), 1);
  expect_invariants(pool, {});
}

uint64_t tokens_only_hash(uint64_t, std::span<const int32_t> token_ids) {
  return hash_block_tokens(0, token_ids);
}

TEST(BlockPoolTest, ParentHashIsCheckedOnHit) {
  BlockPool pool = make_pool(16, true, &tokens_only_hash);
  const std::vector<int32_t> x = tokens_from(10, 4), y = tokens_from(20, 4), w = tokens_from(30, 4);
  Sequence xy(1, concat(concat(x, y), {0}), 1);
  prefill(pool, xy);
  Sequence wy(2, concat(concat(w, y), {0}), 1);
  prefill(pool, wy);  // its [y] block hashes like xy's: xy's stays the registered one
  EXPECT_EQ(wy.num_cached_tokens, 0);
  EXPECT_EQ(pool.num_cached_blocks(), 3);
  // [y] after [w] must not reuse the KV of [y] after [x].
  EXPECT_EQ(pool.match_prefix(Sequence(3, concat(concat(w, y), {0}), 1)).num_tokens, 4);
  EXPECT_EQ(pool.match_prefix(Sequence(4, concat(concat(x, y), {0}), 1)).num_tokens, 8);
  expect_invariants(pool, {&xy, &wy});
  pool.deallocate(wy);
  pool.deallocate(xy);
}

TEST(BlockPoolTest, IdenticalContentComputedTwiceKeepsOneCachedCopy) {
  BlockPool pool = make_pool(16);
  Sequence a(1, tokens_from(1, 9), 1);
  Sequence b(2, tokens_from(1, 9), 1);
  // Both admitted before either is computed: no hits, separate blocks.
  pool.allocate(a, pool.match_prefix(a), 9);
  pool.allocate(b, pool.match_prefix(b), 9);
  a.num_computed_tokens = b.num_computed_tokens = 9;
  pool.cache_full_blocks(a);
  pool.cache_full_blocks(b);
  EXPECT_EQ(pool.num_cached_blocks(), 2);
  EXPECT_TRUE(pool.is_cached(a.block_table[0]));
  EXPECT_FALSE(pool.is_cached(b.block_table[0]));
  expect_invariants(pool, {&a, &b});
  pool.deallocate(b);
  EXPECT_EQ(pool.num_evictable_blocks(), 0);
  Sequence c(3, tokens_from(1, 9), 1);
  EXPECT_THAT(pool.match_prefix(c).block_ids, ElementsAre(a.block_table[0], a.block_table[1]));
  pool.deallocate(a);
  expect_invariants(pool, {});
}

TEST(BlockPoolTest, CheckInvariantsCatchesABrokenBlockTable) {
  BlockPool pool = make_pool(8);
  Sequence a(1, tokens_from(1, 9), 1);
  prefill(pool, a);
  EXPECT_THAT(pool.check_invariants({}).message(), HasSubstr("ref_count 1 but in 0"));
  Sequence forged = a;
  forged.block_table.push_back(5);
  forged.token_ids.resize(16);
  const Sequence* live[] = {&forged};
  EXPECT_THAT(pool.check_invariants(live).message(), HasSubstr("block 5: ref_count 0 but in 1"));
  Sequence short_table = a;
  short_table.block_table.pop_back();
  const Sequence* live_short[] = {&short_table};
  EXPECT_THAT(pool.check_invariants(live_short).message(), HasSubstr("2 blocks for 9 computed"));
  pool.deallocate(a);
}

// Sliding window: blocks wholly below num_computed - window + 1 go back to the pool, their entries
// marked kReleasedBlock; the block of the latest position stays.
TEST(BlockPoolTest, ReleaseOutOfWindowFreesBlocksNoQuerySees) {
  BlockPool pool = make_pool(8, /*enable_prefix_caching=*/false);
  Sequence seq(1, tokens_from(100, 14), 4);
  prefill(pool, seq);  // 14 tokens: blocks 0-3, the next query at position 14
  ASSERT_EQ(seq.block_table.size(), 4u);
  // Window 6: the next query sees positions 9..14, so blocks 0 (0-3) and 1 (4-7) go; block 2
  // (8-11) holds position 9.
  EXPECT_EQ(pool.release_out_of_window(seq, 6), 2);
  EXPECT_EQ(seq.num_released_blocks, 2);
  EXPECT_EQ(seq.block_table[0], kReleasedBlock);
  EXPECT_EQ(seq.block_table[1], kReleasedBlock);
  EXPECT_GE(seq.block_table[2], 0);
  EXPECT_EQ(pool.num_free_blocks(), 6);
  expect_invariants(pool, {&seq});
  // Nothing more until the window moves past block 2; a second call releases nothing.
  EXPECT_EQ(pool.release_out_of_window(seq, 6), 0);
  // Decode to 18 tokens: the next query (18) sees 13..18, so block 2 goes too.
  for (int32_t t = 0; t < 4; ++t) {
    seq.token_ids.push_back(200 + t);
    ASSERT_TRUE(pool.can_append(seq, 1));
    pool.may_append(seq, 1);
    seq.num_computed_tokens += 1;
  }
  EXPECT_EQ(pool.release_out_of_window(seq, 6), 1);
  EXPECT_EQ(seq.num_released_blocks, 3);
  expect_invariants(pool, {&seq});
  // Window 0 (some layer sees everything) never releases; neither does a tiny window take the
  // block of the latest position.
  Sequence other(2, tokens_from(300, 8), 4);
  prefill(pool, other);
  EXPECT_EQ(pool.release_out_of_window(other, 0), 0);
  EXPECT_EQ(pool.release_out_of_window(other, 1), 1);  // positions 0-7: block 0 goes, 1 stays
  EXPECT_EQ(other.num_released_blocks, 1);
  expect_invariants(pool, {&seq, &other});
  pool.deallocate(seq);
  pool.deallocate(other);
  EXPECT_EQ(seq.num_released_blocks, 0);
  EXPECT_EQ(pool.num_free_blocks(), 8);
  expect_invariants(pool, {});
}

// A released block stays in the prefix cache (evictable), and the hash chain of the blocks filled
// after the release continues from it: a later prompt with the same tokens reuses every block.
TEST(BlockPoolTest, ReleasedBlocksStayCachedAndTheChainContinues) {
  BlockPool pool = make_pool(16);
  const std::vector<int32_t> tokens = tokens_from(100, 21);
  Sequence seq(1, std::vector<int32_t>(tokens.begin(), tokens.begin() + 9), 16);
  prefill(pool, seq);  // blocks 0, 1 full and cached; block 2 holds position 8
  EXPECT_EQ(pool.release_out_of_window(seq, 2), 2);
  EXPECT_EQ(pool.num_evictable_blocks(), 2);
  // Grow to 21 tokens one decode at a time, registering and releasing as the scheduler does.
  for (size_t t = 9; t < tokens.size(); ++t) {
    seq.token_ids.push_back(tokens[t]);
    pool.may_append(seq, 1);
    seq.num_computed_tokens += 1;
    pool.cache_full_blocks(seq);
    pool.release_out_of_window(seq, 2);
    expect_invariants(pool, {&seq});
  }
  EXPECT_EQ(seq.num_released_blocks, 5);  // next query 21 sees 20, 21: blocks 0-4 go
  Sequence again(2, tokens, 4);
  const PrefixMatch match = pool.match_prefix(again);
  EXPECT_EQ(match.num_tokens, 20);  // all five full blocks (the last token is never reused)
  EXPECT_EQ(match.num_evictable_blocks, 5);  // every one of them released
}

TEST(BlockPoolTest, CheckInvariantsCatchesAReleasedEntryOutOfPlace) {
  BlockPool pool = make_pool(8, /*enable_prefix_caching=*/false);
  Sequence seq(1, tokens_from(100, 12), 4);
  prefill(pool, seq);
  pool.release_out_of_window(seq, 4);  // block 0 and 1 released (next query 12 sees 9..12)
  ASSERT_EQ(seq.num_released_blocks, 2);
  seq.num_released_blocks = 1;  // the count no longer covers entry 1
  const Status status = pool.check_invariants(std::vector<const Sequence*>{&seq});
  EXPECT_FALSE(status.is_ok());
  EXPECT_THAT(status.to_string(), HasSubstr("released"));
}

TEST(BlockPoolTest, ValidateNamesTheField) {
  EXPECT_THAT(BlockPool::validate({.num_blocks = 0}).message(), HasSubstr("num_blocks"));
  EXPECT_THAT(BlockPool::validate({.num_blocks = 4, .block_size = 0}).message(),
              HasSubstr("block_size"));
  EXPECT_THAT(BlockPool::validate({.num_blocks = 1 << 28, .block_size = 16}).message(),
              HasSubstr("fit int32"));
  EXPECT_THROW(BlockPool(BlockPoolConfig{.num_blocks = -1}), Error);
}

}  // namespace
}  // namespace llmserve
