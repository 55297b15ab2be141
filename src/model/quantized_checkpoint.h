// Pre-quantized Hugging Face checkpoints: config.json's `quantization_config` read once, and each
// quantized linear layer's weight presented under the name an unquantized checkpoint gives it
// (`<prefix>.weight`, F32 [out, in]), dequantized from the stored codes, so every architecture
// loads them unchanged (WeightStore serves these tensors beside the stored ones).
//
// Formats (the tensors of one linear layer `<prefix>`):
//   fp8, compressed-tensors   quant_method "compressed-tensors", format "float-quantized" (or
//                             "naive-quantized" with 8-bit float weights): `.weight` F8_E4M3
//                             [out, in], `.weight_scale` [out, 1] (strategy channel) or [1]
//                             (tensor), any float dtype; `.input_scale` (static activation scale)
//                             is read by nobody: activations are quantized per token at run time.
//                             Also NVIDIA ModelOpt fp8 (quant_method "modelopt", quant_algo FP8),
//                             stored the same way with a per-tensor `.weight_scale`.
//   fp8, block-wise           quant_method "fp8", weight_block_size [Br, Bc]: `.weight` F8_E4M3,
//                             `.weight_scale_inv` [ceil(out / Br), ceil(in / Bc)] — w = q * s of
//                             the block (the name notwithstanding, a multiplier).
//   AWQ (GEMM)                quant_method "awq", bits 4, version "gemm": `.qweight` I32
//                             [in, out / 8] and `.qzeros` I32 [in / g, out / 8], eight 4-bit values
//                             a word, value of column 8c + kAwqOrder[i] in bits 4i..4i+3;
//                             `.scales` F16 [in / g, out]; w[o, i] = (q - z) * s of i's group.
//   GPTQ                      quant_method "gptq", bits 4: `.qweight` I32 [in / 8, out], input
//                             8r + j in bits 4j.. of row r; `.qzeros` I32 [in / g, out / 8] packed
//                             along out, stored minus one (GPTQ v1 checkpoints: zero = stored + 1);
//                             `.scales` F16 [in / g, out]; `.g_idx` I32 [in] each input's group
//                             (act-order: not monotonic); without g_idx, input i is in group i / g.
// Anything else with a quantization_config (other bits, other methods, other layouts) is refused
// with kUnimplemented naming what was found. Dequantization is exact in fp32 (codes times scales);
// serving still computes in the backend's dtype (or fp8 again with --quantization fp8).
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace llmserve {

class WeightStore;

enum class CheckpointQuantization { kNone, kFp8Channel, kFp8Block, kAwq, kGptq };

struct CheckpointQuantizationConfig {
  CheckpointQuantization kind = CheckpointQuantization::kNone;
  int32_t group_size = 0;                  // AWQ / GPTQ (-1 in GPTQ: one group)
  int32_t block_rows = 0, block_cols = 0;  // fp8 block-wise
  std::string method;                      // quant_method as written, for messages

  bool is_fp8() const {
    return kind == CheckpointQuantization::kFp8Channel || kind == CheckpointQuantization::kFp8Block;
  }
};

// From a parsed config.json (no quantization_config: kNone). Throws Error(kUnimplemented) naming
// the unsupported setting, Error(kDataLoss) for a malformed one.
CheckpointQuantizationConfig read_checkpoint_quantization(const nlohmann::json& config);
// The same from `dir`/config.json (kNone when there is none).
CheckpointQuantizationConfig read_checkpoint_quantization(const std::filesystem::path& dir);
const char* checkpoint_quantization_name(CheckpointQuantization kind);

// One dequantized weight the store can serve: its name (`<prefix>.weight`), shape [out, in], and
// the stored tensors it comes from.
struct DequantizedWeight {
  std::string name;
  std::string prefix;
  int64_t out = 0, in = 0;
};

// The quantized linear layers among the stored tensor `names` (their `.weight` names and shapes,
// from the headers only). Throws Error(kDataLoss) naming a tensor whose companions are missing or
// whose shapes disagree.
std::vector<DequantizedWeight> find_quantized_weights(const CheckpointQuantizationConfig& config,
                                                      const WeightStore& store);

// The weight's values, F32 [out, in] row-major, from its stored codes (the fp8 `.weight` or the
// `.qweight` bytes; passed in because for fp8 the store's own `.weight` is this result) and its
// other tensors, read from `store`.
std::vector<float> dequantize_weight(const CheckpointQuantizationConfig& config,
                                     const WeightStore& store, const DequantizedWeight& w,
                                     std::span<const uint8_t> codes);

}  // namespace llmserve
