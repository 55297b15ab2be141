// KvCache: the paged key/value pool of every layer.
//
// Layout per layer: k and v are [num_blocks, block_size, num_kv_heads, head_dim], so a token's
// keys for all heads are contiguous and a block is one contiguous chunk the attention kernels
// can stream. Slot s is (block s / block_size, offset s % block_size). Which blocks belong to
// which sequence is the engine's business (block tables); the cache only stores.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/tensor.h"

namespace llmserve {

struct KvCacheSpec {
  int32_t num_layers = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;
  int32_t block_size = 16;
  int32_t num_blocks = 0;
  DType dtype = DType::kF32;

  size_t bytes_per_block() const;  // all layers, k and v
};

struct KvLayer {
  Tensor k;  // [num_blocks, block_size, num_kv_heads, head_dim]
  Tensor v;
  int32_t block_size = 16;
};

struct KvCache {
  KvCacheSpec spec;
  std::vector<Buffer> storage;
  std::vector<KvLayer> layers;
};

}  // namespace llmserve
