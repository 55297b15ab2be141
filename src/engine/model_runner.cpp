#include "engine/model_runner.h"

namespace llmserve {

ModelRunner::ModelRunner(Model& model, Backend& backend, const KvCache& kv_cache)
    : model_(model), backend_(backend), kv_cache_(kv_cache) {}

std::span<const float> ModelRunner::execute(std::span<const RunnerSequence> sequences) {
  batch_.clear();
  for (const RunnerSequence& s : sequences) {
    batch_.add_sequence(s.new_tokens, s.num_new_tokens, s.num_computed_tokens, *s.block_table,
                        kv_cache_.spec.block_size, s.logits);
  }
  batch_.finalize();
  BatchTensors uploaded = backend_.upload_batch(batch_);
  Tensor logits = model_.forward(uploaded, kv_cache_);
  logits_.resize(static_cast<size_t>(logits.numel()));
  backend_.download(logits, logits_.data());
  return logits_;
}

}  // namespace llmserve
