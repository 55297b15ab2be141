#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <numbers>

#include "checkpoint_writer.h"
#include "common/status.h"
#include "model/model.h"
#include "model/rope.h"
#include "model/safetensors.h"
#include "testing/reference_cases.h"

namespace llmserve {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

nlohmann::json llama_config() {
  return {{"architectures", {"LlamaForCausalLM"}},
          {"vocab_size", 32},
          {"hidden_size", 16},
          {"num_hidden_layers", 1},
          {"num_attention_heads", 4},
          {"num_key_value_heads", 2},
          {"intermediate_size", 24},
          {"max_position_embeddings", 64},
          {"rms_norm_eps", 1e-5},
          {"eos_token_id", {2, 3}},
          {"bos_token_id", 1}};
}

TEST(ModelConfig, ReadsLlamaFieldsAndGenerationConfig) {
  auto dir = testing::fresh_dir("cfg_llama");
  testing::write_file(dir / "config.json", llama_config().dump());
  testing::write_file(dir / "generation_config.json", R"({"eos_token_id": 7})");
  auto c = load_model_config(dir);
  EXPECT_EQ(c.architecture, "LlamaForCausalLM");
  EXPECT_EQ(c.num_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 4);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_ids, std::vector<int32_t>{7});
  EXPECT_EQ(c.rope.type, RopeConfig::Type::kDefault);
}

TEST(ModelConfig, ErrorsNameFileAndField) {
  auto dir = testing::fresh_dir("cfg_errors");
  EXPECT_NE(error_of([&] { load_model_config(dir); }).find("config.json' is missing"),
            std::string::npos);
  EXPECT_NE(error_of([&] { load_model_config(dir / "nope"); }).find("does not exist"),
            std::string::npos);

  auto j = llama_config();
  j["architectures"] = {"FancyForCausalLM"};
  testing::write_file(dir / "config.json", j.dump());
  auto msg = error_of([&] { load_model_config(dir); });
  EXPECT_NE(msg.find("FancyForCausalLM"), std::string::npos) << msg;
  EXPECT_NE(msg.find("LlamaForCausalLM"), std::string::npos) << msg;  // lists the supported ones

  j = llama_config();
  j["num_key_value_heads"] = 3;
  testing::write_file(dir / "config.json", j.dump());
  msg = error_of([&] { load_model_config(dir); });
  EXPECT_NE(msg.find("num_key_value_heads"), std::string::npos) << msg;

  j = llama_config();
  j["hidden_size"] = "big";
  testing::write_file(dir / "config.json", j.dump());
  msg = error_of([&] { load_model_config(dir); });
  EXPECT_NE(msg.find("'hidden_size'"), std::string::npos) << msg;

  j = llama_config();
  j["rope_scaling"] = {{"rope_type", "su"}, {"factor", 4.0}};
  testing::write_file(dir / "config.json", j.dump());
  msg = error_of([&] { load_model_config(dir); });
  EXPECT_NE(msg.find("rope_scaling type 'su' is not supported"), std::string::npos) << msg;

  testing::write_file(dir / "config.json", "{not json");
  msg = error_of([&] { load_model_config(dir); });
  EXPECT_NE(msg.find("not a JSON object"), std::string::npos) << msg;
}

// Partial rotary embeddings are refused wherever the config puts the factor; Phi-3's sliding
// window caps the context (so the window never cuts) and LongRoPE is refused by name.
TEST(ModelConfig, PartialRotaryRefusedAndPhi3WindowCapsTheContext) {
  auto dir = testing::fresh_dir("cfg_rotary");
  auto j = llama_config();
  j["partial_rotary_factor"] = 0.75;
  testing::write_file(dir / "config.json", j.dump());
  auto msg = error_of([&] { load_model_config(dir); });
  EXPECT_NE(msg.find("partial_rotary_factor 0.75"), std::string::npos) << msg;
  j = llama_config();
  j["rope_parameters"] = {{"rope_type", "default"}, {"partial_rotary_factor", 0.5}};
  testing::write_file(dir / "config.json", j.dump());
  msg = error_of([&] { load_model_config(dir); });
  EXPECT_NE(msg.find("partial_rotary_factor 0.5"), std::string::npos) << msg;

  j = llama_config();
  j["architectures"] = {"Phi3ForCausalLM"};
  j["sliding_window"] = 48;
  testing::write_file(dir / "config.json", j.dump());
  EXPECT_EQ(load_model_config(dir).max_position_embeddings, 48);
  j["sliding_window"] = 100;  // beyond the context: nothing to cap
  testing::write_file(dir / "config.json", j.dump());
  EXPECT_EQ(load_model_config(dir).max_position_embeddings, 64);
  j["sliding_window"] = nullptr;
  testing::write_file(dir / "config.json", j.dump());
  EXPECT_EQ(load_model_config(dir).max_position_embeddings, 64);
  const int32_t half = load_model_config(dir).head_dim / 2;
  j["rope_parameters"] = {{"rope_type", "longrope"},
                          {"short_factor", std::vector<double>(half, 1.0)},
                          {"long_factor", std::vector<double>(half + 1, 2.0)}};
  testing::write_file(dir / "config.json", j.dump());
  msg = error_of([&] { load_model_config(dir); });
  EXPECT_NE(msg.find("short_factor and long_factor need head_dim / 2"), std::string::npos) << msg;
  j["rope_parameters"]["long_factor"] = std::vector<double>(half, 2.0);
  testing::write_file(dir / "config.json", j.dump());
  EXPECT_EQ(load_model_config(dir).rope.type, RopeConfig::Type::kLongRope);
  j["rope_parameters"]["short_factor"] = {1.0, "x"};
  testing::write_file(dir / "config.json", j.dump());
  msg = error_of([&] { load_model_config(dir); });
  EXPECT_NE(msg.find("rope_scaling.short_factor must be a list of positive numbers"),
            std::string::npos)
      << msg;
}

// LongRoPE (Phi-3 128k) against transformers on the phi3-longrope-tiny fixture: the short and
// long inverse frequencies its reference recorded (rope.inv_freq, rope.long_inv_freq), the
// attention factor from max_position_embeddings / original_max_position_embeddings, the table's
// two halves scaled by it, and the switch to the long rows past the original context.
TEST(Rope, LongRopeMatchesTransformers) {
  const auto dir = std::filesystem::path(LLMSERVE_TEST_DATA) / "models/phi3-longrope-tiny";
  const ModelConfig c = load_model_config(dir);
  ASSERT_EQ(c.rope.type, RopeConfig::Type::kLongRope);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 38);
  EXPECT_NEAR(c.rope.attention_factor, 1.2346705226149148, 1e-12);
  SafetensorsFile ref(dir / "reference.safetensors");
  for (const bool is_long : {false, true}) {
    const std::vector<float> want =
        testing::read_reference_floats(ref, is_long ? "rope.long_inv_freq" : "rope.inv_freq");
    const std::vector<double> got = rope_inverse_frequencies(c.rope, c.head_dim, is_long);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_NEAR(got[i], want[i], 1e-7 * want[i]) << (is_long ? "long " : "short ") << i;
  }
  const int32_t p = c.max_position_embeddings, d = c.head_dim;
  const std::vector<float> table = build_rope_table(c.rope, d, p);
  ASSERT_EQ(table.size(), static_cast<size_t>(2 * p * d));
  const auto factor = static_cast<float>(c.rope.attention_factor);
  EXPECT_FLOAT_EQ(table[0], factor);                           // short rows, cos at position 0
  EXPECT_FLOAT_EQ(table[static_cast<size_t>(p * d)], factor);  // long rows
  const std::vector<double> inv_long = rope_inverse_frequencies(c.rope, d, true);
  const size_t row5 = static_cast<size_t>((p + 5) * d);
  EXPECT_NEAR(table[row5 + 3], std::cos(5.0f * static_cast<float>(inv_long[3])) * factor, 1e-6);
  EXPECT_EQ(rope_table_offset(c.rope, p, 38), 0);
  EXPECT_EQ(rope_table_offset(c.rope, p, 39), p);
  RopeConfig plain = c.rope;
  plain.type = RopeConfig::Type::kDefault;
  EXPECT_EQ(rope_table_offset(plain, p, 1000), 0);
}

// YaRN (rope_scaling type "yarn"): the fields and transformers' defaults — the factor from
// max_position_embeddings / original when absent, attention factor 0.1 ln(factor) + 1 or the
// mscale ratio (DeepSeek), beta_fast 32 / beta_slow 1 for absent, null or 0 values.
TEST(ModelConfig, ReadsYarn) {
  auto dir = testing::fresh_dir("cfg_yarn");
  auto j = llama_config();
  j["max_position_embeddings"] = 128;
  j["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 32}};
  testing::write_file(dir / "config.json", j.dump());
  RopeConfig r = load_model_config(dir).rope;
  ASSERT_EQ(r.type, RopeConfig::Type::kYarn);
  EXPECT_EQ(r.original_max_position_embeddings, 32);
  EXPECT_DOUBLE_EQ(r.factor, 4.0);
  EXPECT_DOUBLE_EQ(r.attention_factor, 0.1 * std::log(4.0) + 1.0);
  EXPECT_DOUBLE_EQ(r.beta_fast, 32.0);
  EXPECT_DOUBLE_EQ(r.beta_slow, 1.0);
  EXPECT_TRUE(r.truncate);

  j["rope_scaling"] = {{"rope_type", "yarn"},  {"original_max_position_embeddings", 16},
                       {"mscale", 0.707},      {"mscale_all_dim", 0.707},
                       {"beta_fast", nullptr}, {"beta_slow", 2.0},
                       {"truncate", false}};
  testing::write_file(dir / "config.json", j.dump());
  r = load_model_config(dir).rope;
  EXPECT_DOUBLE_EQ(r.factor, 8.0);            // 128 / 16
  EXPECT_DOUBLE_EQ(r.attention_factor, 1.0);  // equal mscales cancel
  EXPECT_DOUBLE_EQ(r.beta_fast, 32.0);
  EXPECT_DOUBLE_EQ(r.beta_slow, 2.0);
  EXPECT_FALSE(r.truncate);
  j["rope_scaling"]["attention_factor"] = 1.5;
  testing::write_file(dir / "config.json", j.dump());
  EXPECT_DOUBLE_EQ(load_model_config(dir).rope.attention_factor, 1.5);

  j["rope_scaling"]["beta_slow"] = -1.0;
  testing::write_file(dir / "config.json", j.dump());
  std::string msg = error_of([&] { load_model_config(dir); });
  EXPECT_NE(msg.find("beta_fast and beta_slow must be > 0"), std::string::npos) << msg;
  j["rope_scaling"] = {{"type", "su"}, {"factor", 2.0}};
  testing::write_file(dir / "config.json", j.dump());
  msg = error_of([&] { load_model_config(dir); });
  EXPECT_NE(
      msg.find("'su' is not supported (default, linear, llama3, longrope, yarn, dynamic are)"),
      std::string::npos)
      << msg;
}

// Dynamic NTK (rope_scaling type "dynamic"): transformers' _compute_dynamic_ntk_parameters gives
// base * ((factor * L / original) - (factor - 1)) ^ (d / (d - 2)) for a forward of length L past
// the original context and the unscaled base up to it. The model is served up to the original
// context (max_position_embeddings capped to it), where its frequencies are exactly the default
// ones.
TEST(ModelConfig, DynamicNtkServedWithinTheOriginalContext) {
  auto dir = testing::fresh_dir("cfg_dynamic");
  auto j = llama_config();
  j["rope_scaling"] = {{"type", "dynamic"}, {"factor", 2.0}};
  testing::write_file(dir / "config.json", j.dump());
  ModelConfig c = load_model_config(dir);
  ASSERT_EQ(c.rope.type, RopeConfig::Type::kDynamic);
  EXPECT_DOUBLE_EQ(c.rope.factor, 2.0);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 64);
  EXPECT_EQ(c.max_position_embeddings, 64);
  // Within the original context transformers' base is the unscaled one (L <= original gives a
  // multiplier of 1), so the frequencies equal the default rope's, bit for bit.
  RopeConfig plain = c.rope;
  plain.type = RopeConfig::Type::kDefault;
  EXPECT_EQ(rope_inverse_frequencies(c.rope, c.head_dim),
            rope_inverse_frequencies(plain, c.head_dim));
  const double d = c.head_dim, original = 64;
  const double multiplier = std::pow(2.0 * original / original - 1.0, d / (d - 2));
  EXPECT_DOUBLE_EQ(multiplier, 1.0);
  EXPECT_EQ(build_rope_table(c.rope, c.head_dim, 64), build_rope_table(plain, c.head_dim, 64));
  EXPECT_EQ(rope_table_offset(c.rope, 64, 1000), 0);
  // An original context below max_position_embeddings caps the positions served.
  j["max_position_embeddings"] = 256;
  j["rope_scaling"]["original_max_position_embeddings"] = 128;
  testing::write_file(dir / "config.json", j.dump());
  c = load_model_config(dir);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 128);
  EXPECT_EQ(c.max_position_embeddings, 128);
}

// YaRN's frequencies for head_dim 16, theta 10000, factor 4 over an original context of 32 (the
// qwen2-yarn-tiny shape of scripts/make_reference.py): the correction range is dims [0, 2], so
// frequency 0 keeps its value, 1 is the mean of its value and value / 4, and 2-7 are divided by
// 4 (the values of make_reference.py's yarn_parameters, which checks them against transformers'
// buffers); the table's cos/sin carry the attention factor.
TEST(Rope, YarnBlendsExtrapolationAndInterpolation) {
  RopeConfig r;
  r.type = RopeConfig::Type::kYarn;
  r.theta = 10000.0;
  r.factor = 4.0;
  r.original_max_position_embeddings = 32;
  r.attention_factor = 0.1 * std::log(4.0) + 1.0;
  const double want[] = {1.0,    0.19764235376052372,   0.025,   0.007905694150420948,
                         0.0025, 0.0007905694150420947, 0.00025, 7.905694150420948e-05};
  const std::vector<double> got = rope_inverse_frequencies(r, 16);
  ASSERT_EQ(got.size(), 8u);
  for (size_t i = 0; i < 8; ++i) EXPECT_NEAR(got[i], want[i], 2e-7 * want[i]) << i;
  const std::vector<float> table = build_rope_table(r, 16, 64);
  const auto factor = static_cast<float>(r.attention_factor);
  EXPECT_FLOAT_EQ(table[0], factor);  // cos at position 0
  const size_t row9 = 9 * 16;
  EXPECT_NEAR(table[row9 + 1], std::cos(9.0f * static_cast<float>(got[1])) * factor, 1e-6);
  EXPECT_NEAR(table[row9 + 8 + 1], std::sin(9.0f * static_cast<float>(got[1])) * factor, 1e-6);
  EXPECT_EQ(rope_table_offset(r, 64, 1000), 0);  // static: one set of rows at every length
  // Without truncation the ramp runs over the unrounded range and frequency 1 moves.
  r.truncate = false;
  EXPECT_GT(std::abs(rope_inverse_frequencies(r, 16)[1] - want[1]), 1e-3);
}

// YaRN against transformers on the qwen2-yarn-tiny fixture (config in transformers 5's
// rope_parameters form): the inverse frequencies of its rotary buffer (rope.inv_freq) and the
// attention scaling it recorded in reference.json.
TEST(Rope, YarnMatchesTransformers) {
  const auto dir = std::filesystem::path(LLMSERVE_TEST_DATA) / "models/qwen2-yarn-tiny";
  const ModelConfig c = load_model_config(dir);
  ASSERT_EQ(c.rope.type, RopeConfig::Type::kYarn);
  EXPECT_EQ(c.rope.original_max_position_embeddings, 32);
  EXPECT_DOUBLE_EQ(c.rope.factor, 4.0);
  std::ifstream in(dir / "reference.json");
  const auto ref_json = nlohmann::json::parse(in);
  EXPECT_NEAR(c.rope.attention_factor, ref_json["rope"]["attention_factor"].get<double>(), 1e-12);
  SafetensorsFile ref(dir / "reference.safetensors");
  const std::vector<float> want = testing::read_reference_floats(ref, "rope.inv_freq");
  const std::vector<double> got = rope_inverse_frequencies(c.rope, c.head_dim);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-7 * want[i]) << i;
}

// Mistral: a sliding_window slides every layer; null (Mistral 7B v0.2 and later) none.
TEST(ModelConfig, MistralWindowOnEveryLayer) {
  auto dir = testing::fresh_dir("cfg_mistral");
  auto j = llama_config();
  j["architectures"] = {"MistralForCausalLM"};
  j["num_hidden_layers"] = 3;
  j["sliding_window"] = 48;
  testing::write_file(dir / "config.json", j.dump());
  ModelConfig c = load_model_config(dir);
  EXPECT_EQ(c.layer_windows, (std::vector<int32_t>{48, 48, 48}));
  EXPECT_EQ(c.max_position_embeddings, 64);  // not capped: attention honours the window
  j["sliding_window"] = nullptr;
  testing::write_file(dir / "config.json", j.dump());
  c = load_model_config(dir);
  EXPECT_TRUE(c.layer_windows.empty());
  EXPECT_EQ(c.window_of(1), 0);
}

// Qwen2/3 as transformers reads them: sliding_window counts only with use_sliding_window; then
// layer_types names the sliding layers, or without it the layers from max_window_layers on slide.
TEST(ModelConfig, QwenWindowsFollowUseSlidingWindow) {
  auto dir = testing::fresh_dir("cfg_qwen_window");
  for (const char* arch : {"Qwen2ForCausalLM", "Qwen3ForCausalLM"}) {
    SCOPED_TRACE(arch);
    auto j = llama_config();
    j["architectures"] = {arch};
    j["num_hidden_layers"] = 4;
    j["head_dim"] = 8;
    j["sliding_window"] = 32;  // Qwen2.5's configs carry one, unused
    j["max_window_layers"] = 2;
    j["use_sliding_window"] = false;
    testing::write_file(dir / "config.json", j.dump());
    EXPECT_EQ(load_model_config(dir).kv_window(), 0);
    EXPECT_EQ(load_model_config(dir).window_of(3), 0);
    j["layer_types"] = {"full_attention", "sliding_attention", "sliding_attention",
                        "sliding_attention"};
    testing::write_file(dir / "config.json", j.dump());
    EXPECT_EQ(load_model_config(dir).window_of(3), 0) << "no window without use_sliding_window";

    j["use_sliding_window"] = true;
    testing::write_file(dir / "config.json", j.dump());
    EXPECT_EQ(load_model_config(dir).layer_windows, (std::vector<int32_t>{0, 32, 32, 32}));
    j.erase("layer_types");
    testing::write_file(dir / "config.json", j.dump());
    EXPECT_EQ(load_model_config(dir).layer_windows, (std::vector<int32_t>{0, 0, 32, 32}));
    EXPECT_EQ(load_model_config(dir).kv_window(), 0);  // full-attention layers keep every block
    j["max_window_layers"] = 0;
    testing::write_file(dir / "config.json", j.dump());
    EXPECT_EQ(load_model_config(dir).kv_window(), 32);  // every layer slides
    j["sliding_window"] = 0;
    testing::write_file(dir / "config.json", j.dump());
    EXPECT_NE(error_of([&] { load_model_config(dir); }).find("needs sliding_window > 0, got 0"),
              std::string::npos);
    j["sliding_window"] = 32;
    j["layer_types"] = {"full_attention", "chunked_attention", "full_attention", "full_attention"};
    testing::write_file(dir / "config.json", j.dump());
    EXPECT_NE(error_of([&] {
                load_model_config(dir);
              }).find("layer_types[1] '\"chunked_attention\"' is not supported"),
              std::string::npos);
  }
}

nlohmann::json gemma_config(const std::string& architecture) {
  auto j = llama_config();
  j["architectures"] = {architecture};
  j["num_hidden_layers"] = 6;
  j["head_dim"] = 8;
  j["hidden_activation"] = "gelu_pytorch_tanh";
  j["sliding_window"] = 16;
  j["query_pre_attn_scalar"] = 16;
  j.erase("tie_word_embeddings");  // Gemma ties by default
  return j;
}

// Gemma 2 as transformers 4 wrote it: no layer_types (even layers slide), the soft-caps' HF
// defaults when absent, null for none; query_pre_attn_scalar sets the softmax scale.
TEST(ModelConfig, Gemma2LayerPatternSoftcapsAndScale) {
  auto dir = testing::fresh_dir("cfg_gemma2");
  auto j = gemma_config("Gemma2ForCausalLM");
  testing::write_file(dir / "config.json", j.dump());
  ModelConfig c = load_model_config(dir);
  EXPECT_EQ(c.layer_windows, (std::vector<int32_t>{16, 0, 16, 0, 16, 0}));
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FLOAT_EQ(c.attention_scale(), 0.25f);
  EXPECT_FLOAT_EQ(c.attention_softcap, 50.0f);
  EXPECT_FLOAT_EQ(c.final_logit_softcap, 30.0f);
  EXPECT_FALSE(c.has_qk_norm);
  j["attn_logit_softcapping"] = nullptr;
  j["final_logit_softcapping"] = 12.5;
  testing::write_file(dir / "config.json", j.dump());
  c = load_model_config(dir);
  EXPECT_EQ(c.attention_softcap, 0.0f);
  EXPECT_FLOAT_EQ(c.final_logit_softcap, 12.5f);
  j["hidden_activation"] = "gelu";
  testing::write_file(dir / "config.json", j.dump());
  auto msg = error_of([&] { load_model_config(dir); });
  EXPECT_NE(msg.find("hidden_activation 'gelu'"), std::string::npos) << msg;
  j["hidden_activation"] = "gelu_pytorch_tanh";
  j["use_bidirectional_attention"] = true;
  testing::write_file(dir / "config.json", j.dump());
  msg = error_of([&] { load_model_config(dir); });
  EXPECT_NE(msg.find("use_bidirectional_attention"), std::string::npos) << msg;
  j.erase("use_bidirectional_attention");
  j["layer_types"] = {"sliding_attention", "chunked_attention"};
  testing::write_file(dir / "config.json", j.dump());
  msg = error_of([&] { load_model_config(dir); });
  EXPECT_NE(msg.find("layer_types"), std::string::npos) << msg;
}

// Gemma 3 as transformers 4 wrote it: five sliding layers to one full, the global RoPE from
// rope_theta / rope_scaling and the local one from rope_local_base_freq, unscaled.
TEST(ModelConfig, Gemma3PatternAndTwoRopes) {
  auto dir = testing::fresh_dir("cfg_gemma3");
  auto j = gemma_config("Gemma3ForCausalLM");
  j["rope_theta"] = 1000000.0;
  j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 8.0}};
  j["rope_local_base_freq"] = 10000.0;
  testing::write_file(dir / "config.json", j.dump());
  const ModelConfig c = load_model_config(dir);
  EXPECT_EQ(c.layer_windows, (std::vector<int32_t>{16, 16, 16, 16, 16, 0}));
  EXPECT_TRUE(c.has_qk_norm);
  EXPECT_EQ(c.attention_softcap, 0.0f);
  EXPECT_EQ(c.final_logit_softcap, 0.0f);
  EXPECT_EQ(c.rope.type, RopeConfig::Type::kLinear);
  EXPECT_EQ(c.rope.theta, 1000000.0);
  EXPECT_EQ(c.rope.factor, 8.0);
  ASSERT_TRUE(c.local_rope.has_value());
  EXPECT_EQ(c.local_rope->type, RopeConfig::Type::kDefault);
  EXPECT_EQ(c.local_rope->theta, 10000.0);
}

// The RoPE frequencies of gemma3-tiny's two layer types (transformers 5's rope_parameters keyed
// by layer type) are the ones transformers used for the fixture.
TEST(ModelConfig, Gemma3RopesMatchTheFixture) {
  const auto dir = std::filesystem::path(LLMSERVE_TEST_DATA) / "models" / "gemma3-tiny";
  const ModelConfig c = load_model_config(dir);
  ASSERT_TRUE(c.local_rope.has_value());
  SafetensorsFile f(dir / "reference.safetensors");
  for (const auto& [key, rope] :
       {std::pair{"rope.inv_freq", c.rope}, std::pair{"rope_local.inv_freq", *c.local_rope}}) {
    const std::vector<float> want = testing::read_reference_floats(f, key);
    const std::vector<double> got = rope_inverse_frequencies(rope, c.head_dim);
    // Linear scaling divides the positions (build_rope_table), HF the frequencies.
    const double factor = rope.type == RopeConfig::Type::kLinear ? rope.factor : 1.0;
    ASSERT_EQ(got.size(), want.size()) << key;
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_NEAR(got[i] / factor, want[i], 1e-6 * want[i]) << key << " " << i;
    }
  }
}

TEST(ModelConfig, MissingWeightNamesTensor) {
  auto dir = testing::fresh_dir("cfg_missing_weight");
  testing::write_file(dir / "config.json", llama_config().dump());
  testing::write_file(
      dir / "model.safetensors",
      testing::safetensors_bytes(
          {{"model.embed_tokens.weight", {"F32", {32, 16}, testing::random_values(512, 1)}}}));
  auto backend = create_backend(DeviceKind::kCpu);
  auto msg = error_of([&] { load_model(dir, *backend); });
  EXPECT_NE(msg.find("model.layers.0.input_layernorm.weight"), std::string::npos) << msg;
}

// transformers 5 writes rope settings under rope_parameters; both spellings give llama3 scaling.
TEST(Rope, Llama3ScalingMatchesFormula) {
  RopeConfig rope;
  rope.type = RopeConfig::Type::kLlama3;
  rope.theta = 500000.0;
  rope.factor = 8.0;
  rope.original_max_position_embeddings = 8192;
  auto inv = rope_inverse_frequencies(rope, 128);
  RopeConfig plain = rope;
  plain.type = RopeConfig::Type::kDefault;
  auto base = rope_inverse_frequencies(plain, 128);
  // Highest frequency unchanged; lowest divided by the factor; a middle one in between.
  EXPECT_DOUBLE_EQ(inv[0], base[0]);
  EXPECT_NEAR(inv[63], base[63] / 8.0, 1e-12);
  for (size_t i = 0; i < inv.size(); ++i) {
    EXPECT_LE(inv[i], base[i] * (1 + 1e-12));
    EXPECT_GE(inv[i], base[i] / 8.0 * (1 - 1e-12));
  }
  nlohmann::json j = {{"rope_parameters",
                       {{"rope_type", "llama3"},
                        {"rope_theta", 500000.0},
                        {"factor", 8.0},
                        {"low_freq_factor", 1.0},
                        {"high_freq_factor", 4.0},
                        {"original_max_position_embeddings", 8192}}}};
  auto parsed = parse_rope_config(ConfigReader(j, "config.json"));
  EXPECT_EQ(parsed.type, RopeConfig::Type::kLlama3);
  EXPECT_EQ(parsed.theta, 500000.0);
}

}  // namespace
}  // namespace llmserve
