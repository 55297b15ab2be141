// Pre-quantized checkpoints (model/quantized_checkpoint.h): which quantization_config shapes are
// read and which are refused with a message naming the setting, and a checkpoint whose quantized
// tensors disagree with each other refused naming the tensor. The dequantized values themselves
// are checked end to end against transformers by golden_test.cpp (llama-tiny-fp8-ct, -fp8-block,
// -awq, -gptq).
#include "model/quantized_checkpoint.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "model/weight_store.h"

namespace llmserve {
namespace {

using nlohmann::json;
const std::filesystem::path kModels = std::filesystem::path(LLMSERVE_TEST_DATA) / "models";

CheckpointQuantizationConfig read(const json& q) {
  return read_checkpoint_quantization(json{{"quantization_config", q}});
}

std::string refusal(const json& q) {
  try {
    read(q);
  } catch (const Error& e) {
    EXPECT_EQ(e.status().code(), StatusCode::kUnimplemented) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "accepted " << q.dump();
  return "";
}

TEST(CheckpointQuantization, ReadsTheSupportedFormats) {
  EXPECT_EQ(read_checkpoint_quantization(json{{"architectures", {"X"}}}).kind,
            CheckpointQuantization::kNone);
  EXPECT_EQ(read({{"quant_method", "awq"}, {"bits", 4}, {"group_size", 128}, {"version", "gemm"}})
                .group_size,
            128);
  const auto gptq = read({{"quant_method", "gptq"}, {"bits", 4}, {"group_size", -1}});
  EXPECT_EQ(gptq.kind, CheckpointQuantization::kGptq);
  EXPECT_EQ(gptq.group_size, -1);
  const auto block = read({{"quant_method", "fp8"}, {"weight_block_size", {128, 64}}});
  EXPECT_EQ(block.kind, CheckpointQuantization::kFp8Block);
  EXPECT_EQ(block.block_cols, 64);
  EXPECT_EQ(read({{"quant_method", "modelopt"}, {"quant_algo", "FP8"}}).kind,
            CheckpointQuantization::kFp8Channel);
  const json ct = {
      {"quant_method", "compressed-tensors"},
      {"format", "float-quantized"},
      {"config_groups",
       {{"group_0",
         {{"targets", {"Linear"}},
          {"weights", {{"num_bits", 8}, {"type", "float"}, {"strategy", "channel"}}}}}}}};
  EXPECT_EQ(read(ct).kind, CheckpointQuantization::kFp8Channel);
  for (const char* fixture :
       {"llama-tiny-fp8-ct", "llama-tiny-fp8-block", "llama-tiny-awq", "llama-tiny-gptq"}) {
    EXPECT_NE(read_checkpoint_quantization(kModels / fixture).kind, CheckpointQuantization::kNone)
        << fixture;
  }
}

TEST(CheckpointQuantization, RefusesWhatItCannotServeNamingIt) {
  EXPECT_NE(refusal({{"quant_method", "awq"}, {"bits", 8}}).find("8 bits"), std::string::npos);
  EXPECT_NE(refusal({{"quant_method", "awq"}, {"bits", 4}, {"version", "gemv"}}).find("gemv"),
            std::string::npos);
  EXPECT_NE(refusal({{"quant_method", "bitsandbytes"}}).find("bitsandbytes"), std::string::npos);
  EXPECT_NE(refusal({{"quant_method", "fp8"}}).find("weight_block_size"), std::string::npos);
  EXPECT_NE(refusal({{"quant_method", "gptq"}, {"bits", 4}, {"checkpoint_format", "gptq_v2"}})
                .find("gptq_v2"),
            std::string::npos);
  const json int_ct = {
      {"quant_method", "compressed-tensors"},
      {"config_groups", {{"g", {{"weights", {{"num_bits", 4}, {"type", "int"}}}}}}}};
  EXPECT_NE(refusal(int_ct).find("4-bit int"), std::string::npos);
  EXPECT_NE(refusal({{"quant_method", "modelopt"}, {"quant_algo", "NVFP4"}}).find("NVFP4"),
            std::string::npos);
}

TEST(CheckpointQuantization, StoreServesDequantizedWeightsUnderPlainNames) {
  const WeightStore awq = WeightStore::open(kModels / "llama-tiny-awq");
  EXPECT_EQ(awq.quantization().kind, CheckpointQuantization::kAwq);
  const std::string q = "model.layers.0.self_attn.q_proj";
  ASSERT_TRUE(awq.contains(q + ".weight"));
  EXPECT_EQ(awq.info(q + ".weight").dtype, DType::kF32);
  const TensorInfo& packed = awq.info(q + ".qweight");  // [in, out / 8]
  EXPECT_EQ(awq.info(q + ".weight").shape,
            (std::vector<int64_t>{packed.shape[1] * 8, packed.shape[0]}));
  const WeightStore fp8 = WeightStore::open(kModels / "llama-tiny-fp8-ct");
  EXPECT_EQ(fp8.info(q + ".weight").dtype, DType::kF32);  // the F8_E4M3 codes, dequantized
  const std::vector<float> w = fp8.load_f32(q + ".weight", fp8.info(q + ".weight").shape);
  EXPECT_GT(std::abs(w[0]) + std::abs(w[1]) + std::abs(w[2]), 0.0f);
}

}  // namespace
}  // namespace llmserve
