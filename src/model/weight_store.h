// WeightStore: every tensor of a Hugging Face checkpoint directory, by name, across shards.
//
// Accepts `model.safetensors`, or `model.safetensors.index.json` + the shard files its weight_map
// names. Lookups return typed host copies (fp32 for the CPU backend) after checking the shape,
// with errors that name the tensor and its file. A pre-quantized checkpoint (config.json's
// quantization_config: fp8, AWQ, GPTQ; model/quantized_checkpoint.h) also serves each quantized
// linear layer's `<prefix>.weight` as F32, dequantized on first use.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "model/quantized_checkpoint.h"
#include "model/safetensors.h"

namespace llmserve {

class WeightStore {
 public:
  // Throws Error(kNotFound) when neither model.safetensors nor the index exists, or a shard
  // named by the index is missing; Error(kDataLoss) for corrupt files.
  static WeightStore open(const std::filesystem::path& dir);
  // One safetensors file (an engine's rank file); dir() is its folder.
  static WeightStore open_file(const std::filesystem::path& file);

  bool contains(const std::string& name) const;
  // The tensor's header entry and its file; throws Error(kNotFound) naming the tensor.
  const TensorInfo& info(const std::string& name) const;
  const std::filesystem::path& file_of(const std::string& name) const;

  // Converts the tensor (F32/F16/BF16) to fp32. `expected_shape` is checked exactly.
  std::vector<float> load_f32(const std::string& name,
                              std::span<const int64_t> expected_shape) const;
  std::vector<float> load_f32(const std::string& name,
                              std::initializer_list<int64_t> expected_shape) const {
    return load_f32(name, std::span<const int64_t>(expected_shape.begin(), expected_shape.size()));
  }
  // Raw bytes inside the map (valid while the store lives).
  std::span<const uint8_t> bytes(const std::string& name) const;
  // A stored tensor's bytes in place with what keeps them mapped (after the store is gone too),
  // and how many bytes of the mapping follow them (a reader may over-read up to the rounding of
  // its buffers); nullopt for a dequantized (synthetic) tensor.
  struct Mapped {
    std::span<const uint8_t> bytes;
    size_t bytes_after = 0;
    std::shared_ptr<const void> keep_alive;
  };
  std::optional<Mapped> mapped(const std::string& name) const;

  std::vector<std::string> names() const;
  const std::filesystem::path& dir() const { return dir_; }
  // The checkpoint's own quantization (kNone for most; open() only).
  const CheckpointQuantizationConfig& quantization() const { return quantization_; }

 private:
  // A dequantized weight: its header entry, and its values once asked for.
  struct Synthetic {
    DequantizedWeight weight;
    TensorInfo info;
    const SafetensorsFile* source = nullptr;  // the file of its stored codes, for messages
    std::once_flag made;
    std::vector<float> values;
  };
  struct Entry {
    const SafetensorsFile* file;
    const TensorInfo* info;
    Synthetic* synthetic = nullptr;
  };
  const std::vector<float>& values_of(Synthetic& s) const;
  void add_dequantized();
  const Entry& entry(const std::string& name) const;
  void add_files(const std::vector<std::filesystem::path>& paths);

  std::filesystem::path dir_;
  std::vector<std::shared_ptr<const SafetensorsFile>> files_;
  std::map<std::string, Entry> entries_;
  CheckpointQuantizationConfig quantization_;
  std::vector<std::unique_ptr<Synthetic>> synthetic_;
};

std::string shape_string(std::span<const int64_t> shape);

}  // namespace llmserve
