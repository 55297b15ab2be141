// WeightCaptureBackend: the backend `llmserve build` loads a model onto. It holds weights in host
// memory in the engine's dtype and implements BackendMemory (allocate, upload, download,
// transpose), all that loading needs; it has none of the ops (each throws the Backend default's
// Error(kUnimplemented)). The model's weights end up exactly as the target backend would
// hold them (fused, sliced for one rank, converted, quantized), so the builder writes them out as
// they are. Rank `rank` of `size` in stage `stage` of `num_stages`, like the backends it stands in
// for.
#pragma once

#include <map>
#include <memory>
#include <mutex>

#include "backend/backend.h"

namespace llmserve::builder {

class WeightCaptureBackend final : public Backend {
 public:
  WeightCaptureBackend(DType dtype, int32_t rank, int32_t size, int32_t stage, int32_t num_stages)
      : dtype_(dtype), rank_(rank), size_(size), stage_(stage), num_stages_(num_stages) {}

  std::string_view name() const override { return "build"; }
  DType activation_dtype() const override { return dtype_; }
  int32_t rank() const override { return rank_; }
  int32_t group_size() const override { return size_; }
  int32_t stage() const override { return stage_; }
  int32_t num_stages() const override { return num_stages_; }

  Buffer allocate(size_t nbytes) override;
  void upload(const void* host, Tensor dst) override;
  void download(Tensor src, void* host) override;
  void transpose(Tensor src, Tensor dst) override;
  size_t free_memory() const override;

 private:
  // Freed blocks by size, handed to the next allocation of that size: a quantized linear is
  // staged in fp32 and freed once quantized, and every layer stages the same few sizes, so a fresh
  // block each time paid its page faults again (most of a quantizing build's time). Shared with
  // the buffers' deleters, which may outlive the backend.
  struct FreeBlocks {
    std::mutex mu;
    std::multimap<size_t, void*> blocks;
    ~FreeBlocks();
  };
  std::shared_ptr<FreeBlocks> free_ = std::make_shared<FreeBlocks>();

  DType dtype_;
  int32_t rank_, size_, stage_, num_stages_;
};

}  // namespace llmserve::builder
