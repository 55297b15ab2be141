// Tensor and pipeline parallel on the CPU backend: ranks are threads sharing a HostGroup (and a
// HostPipe between stages), so the sharded math (Megatron split of heads and FFN columns,
// row-parallel biases added once, all-reduce after the attention output and down projections;
// layers split into stages that hand the residual stream on; MoE experts' intermediate columns
// split like the FFN's, the router whole) runs here and must give the
// unsharded model's logits (up to fp32 summation order) and the same greedy tokens, for both
// architectures and every fixture dtype. The GPU variant (NCCL, two H100s) is
// tests/unit/cuda/model_test.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "common/status.h"
#include "testing/reference_cases.h"
#include "testing/runner_harness.h"

namespace llmserve {
namespace {

const std::filesystem::path kModels = std::filesystem::path(LLMSERVE_TEST_DATA) / "models";

struct TpCase {
  std::string model;
  int32_t tp;
  int32_t pp = 1;
};

class TensorParallelCpu : public ::testing::TestWithParam<TpCase> {};

TEST_P(TensorParallelCpu, ShardedMatchesWhole) {
  const auto dir = kModels / GetParam().model;
  const int32_t tp = GetParam().tp, pp = GetParam().pp;
  const auto cases = testing::read_reference_cases(dir);
  testing::RunnerHarness whole(dir, DeviceKind::kCpu, DType::kF32),
      sharded(dir, DeviceKind::kCpu, DType::kF32, 0, tp, pp);
  EXPECT_EQ(sharded.runner().num_ranks(), tp * pp);
  EXPECT_EQ(sharded.model(tp - 1).local_config().num_kv_heads * tp,
            whole.model().config().num_kv_heads);
  EXPECT_EQ(sharded.model(tp - 1).local_config().intermediate_size * tp,
            whole.model().config().intermediate_size);
  // MoE: every rank holds every expert, a 1/tp slice of its intermediate columns (and of the
  // shared expert's).
  EXPECT_EQ(sharded.model(tp - 1).local_config().moe.intermediate_size * tp,
            whole.model().config().moe.intermediate_size);
  EXPECT_EQ(sharded.model(tp - 1).local_config().moe.shared_intermediate_size * tp,
            whole.model().config().moe.shared_intermediate_size);
  // KV per rank: its heads of its stage's layers.
  int32_t layers = 0;
  for (int32_t s = 0; s < pp; ++s) layers += sharded.model(s * tp).local_config().num_layers;
  EXPECT_EQ(layers, whole.model().config().num_layers);
  EXPECT_EQ(sharded.model(0).kv_cache_spec(16, 1).bytes_per_block() * static_cast<size_t>(tp * pp),
            whole.model().kv_cache_spec(16, 1).bytes_per_block());
  const testing::Greedy want = testing::run_greedy(whole, cases, 16, /*batched=*/true);
  const testing::Greedy got = testing::run_greedy(sharded, cases, 16, /*batched=*/true);
  for (size_t i = 0; i < want.tokens.size(); ++i) {
    EXPECT_EQ(got.tokens[i], want.tokens[i]) << "case " << i;
    EXPECT_LT(testing::rel_l2(got.last_logits[i], want.last_logits[i]), 1e-5) << "case " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, TensorParallelCpu,
    ::testing::Values(TpCase{"gpt2-tiny", 2}, TpCase{"gpt2-tiny", 4}, TpCase{"gpt2-tiny-fp16", 2},
                      TpCase{"llama-tiny", 2}, TpCase{"llama-tiny-bf16", 2},
                      TpCase{"qwen2-tiny", 2}, TpCase{"qwen3-tiny", 2}, TpCase{"phi3-tiny", 2},
                      TpCase{"phi3-longrope-tiny", 2}, TpCase{"llama-tiny-bf16", 4},
                      TpCase{"gpt2-tiny", 1, 2}, TpCase{"llama-tiny", 1, 2},
                      TpCase{"llama-tiny", 2, 2}, TpCase{"gpt2-tiny", 2, 2},
                      TpCase{"mistral-tiny", 2}, TpCase{"gemma2-tiny", 2}, TpCase{"gemma3-tiny", 2},
                      TpCase{"gemma2-tiny", 1, 2}, TpCase{"gemma3-tiny", 2, 2},
                      TpCase{"mixtral-tiny", 2}, TpCase{"qwen3moe-tiny", 2, 2},
                      TpCase{"qwen2moe-tiny", 2}, TpCase{"qwen3moe-tiny", 2},
                      TpCase{"mixtral-tiny", 1, 2}, TpCase{"qwen2moe-tiny", 2, 2}),
    [](const ::testing::TestParamInfo<TpCase>& info) {
      std::string n = info.param.model + "_tp" + std::to_string(info.param.tp) + "_pp" +
                      std::to_string(info.param.pp);
      std::replace(n.begin(), n.end(), '-', '_');
      return n;
    });

TEST(TensorParallel, StagesSplitTheLayers) {
  EXPECT_EQ(stage_first_layer(32, 0, 3), 0);
  EXPECT_EQ(stage_first_layer(32, 1, 3), 10);
  EXPECT_EQ(stage_first_layer(32, 2, 3), 21);
  EXPECT_EQ(stage_first_layer(32, 3, 3), 32);
  const ModelConfig c = load_model_config(kModels / "llama-tiny");
  try {
    shard_config(c, ModelShard{0, 1, 0, c.num_layers + 1});
    ADD_FAILURE() << "more stages than layers must fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("num_hidden_layers"), std::string::npos) << e.what();
  }
}

TEST(TensorParallel, UndividedHeadsAreAClearError) {
  // llama-tiny has 2 KV heads: 4 ranks cannot each hold a whole one.
  const ModelConfig c = load_model_config(kModels / "llama-tiny");
  try {
    shard_config(c, ModelShard{0, 4});
    ADD_FAILURE() << "--tp 4 over 2 KV heads must fail";
  } catch (const Error& e) {
    EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("num_key_value_heads"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--tp 4"), std::string::npos) << e.what();
  }
  const ModelConfig local = shard_config(c, ModelShard{1, 2});
  EXPECT_EQ(local.num_q_heads, c.num_q_heads / 2);
  EXPECT_EQ(local.num_kv_heads, c.num_kv_heads / 2);
  EXPECT_EQ(local.hidden_size, c.hidden_size);
  EXPECT_EQ(local.vocab_size, c.vocab_size);
}

}  // namespace
}  // namespace llmserve
