// A model on a backend (or a tensor-parallel group of them), a KV pool of 128 blocks (+1 for
// graph padding; of the activation dtype, or kv_cache_dtype), a block allocator and a ModelRunner:
// the set-up the model-level tests share (tests/unit/model on the CPU, tests/unit/cuda on the GPU),
// and greedy decoding through it.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "engine/model_runner.h"
#include "engine/rank_pool.h"
#include "model/model.h"
#include "testing/reference_cases.h"

namespace llmserve::testing {

class RunnerHarness {
 public:
  static constexpr int32_t kBlockSize = 16, kBlocks = 128;
  RunnerHarness(const std::filesystem::path& dir, DeviceKind device, DType dtype,
                int32_t graph_batch = 0, int32_t tp = 1, int32_t pp = 1,
                Quantization quantization = Quantization::kNone,
                std::optional<DType> kv_cache_dtype = std::nullopt)
      : RunnerHarness(dir, device, dtype, graph_batch, tp, pp, LoadOptions{quantization},
                      kv_cache_dtype) {}
  // The model loaded with `load` (e.g. LoadOptions::quantize_lm_head).
  RunnerHarness(const std::filesystem::path& dir, DeviceKind device, DType dtype,
                int32_t graph_batch, int32_t tp, int32_t pp, const LoadOptions& load,
                std::optional<DType> kv_cache_dtype = std::nullopt)
      : backends_(create_backend_group(device, dtype, tp, pp)),
        pool_(tp * pp, [this](int32_t r) { backends_[static_cast<size_t>(r)]->bind_thread(); }),
        models_(static_cast<size_t>(tp * pp)),
        kv_(static_cast<size_t>(tp * pp)) {
    RunnerOptions o;
    o.max_num_tokens = 512;
    o.max_batch_size = 16;
    o.pad_block = kBlocks;
    o.max_graph_batch_size = graph_batch;
    pool_.run([&](int32_t r) {
      const auto i = static_cast<size_t>(r);
      models_[i] = load_model(dir, *backends_[i], load);
      KvCacheSpec spec = models_[i]->kv_cache_spec(kBlockSize, kBlocks + 1);
      if (kv_cache_dtype) spec.dtype = *kv_cache_dtype;
      kv_[i] = backends_[i]->allocate_kv_cache(spec);
      models_[i]->reserve(o.max_num_tokens, o.max_num_tokens);
    });
    o.max_model_len = std::min(512, models_[0]->config().max_position_embeddings);
    std::vector<RunnerRank> ranks;
    for (size_t i = 0; i < models_.size(); ++i)
      ranks.push_back({models_[i].get(), backends_[i].get(), &kv_[i]});
    runner_ = std::make_unique<ModelRunner>(std::move(ranks), &pool_, o);
    runner_->capture_graphs();
  }
  int32_t vocab() const { return models_[0]->config().vocab_size; }
  std::vector<int32_t> new_table(int32_t num_tokens) {
    std::vector<int32_t> t;
    for (int32_t i = 0; i * kBlockSize < num_tokens; ++i) t.push_back(kBlocks - 1 - next_block_++);
    return t;
  }
  ModelRunner& runner() { return *runner_; }
  Model& model(int32_t rank = 0) { return *models_[static_cast<size_t>(rank)]; }

 private:
  std::vector<std::unique_ptr<Backend>> backends_;
  RankPool pool_;
  std::vector<std::unique_ptr<Model>> models_;
  std::vector<KvCache> kv_;
  std::unique_ptr<ModelRunner> runner_;
  int32_t next_block_ = 0;
};

struct Top2 {
  int32_t best;
  float margin;
};
inline Top2 top2(std::span<const float> row) {
  int32_t best = 0;
  for (int32_t i = 1; i < static_cast<int32_t>(row.size()); ++i) {
    if (row[static_cast<size_t>(i)] > row[static_cast<size_t>(best)]) best = i;
  }
  float second = -INFINITY;
  for (int32_t i = 0; i < static_cast<int32_t>(row.size()); ++i) {
    if (i != best) second = std::max(second, row[static_cast<size_t>(i)]);
  }
  return {best, row[static_cast<size_t>(best)] - second};
}

// ||got - want|| / ||want|| (0 when both are zero).
inline double rel_l2(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num += (got[i] - want[i]) * static_cast<double>(got[i] - want[i]);
    den += want[i] * static_cast<double>(want[i]);
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

// Greedy decoding of every case, all batched in one step each; returns per case the chosen
// tokens and their top-2 margins.
struct Greedy {
  std::vector<std::vector<int32_t>> tokens;
  std::vector<std::vector<float>> margins;
  std::vector<std::vector<float>>
      first_logits;  // of the prompt's last token (same input for any run)
  std::vector<std::vector<float>> last_logits;
};
inline Greedy run_greedy(RunnerHarness& h, const std::vector<ReferenceCase>& cases, int32_t steps,
                         bool batched) {
  Greedy g;
  const int32_t v = h.vocab();
  std::vector<std::vector<int32_t>> seq_tokens, tables;
  for (const ReferenceCase& c : cases) {
    seq_tokens.push_back(c.prompt);
    tables.push_back(h.new_table(static_cast<int32_t>(c.prompt.size()) + steps));
  }
  g.tokens.resize(cases.size());
  g.margins.resize(cases.size());
  g.first_logits.resize(cases.size());
  g.last_logits.resize(cases.size());
  std::vector<int32_t> computed(cases.size(), 0);
  for (int32_t step = 0; step < steps; ++step) {
    std::vector<size_t> groups;
    if (batched) {
      groups.push_back(cases.size());
    } else {
      groups.assign(cases.size(), 1);
    }
    size_t first = 0;
    for (size_t n : groups) {
      std::vector<RunnerSequence> seqs;
      for (size_t i = first; i < first + n; ++i) {
        const int32_t fresh = static_cast<int32_t>(seq_tokens[i].size()) - computed[i];
        seqs.push_back(
            {seq_tokens[i].data() + computed[i], fresh, computed[i], &tables[i], LogitRows::kLast});
      }
      auto logits = h.runner().forward_logits(seqs);
      for (size_t i = first; i < first + n; ++i) {
        auto row = logits.subspan((i - first) * static_cast<size_t>(v), static_cast<size_t>(v));
        const Top2 t = top2(row);
        computed[i] = static_cast<int32_t>(seq_tokens[i].size());
        seq_tokens[i].push_back(t.best);
        g.tokens[i].push_back(t.best);
        g.margins[i].push_back(t.margin);
        g.last_logits[i].assign(row.begin(), row.end());
        if (step == 0) g.first_logits[i].assign(row.begin(), row.end());
      }
      first += n;
    }
  }
  return g;
}

// Tokens must agree until the reference's margin says the step was a near-tie.
inline void expect_same_greedy(const Greedy& got, const Greedy& want, float tie_margin,
                               const std::string& what) {
  for (size_t i = 0; i < want.tokens.size(); ++i) {
    size_t agreed = 0;
    for (; agreed < want.tokens[i].size(); ++agreed) {
      if (got.tokens[i][agreed] != want.tokens[i][agreed]) break;
    }
    if (agreed == want.tokens[i].size()) continue;
    EXPECT_LT(want.margins[i][agreed], tie_margin)
        << what << " case " << i << ": token " << agreed << " differs (" << got.tokens[i][agreed]
        << " vs " << want.tokens[i][agreed] << ") with a reference top-2 margin of "
        << want.margins[i][agreed];
    std::printf(
        "[ note ] %s case %zu: agreed for %zu of %zu tokens, then a near-tie (margin %.4f)\n",
        what.c_str(), i, agreed, want.tokens[i].size(), want.margins[i][agreed]);
  }
}

}  // namespace llmserve::testing
