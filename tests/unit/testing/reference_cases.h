// The HF transformers reference of a fixture checkpoint (tests/data/models/<name>/
// reference.safetensors, written by scripts/make_reference.py): per case the prompt, the prefill
// logits of every position, a few decode steps with their logits, and the greedy continuation.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/safetensors.h"

namespace llmserve::testing {

struct ReferenceCase {
  std::vector<int32_t> prompt;
  std::vector<float> prefill_logits;  // [T, V]
  std::vector<int32_t> decode_tokens;
  std::vector<float> decode_logits;  // [S, V]
  std::vector<int32_t> greedy;
};

inline std::vector<int32_t> read_reference_ids(const SafetensorsFile& f, const std::string& name) {
  const TensorInfo* info = f.find(name);
  if (info == nullptr) throw std::runtime_error("reference has no " + name);
  auto bytes = f.data(*info);
  std::vector<int32_t> out(static_cast<size_t>(info->numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    int64_t v;
    std::memcpy(&v, bytes.data() + 8 * i, 8);
    out[i] = static_cast<int32_t>(v);
  }
  return out;
}

inline std::vector<float> read_reference_floats(const SafetensorsFile& f, const std::string& name) {
  const TensorInfo* info = f.find(name);
  if (info == nullptr || info->dtype != DType::kF32)
    throw std::runtime_error("reference has no f32 " + name);
  auto bytes = f.data(*info);
  std::vector<float> out(static_cast<size_t>(info->numel()));
  std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

inline std::vector<ReferenceCase> read_reference_cases(const std::filesystem::path& dir) {
  SafetensorsFile f(dir / "reference.safetensors");
  std::vector<ReferenceCase> cases;
  for (int i = 0; f.find("case" + std::to_string(i) + ".prompt") != nullptr; ++i) {
    const std::string p = "case" + std::to_string(i) + ".";
    cases.push_back(
        {read_reference_ids(f, p + "prompt"), read_reference_floats(f, p + "prefill_logits"),
         read_reference_ids(f, p + "decode_tokens"), read_reference_floats(f, p + "decode_logits"),
         read_reference_ids(f, p + "greedy")});
  }
  return cases;
}

}  // namespace llmserve::testing
