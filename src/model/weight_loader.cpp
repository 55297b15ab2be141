#include "model/weight_loader.h"

#include <algorithm>

#include "common/status.h"

namespace llmserve {

Tensor WeightLoader::upload(const std::vector<float>& data, std::initializer_list<int64_t> dims) {
  Tensor t = backend_.allocate_tensor(owner_, DType::kF32, dims);
  if (static_cast<size_t>(t.numel()) != data.size()) {
    fail(StatusCode::kInternal, "upload of {} floats into {}", data.size(), t.shape_string());
  }
  backend_.upload(data.data(), t);
  return t;
}

Tensor WeightLoader::load(const std::string& name, std::initializer_list<int64_t> dims) {
  return upload(store_.load_f32(name, std::span<const int64_t>(dims.begin(), dims.size())), dims);
}

Tensor WeightLoader::load_transposed(const std::string& name, int64_t rows, int64_t cols) {
  auto src = store_.load_f32(name, {rows, cols});
  std::vector<float> dst(src.size());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) dst[static_cast<size_t>(c * rows + r)] = src[static_cast<size_t>(r * cols + c)];
  }
  return upload(dst, {cols, rows});
}

Tensor WeightLoader::load_stacked(const std::vector<std::string>& names,
                                  const std::vector<int64_t>& rows, int64_t cols) {
  std::vector<float> all;
  int64_t total = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    auto part = store_.load_f32(names[i], {rows[i], cols});
    all.insert(all.end(), part.begin(), part.end());
    total += rows[i];
  }
  return upload(all, {total, cols});
}

Tensor WeightLoader::load_concat(const std::vector<std::string>& names, const std::vector<int64_t>& sizes) {
  std::vector<float> all;
  int64_t total = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    auto part = store_.load_f32(names[i], {sizes[i]});
    all.insert(all.end(), part.begin(), part.end());
    total += sizes[i];
  }
  return upload(all, {total});
}

DecoderActivations DecoderWorkspace::sized(Backend& backend, const ModelConfig& c, bool gated_mlp,
                                         int32_t num_tokens, int32_t num_logits) {
  if (num_tokens > token_capacity_ || num_logits > logit_capacity_) {
    token_capacity_ = std::max(num_tokens, token_capacity_);
    logit_capacity_ = std::max({num_logits, logit_capacity_, 1});
    const int64_t t = token_capacity_, l = logit_capacity_, d = c.hidden_size;
    const int64_t qkv = static_cast<int64_t>(c.num_q_heads + 2 * c.num_kv_heads) * c.head_dim;
    const int64_t f = c.intermediate_size;
    buffers_.clear();
    DecoderActivations& a = full_;
    a.residual = backend.allocate_tensor(buffers_, DType::kF32, {t, d});
    a.normed = backend.allocate_tensor(buffers_, DType::kF32, {t, d});
    a.qkv = backend.allocate_tensor(buffers_, DType::kF32, {t, qkv});
    a.attn = backend.allocate_tensor(buffers_, DType::kF32, {t, static_cast<int64_t>(c.num_q_heads) * c.head_dim});
    a.sublayer = backend.allocate_tensor(buffers_, DType::kF32, {t, d});
    a.mlp_up = backend.allocate_tensor(buffers_, DType::kF32, {t, gated_mlp ? 2 * f : f});
    a.mlp_act = gated_mlp ? backend.allocate_tensor(buffers_, DType::kF32, {t, f}) : Tensor();
    a.gathered = backend.allocate_tensor(buffers_, DType::kF32, {l, d});
    a.logits = backend.allocate_tensor(buffers_, DType::kF32, {l, c.vocab_size});
  }
  const DecoderActivations& a = full_;
  DecoderActivations w;
  w.residual = a.residual.rows(0, num_tokens);
  w.normed = a.normed.rows(0, num_tokens);
  w.qkv = a.qkv.rows(0, num_tokens);
  w.attn = a.attn.rows(0, num_tokens);
  w.sublayer = a.sublayer.rows(0, num_tokens);
  w.mlp_up = a.mlp_up.rows(0, num_tokens);
  w.mlp_act = a.mlp_act.data != nullptr ? a.mlp_act.rows(0, num_tokens) : Tensor();
  w.gathered = a.gathered.rows(0, num_logits);
  w.logits = a.logits.rows(0, num_logits);
  return w;
}

}  // namespace llmserve
