// An engine directory, written by `llmserve build` (src/builder/) and read by load_model:
//
//   llmserve-engine.json     the manifest below
//   rank-<i>.safetensors     rank i's weights (i = stage * tp + tensor-parallel rank): fused (QKV,
//                            gate/up), this rank's slice, transposed to [out, in], in the engine's
//                            dtype and quantized with their scales, keyed as WeightLoader names
//                            them — uploaded as stored, with no conversion at start-up
//   config.json, generation_config.json, tokenizer files   copied from the checkpoint, so the
//                            directory serves on its own
//
// An engine is built for one target: device (cpu | cuda), GPU architecture (sm_90, ...), dtype,
// quantization, tp x pp, and one builder version (kEngineFormatVersion). check_engine_target
// refuses to load it anywhere else, with a message that says how to rebuild.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "model/model.h"

namespace llmserve {

inline constexpr const char* kEngineManifestName = "llmserve-engine.json";
// The layout of engine files; bump it whenever what a rank file holds or how it is keyed changes.
inline constexpr int32_t kEngineFormatVersion = 2;  // 2: fp8 weight scales per output row

struct EngineRankFile {
  int32_t stage = 0;
  int32_t tp_rank = 0;
  std::string file;  // relative to the engine directory
  uint64_t bytes = 0;
  int32_t num_tensors = 0;
};

struct EngineManifest {
  int32_t builder_version = kEngineFormatVersion;
  std::string llmserve_version;
  std::string architecture;
  nlohmann::json dims;  // the model's dimensions, for people and tools (not read back)
  DType dtype = DType::kF32;
  Quantization quantization = Quantization::kNone;
  // The lm_head in int8-wo under "lm_head.weight" (+ ".scales"); absent in older manifests: false.
  bool quantize_lm_head = false;
  std::string device;    // "cpu" or "cuda"
  std::string gpu_arch;  // cuda: "sm_90"; cpu: empty
  int32_t tp = 1;
  int32_t pp = 1;
  int32_t max_seq_len = 0;  // 0: the model's max_position_embeddings
  std::string key;          // what the build was asked for: engine_key() in src/builder
  std::string checkpoint_hash;
  std::string source;                       // the checkpoint directory it was built from
  std::vector<std::string> source_tensors;  // the checkpoint's tensor names, sorted
  std::vector<std::string> copied_files;
  std::vector<EngineRankFile> ranks;  // tp * pp, in rank order
  std::string created;                // UTC, ISO 8601

  nlohmann::json to_json() const;
  // Throws Error(kDataLoss) naming `file` and the field for a malformed manifest.
  static EngineManifest from_json(const nlohmann::json& j, const std::filesystem::path& file);
};

bool is_engine_dir(const std::filesystem::path& dir);
// Reads dir/llmserve-engine.json. Throws Error(kNotFound / kDataLoss), and
// Error(kFailedPrecondition) for an engine of another builder version (with how to rebuild).
EngineManifest read_engine_manifest(const std::filesystem::path& dir);
// Writes the manifest (into a temporary file renamed into place).
void write_engine_manifest(const std::filesystem::path& dir, const EngineManifest& manifest);

// "cuda", "cpu" or "null": the engine target a backend stands for.
std::string engine_device_name(const Backend& backend);
// Throws Error(kFailedPrecondition) when `m` cannot load onto `backend`: another device, GPU
// architecture, dtype or tp x pp. The null backend (no compute) takes any engine.
void check_engine_target(const EngineManifest& m, const std::filesystem::path& dir,
                         const Backend& backend);

}  // namespace llmserve
