// ModelRunner: turns a list of scheduled sequences into one flat, padding-free ForwardBatch,
// runs the model on the backend and returns the wanted logits on the host.
// It knows nothing about queues or requests; the scheduler decides what runs.
// Not thread-safe: used by the engine thread only.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "model/model.h"

namespace llmserve {

struct RunnerSequence {
  const int32_t* new_tokens = nullptr;  // the tokens to process this step
  int32_t num_new_tokens = 0;
  int32_t num_computed_tokens = 0;      // tokens already in the KV cache
  const std::vector<int32_t>* block_table = nullptr;
  LogitRows logits = LogitRows::kLast;
};

class ModelRunner {
 public:
  ModelRunner(Model& model, Backend& backend, const KvCache& kv_cache);

  // Runs one step; returns [num logit rows, vocab] fp32, row-major, in sequence order.
  // The span is valid until the next execute().
  std::span<const float> execute(std::span<const RunnerSequence> sequences);

  int32_t vocab_size() const { return model_.config().vocab_size; }
  int32_t block_size() const { return kv_cache_.spec.block_size; }
  int32_t num_blocks() const { return kv_cache_.spec.num_blocks; }

 private:
  Model& model_;
  Backend& backend_;
  const KvCache& kv_cache_;
  ForwardBatch batch_;
  std::vector<float> logits_;
};

}  // namespace llmserve
