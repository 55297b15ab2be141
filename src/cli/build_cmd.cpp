// `llmserve build`: a Hugging Face checkpoint → an engine directory for one target (device, GPU
// architecture, dtype, quantization, tp x pp), printed on stdout; progress and logs on stderr.
// What the chart's init container runs into the node cache; see docs/build.md.
#include <iostream>

#include "backend/backend.h"
#include "builder/builder.h"
#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "cli/model_path.h"
#include "common/status.h"

namespace llmserve::cli {
namespace {

struct BuildFlags {
  builder::BuildOptions options;
  std::string model;
  std::string output;
  std::string device = "auto";
  std::string dtype = "auto";
  std::string quantization = "none";
  std::string progress = "auto";
};

int run_build(BuildFlags flags) {
  auto& o = flags.options;
  o.model_dir = resolve_model_dir(flags.model);
  o.device = flags.device == "auto" ? (cuda_device_available() ? "cuda" : "cpu") : flags.device;
  o.dtype = parse_dtype_flag(flags.dtype);
  const std::optional<Quantization> q = parse_quantization(flags.quantization);
  if (!q)
    fail(StatusCode::kInvalidArgument,
         "--quantization must be none, int8-wo, fp8 or int4-wo, got '{}'", flags.quantization);
  o.quantization = *q;
  o.progress = progress_style_from_flag(flags.progress);
  const builder::BuildResult r = builder::build_engine(o, flags.output);
  std::cout << r.dir.string() << std::endl;
  return 0;
}

}  // namespace

void add_build_command(CLI::App& app, Action& action) {
  auto flags = std::make_shared<BuildFlags>();
  auto& o = flags->options;
  CLI::App* cmd =
      app.add_subcommand("build",
                         "Build an engine directory from a Hugging Face checkpoint (fused, sliced "
                         "per rank, converted, "
                         "quantized) and print its path; serve --model ENGINE_DIR loads it");
  cmd->add_option("--model", flags->model,
                  "Hugging Face checkpoint directory, or ORG/NAME to pull first")
      ->required();
  cmd->add_option("--output", flags->output,
                  "Engine directory to write (created; an up-to-date engine is kept)")
      ->required();
  cmd->add_option("--device", flags->device,
                  "Target: cuda, cpu, or auto (cuda when a GPU is visible)")
      ->check(CLI::IsMember({"auto", "cuda", "cpu"}))
      ->capture_default_str();
  cmd->add_option("--dtype", flags->dtype,
                  "auto, float16, bfloat16 or float32 (auto: bfloat16 for bfloat16 checkpoints, "
                  "else float16 on "
                  "cuda; float32 on cpu)")
      ->capture_default_str();
  cmd->add_option(
         "--quantization", flags->quantization,
         "none; int8-wo: int8 weight-only linear layers with per-output-row scales; fp8: "
         "e4m3 weights "
         "(per-output-row scales) and activations (per-token scales), W8A8 as fp8 tensor "
         "cores compute; int4-wo: 4-bit weights in groups of 128 inputs with a scale and zero "
         "point each (AWQ/GPTQ checkpoints: their own groups, and the default)")
      ->capture_default_str();
  cmd->add_flag(
      "--quantize-lm-head", o.quantize_lm_head,
      "Store the lm_head in int8 weight-only (one scale per vocabulary row), with any "
      "--quantization; a tied lm_head gets its own copy, the embeddings stay as they are");
  cmd->add_option("--tp,--tensor-parallel-size", o.tp,
                  "Tensor-parallel ranks: one weights file per rank")
      ->capture_default_str();
  cmd->add_option("--pp,--pipeline-parallel-size", o.pp, "Pipeline stages")->capture_default_str();
  cmd->add_option(
         "--max-seq-len", o.max_seq_len,
         "Longest prompt + output the engine serves (0: the model's max_position_embeddings)")
      ->capture_default_str();
  cmd->add_option("--gpu-arch", o.gpu_arch,
                  "cuda: the GPU architecture to build for, e.g. sm_90 (default: the visible "
                  "GPU's, else sm_90)");
  cmd->add_flag("--force", o.force,
                "Replace what --output holds (another engine, or a non-empty directory)");
  cmd->add_option("--progress", flags->progress,
                  "auto (a bar on a terminal, else log lines), bar, log or none")
      ->check(CLI::IsMember({"auto", "bar", "log", "none"}))
      ->capture_default_str();
  cmd->callback([&action, flags] { action = [flags] { return run_build(*flags); }; });
}

}  // namespace llmserve::cli
