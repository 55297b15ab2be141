// The embedded default model (models/default, trained by scripts/train_default_model.py): our
// tokenizer gives HF's ids for the reference prompts, our CPU forward gives HF's logits, and
// greedy continuations equal HF's token for token.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "backend/backend.h"
#include "engine/model_runner.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "tokenizer/tokenizer.h"

namespace llmserve {
namespace {

const std::filesystem::path kDir = std::filesystem::path(LLMSERVE_SOURCE_DIR) / "models/default";

TEST(DefaultModel, MatchesTransformersReference) {
  std::ifstream in(kDir / "reference.json");
  ASSERT_TRUE(in) << "models/default/reference.json is missing";
  auto ref = nlohmann::json::parse(in);
  SafetensorsFile tensors(kDir / "reference.safetensors");
  auto tokenizer = Tokenizer::from_dir(kDir);
  auto backend = create_backend(DeviceKind::kCpu);
  auto model = load_model(kDir, *backend);
  const int32_t vocab = model->config().vocab_size;
  constexpr int32_t kBlockSize = 16;
  KvCache kv = backend->allocate_kv_cache(model->kv_cache_spec(kBlockSize, 16));
  std::vector<int32_t> table(16);
  for (int32_t i = 0; i < 16; ++i) table[static_cast<size_t>(i)] = 15 - i;
  ModelRunner runner(*model, *backend, kv);

  for (size_t p = 0; p < ref["prompts"].size(); ++p) {
    const auto& prompt = ref["prompts"][p];
    SCOPED_TRACE(prompt["prompt"].get<std::string>());
    auto ids = tokenizer->encode(prompt["prompt"].get<std::string>());
    ASSERT_EQ(ids, prompt["ids"].get<std::vector<int32_t>>());

    const std::string key = "prompt" + std::to_string(p) + ".";
    const TensorInfo* info = tensors.find(key + "logits");
    ASSERT_NE(info, nullptr);
    std::vector<float> want(static_cast<size_t>(info->numel()));
    std::memcpy(want.data(), tensors.data(*info).data(), want.size() * sizeof(float));
    RunnerSequence seq{ids.data(), static_cast<int32_t>(ids.size()), 0, &table, LogitRows::kAll};
    auto got = runner.forward_logits({&seq, 1});
    auto positions = prompt["logits_positions"].get<std::vector<int32_t>>();
    for (size_t r = 0; r < positions.size(); ++r) {
      float worst = 0;
      for (int32_t v = 0; v < vocab; ++v) {
        float g = got[static_cast<size_t>(positions[r]) * vocab + v];
        float w = want[r * static_cast<size_t>(vocab) + static_cast<size_t>(v)];
        worst = std::max(worst, std::abs(g - w) - 1e-4f * std::abs(w));
      }
      EXPECT_LE(worst, 2e-4f) << "position " << positions[r];
    }

    // Greedy continuation, one decode step at a time through the KV cache.
    std::vector<int32_t> tokens = ids;
    const auto want_greedy = prompt["greedy"].get<std::vector<int32_t>>();
    int32_t computed = 0;
    while (tokens.size() < ids.size() + want_greedy.size()) {
      RunnerSequence step{tokens.data() + computed, static_cast<int32_t>(tokens.size()) - computed,
                          computed, &table, LogitRows::kLast};
      auto row = runner.forward_logits({&step, 1});
      computed = static_cast<int32_t>(tokens.size());
      tokens.push_back(
          static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin()));
    }
    EXPECT_EQ(std::vector<int32_t>(tokens.begin() + static_cast<std::ptrdiff_t>(ids.size()),
                                   tokens.end()),
              want_greedy);
    EXPECT_EQ(tokenizer->decode(want_greedy), prompt["greedy_text"].get<std::string>());
  }
}

}  // namespace
}  // namespace llmserve
