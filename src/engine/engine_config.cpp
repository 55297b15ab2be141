#include "engine/engine_config.h"

#include "model/engine_manifest.h"

namespace llmserve {

Status EngineConfig::validate() const {
  if (block_size <= 0 || block_size > 1024)
    return invalid_argument("--block-size must be in [1, 1024], got {}", block_size);
  if (num_kv_blocks < 0)
    return invalid_argument("--num-kv-blocks must be >= 0, got {}", num_kv_blocks);
  if (kv_cache_memory_fraction > 1.0) {
    return invalid_argument("--kv-cache-memory-fraction must be in (0, 1], got {}",
                            kv_cache_memory_fraction);
  }
  if (max_num_tokens <= 0)
    return invalid_argument("--max-num-tokens must be > 0, got {}", max_num_tokens);
  if (max_batch_size <= 0)
    return invalid_argument("--max-batch-size must be > 0, got {}", max_batch_size);
  if (max_num_tokens < max_batch_size) {  // checked here, before any weight is loaded
    return invalid_argument(
        "--max-num-tokens ({}) must be >= --max-batch-size ({}) so every running sequence can "
        "decode each step",
        max_num_tokens, max_batch_size);
  }
  if (max_model_len < 0)
    return invalid_argument("--max-model-len must be >= 0, got {}", max_model_len);
  if (max_queue_size < 0)
    return invalid_argument("--max-queue-size must be >= 0, got {}", max_queue_size);
  if (cpu_threads < 0 || cpu_threads > 1024)
    return invalid_argument("--cpu-threads must be in [0, 1024] (0: from the CPU quota), got {}",
                            cpu_threads);
  if (speculative.enabled()) {
    if (speculative.num_speculative_tokens < 1 ||
        speculative.num_speculative_tokens > kMaxSpeculativeTokens) {
      return invalid_argument("--num-speculative-tokens must be in [1, {}], got {}",
                              kMaxSpeculativeTokens, speculative.num_speculative_tokens);
    }
    if (speculative.ngram_min < 1 || speculative.ngram_max < speculative.ngram_min) {
      return invalid_argument(
          "--ngram-min ({}) must be >= 1 and --ngram-max ({}) must be >= --ngram-min",
          speculative.ngram_min, speculative.ngram_max);
    }
    if (speculative.max_batch_size < 0) {
      return invalid_argument("--speculative-max-batch-size must be >= 0, got {}",
                              speculative.max_batch_size);
    }
    if (speculative.mode == SpeculativeMode::kDraft) {
      if (speculative.draft_model_dir.empty())
        return invalid_argument("--speculative draft needs --draft-model");
      if (tensor_parallel_size * pipeline_parallel_size != 1) {
        return invalid_argument(
            "--speculative draft runs with one rank for now; --tp {} --pp {} need --speculative "
            "ngram or none",
            tensor_parallel_size, pipeline_parallel_size);
      }
    }
  }
  if (max_graph_batch_size < 0) {
    return invalid_argument("--cuda-graph-max-batch-size must be >= 0, got {}",
                            max_graph_batch_size);
  }
  if (tensor_parallel_size < 1 || tensor_parallel_size > 64) {
    return invalid_argument("--tp must be in [1, 64], got {}", tensor_parallel_size);
  }
  if (pipeline_parallel_size < 1 || pipeline_parallel_size > 64) {
    return invalid_argument("--pp must be in [1, 64], got {}", pipeline_parallel_size);
  }
  if (tensor_parallel_size * pipeline_parallel_size > 64) {
    return invalid_argument("--tp {} x --pp {} is more than 64 ranks", tensor_parallel_size,
                            pipeline_parallel_size);
  }
  if (dtype && *dtype != DType::kF32 && *dtype != DType::kF16 && *dtype != DType::kBF16) {
    return invalid_argument("--dtype must be float16, bfloat16 or float32, got {}",
                            dtype_name(*dtype));
  }
  if (kv_cache_dtype && *kv_cache_dtype != DType::kF8E4M3) {
    return invalid_argument("--kv-cache-dtype must be auto or fp8, got {}",
                            dtype_name(*kv_cache_dtype));
  }
  if (quantization != Quantization::kNone && device == DeviceKind::kNull) {
    return {StatusCode::kUnimplemented,
            fmt::format("--quantization {}: the null backend has no quantized matmul",
                        quantization_name(quantization))};
  }
  if (quantize_lm_head && device == DeviceKind::kNull) {
    return {StatusCode::kUnimplemented,
            "--quantize-lm-head: the null backend has no quantized matmul"};
  }
  return Status::ok();
}

void apply_engine_manifest(EngineConfig& c, const EngineManifest& m) {
  const std::string dir = c.model_dir.string();
  if (c.dtype && *c.dtype != m.dtype) {
    fail(StatusCode::kInvalidArgument,
         "--dtype {}: engine '{}' was built for {}; leave --dtype at auto or build "
         "another engine",
         dtype_name(*c.dtype), dir, dtype_name(m.dtype));
  }
  if (c.quantization != Quantization::kNone && c.quantization != m.quantization) {
    fail(StatusCode::kInvalidArgument,
         "--quantization {}: engine '{}' was built with {}; build another engine for {}",
         quantization_name(c.quantization), dir, quantization_name(m.quantization),
         quantization_name(c.quantization));
  }
  if (c.quantize_lm_head && !m.quantize_lm_head) {
    fail(StatusCode::kInvalidArgument,
         "--quantize-lm-head: engine '{}' was built without it; build another engine with "
         "--quantize-lm-head",
         dir);
  }
  if ((c.tensor_parallel_size != 1 && c.tensor_parallel_size != m.tp) ||
      (c.pipeline_parallel_size != 1 && c.pipeline_parallel_size != m.pp)) {
    fail(StatusCode::kInvalidArgument, "--tp {} --pp {}: engine '{}' was built for --tp {} --pp {}",
         c.tensor_parallel_size, c.pipeline_parallel_size, dir, m.tp, m.pp);
  }
  if (m.max_seq_len > 0 && c.max_model_len > m.max_seq_len) {
    fail(StatusCode::kInvalidArgument,
         "--max-model-len {} exceeds the engine's --max-seq-len {} ('{}')", c.max_model_len,
         m.max_seq_len, dir);
  }
  c.dtype = m.dtype;  // on cpu the weights' dtype: the engine's tensors load as stored
  c.quantization = m.quantization;
  c.quantize_lm_head = m.quantize_lm_head;
  c.tensor_parallel_size = m.tp;
  c.pipeline_parallel_size = m.pp;
  if (m.max_seq_len > 0 && c.max_model_len == 0) c.max_model_len = m.max_seq_len;
}

}  // namespace llmserve
