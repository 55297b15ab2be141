#include "cli/engine_flags.h"

#include <optional>

#include "cli/model_path.h"
#include "common/status.h"

namespace llmserve::cli {

void EngineFlags::add_to(CLI::App& app) {
  auto& c = config;
  app.add_option("--model", model, "Hugging Face model directory (default: the embedded default model)")
      ->envname("LLMSERVE_MODEL");
  app.add_option("--device", device,
                 "auto (cuda when a GPU is visible, else cpu), cpu, cuda, or null (no compute: a benchmarking aid)")
      ->envname("LLMSERVE_DEVICE")->capture_default_str();
  app.add_option("--dtype", dtype,
                 "auto, float16, bfloat16 or float32: activations, weights and KV cache (auto: bfloat16 for "
                 "bfloat16 checkpoints, else float16 on cuda; float32 on cpu)")
      ->envname("LLMSERVE_DTYPE")->capture_default_str();
  app.add_option_function<std::string>(
         "--quantization",
         [&c](const std::string& name) {
           const std::optional<Quantization> q = parse_quantization(name);
           if (!q) throw CLI::ValidationError("--quantization", "must be none, int8-wo or fp8, got '" + name + "'");
           c.quantization = *q;
         },
         "none; int8-wo: int8 weight-only linear layers with per-output-row scales; fp8: e4m3 linear weights "
         "(one scale per tensor) and inputs (one scale per matmul), as fp8 tensor cores compute (cpu only for now)")
      ->envname("LLMSERVE_QUANTIZATION")->default_str("none");
  app.add_option("--tp,--tensor-parallel-size", c.tensor_parallel_size,
                 "Split the model over this many ranks (tensor parallel): GPUs 0..N-1 on cuda, threads on cpu")
      ->envname("LLMSERVE_TP")->capture_default_str();
  app.add_option("--pp,--pipeline-parallel-size", c.pipeline_parallel_size,
                 "Pipeline-parallel stages (only 1: not implemented yet)")
      ->envname("LLMSERVE_PP")->capture_default_str();
  app.add_option("--cuda-graph-max-batch-size", c.max_graph_batch_size,
                 "Record CUDA graphs for decode steps of up to this many sequences at start-up")
      ->envname("LLMSERVE_CUDA_GRAPH_MAX_BATCH_SIZE")->capture_default_str();
  app.add_flag("--enforce-eager", enforce_eager, "Record no CUDA graphs (faster start-up, slower decode)")
      ->envname("LLMSERVE_ENFORCE_EAGER");
  app.add_option("--block-size", c.block_size, "Tokens per KV-cache block")
      ->envname("LLMSERVE_BLOCK_SIZE")->capture_default_str();
  app.add_option("--num-kv-blocks", c.num_kv_blocks, "KV blocks in the pool; 0 sizes it from --kv-cache-memory-fraction")
      ->envname("LLMSERVE_NUM_KV_BLOCKS")->capture_default_str();
  app.add_option("--kv-cache-memory-fraction", c.kv_cache_memory_fraction,
                 "Fraction of free memory after weights for the KV cache (default 0.9 on cuda, 0.2 on cpu)")
      ->envname("LLMSERVE_KV_CACHE_MEMORY_FRACTION");
  app.add_option("--max-num-tokens", c.max_num_tokens, "Token budget of one step (prefill chunks + decodes)")
      ->envname("LLMSERVE_MAX_NUM_TOKENS")->capture_default_str();
  app.add_option("--max-batch-size", c.max_batch_size, "Most sequences in one step")
      ->envname("LLMSERVE_MAX_BATCH_SIZE")->capture_default_str();
  app.add_option("--max-model-len", c.max_model_len, "Prompt + output limit per request; 0: the model's context")
      ->envname("LLMSERVE_MAX_MODEL_LEN")->capture_default_str();
  app.add_option("--max-queue-size", c.max_queue_size, "Waiting requests before new ones are refused as overloaded; 0: unbounded")
      ->envname("LLMSERVE_MAX_QUEUE_SIZE")->capture_default_str();
  app.add_flag("--no-prefix-caching", no_prefix_caching, "Do not reuse the KV blocks of shared prompt prefixes")
      ->envname("LLMSERVE_NO_PREFIX_CACHING");
  app.add_flag("--no-chunked-prefill", no_chunked_prefill, "Prefill each prompt in one step")
      ->envname("LLMSERVE_NO_CHUNKED_PREFILL");
}

EngineConfig EngineFlags::resolve() const {
  EngineConfig c = config;
  c.model_dir = resolve_model_dir(model);
  if (device == "auto") {
    c.device = cuda_device_available() ? DeviceKind::kCuda : DeviceKind::kCpu;
  } else if (device == "cpu") {
    c.device = DeviceKind::kCpu;
  } else if (device == "cuda") {
    c.device = DeviceKind::kCuda;
  } else if (device == "null") {
    c.device = DeviceKind::kNull;
  } else {
    fail(StatusCode::kInvalidArgument, "--device must be auto, cpu, cuda or null, got '{}'", device);
  }
  if (dtype == "float16" || dtype == "half" || dtype == "fp16") {
    c.dtype = DType::kF16;
  } else if (dtype == "bfloat16" || dtype == "bf16") {
    c.dtype = DType::kBF16;
  } else if (dtype == "float32" || dtype == "float" || dtype == "fp32") {
    c.dtype = DType::kF32;
  } else if (dtype != "auto") {
    fail(StatusCode::kInvalidArgument, "--dtype must be auto, float16, bfloat16 or float32, got '{}'", dtype);
  }
  if (enforce_eager) c.max_graph_batch_size = 0;
  c.enable_prefix_caching = !no_prefix_caching;
  c.enable_chunked_prefill = !no_chunked_prefill;
  return c;
}

}  // namespace llmserve::cli
