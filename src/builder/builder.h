// llmserve build: turns a Hugging Face checkpoint into an engine directory (the layout is in
// src/model/engine_manifest.h) for one target, and keeps a cache of engines keyed by what they
// were built from and for.
//
// A build loads each rank's share of the model onto a WeightCaptureBackend through the same
// architecture code that serves it (so fusion, tensor-parallel slicing, dtype conversion and
// quantization happen exactly once, here), records every weight as the model holds it and writes
// one safetensors file per rank. Serving the engine then uploads those bytes as they are.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "common/dtype.h"
#include "common/progress.h"
#include "model/engine_manifest.h"
#include "model/model.h"

namespace llmserve::builder {

struct BuildOptions {
  std::filesystem::path model_dir;  // a Hugging Face checkpoint directory
  std::string device = "cuda";      // the target: "cuda" or "cpu"
  // nullopt: on cuda bf16 for bf16 checkpoints, else fp16; on cpu fp32 (all the cpu computes in)
  std::optional<DType> dtype;
  Quantization quantization = Quantization::kNone;
  bool quantize_lm_head = false;  // the lm_head in int8-wo (LoadOptions::quantize_lm_head)
  int32_t tp = 1;
  int32_t pp = 1;
  int32_t max_seq_len = 0;  // 0: the model's max_position_embeddings
  // cuda: the GPU architecture ("sm_90"); empty: the visible GPU's, or sm_90 (what this build's
  // kernels are compiled for) when none is visible
  std::string gpu_arch;
  bool force = false;  // replace a different engine at the output
  ProgressStyle progress = ProgressStyle::kLog;
};

// Fills in the defaults (dtype, GPU architecture) and checks everything a build needs before any
// writing: the checkpoint's config, the tp x pp split, dtype against device, quantization against
// device, max_seq_len. Throws Error naming the flag.
BuildOptions resolve_build_options(BuildOptions o);

// SHA-256 (hex) over what identifies a checkpoint: config.json, generation_config.json and the
// tokenizer files, and for every weights file its name, size, safetensors header and first and
// last MiB of data (a full read of 16 GB would cost more than the build saves; a changed tensor
// changes its file's header offsets or edge bytes in every realistic edit).
std::string checkpoint_hash(const std::filesystem::path& model_dir);

// SHA-256 (hex) over the checkpoint hash, the resolved options that shape the engine (dtype,
// quantization, the lm_head's when quantized, tp, pp, max_seq_len, device, GPU architecture) and
// kEngineFormatVersion.
std::string engine_key(const BuildOptions& resolved, const std::string& checkpoint_hash);

enum class BuildOutcome { kBuilt, kUpToDate };

struct BuildResult {
  BuildOutcome outcome = BuildOutcome::kBuilt;
  std::filesystem::path dir;
  EngineManifest manifest;
  double seconds = 0;
};

// Builds into `output`. When `output` already holds the engine these options describe (same key)
// nothing is written (kUpToDate). Another engine, or a non-empty directory that is not an engine,
// is an Error(kFailedPrecondition) unless options.force. The engine is written into a temporary
// directory beside `output` and renamed into place, so a reader never sees half an engine.
BuildResult build_engine(const BuildOptions& options, const std::filesystem::path& output);

// The engine cache (serve --engine-cache DIR): the engine lives in DIR/<model name>-<key prefix>.
// The first process to need it builds it while holding an exclusive lock on DIR/<...>.lock
// (flock); every other process that needs the same engine meanwhile waits on the lock and then
// finds it built. A cached engine is reused as it is.
BuildResult cached_engine(const BuildOptions& options, const std::filesystem::path& cache_dir);

}  // namespace llmserve::builder
