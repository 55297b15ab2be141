#include "cli/engine_flags.h"

#include <optional>

#include "builder/builder.h"
#include "cli/model_path.h"
#include "common/status.h"
#include "model/engine_manifest.h"
#include "model/model.h"

namespace llmserve::cli {

void EngineFlags::add_to(CLI::App& app) {
  auto& c = config;
  std::string architectures;
  for (const std::string& name : ArchRegistry::names())
    architectures += (architectures.empty() ? "" : ", ") + name;
  app.add_option("--model", model,
                 "Hugging Face model directory, engine directory (llmserve build) or ORG/NAME to "
                 "pull (default: the embedded default model). Architectures: " +
                     architectures +
                     "; pre-quantized fp8 (compressed-tensors, ModelOpt, block-wise), AWQ and "
                     "GPTQ checkpoints of them load as they are")
      ->envname("LLMSERVE_MODEL");
  app.add_option(
         "--engine-cache", engine_cache,
         "Build a Hugging Face --model into an engine in this directory on first use and load it "
         "from there after (shared safely by processes on one node)")
      ->envname("LLMSERVE_ENGINE_CACHE");
  app.add_option("--device", device,
                 "auto (cuda when a GPU is visible, else cpu), cpu, cuda, or null (no compute: a "
                 "benchmarking aid)")
      ->envname("LLMSERVE_DEVICE")
      ->capture_default_str();
  app.add_option("--dtype", dtype,
                 "auto, float16, bfloat16 or float32. cuda: activations, weights and KV cache "
                 "(auto: bfloat16 for bfloat16 checkpoints, else float16). cpu computes in float32 "
                 "and this is its weights' dtype (auto: a float16/bfloat16 checkpoint's own, "
                 "widened as they are read, half the bytes of float32; else float32)")
      ->envname("LLMSERVE_DTYPE")
      ->capture_default_str();
  app.add_option_function<std::string>(
         "--quantization",
         [&c](const std::string& name) {
           const std::optional<Quantization> q = parse_quantization(name);
           if (!q)
             throw CLI::ValidationError(
                 "--quantization", "must be none, int8-wo, fp8 or int4-wo, got '" + name + "'");
           c.quantization = *q;
         },
         "none; int8-wo: int8 weight-only linear layers with per-output-row scales; fp8: e4m3 "
         "linear weights "
         "(per-output-row scales) and inputs (per-token scales), W8A8 as fp8 tensor cores compute; "
         "int4-wo: 4-bit weights in groups of 128 inputs with a scale and zero "
         "point each (AWQ/GPTQ checkpoints: their own groups, and the default)")
      ->envname("LLMSERVE_QUANTIZATION")
      ->default_str("none");
  app.add_flag("--quantize-lm-head", c.quantize_lm_head,
               "The lm_head in int8 weight-only (one scale per vocabulary row), with any "
               "--quantization: half the bytes of a 16-bit lm_head at decode; a tied lm_head gets "
               "its own copy, the embeddings stay as they are. An engine's own setting is used")
      ->envname("LLMSERVE_QUANTIZE_LM_HEAD");
  app.add_option("--tp,--tensor-parallel-size", c.tensor_parallel_size,
                 "Split the model over this many ranks (tensor parallel): GPUs 0..N-1 on cuda, "
                 "threads on cpu")
      ->envname("LLMSERVE_TP")
      ->capture_default_str();
  app.add_option("--pp,--pipeline-parallel-size", c.pipeline_parallel_size,
                 "Pipeline-parallel stages: consecutive layer ranges, each on its own --tp ranks "
                 "(GPUs 0..tp*pp-1)")
      ->envname("LLMSERVE_PP")
      ->capture_default_str();
  app.add_option("--cuda-graph-max-batch-size", c.max_graph_batch_size,
                 "Record CUDA graphs for decode steps of up to this many sequences at start-up")
      ->envname("LLMSERVE_CUDA_GRAPH_MAX_BATCH_SIZE")
      ->capture_default_str();
  app.add_flag("--enforce-eager", enforce_eager,
               "Record no CUDA graphs (faster start-up, slower decode)")
      ->envname("LLMSERVE_ENFORCE_EAGER");
  app.add_option("--block-size", c.block_size, "Tokens per KV-cache block")
      ->envname("LLMSERVE_BLOCK_SIZE")
      ->capture_default_str();
  app.add_option("--num-kv-blocks", c.num_kv_blocks,
                 "KV blocks in the pool; 0 sizes it from --kv-cache-memory-fraction")
      ->envname("LLMSERVE_NUM_KV_BLOCKS")
      ->capture_default_str();
  app.add_option_function<std::string>(
         "--kv-cache-dtype",
         [&c](const std::string& name) {
           if (name == "auto") {
             c.kv_cache_dtype.reset();
           } else if (name == "fp8" || name == "fp8_e4m3") {
             c.kv_cache_dtype = DType::kF8E4M3;
           } else {
             throw CLI::ValidationError("--kv-cache-dtype",
                                        "must be auto or fp8, got '" + name + "'");
           }
         },
         "auto (the activation dtype) or fp8: keys and values stored as fp8 e4m3 (scale 1), a "
         "quarter of fp32's KV bytes on cpu, half of fp16/bf16's on cuda")
      ->envname("LLMSERVE_KV_CACHE_DTYPE")
      ->default_str("auto");
  app.add_option(
         "--kv-cache-memory-fraction", c.kv_cache_memory_fraction,
         "Fraction of free memory after weights for the KV cache (default 0.9 on cuda, 0.2 on cpu)")
      ->envname("LLMSERVE_KV_CACHE_MEMORY_FRACTION");
  app.add_option("--max-num-tokens", c.max_num_tokens,
                 "Token budget of one step (prefill chunks + decodes)")
      ->envname("LLMSERVE_MAX_NUM_TOKENS")
      ->capture_default_str();
  app.add_option("--max-batch-size", c.max_batch_size, "Most sequences in one step")
      ->envname("LLMSERVE_MAX_BATCH_SIZE")
      ->capture_default_str();
  app.add_option("--max-model-len", c.max_model_len,
                 "Prompt + output limit per request; 0: the model's context")
      ->envname("LLMSERVE_MAX_MODEL_LEN")
      ->capture_default_str();
  app.add_option("--max-queue-size", c.max_queue_size,
                 "Requests waiting for batch capacity (beyond the free slots of --max-batch-size) "
                 "before new ones "
                 "are refused as overloaded (HTTP 503, OpenAI 429, gRPC UNAVAILABLE); 0: unbounded")
      ->envname("LLMSERVE_MAX_QUEUE_SIZE")
      ->capture_default_str();
  app.add_flag("--no-prefix-caching", no_prefix_caching,
               "Do not reuse the KV blocks of shared prompt prefixes")
      ->envname("LLMSERVE_NO_PREFIX_CACHING");
  app.add_flag("--no-chunked-prefill", no_chunked_prefill, "Prefill each prompt in one step")
      ->envname("LLMSERVE_NO_CHUNKED_PREFILL");
  app.add_option("--cpu-threads", c.cpu_threads,
                 "Compute threads on --device cpu; 0: the CPUs this process may use (affinity mask "
                 "capped by the cgroup's CPU quota, e.g. a Kubernetes CPU limit)")
      ->envname("LLMSERVE_CPU_THREADS")
      ->capture_default_str();
  app.add_option_function<std::string>(
         "--output-thread",
         [&c](const std::string& v) {
           if (v == "auto") {
             c.output_thread.reset();
           } else if (v == "on" || v == "off") {
             c.output_thread = v == "on";
           } else {
             throw CLI::ValidationError("--output-thread",
                                        "must be auto, on or off, got '" + v + "'");
           }
         },
         "Push each step's tokens to the request streams from a thread of their own while the "
         "next step runs (auto: on for cuda, off for cpu, whose forward uses every core)")
      ->envname("LLMSERVE_OUTPUT_THREAD")
      ->default_str("auto");
  app.add_option_function<std::string>(
         "--speculative",
         [&c](const std::string& name) {
           if (Status s = parse_speculative_mode(name, c.speculative.mode); !s.is_ok())
             throw CLI::ValidationError("--speculative", s.message());
         },
         "Speculative decoding: none; ngram (prompt lookup: propose what followed the latest "
         "earlier occurrence of the output's last tokens); draft (a small model with the same "
         "tokenizer, --draft-model, decodes the guesses). Guesses are verified in one step and the "
         "output is unchanged, greedy or seeded")
      ->envname("LLMSERVE_SPECULATIVE")
      ->default_str("none");
  app.add_option(
         "--draft-model", c.speculative.draft_model_dir,
         "Hugging Face model directory of the draft model for --speculative draft (same "
         "vocabulary as --model; loaded on the same device, its KV cache beside the model's)")
      ->envname("LLMSERVE_DRAFT_MODEL");
  app.add_option("--num-speculative-tokens", c.speculative.num_speculative_tokens,
                 "Drafts proposed per sequence and step with --speculative")
      ->envname("LLMSERVE_NUM_SPECULATIVE_TOKENS")
      ->capture_default_str();
  app.add_option("--ngram-min", c.speculative.ngram_min,
                 "Shortest suffix of the output that --speculative ngram looks up")
      ->envname("LLMSERVE_NGRAM_MIN")
      ->capture_default_str();
  app.add_option("--ngram-max", c.speculative.ngram_max,
                 "Longest suffix of the output that --speculative ngram looks up")
      ->envname("LLMSERVE_NGRAM_MAX")
      ->capture_default_str();
  app.add_option("--speculative-max-batch-size", c.speculative.max_batch_size,
                 "Speculate only while at most this many sequences decode in a step (larger "
                 "batches are no longer bound by the weight read; 0: never)")
      ->envname("LLMSERVE_SPECULATIVE_MAX_BATCH_SIZE")
      ->capture_default_str();
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
    fail(StatusCode::kInvalidArgument, "--device must be auto, cpu, cuda or null, got '{}'",
         device);
  }
  c.dtype = parse_dtype_flag(dtype);
  if (enforce_eager) c.max_graph_batch_size = 0;
  c.enable_prefix_caching = !no_prefix_caching;
  c.enable_chunked_prefill = !no_chunked_prefill;
  if (!engine_cache.empty() && !is_engine_dir(c.model_dir)) {
    if (c.device == DeviceKind::kNull)
      fail(StatusCode::kInvalidArgument, "--engine-cache needs --device cpu or cuda");
    builder::BuildOptions b;
    b.model_dir = c.model_dir;
    b.device = c.device == DeviceKind::kCuda ? "cuda" : "cpu";
    b.dtype = c.dtype;
    b.quantization = c.quantization;
    b.quantize_lm_head = c.quantize_lm_head;
    b.tp = c.tensor_parallel_size;
    b.pp = c.pipeline_parallel_size;
    b.progress = default_progress_style();
    c.model_dir = builder::cached_engine(b, engine_cache).dir;
  }
  return c;
}

std::optional<DType> parse_dtype_flag(const std::string& value, const char* flag) {
  if (value == "float16" || value == "half" || value == "fp16") return DType::kF16;
  if (value == "bfloat16" || value == "bf16") return DType::kBF16;
  if (value == "float32" || value == "float" || value == "fp32") return DType::kF32;
  if (value != "auto")
    fail(StatusCode::kInvalidArgument, "{} must be auto, float16, bfloat16 or float32, got '{}'",
         flag, value);
  return std::nullopt;
}

}  // namespace llmserve::cli
