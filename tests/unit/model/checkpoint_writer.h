// Test helper: writes small safetensors files and HF model directories, so loader tests can build
// exactly the broken checkpoint they need.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/half.h"

namespace llmserve::testing {

struct TestTensor {
  std::string dtype = "F32";  // F32, F16, BF16
  std::vector<int64_t> shape;
  std::vector<float> values;  // numel values
};

inline std::string encode_values(const TestTensor& t) {
  std::string bytes;
  for (float v : t.values) {
    if (t.dtype == "F32") {
      bytes.append(reinterpret_cast<const char*>(&v), 4);
    } else {
      uint16_t h = t.dtype == "BF16" ? float_to_bf16(v) : float_to_fp16(v);
      bytes.append(reinterpret_cast<const char*>(&h), 2);
    }
  }
  return bytes;
}

// Serialises tensors into safetensors bytes (header padded to 8 bytes like the reference writer).
inline std::string safetensors_bytes(const std::map<std::string, TestTensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  std::string data;
  for (const auto& [name, t] : tensors) {
    std::string bytes = encode_values(t);
    header[name] = {{"dtype", t.dtype},
                    {"shape", t.shape},
                    {"data_offsets", {data.size(), data.size() + bytes.size()}}};
    data += bytes;
  }
  std::string h = header.dump();
  while ((h.size() + 8) % 8 != 0) h += ' ';
  std::string out(8, '\0');
  uint64_t n = h.size();
  std::memcpy(out.data(), &n, 8);
  return out + h + data;
}

inline void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::filesystem::path fresh_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("llmserve_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// Deterministic pseudo-random values in [-scale, scale].
inline std::vector<float> random_values(size_t n, uint64_t seed, float scale = 0.5f) {
  std::vector<float> v(n);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& f : v) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    f = (static_cast<float>(x >> 40) / static_cast<float>(1 << 24) * 2.0f - 1.0f) * scale;
  }
  return v;
}

}  // namespace llmserve::testing
