#include "model/model.h"

#include <algorithm>
#include <fstream>
#include <map>

#include "common/status.h"
#include "model/engine_manifest.h"
#include "model/quantized_checkpoint.h"

namespace llmserve {

namespace {

std::map<std::string, Architecture>& registry() {
  static std::map<std::string, Architecture> archs;
  return archs;
}

nlohmann::json read_json(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) fail(StatusCode::kNotFound, "cannot open '{}'", file.string());
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    fail(StatusCode::kInvalidArgument, "'{}' is not a JSON object", file.string());
  return j;
}

std::vector<int32_t> read_token_ids(const nlohmann::json& v) {
  std::vector<int32_t> ids;
  if (v.is_number_integer()) ids.push_back(v.get<int32_t>());
  if (v.is_array()) {
    for (const auto& x : v) {
      if (x.is_number_integer()) ids.push_back(x.get<int32_t>());
    }
  }
  return ids;
}

void read_special_ids(const nlohmann::json& j, ModelConfig& c) {
  if (j.contains("bos_token_id") && j["bos_token_id"].is_number_integer()) {
    c.bos_token_id = j["bos_token_id"].get<int32_t>();
  }
  if (j.contains("eos_token_id")) {
    auto ids = read_token_ids(j["eos_token_id"]);
    if (!ids.empty()) c.eos_token_ids = ids;
  }
}

}  // namespace

int32_t stage_first_layer(int32_t num_layers, int32_t stage, int32_t num_stages) {
  return static_cast<int32_t>(static_cast<int64_t>(num_layers) * stage / num_stages);
}

ModelConfig shard_config(const ModelConfig& c, ModelShard shard) {
  if (shard.size < 1 || shard.rank < 0 || shard.rank >= shard.size) {
    fail(StatusCode::kInvalidArgument, "tensor parallel rank {} of {}", shard.rank, shard.size);
  }
  if (shard.num_stages < 1 || shard.stage < 0 || shard.stage >= shard.num_stages) {
    fail(StatusCode::kInvalidArgument, "pipeline stage {} of {}", shard.stage, shard.num_stages);
  }
  if (shard.num_stages > c.num_layers) {
    fail(StatusCode::kInvalidArgument,
         "--pp {}: '{}' has only {} layers (num_hidden_layers); use at most that many stages",
         shard.num_stages, (c.dir / "config.json").string(), c.num_layers);
  }
  auto divide = [&](int32_t v, const char* field) {
    if (v % shard.size != 0) {
      fail(StatusCode::kInvalidArgument,
           "--tp {}: '{}' has {} {}, which does not split evenly over {} ranks (pick a --tp that "
           "divides it)",
           shard.size, (c.dir / "config.json").string(), field, v, shard.size);
    }
    return v / shard.size;
  };
  ModelConfig local = c;
  local.num_kv_heads = divide(c.num_kv_heads, "num_key_value_heads");
  local.num_q_heads = divide(c.num_q_heads, "num_attention_heads");
  local.intermediate_size = divide(c.intermediate_size, "intermediate_size");
  if (c.moe.num_experts > 0) {
    // Every rank holds every expert's slice of the intermediate columns (and of the shared
    // expert's), as it holds the dense MLP's: routing is the same on every rank.
    local.moe.intermediate_size = divide(c.moe.intermediate_size, "moe_intermediate_size");
    local.moe.shared_intermediate_size =
        divide(c.moe.shared_intermediate_size, "shared_expert_intermediate_size");
  }
  local.num_layers = stage_first_layer(c.num_layers, shard.stage + 1, shard.num_stages) -
                     stage_first_layer(c.num_layers, shard.stage, shard.num_stages);
  return local;
}

KvCacheSpec Model::kv_cache_spec(int32_t block_size, int32_t num_blocks) const {
  KvCacheSpec spec;
  spec.num_layers = local_.num_layers;
  spec.num_kv_heads = local_.num_kv_heads;
  spec.head_dim = config_.head_dim;
  spec.block_size = block_size;
  spec.num_blocks = num_blocks;
  spec.dtype = activation_dtype_;
  return spec;
}

void ArchRegistry::add(Architecture arch) {
  std::string name = arch.name;
  registry().emplace(std::move(name), std::move(arch));
}

const Architecture* ArchRegistry::find(const std::string& name) {
  auto it = registry().find(name);
  return it == registry().end() ? nullptr : &it->second;
}

std::vector<std::string> ArchRegistry::names() {
  std::vector<std::string> out;
  for (const auto& [name, arch] : registry()) out.push_back(name);
  return out;
}

ModelConfig load_model_config(const std::filesystem::path& dir) {
  if (!std::filesystem::is_directory(dir)) {
    fail(StatusCode::kNotFound, "model directory '{}' does not exist", dir.string());
  }
  auto file = dir / "config.json";
  if (!std::filesystem::exists(file)) fail(StatusCode::kNotFound, "'{}' is missing", file.string());
  ModelConfig config;
  config.dir = dir;
  config.raw = read_json(file);
  const auto& archs = config.raw["architectures"];
  if (!archs.is_array() || archs.empty() || !archs[0].is_string()) {
    fail(StatusCode::kInvalidArgument, "'{}' has no \"architectures\" list", file.string());
  }
  config.architecture = archs[0].get<std::string>();
  const Architecture* arch = ArchRegistry::find(config.architecture);
  if (arch == nullptr) {
    std::string known;
    for (const auto& n : ArchRegistry::names()) known += (known.empty() ? "" : ", ") + n;
    fail(StatusCode::kUnimplemented, "'{}': architecture '{}' is not supported (supported: {})",
         file.string(), config.architecture, known);
  }
  ConfigReader reader(config.raw, file);
  std::string dtype = reader.get_string("torch_dtype", reader.get_string("dtype", "float32"));
  config.checkpoint_dtype = dtype == "bfloat16"  ? DType::kBF16
                            : dtype == "float16" ? DType::kF16
                                                 : DType::kF32;
  read_special_ids(config.raw, config);
  arch->parse_config(reader, config);
  if (config.rope.type == RopeConfig::Type::kDynamic) {
    // Served within the original context only (model/model_config.cpp, parse_rope_config).
    config.max_position_embeddings =
        std::min(config.max_position_embeddings, config.rope.original_max_position_embeddings);
  }
  auto gen = dir / "generation_config.json";
  if (std::filesystem::exists(gen)) read_special_ids(read_json(gen), config);
  validate_model_config(config);
  return config;
}

DType default_cpu_weight_dtype(const std::filesystem::path& dir) {
  if (read_checkpoint_quantization(dir).kind != CheckpointQuantization::kNone) return DType::kF32;
  const DType stored = load_model_config(dir).checkpoint_dtype;
  return stored == DType::kF16 || stored == DType::kBF16 ? stored : DType::kF32;
}

std::string_view quantization_name(Quantization q) {
  switch (q) {
    case Quantization::kNone:
      return "none";
    case Quantization::kInt8WeightOnly:
      return "int8-wo";
    case Quantization::kFp8:
      return "fp8";
    case Quantization::kInt4WeightOnly:
      return "int4-wo";
  }
  return "?";
}

std::optional<Quantization> parse_quantization(std::string_view name) {
  if (name == "none") return Quantization::kNone;
  if (name == "int8-wo") return Quantization::kInt8WeightOnly;
  if (name == "fp8") return Quantization::kFp8;
  if (name == "int4-wo") return Quantization::kInt4WeightOnly;
  return std::nullopt;
}

Quantization served_quantization(const CheckpointQuantizationConfig& q, bool fp8_gemm) {
  if (q.is_fp8() && fp8_gemm) return Quantization::kFp8;
  if (q.kind == CheckpointQuantization::kAwq || q.kind == CheckpointQuantization::kGptq)
    return Quantization::kInt4WeightOnly;
  return Quantization::kNone;
}

std::unique_ptr<Model> load_model(const std::filesystem::path& dir, Backend& backend,
                                  const LoadOptions& options) {
  ModelConfig config = load_model_config(dir);
  if (!is_engine_dir(dir)) {
    WeightStore weights = WeightStore::open(dir);
    auto model = ArchRegistry::find(config.architecture)->create(config, weights, backend, options);
    model->activation_dtype_ = backend.activation_dtype();
    return model;
  }
  const EngineManifest manifest = read_engine_manifest(dir);
  check_engine_target(manifest, dir, backend);
  if (manifest.architecture != config.architecture) {
    fail(StatusCode::kDataLoss, "engine '{}' was built for {} but its config.json says {}",
         dir.string(), manifest.architecture, config.architecture);
  }
  if (options.quantization != Quantization::kNone &&
      options.quantization != manifest.quantization) {
    fail(StatusCode::kFailedPrecondition,
         "engine '{}' was built with --quantization {}, not {}; build another engine for {}",
         dir.string(), quantization_name(manifest.quantization),
         quantization_name(options.quantization), quantization_name(options.quantization));
  }
  if (options.quantize_lm_head && !manifest.quantize_lm_head) {
    fail(StatusCode::kFailedPrecondition,
         "engine '{}' was built without --quantize-lm-head; build another engine with it",
         dir.string());
  }
  const size_t rank = static_cast<size_t>(backend.stage() * manifest.tp + backend.rank());
  const EngineRankFile& file = manifest.ranks.at(rank);
  if (file.stage != backend.stage() || file.tp_rank != backend.rank()) {
    fail(StatusCode::kDataLoss,
         "engine '{}': ranks[{}] is stage {} rank {}, expected stage {} rank {}", dir.string(),
         rank, file.stage, file.tp_rank, backend.stage(), backend.rank());
  }
  WeightStore weights = WeightStore::open_file(dir / file.file);
  LoadOptions engine_options = options;
  engine_options.quantization = manifest.quantization;
  engine_options.quantize_lm_head = manifest.quantize_lm_head;
  engine_options.engine_source_tensors = &manifest.source_tensors;
  engine_options.recorder = nullptr;
  auto model =
      ArchRegistry::find(config.architecture)->create(config, weights, backend, engine_options);
  model->activation_dtype_ = backend.activation_dtype();
  return model;
}

}  // namespace llmserve
