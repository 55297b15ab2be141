// WeightLoader: reads checkpoint tensors (any of F32/F16/BF16), re-lays them out for the backend
// (transpose, fuse by concatenation) and uploads them. The uploaded buffers belong to the model.
#pragma once

#include <initializer_list>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/model_config.h"
#include "model/weight_store.h"

namespace llmserve {

class WeightLoader {
 public:
  WeightLoader(const WeightStore& store, Backend& backend, std::vector<Buffer>& owner)
      : store_(store), backend_(backend), owner_(owner) {}

  // The tensor as stored, shape checked, in the backend's activation dtype (converted unless the
  // checkpoint stores that dtype already, in which case its bytes are uploaded as they are).
  Tensor load(const std::string& name, std::initializer_list<int64_t> dims);
  // A tensor stored [rows, cols] (e.g. GPT-2 Conv1D [in, out]) uploaded as [cols, rows].
  Tensor load_transposed(const std::string& name, int64_t rows, int64_t cols);
  // Tensors stored [rows_i, cols] stacked into one [sum rows_i, cols] (QKV, gate/up fusion).
  Tensor load_stacked(const std::vector<std::string>& names, const std::vector<int64_t>& rows, int64_t cols);
  // 1-D tensors concatenated (fused biases).
  Tensor load_concat(const std::vector<std::string>& names, const std::vector<int64_t>& sizes);
  // fp32 values uploaded as fp32 (tables the kernels read in fp32, e.g. RoPE's cos/sin).
  Tensor upload(const std::vector<float>& data, std::initializer_list<int64_t> dims);
  // fp32 values uploaded in the backend's activation dtype.
  Tensor upload_weight(const std::vector<float>& data, std::initializer_list<int64_t> dims);

 private:
  void upload_into(const std::string& name, std::span<const int64_t> shape, Tensor dst);

  const WeightStore& store_;
  Backend& backend_;
  std::vector<Buffer>& owner_;
};

// Activation tensors of one decoder forward step.
struct DecoderActivations {
  Tensor residual;   // [T, D] the residual stream
  Tensor normed;     // [T, D] input of the next sublayer
  Tensor qkv;        // [T, (Hq + 2Hk) * d]
  Tensor attn;       // [T, Hq * d]
  Tensor sublayer;   // [T, D] output of attention / MLP before the residual add
  Tensor mlp_up;     // [T, F] (GPT-2) or [T, 2F] (gated MLP)
  Tensor mlp_act;    // [T, F] (gated MLP only)
  Tensor gathered;   // [L, D]
  Tensor logits;     // [L, V]
};

// Owns the activation buffers, grown on demand to the largest batch seen (Model::reserve sizes
// them up front so that growth is the exception).
class DecoderWorkspace {
 public:
  // Ensures capacity for `num_tokens` tokens and `num_logits` logit rows; returns views of the
  // right sizes for this step.
  DecoderActivations sized(Backend& backend, const ModelConfig& c, bool gated_mlp,
                           int32_t num_tokens, int32_t num_logits);

 private:
  DecoderActivations full_;
  std::vector<Buffer> buffers_;
  std::vector<Buffer> retired_;  // outgrown buffers; graphs recorded earlier still use them
  int32_t token_capacity_ = 0;
  int32_t logit_capacity_ = 0;
};

}  // namespace llmserve
