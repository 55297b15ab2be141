// Phi3ForCausalLM's fused tensors against Llama's separate ones: the llama-tiny fixture (GQA 4/2,
// which the phi3-tiny fixture, MHA, does not have) rewritten as a Phi-3 checkpoint — q/k/v rows
// stacked into qkv_proj, gate/up into gate_up_proj, nothing else changed — must give the same
// logits and greedy tokens, whole and split over two tensor-parallel ranks (each rank's rows of
// each Q/K/V block: WeightLoader::load_row_blocks). The HF reference for Phi-3 itself is
// tests/unit/model/golden_test.cpp on phi3-tiny.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <optional>
#include <string>

#include "checkpoint_writer.h"
#include "model/weight_store.h"
#include "testing/reference_cases.h"
#include "testing/runner_harness.h"

namespace llmserve {
namespace {

const std::filesystem::path kModels = std::filesystem::path(LLMSERVE_TEST_DATA) / "models";

std::filesystem::path write_as_phi3(const std::filesystem::path& llama) {
  const WeightStore store = WeightStore::open(llama);
  std::map<std::string, testing::TestTensor> out;
  const auto tensor = [&](const std::string& name) {
    const TensorInfo& info = store.info(name);
    return testing::TestTensor{"F32", info.shape, store.load_f32(name, info.shape)};
  };
  const auto stacked = [&](const std::vector<std::string>& names) {
    testing::TestTensor t = tensor(names[0]);
    for (size_t i = 1; i < names.size(); ++i) {
      const testing::TestTensor part = tensor(names[i]);
      t.shape[0] += part.shape[0];
      t.values.insert(t.values.end(), part.values.begin(), part.values.end());
    }
    return t;
  };
  for (const std::string& name : store.names()) {
    // The layer prefix ("model.layers.3.") when `name` ends in `suffix`.
    const auto layer_of = [&](const std::string& suffix) -> std::optional<std::string> {
      if (name.size() <= suffix.size() || !name.ends_with(suffix)) return std::nullopt;
      return name.substr(0, name.size() - suffix.size());
    };
    if (const auto l = layer_of("self_attn.q_proj.weight")) {
      out[*l + "self_attn.qkv_proj.weight"] =
          stacked({name, *l + "self_attn.k_proj.weight", *l + "self_attn.v_proj.weight"});
    } else if (const auto g = layer_of("mlp.gate_proj.weight")) {
      out[*g + "mlp.gate_up_proj.weight"] = stacked({name, *g + "mlp.up_proj.weight"});
    } else if (!layer_of("self_attn.k_proj.weight") && !layer_of("self_attn.v_proj.weight") &&
               !layer_of("mlp.up_proj.weight")) {
      out[name] = tensor(name);
    }
  }
  const auto dir = testing::fresh_dir("phi3_from_llama");
  testing::write_file(dir / "model.safetensors", testing::safetensors_bytes(out));
  std::ifstream in(llama / "config.json");
  nlohmann::json config = nlohmann::json::parse(in);
  config["architectures"] = {"Phi3ForCausalLM"};
  config["model_type"] = "phi3";
  testing::write_file(dir / "config.json", config.dump());
  return dir;
}

TEST(Phi3, FusedTensorsMatchLlamaSplitOnesWholeAndTensorParallel) {
  const auto llama = kModels / "llama-tiny";
  const auto phi3 = write_as_phi3(llama);
  const auto cases = testing::read_reference_cases(llama);
  ASSERT_FALSE(cases.empty());
  for (const int32_t tp : {1, 2}) {
    testing::RunnerHarness want_h(llama, DeviceKind::kCpu, DType::kF32, 0, tp),
        got_h(phi3, DeviceKind::kCpu, DType::kF32, 0, tp);
    EXPECT_EQ(got_h.model().config().architecture, "Phi3ForCausalLM");
    const testing::Greedy want = testing::run_greedy(want_h, cases, 8, /*batched=*/true);
    const testing::Greedy got = testing::run_greedy(got_h, cases, 8, /*batched=*/true);
    for (size_t i = 0; i < want.tokens.size(); ++i) {
      EXPECT_EQ(got.tokens[i], want.tokens[i]) << "tp " << tp << " case " << i;
      EXPECT_EQ(got.first_logits[i], want.first_logits[i]) << "tp " << tp << " case " << i;
    }
  }
  std::filesystem::remove_all(phi3);
}

}  // namespace
}  // namespace llmserve
