// The MoE families' loading beyond the HF fixtures (those are golden_test.cpp's): transformers 5's
// fused expert tensors — experts.gate_up_proj [E, 2F, D] and experts.down_proj [E, D, F] under
// mlp. — against the per-expert tensors real checkpoints hold, whole and over two
// tensor-parallel ranks (each rank's rows of every expert: WeightLoader::load_experts); and the
// config fields the fixtures do not spell (dense layers, num_local_experts, refusals).
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <string>

#include "checkpoint_writer.h"
#include "common/status.h"
#include "model/weight_store.h"
#include "testing/reference_cases.h"
#include "testing/runner_harness.h"

namespace llmserve {
namespace {

const std::filesystem::path kModels = std::filesystem::path(LLMSERVE_TEST_DATA) / "models";

// `model` rewritten with each layer's experts fused as transformers 5 holds them, under
// "mlp." (Mixtral's block_sparse_moe. renamed, as transformers 5 names it).
std::filesystem::path write_fused_experts(const std::string& model, int64_t num_experts,
                                          const std::string& gate, const std::string& up,
                                          const std::string& down) {
  const WeightStore store = WeightStore::open(kModels / model);
  std::map<std::string, testing::TestTensor> out;
  const auto tensor = [&](const std::string& name) {
    const TensorInfo& info = store.info(name);
    return testing::TestTensor{"F32", info.shape, store.load_f32(name, info.shape)};
  };
  for (const std::string& name : store.names()) {
    if (name.find(".experts.") != std::string::npos) continue;
    std::string renamed = name;
    if (const size_t at = renamed.find("block_sparse_moe."); at != std::string::npos)
      renamed.replace(at, 17, "mlp.");
    out[renamed] = tensor(name);
  }
  const ModelConfig c = load_model_config(kModels / model);
  for (int32_t l = 0; l < c.num_layers; ++l) {
    const std::string layer = "model.layers." + std::to_string(l) + ".";
    const std::string experts =
        layer +
        (store.contains(layer + "mlp.gate.weight") ? "mlp.experts." : "block_sparse_moe.experts.");
    testing::TestTensor gate_up{"F32", {num_experts, 0, c.hidden_size}, {}},
        down_t{"F32", {num_experts, c.hidden_size, 0}, {}};
    for (int64_t e = 0; e < num_experts; ++e) {
      const std::string x = experts + std::to_string(e) + ".";
      for (const std::string& part : {gate, up}) {
        const testing::TestTensor t = tensor(x + part);
        if (e == 0) gate_up.shape[1] += t.shape[0];
        gate_up.values.insert(gate_up.values.end(), t.values.begin(), t.values.end());
      }
      const testing::TestTensor d = tensor(x + down);
      down_t.shape[2] = d.shape[1];
      down_t.values.insert(down_t.values.end(), d.values.begin(), d.values.end());
    }
    out[layer + "mlp.experts.gate_up_proj"] = gate_up;
    out[layer + "mlp.experts.down_proj"] = down_t;
  }
  const auto dir = testing::fresh_dir("fused_" + model);
  testing::write_file(dir / "model.safetensors", testing::safetensors_bytes(out));
  std::filesystem::copy_file(kModels / model / "config.json", dir / "config.json");
  return dir;
}

TEST(Moe, FusedExpertsMatchPerExpertTensorsWholeAndTensorParallel) {
  struct Family {
    std::string model, gate, up, down;
  };
  for (const Family& f :
       {Family{"mixtral-tiny", "w1.weight", "w3.weight", "w2.weight"},
        Family{"qwen2moe-tiny", "gate_proj.weight", "up_proj.weight", "down_proj.weight"}}) {
    const auto dir = kModels / f.model;
    const auto fused = write_fused_experts(f.model, 4, f.gate, f.up, f.down);
    const auto cases = testing::read_reference_cases(dir);
    ASSERT_FALSE(cases.empty());
    for (const int32_t tp : {1, 2}) {
      testing::RunnerHarness want_h(dir, DeviceKind::kCpu, DType::kF32, 0, tp),
          got_h(fused, DeviceKind::kCpu, DType::kF32, 0, tp);
      const testing::Greedy want = testing::run_greedy(want_h, cases, 8, /*batched=*/true);
      const testing::Greedy got = testing::run_greedy(got_h, cases, 8, /*batched=*/true);
      for (size_t i = 0; i < want.tokens.size(); ++i) {
        EXPECT_EQ(got.tokens[i], want.tokens[i]) << f.model << " tp " << tp << " case " << i;
        EXPECT_EQ(got.first_logits[i], want.first_logits[i])
            << f.model << " tp " << tp << " case " << i;
      }
    }
    std::filesystem::remove_all(fused);
  }
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

nlohmann::json qwen_moe_config(const std::string& architecture) {
  return {{"architectures", {architecture}},
          {"vocab_size", 32},
          {"hidden_size", 16},
          {"num_hidden_layers", 4},
          {"num_attention_heads", 4},
          {"num_key_value_heads", 2},
          {"intermediate_size", 24},
          {"moe_intermediate_size", 8},
          {"num_experts", 6},
          {"num_experts_per_tok", 2},
          {"max_position_embeddings", 64}};
}

// Qwen's sparse-layer pattern: decoder_sparse_step and mlp_only_layers make dense layers;
// norm_topk_prob defaults to false; Qwen2-MoE's q/k/v biases unless qkv_bias is false;
// transformers 5's num_local_experts stands for num_experts.
TEST(Moe, QwenConfigSparseLayersAndDefaults) {
  auto dir = testing::fresh_dir("cfg_qwen_moe");
  auto j = qwen_moe_config("Qwen2MoeForCausalLM");
  j["decoder_sparse_step"] = 2;
  j["mlp_only_layers"] = {3};
  j["shared_expert_intermediate_size"] = 16;
  testing::write_file(dir / "config.json", j.dump());
  ModelConfig c = load_model_config(dir);
  EXPECT_EQ(c.moe.num_experts, 6);
  EXPECT_EQ(c.moe.top_k, 2);
  EXPECT_EQ(c.moe.intermediate_size, 8);
  EXPECT_EQ(c.moe.shared_intermediate_size, 16);
  EXPECT_FALSE(c.moe.renormalize);
  EXPECT_TRUE(c.has_attention_bias);
  EXPECT_FALSE(c.moe.is_sparse(0));
  EXPECT_TRUE(c.moe.is_sparse(1));
  EXPECT_FALSE(c.moe.is_sparse(2));
  EXPECT_FALSE(c.moe.is_sparse(3));  // mlp_only_layers
  EXPECT_TRUE(c.moe.has_dense_layers(4));

  j = qwen_moe_config("Qwen3MoeForCausalLM");
  j.erase("num_experts");
  j["num_local_experts"] = 8;
  j["norm_topk_prob"] = true;
  testing::write_file(dir / "config.json", j.dump());
  c = load_model_config(dir);
  EXPECT_EQ(c.moe.num_experts, 8);
  EXPECT_TRUE(c.moe.renormalize);
  EXPECT_TRUE(c.has_qk_norm);
  EXPECT_FALSE(c.moe.has_dense_layers(4));

  j["num_experts_per_tok"] = 9;
  testing::write_file(dir / "config.json", j.dump());
  EXPECT_NE(error_of([&] { load_model_config(dir); }).find("num_experts_per_tok 9"),
            std::string::npos);
  std::filesystem::remove_all(dir);
}

// Mixtral: every layer sparse, experts of intermediate_size, always renormalised; a tensor-parallel
// split that does not divide an expert's columns names the field.
TEST(Moe, MixtralConfigAndUnevenSplit) {
  const ModelConfig c = load_model_config(kModels / "mixtral-tiny");
  EXPECT_EQ(c.moe.num_experts, 4);
  EXPECT_EQ(c.moe.top_k, 2);
  EXPECT_EQ(c.moe.intermediate_size, 64);
  EXPECT_TRUE(c.moe.renormalize);
  EXPECT_FALSE(c.moe.has_dense_layers(c.num_layers));
  const ModelConfig q = load_model_config(kModels / "qwen2moe-tiny");
  EXPECT_NE(error_of([&] { shard_config(q, {.rank = 0, .size = 3}); }).find("num_"),
            std::string::npos);
  ModelConfig odd = q;
  odd.num_q_heads = odd.num_kv_heads = 6;
  odd.moe.intermediate_size = 32;
  odd.intermediate_size = 162;
  EXPECT_NE(
      error_of([&] { shard_config(odd, {.rank = 0, .size = 3}); }).find("moe_intermediate_size"),
      std::string::npos);
}

}  // namespace
}  // namespace llmserve
