// Pre-quantized checkpoints dequantized at load: see quantized_checkpoint.h for the formats.
#include "model/quantized_checkpoint.h"

#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "common/half.h"
#include "common/status.h"
#include "model/weight_store.h"

namespace llmserve {
namespace {

using nlohmann::json;

// AWQ's GEMM packing: bits 4i..4i+3 of a word hold column 8c + kAwqOrder[i].
constexpr int kAwqOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};

int32_t int_field(const json& q, const char* key, int32_t fallback) {
  const auto it = q.find(key);
  if (it == q.end() || it->is_null()) return fallback;
  if (!it->is_number_integer())
    fail(StatusCode::kDataLoss, "config.json quantization_config.{} is not an integer", key);
  return it->get<int32_t>();
}

std::string string_field(const json& q, const char* key) {
  const auto it = q.find(key);
  return it != q.end() && it->is_string() ? it->get<std::string>() : std::string();
}

[[noreturn]] void unsupported(const std::string& what) {
  fail(StatusCode::kUnimplemented,
       "this checkpoint's quantization is not supported: {} (supported: fp8 compressed-tensors "
       "or ModelOpt, block-wise fp8, 4-bit AWQ GEMM, 4-bit GPTQ)",
       what);
}

void check_int4(const json& q, const std::string& method, CheckpointQuantizationConfig& c) {
  const int32_t bits = int_field(q, "bits", int_field(q, "w_bit", 4));
  if (bits != 4) unsupported(fmt::format("{} with {} bits", method, bits));
  c.group_size = int_field(q, "group_size", int_field(q, "q_group_size", 128));
  if (c.group_size == 0 || c.group_size < -1)
    fail(StatusCode::kDataLoss, "config.json quantization_config.group_size {}", c.group_size);
}

CheckpointQuantizationConfig compressed_tensors(const json& q) {
  CheckpointQuantizationConfig c;
  c.method = "compressed-tensors";
  const std::string format = string_field(q, "format");
  const auto groups = q.find("config_groups");
  if (groups == q.end() || !groups->is_object() || groups->empty())
    unsupported("compressed-tensors without config_groups");
  for (const auto& [name, group] : groups->items()) {
    const json& w = group.value("weights", json::object());
    if (w.value("type", "") != "float" || w.value("num_bits", 0) != 8) {
      unsupported(fmt::format("compressed-tensors group '{}' with {}-bit {} weights", name,
                              w.value("num_bits", 0), w.value("type", "?")));
    }
    const std::string strategy = w.value("strategy", "");
    if (strategy != "channel" && strategy != "tensor")
      unsupported(fmt::format("compressed-tensors fp8 weights with strategy '{}'", strategy));
  }
  if (!format.empty() && format != "float-quantized" && format != "naive-quantized")
    unsupported(fmt::format("compressed-tensors format '{}'", format));
  c.kind = CheckpointQuantization::kFp8Channel;
  return c;
}

const TensorInfo& expect(const WeightStore& store, const std::string& name, DType dtype,
                         std::initializer_list<int64_t> shape) {
  if (!store.contains(name))
    fail(StatusCode::kDataLoss, "quantized checkpoint '{}': '{}' is missing", store.dir().string(),
         name);
  const TensorInfo& info = store.info(name);
  if (info.dtype != dtype ||
      !std::equal(info.shape.begin(), info.shape.end(), shape.begin(), shape.end())) {
    fail(StatusCode::kDataLoss, "quantized checkpoint: '{}' is {} {}, expected {} {}", name,
         dtype_name(info.dtype), shape_string(info.shape), dtype_name(dtype),
         shape_string(std::vector<int64_t>(shape)));
  }
  return info;
}

// A stored scale tensor of any float dtype as fp32.
std::vector<float> scales_f32(const WeightStore& store, const std::string& name) {
  const TensorInfo& info = store.info(name);
  return store.load_f32(name, info.shape);
}

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

uint32_t word(std::span<const uint8_t> bytes, int64_t i) {
  uint32_t v;
  std::memcpy(&v, bytes.data() + i * 4, 4);
  return v;
}

}  // namespace

CheckpointQuantizationConfig read_checkpoint_quantization(const json& config) {
  const auto it = config.find("quantization_config");
  if (it == config.end() || it->is_null()) return {};
  const json& q = *it;
  if (!q.is_object())
    fail(StatusCode::kDataLoss, "config.json quantization_config is not an object");
  const std::string method = string_field(q, "quant_method");
  CheckpointQuantizationConfig c;
  c.method = method;
  if (method == "compressed-tensors") return compressed_tensors(q);
  if (method == "modelopt") {
    const std::string algo = string_field(q, "quant_algo");
    if (algo != "FP8") unsupported(fmt::format("ModelOpt quant_algo '{}'", algo));
    c.kind = CheckpointQuantization::kFp8Channel;
  } else if (method == "fp8") {
    const auto block = q.find("weight_block_size");
    if (block == q.end() || block->is_null()) {
      unsupported(
          "quant_method fp8 without weight_block_size (an fp16 checkpoint quantized at "
          "load: use --quantization fp8 on the unquantized model)");
    }
    if (!block->is_array() || block->size() != 2 || !(*block)[0].is_number_integer() ||
        !(*block)[1].is_number_integer() || (*block)[0].get<int32_t>() <= 0 ||
        (*block)[1].get<int32_t>() <= 0) {
      fail(StatusCode::kDataLoss,
           "config.json quantization_config.weight_block_size must be two "
           "positive integers");
    }
    c.kind = CheckpointQuantization::kFp8Block;
    c.block_rows = (*block)[0].get<int32_t>();
    c.block_cols = (*block)[1].get<int32_t>();
  } else if (method == "awq") {
    const std::string version = string_field(q, "version");
    if (!version.empty() && version != "gemm" && version != "GEMM")
      unsupported(fmt::format("AWQ version '{}' (only the GEMM layout)", version));
    if (q.contains("zero_point") && q["zero_point"].is_boolean() && !q["zero_point"].get<bool>())
      unsupported("AWQ without zero points");
    check_int4(q, method, c);
    if (c.group_size < 0) unsupported("AWQ without groups");
    c.kind = CheckpointQuantization::kAwq;
  } else if (method == "gptq") {
    const std::string format = string_field(q, "checkpoint_format");
    if (!format.empty() && format != "gptq")
      unsupported(fmt::format("GPTQ checkpoint_format '{}' (only gptq, v1 zero points)", format));
    check_int4(q, method, c);
    c.kind = CheckpointQuantization::kGptq;
  } else {
    unsupported(fmt::format("quant_method '{}'", method));
  }
  return c;
}

CheckpointQuantizationConfig read_checkpoint_quantization(const std::filesystem::path& dir) {
  std::ifstream in(dir / "config.json");
  if (!in) return {};
  const json config = json::parse(in, nullptr, false);
  if (config.is_discarded() || !config.is_object()) return {};  // load_model_config says why
  return read_checkpoint_quantization(config);
}

const char* checkpoint_quantization_name(CheckpointQuantization kind) {
  switch (kind) {
    case CheckpointQuantization::kFp8Channel:
      return "fp8 (per-channel / per-tensor scales)";
    case CheckpointQuantization::kFp8Block:
      return "fp8 (block-wise scales)";
    case CheckpointQuantization::kAwq:
      return "AWQ 4-bit";
    case CheckpointQuantization::kGptq:
      return "GPTQ 4-bit";
    default:
      return "none";
  }
}

std::vector<DequantizedWeight> find_quantized_weights(const CheckpointQuantizationConfig& c,
                                                      const WeightStore& store) {
  std::vector<DequantizedWeight> out;
  const auto ends_with = [](const std::string& s, const std::string& suffix) {
    return s.size() > suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  for (const std::string& name : store.names()) {
    if (c.is_fp8()) {
      if (!ends_with(name, ".weight") || store.info(name).dtype != DType::kF8E4M3) continue;
      const std::string prefix = name.substr(0, name.size() - 7);
      const TensorInfo& w = store.info(name);
      if (w.shape.size() != 2)
        fail(StatusCode::kDataLoss, "quantized checkpoint: '{}' is not 2-D", name);
      const int64_t rows = w.shape[0], cols = w.shape[1];
      if (c.kind == CheckpointQuantization::kFp8Block) {
        expect(store, prefix + ".weight_scale_inv", store.info(prefix + ".weight_scale_inv").dtype,
               {ceil_div(rows, c.block_rows), ceil_div(cols, c.block_cols)});
      } else {
        const std::string s = prefix + ".weight_scale";
        if (!store.contains(s))
          fail(StatusCode::kDataLoss, "quantized checkpoint: '{}' is missing", s);
        const int64_t n = store.info(s).numel();
        if (n != 1 && n != rows) {
          fail(StatusCode::kDataLoss, "quantized checkpoint: '{}' has {} values for {} rows", s, n,
               rows);
        }
      }
      out.push_back({name, prefix, rows, cols});
    } else {
      if (!ends_with(name, ".qweight")) continue;
      const std::string prefix = name.substr(0, name.size() - 8);
      const TensorInfo& q = store.info(name);
      if (q.shape.size() != 2 || q.dtype != DType::kI32)
        fail(StatusCode::kDataLoss, "quantized checkpoint: '{}' is not a 2-D I32 tensor", name);
      const bool awq = c.kind == CheckpointQuantization::kAwq;
      const int64_t in = awq ? q.shape[0] : q.shape[0] * 8;
      const int64_t outs = awq ? q.shape[1] * 8 : q.shape[1];
      const int64_t group = c.group_size > 0 ? c.group_size : in;
      if (in % group != 0) {
        fail(StatusCode::kDataLoss, "quantized checkpoint: '{}' has {} inputs, not groups of {}",
             name, in, group);
      }
      expect(store, prefix + ".qzeros", DType::kI32, {in / group, outs / 8});
      expect(store, prefix + ".scales", DType::kF16, {in / group, outs});
      if (!awq && store.contains(prefix + ".g_idx"))
        expect(store, prefix + ".g_idx", DType::kI32, {in});
      if (store.contains(prefix + ".weight")) {
        fail(StatusCode::kDataLoss, "quantized checkpoint: '{}' has both qweight and weight",
             prefix);
      }
      out.push_back({prefix + ".weight", prefix, outs, in});
    }
  }
  return out;
}

std::vector<float> dequantize_weight(const CheckpointQuantizationConfig& c,
                                     const WeightStore& store, const DequantizedWeight& w,
                                     std::span<const uint8_t> codes) {
  const int64_t rows = w.out, cols = w.in;
  std::vector<float> out(static_cast<size_t>(rows * cols));
  const int64_t code_bytes = c.is_fp8() ? rows * cols : rows * cols / 2;
  if (static_cast<int64_t>(codes.size()) != code_bytes) {
    fail(StatusCode::kDataLoss, "quantized checkpoint: '{}' has {} bytes of codes, expected {}",
         w.prefix, codes.size(), code_bytes);
  }
  if (c.is_fp8()) {
    const std::span<const uint8_t> q = codes;
    if (c.kind == CheckpointQuantization::kFp8Block) {
      const std::vector<float> s = scales_f32(store, w.prefix + ".weight_scale_inv");
      const int64_t sc = ceil_div(cols, c.block_cols);
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t k = 0; k < cols; ++k) {
          out[static_cast<size_t>(r * cols + k)] =
              e4m3_to_float(q[static_cast<size_t>(r * cols + k)]) *
              s[static_cast<size_t>((r / c.block_rows) * sc + k / c.block_cols)];
        }
      }
    } else {
      const std::vector<float> s = scales_f32(store, w.prefix + ".weight_scale");
      for (int64_t r = 0; r < rows; ++r) {
        const float scale = s.size() == 1 ? s[0] : s[static_cast<size_t>(r)];
        for (int64_t k = 0; k < cols; ++k) {
          out[static_cast<size_t>(r * cols + k)] =
              e4m3_to_float(q[static_cast<size_t>(r * cols + k)]) * scale;
        }
      }
    }
    return out;
  }
  const bool awq = c.kind == CheckpointQuantization::kAwq;
  const int64_t group = c.group_size > 0 ? c.group_size : cols;
  const std::span<const uint8_t> qw = codes;
  const std::span<const uint8_t> qz = store.bytes(w.prefix + ".qzeros");
  const std::vector<float> scales = store.load_f32(w.prefix + ".scales", {cols / group, rows});
  std::vector<int32_t> g_idx(static_cast<size_t>(cols));
  for (int64_t i = 0; i < cols; ++i)
    g_idx[static_cast<size_t>(i)] = static_cast<int32_t>(i / group);
  if (!awq && store.contains(w.prefix + ".g_idx")) {
    const std::span<const uint8_t> g = store.bytes(w.prefix + ".g_idx");
    for (int64_t i = 0; i < cols; ++i) {
      const auto v = static_cast<int32_t>(word(g, i));
      if (v < 0 || v >= cols / group) {
        fail(StatusCode::kDataLoss,
             "quantized checkpoint: '{}.g_idx'[{}] = {} is not a group of {}", w.prefix, i, v,
             cols / group);
      }
      g_idx[static_cast<size_t>(i)] = v;
    }
  }
  const int64_t zero_words = rows / 8;  // qzeros: [groups, out / 8], packed along out
  const auto zero_of = [&](int64_t g, int64_t o) -> int32_t {
    const uint32_t z = word(qz, g * zero_words + o / 8);
    if (awq) {
      for (int i = 0; i < 8; ++i) {
        if (kAwqOrder[i] == o % 8) return static_cast<int32_t>((z >> (4 * i)) & 0xF);
      }
    }
    return static_cast<int32_t>((z >> (4 * (o % 8))) & 0xF) + 1;  // GPTQ v1: stored minus one
  };
  for (int64_t i = 0; i < cols; ++i) {
    const int64_t g = g_idx[static_cast<size_t>(i)];
    for (int64_t o = 0; o < rows; ++o) {
      int32_t q;
      if (awq) {  // qweight [in, out / 8]
        const uint32_t v = word(qw, i * (rows / 8) + o / 8);
        int nibble = 0;
        while (kAwqOrder[nibble] != o % 8) ++nibble;
        q = static_cast<int32_t>((v >> (4 * nibble)) & 0xF);
      } else {  // qweight [in / 8, out]
        q = static_cast<int32_t>((word(qw, (i / 8) * rows + o) >> (4 * (i % 8))) & 0xF);
      }
      out[static_cast<size_t>(o * cols + i)] =
          static_cast<float>(q - zero_of(g, o)) * scales[static_cast<size_t>(g * rows + o)];
    }
  }
  return out;
}

}  // namespace llmserve
