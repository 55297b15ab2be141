// Model: one decoder-only transformer, loaded onto a backend, that runs a forward step over a
// flat batch and returns logits. Architectures live in src/model/arch/, one file each, and
// register themselves with ArchRegistry by the name HF writes in config.json "architectures".
// Adding an architecture is adding one file.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backend/backend.h"
#include "model/model_config.h"
#include "model/quantized_checkpoint.h"
#include "model/weight_store.h"

namespace llmserve {

// The part of the model one rank holds.
// Tensor parallel (Megatron layout): attention heads and FFN columns are split evenly over `size`
// ranks — Q/K/V and up/gate column-parallel, the attention output and down projections
// row-parallel and followed by an all-reduce over the stage's ranks — while embeddings, norms and
// lm_head are whole on every rank of the stage.
// Pipeline parallel: the layers are split into `num_stages` consecutive ranges; the first stage
// embeds, each stage hands the residual stream to the next, the last computes the logits.
struct ModelShard {
  int32_t rank = 0;  // within the stage's tensor-parallel group
  int32_t size = 1;  // tensor-parallel ranks per stage
  int32_t stage = 0;
  int32_t num_stages = 1;
  bool is_first_stage() const { return stage == 0; }
  bool is_last_stage() const { return stage == num_stages - 1; }
};

// Weight quantization applied at load (--quantization), to the big linear weights (QKV, attention
// output, MLP up/gate and down; not embeddings, lm_head, norms or biases), after tensor-parallel
// slicing (src/model/quantize.h has the math). The lm_head has its own switch
// (LoadOptions::quantize_lm_head: int8 weight-only).
// kInt8WeightOnly: int8 with one fp32 scale per output row (symmetric, scale = max|row| / 127,
// round to nearest); activations stay in the backend's dtype.
// kFp8: fp8 e4m3 W8A8 with one fp32 scale per output row (scale = max|row| / 448, round to nearest
// even); each linear layer's input is quantized to e4m3 per token (max|x[t]| / 448) and the
// products summed in fp32, as an fp8 tensor-core GEMM does (Backend::quantize_fp8_rows,
// Backend::matmul_fp8).
// kInt4WeightOnly: 4-bit codes with a scale and a zero point per group of 128 input columns of a
// row (fewer where in_features is not a multiple of 128; a pre-quantized AWQ/GPTQ checkpoint's own
// group size), AWQ's asymmetric arithmetic; activations stay in the backend's dtype
// (Backend::matmul_int4).
enum class Quantization { kNone, kInt8WeightOnly, kFp8, kInt4WeightOnly };

// "none" / "int8-wo" / "fp8" / "int4-wo".
std::string_view quantization_name(Quantization q);
// Parses quantization_name's spelling; nullopt for anything else.
std::optional<Quantization> parse_quantization(std::string_view name);
// How a checkpoint pre-quantized as `q` is served when --quantization is none: fp8 ones as fp8
// where `fp8_gemm` (the cuda backend), AWQ/GPTQ ones as int4-wo; otherwise kNone (dequantized).
Quantization served_quantization(const CheckpointQuantizationConfig& q, bool fp8_gemm);

// Sees every weight a model loads, as the model holds it (fused, this rank's slice, in the
// backend's dtype, quantized): `llmserve build` records them into an engine (src/builder/).
class WeightRecorder {
 public:
  virtual ~WeightRecorder() = default;
  // `t` lives in the backend's memory until the model is destroyed; `key` names it in an engine.
  virtual void record(const std::string& key, const Tensor& t) = 0;
};

struct LoadOptions {
  Quantization quantization = Quantization::kNone;
  // The lm_head in int8 weight-only (one F32 scale per vocabulary row), whatever `quantization`
  // is: its input is the final norm's output in the activation dtype, never fp8 codes. With tied
  // embeddings the quantized copy is the lm_head's alone; the embedding lookup reads the table
  // unquantized.
  bool quantize_lm_head = false;
  WeightRecorder* recorder = nullptr;
  // Loading a built engine (load_model sets it): the store passed to the architecture is this
  // rank's engine file, whose tensors are ready to upload under their keys, and this lists the
  // checkpoint's tensor names (what WeightLoader::contains answers from).
  const std::vector<std::string>* engine_source_tensors = nullptr;
};

// Where `backend` sits in its group.
inline ModelShard shard_of(const Backend& backend) {
  return {backend.rank(), backend.group_size(), backend.stage(), backend.num_stages()};
}

// The first layer of `stage` when `num_layers` layers are split over `num_stages` stages (stage
// num_stages gives num_layers).
int32_t stage_first_layer(int32_t num_layers, int32_t stage, int32_t num_stages);

// `c` with the per-rank head counts, intermediate_size and num_layers (the stage's). Throws
// Error(kInvalidArgument) naming the config field that the split does not divide.
ModelConfig shard_config(const ModelConfig& c, ModelShard shard);

class Model {
 public:
  Model(ModelConfig config, ModelShard shard)
      : config_(std::move(config)), shard_(shard), local_(shard_config(config_, shard)) {}
  virtual ~Model() = default;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig& config() const { return config_; }  // the whole model's
  ModelShard shard() const { return shard_; }
  // This rank's dims (heads, intermediate_size divided by the group size; num_layers: the
  // stage's): activations, KV.
  const ModelConfig& local_config() const { return local_; }
  int32_t first_layer() const {
    return stage_first_layer(config_.num_layers, shard_.stage, shard_.num_stages);
  }
  // The KV pool shape this model needs for `num_blocks` blocks of `block_size` tokens, in the
  // activation dtype of the backend it was loaded on.
  KvCacheSpec kv_cache_spec(int32_t block_size, int32_t num_blocks) const;

  // Allocates the activation buffers for steps of up to `max_num_tokens` tokens and
  // `max_logit_rows` logit rows (serving: one per sequence, so the batch limit) now, so memory
  // left for the KV cache is known and later steps do not allocate.
  virtual void reserve(int32_t max_num_tokens, int32_t max_logit_rows) = 0;

  // Runs one step. Writes K/V of the batch's tokens into `kv` and returns the logits of the rows
  // in batch.logits_indices: [L, vocab] fp32 in backend memory, valid until the next forward.
  virtual Tensor forward(const BatchTensors& batch, const KvCache& kv) = 0;

 protected:
  friend std::unique_ptr<Model> load_model(const std::filesystem::path& dir, Backend& backend,
                                           const LoadOptions& options);
  ModelConfig config_;
  ModelShard shard_;
  ModelConfig local_;
  DType activation_dtype_ = DType::kF32;  // of the KV cache; the backend's
};

struct Architecture {
  std::string name;  // as in config.json "architectures", e.g. "LlamaForCausalLM"
  // Reads the architecture's config.json fields into a ModelConfig (dir and raw already set).
  std::function<void(const ConfigReader&, ModelConfig&)> parse_config;
  std::function<std::unique_ptr<Model>(const ModelConfig&, const WeightStore&, Backend&,
                                       const LoadOptions&)>
      create;
};

class ArchRegistry {
 public:
  static void add(Architecture arch);
  static const Architecture* find(const std::string& name);
  static std::vector<std::string> names();
};

// Registers an architecture from a static initialiser in its own .cpp file.
#define LLMSERVE_REGISTER_ARCH(ident, ...)      \
  namespace {                                   \
  const bool kRegistered_##ident = [] {         \
    ::llmserve::ArchRegistry::add(__VA_ARGS__); \
    return true;                                \
  }();                                          \
  }

// Reads config.json and generation_config.json of a HF model directory.
// Throws Error naming the file: missing config.json, unknown architecture, bad fields.
ModelConfig load_model_config(const std::filesystem::path& dir);

// The weights' dtype on --device cpu when --dtype is auto: a float16 or bfloat16 checkpoint's
// weights stay in its 16 bits (the CPU backend widens them to fp32 as matmul reads them: the same
// values in half the bytes a decode step reads); float32 checkpoints stay fp32, and so do
// pre-quantized ones, whose weights are dequantized products of codes and scales that 16 bits
// would round.
DType default_cpu_weight_dtype(const std::filesystem::path& dir);

// Loads config + weights onto the backend: the shard of rank backend.rank() of
// backend.group_size() in stage backend.stage() of backend.num_stages() (the whole model alone).
// `dir` is a Hugging Face checkpoint or an engine built by `llmserve build` (it holds
// llmserve-engine.json: src/model/engine_manifest.h), whose rank file is uploaded as it is after
// check_engine_target; its quantization is the engine's (options.quantization must be kNone or
// the same; options.quantize_lm_head false or the engine's). `options.quantization` other than
// kNone needs a backend with that op (CPU: int8-wo and fp8).
std::unique_ptr<Model> load_model(const std::filesystem::path& dir, Backend& backend,
                                  const LoadOptions& options = {});

}  // namespace llmserve
