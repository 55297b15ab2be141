// llmserve build: engines built from the fixtures load to exactly the model the checkpoint gives
// (same weights byte for byte, so the same logits and greedy tokens), sharded engines give the
// unsharded model's logits, quantized engines the quantized model's; the manifest and the cache
// behave as documented (up to date, refusal to overwrite, one build among concurrent callers,
// rejection of engines for another target or builder version with how to rebuild).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <fstream>
#include <future>
#include <thread>

#include "backend/backend.h"
#include "builder/builder.h"
#include "builder/safetensors_writer.h"
#include "builder/weight_capture_backend.h"
#include "common/half.h"
#include "common/status.h"
#include "engine/engine.h"
#include "model/engine_manifest.h"
#include "model/quantize.h"
#include "model/safetensors.h"
#include "model/weight_store.h"
#include "testing/reference_cases.h"
#include "testing/runner_harness.h"

namespace llmserve::builder {
namespace {

namespace fs = std::filesystem;
const fs::path kModels = fs::path(LLMSERVE_TEST_DATA) / "models";

fs::path fresh(const std::string& name) {
  const fs::path dir =
      fs::temp_directory_path() / ("llmserve_builder_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

BuildOptions cpu_options(const std::string& model) {
  BuildOptions o;
  o.model_dir = kModels / model;
  o.device = "cpu";
  o.progress = ProgressStyle::kNone;
  return o;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// Whether this process maps `file` (/proc/self/maps): after a load, only tensors used in place
// keep an engine file mapped (the loader's own mapping goes with it).
bool is_mapped(const fs::path& file) {
  std::ifstream maps("/proc/self/maps");
  const std::string want = fs::canonical(file).string();
  for (std::string line; std::getline(maps, line);) {
    if (line.size() >= want.size() &&
        line.compare(line.size() - want.size(), want.size(), want) == 0)
      return true;
  }
  return false;
}

class EngineEqualsCheckpoint : public ::testing::TestWithParam<std::string> {};

TEST_P(EngineEqualsCheckpoint, SameLogitsAndTokens) {
  const fs::path out = fresh("same_" + GetParam()) / "engine";
  const BuildResult r = build_engine(cpu_options(GetParam()), out);
  EXPECT_EQ(r.outcome, BuildOutcome::kBuilt);
  ASSERT_TRUE(is_engine_dir(out));
  for (const char* f : {"config.json", "generation_config.json", "reference.json"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  EXPECT_FALSE(fs::exists(out / "reference.safetensors"));
  EXPECT_FALSE(fs::exists(out / "model.safetensors"));
  const auto cases = testing::read_reference_cases(kModels / GetParam());
  testing::RunnerHarness from_checkpoint(kModels / GetParam(), DeviceKind::kCpu, DType::kF32),
      from_engine(out, DeviceKind::kCpu, DType::kF32);
  // The CPU reads the engine's tensors where the file's mapping holds them (zero-copy).
  EXPECT_TRUE(is_mapped(out / "rank-0.safetensors"));
  const testing::Greedy want = testing::run_greedy(from_checkpoint, cases, 12, /*batched=*/true);
  const testing::Greedy got = testing::run_greedy(from_engine, cases, 12, /*batched=*/true);
  for (size_t i = 0; i < want.tokens.size(); ++i) {
    EXPECT_EQ(got.tokens[i], want.tokens[i]) << "case " << i;
    EXPECT_EQ(got.last_logits[i], want.last_logits[i])
        << "case " << i;  // the same bytes: exactly equal
  }
  fs::remove_all(out.parent_path());
}

INSTANTIATE_TEST_SUITE_P(Fixtures, EngineEqualsCheckpoint,
                         ::testing::Values("gpt2-tiny", "gpt2-tiny-fp16", "llama-tiny",
                                           "llama-tiny-bf16", "mistral-tiny", "gemma2-tiny",
                                           "gemma3-tiny", "mixtral-tiny", "qwen2moe-tiny",
                                           "qwen3moe-tiny"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

struct ShardCase {
  std::string model;
  int32_t tp, pp;
};

class ShardedEngine : public ::testing::TestWithParam<ShardCase> {};

// The engine holds one file per rank, each with that rank's slice only; loaded on tp x pp CPU
// ranks it gives the unsharded checkpoint's logits (fp32 summation order apart) and tokens.
TEST_P(ShardedEngine, RankFilesGiveTheWholeModel) {
  const auto [model, tp, pp] = GetParam();
  const fs::path out = fresh("shard_" + model + std::to_string(tp) + std::to_string(pp)) / "engine";
  BuildOptions o = cpu_options(model);
  o.tp = tp;
  o.pp = pp;
  const BuildResult r = build_engine(o, out);
  ASSERT_EQ(r.manifest.ranks.size(), static_cast<size_t>(tp * pp));
  const ModelConfig c = load_model_config(kModels / model);
  const WeightStore whole = WeightStore::open(kModels / model);
  uint64_t sharded_bytes = 0;
  for (int32_t i = 0; i < tp * pp; ++i) {
    const WeightStore rank =
        WeightStore::open_file(out / ("rank-" + std::to_string(i) + ".safetensors"));
    sharded_bytes += fs::file_size(out / ("rank-" + std::to_string(i) + ".safetensors"));
    for (const std::string& name : rank.names()) {
      if (name.find("+") == std::string::npos || name.find("layers.") == std::string::npos)
        continue;
      // Stacked (QKV / gate-up) weights are column-parallel: each rank holds 1/tp of the rows;
      // a MoE layer's experts ("{e}": every expert's) 1/tp of every expert's. A router stacked
      // with Qwen2-MoE's shared expert gate is whole on every rank.
      const int64_t rows = rank.info(name).shape[0];
      const int64_t num_experts = name.find("{e}") != std::string::npos ? c.moe.num_experts : 1;
      int64_t whole_rows = 0;
      size_t at = 0;
      while (at <= name.size()) {
        const size_t plus = name.find('+', at);
        std::string part = name.substr(at, plus - at);
        if (const size_t e = part.find("{e}"); e != std::string::npos) part.replace(e, 3, "0");
        whole_rows += num_experts * whole.info(part).shape[0];
        if (plus == std::string::npos) break;
        at = plus + 1;
      }
      const bool is_router = name.ends_with("shared_expert_gate.weight");
      EXPECT_EQ(rows * (is_router ? 1 : tp), whole_rows) << name << " in rank " << i;
    }
  }
  EXPECT_GT(sharded_bytes, 0u);
  const auto cases = testing::read_reference_cases(kModels / model);
  testing::RunnerHarness want_h(kModels / model, DeviceKind::kCpu, DType::kF32),
      got_h(out, DeviceKind::kCpu, DType::kF32, 0, tp, pp);
  const testing::Greedy want = testing::run_greedy(want_h, cases, 12, /*batched=*/true);
  const testing::Greedy got = testing::run_greedy(got_h, cases, 12, /*batched=*/true);
  for (size_t i = 0; i < want.tokens.size(); ++i) {
    EXPECT_EQ(got.tokens[i], want.tokens[i]) << "case " << i;
    EXPECT_LT(testing::rel_l2(got.last_logits[i], want.last_logits[i]), 1e-5) << "case " << i;
  }
  // A sharded engine loads only onto the split it was built for.
  EXPECT_NE(message_of([&] {
              testing::RunnerHarness h(out, DeviceKind::kCpu, DType::kF32);
            }).find("--tp"),
            std::string::npos);
  fs::remove_all(out.parent_path());
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, ShardedEngine,
    ::testing::Values(ShardCase{"gpt2-tiny", 2, 1}, ShardCase{"llama-tiny", 2, 1},
                      ShardCase{"llama-tiny-bf16", 1, 2}, ShardCase{"gpt2-tiny-fp16", 2, 2},
                      ShardCase{"mistral-tiny", 2, 1}, ShardCase{"gemma2-tiny", 2, 1},
                      ShardCase{"gemma3-tiny", 2, 2}, ShardCase{"mixtral-tiny", 2, 1},
                      ShardCase{"qwen2moe-tiny", 2, 1}, ShardCase{"qwen3moe-tiny", 2, 2}),
    [](const auto& info) {
      std::string n = info.param.model + "_tp" + std::to_string(info.param.tp) + "_pp" +
                      std::to_string(info.param.pp);
      std::replace(n.begin(), n.end(), '-', '_');
      return n;
    });

// The engine at `engine` gives exactly the greedy tokens and logits of the checkpoint `model`
// quantized with `quant` at load.
void expect_same_as_quantizing_at_load(const std::string& model, const fs::path& engine,
                                       const LoadOptions& load, const std::string& what) {
  const auto cases = testing::read_reference_cases(kModels / model);
  testing::RunnerHarness want_h(kModels / model, DeviceKind::kCpu, DType::kF32, 0, 1, 1, load),
      got_h(engine, DeviceKind::kCpu, DType::kF32);
  const testing::Greedy want = testing::run_greedy(want_h, cases, 8, true);
  const testing::Greedy got = testing::run_greedy(got_h, cases, 8, true);
  for (size_t i = 0; i < want.tokens.size(); ++i) {
    EXPECT_EQ(got.tokens[i], want.tokens[i]) << what << " case " << i;
    EXPECT_EQ(got.last_logits[i], want.last_logits[i]) << what << " case " << i;
  }
}

// Quantized engines store the codes and scales the loader would compute (int8: I8 + one scale per
// output row; fp8: E4M3 + one scale per output row; int4: packed I32 words + (scale, zero) pairs
// per group), so they give exactly the logits of quantizing
// the checkpoint at load.
TEST(QuantizedEngine, EqualsQuantizingAtLoad) {
  for (const Quantization quant :
       {Quantization::kInt8WeightOnly, Quantization::kFp8, Quantization::kInt4WeightOnly}) {
    for (const std::string model : {"gpt2-tiny", "llama-tiny"}) {
      const std::string what = model + " " + std::string(quantization_name(quant));
      const fs::path out = fresh("quant_" + model) / "engine";
      BuildOptions o = cpu_options(model);
      o.quantization = quant;
      build_engine(o, out);
      const WeightStore rank = WeightStore::open_file(out / "rank-0.safetensors");
      const DType codes_dtype = quant == Quantization::kFp8              ? DType::kF8E4M3
                                : quant == Quantization::kInt4WeightOnly ? DType::kI32
                                                                         : DType::kI8;
      int32_t codes = 0;
      for (const std::string& name : rank.names()) {
        if (rank.info(name).dtype != codes_dtype) continue;
        ++codes;
        ASSERT_TRUE(rank.contains(name + ".scales")) << name;
        const std::vector<int64_t>& scales = rank.info(name + ".scales").shape;
        if (quant == Quantization::kInt4WeightOnly) {  // (scale, zero) pairs per group
          const int64_t in = 8 * rank.info(name).shape[1];
          const int64_t groups = in / int4_group_for(in, kInt4DefaultGroup);
          EXPECT_EQ(scales, (std::vector<int64_t>{rank.info(name).shape[0], 2 * groups})) << name;
        } else {
          EXPECT_EQ(scales, std::vector<int64_t>{rank.info(name).shape[0]}) << name;
        }
      }
      EXPECT_EQ(codes, 4 * load_model_config(kModels / model).num_layers)
          << what;  // QKV, out, up(+gate), down
      EXPECT_EQ(read_engine_manifest(out).quantization, quant);
      expect_same_as_quantizing_at_load(model, out, LoadOptions{quant}, what);
      fs::remove_all(out.parent_path());
    }
  }
}

// --quantize-lm-head: the manifest records it; the rank file holds the lm_head as I8 codes + F32
// scales under "lm_head.weight" (a tied model's beside its unquantized embeddings), so the engine
// loads with an int8 lm_head and gives exactly the logits of quantizing it at load, alone or with
// int8-wo / int4-wo. Asking an engine built without it for it is refused naming the flag.
TEST(QuantizedEngine, QuantizedLmHeadEqualsQuantizingAtLoad) {
  for (const Quantization quant :
       {Quantization::kNone, Quantization::kInt8WeightOnly, Quantization::kInt4WeightOnly}) {
    for (const std::string model : {"gpt2-tiny", "llama32-tied-tiny", "llama-tiny"}) {
      const std::string what = model + " " + std::string(quantization_name(quant));
      const fs::path out = fresh("lm_head_" + model) / "engine";
      BuildOptions o = cpu_options(model);
      o.quantization = quant;
      o.quantize_lm_head = true;
      build_engine(o, out);
      EXPECT_TRUE(read_engine_manifest(out).quantize_lm_head) << what;
      const WeightStore rank = WeightStore::open_file(out / "rank-0.safetensors");
      const ModelConfig c = load_model_config(kModels / model);
      ASSERT_TRUE(rank.contains("lm_head.weight")) << what;
      EXPECT_EQ(rank.info("lm_head.weight").dtype, DType::kI8) << what;
      EXPECT_EQ(rank.info("lm_head.weight").shape,
                (std::vector<int64_t>{c.vocab_size, c.hidden_size}))
          << what;
      ASSERT_TRUE(rank.contains("lm_head.weight.scales")) << what;
      EXPECT_EQ(rank.info("lm_head.weight.scales").dtype, DType::kF32) << what;
      EXPECT_EQ(rank.info("lm_head.weight.scales").shape, std::vector<int64_t>{c.vocab_size})
          << what;
      expect_same_as_quantizing_at_load(
          model, out, LoadOptions{.quantization = quant, .quantize_lm_head = true}, what);
      fs::remove_all(out.parent_path());
    }
  }
  const fs::path plain = fresh("lm_head_plain") / "engine";
  build_engine(cpu_options("gpt2-tiny"), plain);
  EXPECT_FALSE(read_engine_manifest(plain).quantize_lm_head);
  const auto backend = create_backend(DeviceKind::kCpu, DType::kF32);
  EXPECT_NE(message_of([&] {
              load_model(plain, *backend, LoadOptions{.quantize_lm_head = true});
            }).find("--quantize-lm-head"),
            std::string::npos);
  EngineConfig ec;
  ec.model_dir = plain;
  ec.device = DeviceKind::kCpu;
  ec.quantize_lm_head = true;
  EXPECT_NE(message_of([&] { Engine e(ec); }).find("--quantize-lm-head"), std::string::npos);
  fs::remove_all(plain.parent_path());
}

// A MoE checkpoint's quantized engine stores its experts as one code tensor a layer for gate/up
// and one for down (each expert's rows quantized as a linear layer's), the shared expert's like a
// dense MLP's, and the router unquantized; it gives the logits of quantizing at load.
TEST(QuantizedEngine, MoeExpertsEqualQuantizingAtLoad) {
  for (const Quantization quant : {Quantization::kInt8WeightOnly, Quantization::kInt4WeightOnly}) {
    const std::string model = "qwen2moe-tiny";
    const std::string what = model + " " + std::string(quantization_name(quant));
    const fs::path out = fresh("quant_" + model) / "engine";
    BuildOptions o = cpu_options(model);
    o.quantization = quant;
    build_engine(o, out);
    const WeightStore rank = WeightStore::open_file(out / "rank-0.safetensors");
    const ModelConfig c = load_model_config(kModels / model);
    const DType codes_dtype = quant == Quantization::kInt4WeightOnly ? DType::kI32 : DType::kI8;
    int32_t codes = 0;
    for (const std::string& name : rank.names()) {
      if (rank.info(name).dtype != codes_dtype) continue;
      ++codes;
      EXPECT_TRUE(rank.contains(name + ".scales")) << name;
    }
    EXPECT_EQ(codes, 6 * c.num_layers) << what;  // QKV, out, experts x 2, shared expert x 2
    const std::string router =
        "model.layers.0.mlp.gate.weight+model.layers.0.mlp.shared_expert_gate.weight";
    ASSERT_TRUE(rank.contains(router));
    EXPECT_EQ(rank.info(router).dtype, DType::kF32);
    EXPECT_EQ(rank.info(router).shape,
              (std::vector<int64_t>{c.moe.num_experts + 1, c.hidden_size}));
    expect_same_as_quantizing_at_load(model, out, LoadOptions{quant}, what);
    fs::remove_all(out.parent_path());
  }
}

// A cuda engine can be built on a machine without a GPU: weights in the target dtype, fused, as
// the CUDA backend holds them. It loads on the null backend (no compute) and is refused by the
// cpu backend and by EngineConfig flags that ask for something else.
TEST(CudaEngine, BuiltWithoutAGpuHoldsTargetDtype) {
  const fs::path out = fresh("cuda_bf16") / "engine";
  BuildOptions o = cpu_options("llama-tiny");  // an F32 checkpoint
  o.device = "cuda";
  o.dtype = DType::kBF16;
  o.gpu_arch = "sm_90";
  const BuildResult r = build_engine(o, out);
  EXPECT_EQ(r.manifest.device, "cuda");
  EXPECT_EQ(r.manifest.gpu_arch, "sm_90");
  const WeightStore rank = WeightStore::open_file(out / "rank-0.safetensors");
  const WeightStore src = WeightStore::open(kModels / "llama-tiny");
  const std::string qkv =
      "model.layers.1.self_attn.q_proj.weight+model.layers.1.self_attn.k_proj.weight+"
      "model.layers.1.self_attn.v_proj.weight";
  ASSERT_TRUE(rank.contains(qkv));
  EXPECT_EQ(rank.info(qkv).dtype, DType::kBF16);
  // Rows: q, then k, then v; the first row of k is source k's first row, rounded to bf16.
  const ModelConfig c = load_model_config(kModels / "llama-tiny");
  const int64_t d = c.hidden_size, q_rows = static_cast<int64_t>(c.num_q_heads) * c.head_dim;
  const std::vector<float> k = src.load_f32("model.layers.1.self_attn.k_proj.weight",
                                            {static_cast<int64_t>(c.num_kv_heads) * c.head_dim, d});
  const auto* fused = reinterpret_cast<const uint16_t*>(rank.bytes(qkv).data());
  for (int64_t j = 0; j < d; ++j) {
    ASSERT_EQ(fused[q_rows * d + j], float_to_bf16(k[static_cast<size_t>(j)])) << j;
  }
  // null backend: loads as stored (its dtype comes from the manifest).
  {
    EngineConfig ec;
    ec.model_dir = out;
    ec.device = DeviceKind::kNull;
    ec.num_kv_blocks = 64;
    ec.max_graph_batch_size = 0;
    Engine engine(ec);
    EXPECT_EQ(engine.config().dtype, DType::kBF16);
  }
  const std::string on_cpu =
      message_of([&] { testing::RunnerHarness h(out, DeviceKind::kCpu, DType::kF32); });
  EXPECT_NE(on_cpu.find("built for --device cuda, not cpu"), std::string::npos) << on_cpu;
  EXPECT_NE(on_cpu.find("llmserve build"), std::string::npos) << on_cpu;
  EngineConfig bad;
  bad.model_dir = out;
  bad.device = DeviceKind::kNull;
  bad.dtype = DType::kF16;
  EXPECT_NE(message_of([&] { Engine e(bad); }).find("--dtype"), std::string::npos);
  bad.dtype.reset();
  bad.tensor_parallel_size = 2;
  EXPECT_NE(message_of([&] { Engine e(bad); }).find("built for --tp 1"), std::string::npos);
  fs::remove_all(out.parent_path());
}

TEST(Build, UpToDateRefusesOtherEnginesAndForceReplaces) {
  const fs::path root = fresh("uptodate"), out = root / "engine";
  const BuildResult first = build_engine(cpu_options("gpt2-tiny"), out);
  EXPECT_EQ(first.outcome, BuildOutcome::kBuilt);
  const auto written = fs::last_write_time(out / "rank-0.safetensors");
  const BuildResult again = build_engine(cpu_options("gpt2-tiny"), out);
  EXPECT_EQ(again.outcome, BuildOutcome::kUpToDate);
  EXPECT_EQ(fs::last_write_time(out / "rank-0.safetensors"), written);
  BuildOptions other = cpu_options("gpt2-tiny");
  other.tp = 2;
  const std::string refused = message_of([&] { build_engine(other, out); });
  EXPECT_NE(refused.find("holds another engine"), std::string::npos) << refused;
  EXPECT_NE(refused.find("--force"), std::string::npos) << refused;
  EXPECT_EQ(read_engine_manifest(out).tp, 1);  // untouched
  other.force = true;
  EXPECT_EQ(build_engine(other, out).outcome, BuildOutcome::kBuilt);
  EXPECT_EQ(read_engine_manifest(out).tp, 2);
  // Nothing of the build is left beside the output but its lock file.
  for (const auto& e : fs::directory_iterator(root)) {
    const std::string n = e.path().filename().string();
    EXPECT_TRUE(n == "engine" || n == ".engine.lock") << n;
  }
  const fs::path occupied = root / "occupied";
  fs::create_directories(occupied);
  std::ofstream(occupied / "notes.txt") << "mine";
  EXPECT_NE(
      message_of([&] { build_engine(cpu_options("gpt2-tiny"), occupied); }).find("not an engine"),
      std::string::npos);
  EXPECT_TRUE(fs::exists(occupied / "notes.txt"));
  fs::remove_all(root);
}

TEST(Build, OptionErrorsNameTheFlag) {
  BuildOptions o = cpu_options("gpt2-tiny");
  o.dtype = DType::kF16;
  EXPECT_NE(message_of([&] { resolve_build_options(o); }).find("--dtype"), std::string::npos);
  o = cpu_options("llama-tiny");
  o.tp = 4;  // 2 KV heads
  EXPECT_NE(message_of([&] { resolve_build_options(o); }).find("num_key_value_heads"),
            std::string::npos);
  o = cpu_options("gpt2-tiny");
  o.max_seq_len = 1 << 20;
  EXPECT_NE(message_of([&] { resolve_build_options(o); }).find("--max-seq-len"), std::string::npos);
  // Quantized cuda engines: int8-wo for any GPU, fp8 only for fp8 tensor cores (sm_89+).
  o = cpu_options("gpt2-tiny");
  o.device = "cuda";
  o.gpu_arch = "sm_80";
  o.quantization = Quantization::kInt8WeightOnly;
  EXPECT_EQ(resolve_build_options(o).quantization, Quantization::kInt8WeightOnly);
  o.quantization = Quantization::kFp8;
  EXPECT_NE(message_of([&] {
              resolve_build_options(o);
            }).find("--quantization fp8 needs fp8 tensor cores"),
            std::string::npos);
  o.gpu_arch = "sm_90a";
  EXPECT_EQ(resolve_build_options(o).quantization, Quantization::kFp8);
  // A pre-quantized checkpoint stays quantized unless told: AWQ/GPTQ as int4-wo, fp8 ones as fp8
  // where the target has fp8 tensor cores (on the cpu they are served dequantized).
  o = cpu_options("llama-tiny-awq");
  EXPECT_EQ(resolve_build_options(o).quantization, Quantization::kInt4WeightOnly);
  o = cpu_options("llama-tiny-fp8-ct");
  EXPECT_EQ(resolve_build_options(o).quantization, Quantization::kNone);
  o.device = "cuda";
  o.gpu_arch = "sm_90";
  EXPECT_EQ(resolve_build_options(o).quantization, Quantization::kFp8);
  o.gpu_arch = "sm_80";
  EXPECT_EQ(resolve_build_options(o).quantization, Quantization::kNone);
  o.quantization = Quantization::kInt8WeightOnly;  // asked for: kept
  EXPECT_EQ(resolve_build_options(o).quantization, Quantization::kInt8WeightOnly);
  o = cpu_options("gpt2-tiny");
  o.device = "cuda";
  o.gpu_arch = "hopper";
  EXPECT_NE(message_of([&] { resolve_build_options(o); }).find("--gpu-arch"), std::string::npos);
  o = cpu_options("gpt2-tiny");
  o.device = "tpu";
  EXPECT_NE(message_of([&] { resolve_build_options(o); }).find("--device"), std::string::npos);
  o = cpu_options("missing-model");
  EXPECT_NE(message_of([&] { resolve_build_options(o); }).find("missing-model"), std::string::npos);
}

TEST(Build, KeyFollowsCheckpointAndOptions) {
  const fs::path copy = fresh("key") / "model";
  fs::copy(kModels / "gpt2-tiny", copy);
  const BuildOptions o = resolve_build_options(cpu_options("gpt2-tiny"));
  const std::string h = checkpoint_hash(copy);
  EXPECT_EQ(h, checkpoint_hash(kModels / "gpt2-tiny"));  // content, not path
  EXPECT_EQ(h.size(), 64u);
  BuildOptions tp2 = o;
  tp2.tp = 2;
  BuildOptions q8 = o;
  q8.quantization = Quantization::kInt8WeightOnly;
  EXPECT_NE(engine_key(o, h), engine_key(tp2, h));
  EXPECT_NE(engine_key(o, h), engine_key(q8, h));
  BuildOptions lm_head = o;
  lm_head.quantize_lm_head = true;
  EXPECT_NE(engine_key(o, h), engine_key(lm_head, h));
  EXPECT_EQ(engine_key(o, h), engine_key(o, h));
  // An edited config, or changed weight bytes, is another checkpoint.
  { std::ofstream(copy / "generation_config.json", std::ios::app) << " "; }
  const std::string edited = checkpoint_hash(copy);
  EXPECT_NE(edited, h);
  {
    std::fstream f(copy / "model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-1, std::ios::end);
    f.put('\x7f');
  }
  EXPECT_NE(checkpoint_hash(copy), edited);
  fs::remove_all(copy.parent_path());
}

// Several processes (here threads, each with its own lock file description) asking the cache for
// the same engine at once: exactly one builds it, the others wait and reuse it.
TEST(EngineCache, ConcurrentCallersBuildOnce) {
  const fs::path cache = fresh("cache");
  std::vector<std::future<BuildResult>> calls;
  for (int i = 0; i < 4; ++i) {
    calls.push_back(std::async(std::launch::async,
                               [&] { return cached_engine(cpu_options("llama-tiny"), cache); }));
  }
  int built = 0;
  fs::path dir;
  for (auto& c : calls) {
    const BuildResult r = c.get();
    built += r.outcome == BuildOutcome::kBuilt;
    if (dir.empty()) dir = r.dir;
    EXPECT_EQ(r.dir, dir);
  }
  EXPECT_EQ(built, 1);
  EXPECT_EQ(dir.parent_path(), fs::absolute(cache).lexically_normal());
  EXPECT_EQ(dir.filename().string().rfind("llama-tiny-", 0), 0u) << dir;
  EXPECT_EQ(cached_engine(cpu_options("llama-tiny"), cache).outcome, BuildOutcome::kUpToDate);
  BuildOptions tp2 = cpu_options("llama-tiny");
  tp2.tp = 2;
  const BuildResult other = cached_engine(tp2, cache);
  EXPECT_EQ(other.outcome, BuildOutcome::kBuilt);
  EXPECT_NE(other.dir, dir);  // one cache, one directory per engine
  fs::remove_all(cache);
}

TEST(Manifest, OtherBuilderVersionIsRefusedWithHowToRebuild) {
  const fs::path out = fresh("version") / "engine";
  build_engine(cpu_options("gpt2-tiny"), out);
  nlohmann::json j;
  std::ifstream(out / kEngineManifestName) >> j;
  j["builder_version"] = kEngineFormatVersion + 1;
  std::ofstream(out / kEngineManifestName) << j.dump();
  const std::string refused =
      message_of([&] { testing::RunnerHarness h(out, DeviceKind::kCpu, DType::kF32); });
  EXPECT_NE(refused.find("engine format " + std::to_string(kEngineFormatVersion + 1)),
            std::string::npos)
      << refused;
  EXPECT_NE(refused.find("llmserve build"), std::string::npos) << refused;
  // Building over it still needs --force: this llmserve cannot read it, but it is someone's engine.
  EXPECT_NE(message_of([&] { build_engine(cpu_options("gpt2-tiny"), out); }).find("--force"),
            std::string::npos);
  j["builder_version"] = kEngineFormatVersion;
  j.erase("ranks");
  std::ofstream(out / kEngineManifestName) << j.dump();
  EXPECT_NE(message_of([&] { read_engine_manifest(out); }).find("'ranks'"), std::string::npos);
  std::ofstream(out / kEngineManifestName) << "{not json";
  EXPECT_NE(message_of([&] { read_engine_manifest(out); }).find("not valid JSON"),
            std::string::npos);
  fs::remove_all(out.parent_path());
}

// A backend that says it is a GPU of some architecture (check_engine_target reads only its
// identity).
class ArchOnly final : public Backend {
 public:
  ArchOnly(std::string arch, DType dtype) : arch_(std::move(arch)), dtype_(dtype) {}
  std::string_view name() const override { return "cuda"; }
  std::string device_arch() const override { return arch_; }
  DType activation_dtype() const override { return dtype_; }
  Buffer allocate(size_t) override { return {}; }
  void upload(const void*, Tensor) override {}
  void download(Tensor, void*) override {}
  size_t free_memory() const override { return 0; }
  BatchTensors upload_batch(const ForwardBatch&) override { return {}; }
  void embedding(const BatchTensors&, Tensor, Tensor, Tensor) override {}
  void layer_norm(Tensor, Tensor, Tensor, float, Tensor) override {}
  void rms_norm(Tensor, Tensor, float, Tensor) override {}
  void add(Tensor, Tensor) override {}
  void matmul(Tensor, Tensor, Tensor, Tensor) override {}
  void gelu_tanh(Tensor) override {}
  void transpose(Tensor, Tensor) override {}
  void silu_mul(Tensor, Tensor) override {}
  void rope(Tensor, const AttentionShape&, Tensor, const BatchTensors&) override {}
  void write_kv(Tensor, const AttentionShape&, const BatchTensors&, const KvLayer&) override {}
  void attention(Tensor, const AttentionShape&, const BatchTensors&, const KvLayer&,
                 Tensor) override {}
  void gather_rows(Tensor, const BatchTensors&, Tensor) override {}

 private:
  std::string arch_;
  DType dtype_;
};

TEST(Manifest, EngineForAnotherGpuArchitectureIsRefused) {
  EngineManifest m;
  m.device = "cuda";
  m.gpu_arch = "sm_90";
  m.dtype = DType::kF16;
  m.source = "/models/llama";
  EXPECT_NO_THROW(check_engine_target(m, "/engines/x", ArchOnly("sm_90", DType::kF16)));
  const std::string refused =
      message_of([&] { check_engine_target(m, "/engines/x", ArchOnly("sm_80", DType::kF16)); });
  EXPECT_NE(refused.find("built for sm_90 GPUs, this GPU is sm_80"), std::string::npos) << refused;
  EXPECT_NE(refused.find("llmserve build --model /models/llama --output /engines/x"),
            std::string::npos)
      << refused;
}

TEST(SafetensorsWriter, RoundTripsThroughTheReader) {
  const fs::path dir = fresh("writer");
  const std::vector<float> a = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, -1.0f};
  const std::vector<int8_t> b = {-127, 0, 5};
  const uint64_t size = write_safetensors(
      dir / "t.safetensors",
      {{"a", DType::kF32, {2, 3}, {reinterpret_cast<const uint8_t*>(a.data()), a.size() * 4}},
       {"b.scales", DType::kI8, {3}, {reinterpret_cast<const uint8_t*>(b.data()), b.size()}}},
      {{"format", "llmserve-engine"}});
  EXPECT_EQ(size, fs::file_size(dir / "t.safetensors"));
  const SafetensorsFile f(dir / "t.safetensors");
  ASSERT_NE(f.find("a"), nullptr);
  EXPECT_EQ(f.find("a")->shape, (std::vector<int64_t>{2, 3}));
  std::vector<float> got(6);
  std::memcpy(got.data(), f.data(*f.find("a")).data(), 24);
  EXPECT_EQ(got, a);
  EXPECT_EQ(f.find("b.scales")->dtype, DType::kI8);
  EXPECT_EQ(static_cast<int8_t>(f.data(*f.find("b.scales"))[0]), -127);
  // The header is padded to a multiple of 8 bytes as the reference writer does, and further so
  // the data starts 64-byte aligned (zero-copy CPU loads).
  std::ifstream in(dir / "t.safetensors", std::ios::binary);
  uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ((8 + n) % 64, 0u);
  EXPECT_NE(message_of([&] {
              write_safetensors(
                  dir / "u.safetensors",
                  {{"a", DType::kF32, {4}, {reinterpret_cast<const uint8_t*>(a.data()), 8}}});
            }).find("bytes"),
            std::string::npos);
  fs::remove_all(dir);
}

// The build backend has the memory half of a backend (BackendMemory) and none of the ops: each
// throws kUnimplemented naming itself and the op (Backend's defaults), while memory works and
// keeps the blocks it reuses apart (a reused block is not handed out twice).
TEST(WeightCaptureBackend, MemoryWithoutOps) {
  WeightCaptureBackend b(DType::kF32, 0, 1, 0, 1);
  std::vector<Buffer> owner;
  const Tensor t = b.allocate_tensor(owner, DType::kF32, {2, 3});
  const float in[6] = {1, 2, 3, 4, 5, 6};
  b.upload(in, t);
  const Tensor tt = b.allocate_tensor(owner, DType::kF32, {3, 2});
  b.transpose(t, tt);
  float out[6] = {};
  b.download(tt, out);
  EXPECT_EQ(std::vector<float>(out, out + 6), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  for (const auto& [op, call] : std::vector<std::pair<std::string, std::function<void()>>>{
           {"rms_norm", [&] { b.rms_norm(t, t, 1e-5f, t); }},
           {"matmul", [&] { b.matmul(t, tt, Tensor{}, t); }},
           {"attention", [&] { b.attention(t, AttentionShape{}, BatchTensors{}, KvLayer{}, t); }},
           {"upload_batch", [&] { b.upload_batch(ForwardBatch{}); }}}) {
    try {
      call();
      ADD_FAILURE() << op << " did not throw";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), StatusCode::kUnimplemented) << op;
      EXPECT_EQ(std::string(e.what()), "the build backend has no " + op + " op");
    }
  }
  // Large blocks are reused by size once freed, never while held.
  constexpr size_t kBig = size_t{4} << 20;
  Buffer a = b.allocate(kBig);
  void* first = a.data();
  Buffer c = b.allocate(kBig);
  EXPECT_NE(c.data(), first);
  a.reset();
  Buffer d = b.allocate(kBig);
  EXPECT_EQ(d.data(), first);
}

}  // namespace
}  // namespace llmserve::builder
