// EngineConfig: what `serve`, `bench` and `generate` ask of the engine (engine.h), checked once by
// validate() before anything loads, and adjusted to a built engine's manifest.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>

#include "backend/backend.h"
#include "common/status.h"
#include "engine/speculative.h"
#include "model/model.h"

namespace llmserve {

struct EngineManifest;

struct EngineConfig {
  std::filesystem::path model_dir;
  DeviceKind device = DeviceKind::kCpu;
  // Activation / weight / KV dtype: nullopt picks bf16 for bf16 checkpoints and fp16 otherwise on
  // CUDA. The CPU computes in fp32 and this is its weights' dtype (default_cpu_weight_dtype: a
  // 16-bit checkpoint's own, else fp32).
  std::optional<DType> dtype;
  int32_t max_graph_batch_size = 256;  // decode batches up to this run as CUDA graphs; 0: eager
  int32_t tensor_parallel_size = 1;    // ranks per pipeline stage
  int32_t pipeline_parallel_size =
      1;  // stages; tp x pp ranks = GPUs 0..n-1 on cuda, threads on cpu
  int32_t block_size = 16;
  int32_t num_kv_blocks = 0;             // > 0 overrides the memory fraction
  double kv_cache_memory_fraction = -1;  // of free memory after weights; < 0: 0.9 cuda, 0.2 cpu
  int32_t max_num_tokens = 8192;         // token budget per step
  int32_t max_batch_size = 256;          // sequences per step
  int32_t max_model_len = 0;             // 0: the model's max_position_embeddings
  int32_t max_queue_size =
      0;  // requests waiting beyond free batch slots before "overloaded"; 0: unbounded
  bool enable_prefix_caching = true;
  bool enable_chunked_prefill = true;
  uint64_t seed = 0;  // base for per-request seeds when a request has none
  Quantization quantization = Quantization::kNone;  // of the linear weights at load (cpu and cuda)
  bool quantize_lm_head = false;  // the lm_head in int8 weight-only (LoadOptions::quantize_lm_head)
  // Element type of the KV cache: nullopt = the activation dtype; F8E4M3 stores keys and values
  // as fp8 e4m3 (scale 1, saturating), a quarter of fp32's bytes (cpu only for now).
  std::optional<DType> kv_cache_dtype;
  // Time the device side of every step (EngineStats::device_steps; bench offline --step-timing):
  // two CUDA events and a query a step.
  bool step_timing = false;
  // Push outputs to their streams from a thread of their own (output_writer.h), so the device
  // does not wait through them; nullopt: on for cuda and null, off for cpu.
  std::optional<bool> output_thread;
  // Compute threads of the cpu device (OpenMP + OpenBLAS); 0: from the CPU quota
  // (configure_cpu_threads).
  int32_t cpu_threads = 0;
  // Speculative decoding (speculative.h): off unless mode is set.
  SpeculativeConfig speculative;

  // Every field's range and the combinations the engine refuses, before anything loads.
  Status validate() const;
};

// A built engine fixes dtype, quantization (the lm_head's too), tp x pp and the longest sequence:
// `c` takes them from the engine's manifest. Throws Error(kInvalidArgument) when a flag asks for
// something else (tp and pp of 1 are the defaults and mean "the engine's"; so does
// --quantize-lm-head left off).
void apply_engine_manifest(EngineConfig& c, const EngineManifest& m);

}  // namespace llmserve
