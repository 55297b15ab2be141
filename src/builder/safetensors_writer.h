// Writes safetensors files as the reference implementation does: an 8-byte little-endian header
// length, the JSON header padded with spaces (here so the data starts at a multiple of 64 bytes;
// the reference pads to 8), then the tensors' bytes back to back in the order given (the format
// has no gaps between tensors).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "common/dtype.h"

namespace llmserve::builder {

struct TensorToWrite {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  std::span<const uint8_t> bytes;  // dtype_size(dtype) x numel
};

// Writes `file` (fsynced before it returns) and returns its size. `on_bytes(n)` is called as data
// is written. Throws Error(kDataLoss) naming the file when a write fails, Error(kInternal) for a
// tensor whose bytes disagree with its dtype and shape or a repeated name.
uint64_t write_safetensors(const std::filesystem::path& file,
                           const std::vector<TensorToWrite>& tensors,
                           const std::map<std::string, std::string>& metadata = {},
                           const std::function<void(uint64_t)>& on_bytes = {});

}  // namespace llmserve::builder
