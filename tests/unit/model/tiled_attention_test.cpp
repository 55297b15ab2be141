// The CPU backend's prefill attention as two GEMMs a head (set_cpu_tiled_attention: chunks of 16
// or more query rows) against its one-row-at-a-time path, through whole models: every prompt
// position's logits of prompts that take one score tile, two (past 128 rows) and windows (Mistral,
// Gemma 3), and a step that mixes a decode with a chunk continuing after a cached prefix.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "testing/kernel_choice.h"
#include "testing/runner_harness.h"

namespace llmserve {
namespace {

namespace fs = std::filesystem;

// Logits of every new token of: three prompts (17, 40 and 150 tokens, the last fewer where the
// model has fewer positions) in one step, then a step of one decode token for the first and a
// 24-token chunk continuing the third.
std::vector<float> scenario(testing::RunnerHarness& h, bool tiled) {
  const testing::ScopedCpuKernels<set_cpu_tiled_attention> choice(tiled);
  std::mt19937 rng(3);
  std::uniform_int_distribution<int32_t> token(1, std::min(500, h.vocab() - 1));
  const int32_t long_len = std::min(150, h.model().config().max_position_embeddings - 25);
  std::vector<std::vector<int32_t>> prompts;
  for (const int32_t n : {17, 40, long_len + 24}) {
    prompts.emplace_back(static_cast<size_t>(n));
    for (int32_t& t : prompts.back()) t = token(rng);
  }
  std::vector<std::vector<int32_t>> tables;
  for (const auto& p : prompts) tables.push_back(h.new_table(static_cast<int32_t>(p.size()) + 1));
  std::vector<float> all;
  const auto run = [&](const std::vector<RunnerSequence>& seqs) {
    const auto logits = h.runner().forward_logits(seqs);
    all.insert(all.end(), logits.begin(), logits.end());
  };
  run({{prompts[0].data(), 17, 0, &tables[0], LogitRows::kAll},
       {prompts[1].data(), 40, 0, &tables[1], LogitRows::kAll},
       {prompts[2].data(), long_len, 0, &tables[2], LogitRows::kAll}});
  const int32_t next = 7;
  run({{&next, 1, 17, &tables[0], LogitRows::kAll},
       {prompts[2].data() + long_len, 24, long_len, &tables[2], LogitRows::kAll}});
  return all;
}

class TiledAttention : public ::testing::TestWithParam<std::string> {};

TEST_P(TiledAttention, EqualsThePerRowPath) {
  testing::RunnerHarness h(fs::path(LLMSERVE_TEST_DATA) / "models" / GetParam(), DeviceKind::kCpu,
                           DType::kF32);
  const std::vector<float> want = scenario(h, false), got = scenario(h, true);
  ASSERT_EQ(got.size(), want.size());
  // Both sum the same fp32 products in different orders (the GEMMs' blocking, the vector exp):
  // measured 1e-7-1e-6 relative; a wrong mask, window or tile offset moves logits by O(0.1).
  const double diff = testing::rel_l2(got, want);
  EXPECT_LT(diff, 1e-5) << GetParam();
  std::printf("[ note ] %s: tiled vs per-row attention, logits rel L2 %.3g\n", GetParam().c_str(),
              diff);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TiledAttention,
                         ::testing::Values("gpt2-tiny", "llama-tiny", "qwen3-tiny", "mistral-tiny",
                                           "gemma3-tiny"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

}  // namespace
}  // namespace llmserve
