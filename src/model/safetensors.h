// Safetensors reader: parses the header of a .safetensors file and hands out views of the tensor
// bytes inside a memory map. Nothing is copied.
//
// Format: 8-byte little-endian header length N, N bytes of JSON
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
// then the data region; offsets are relative to its start. Every check that can fail names the
// file and the tensor: a truncated file, a header that is not JSON, offsets outside the data
// region, a byte count that disagrees with dtype x shape, overlapping tensors.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/dtype.h"
#include "common/mapped_file.h"

namespace llmserve {

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offset within the data region
  uint64_t end = 0;

  int64_t numel() const;
};

// Parses and validates a header. `file_size` is the whole file's size; `source` names the file in
// messages. Throws Error(kDataLoss) on any inconsistency. Exposed for the fuzz target.
std::map<std::string, TensorInfo> parse_safetensors_header(std::span<const uint8_t> file_prefix,
                                                           uint64_t file_size,
                                                           const std::string& source);

class SafetensorsFile {
 public:
  // Maps the file and parses its header. Throws Error naming the file.
  explicit SafetensorsFile(const std::filesystem::path& path);

  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find(const std::string& name) const;
  // The tensor's bytes inside the map (valid as long as this object lives).
  std::span<const uint8_t> data(const TensorInfo& info) const;
  const std::filesystem::path& path() const { return file_.path(); }
  // The whole mapping (header included): where it starts and its size.
  const uint8_t* mapped_begin() const { return file_.bytes().data(); }
  size_t mapped_size() const { return file_.bytes().size(); }

 private:
  MappedFile file_;
  uint64_t data_start_ = 0;
  std::map<std::string, TensorInfo> tensors_;
};

}  // namespace llmserve
