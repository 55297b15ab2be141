#include "model/weight_loader.h"

#include <algorithm>
#include <cstring>

#include "common/half.h"
#include "common/status.h"

namespace llmserve {

namespace {

// fp32 values as `dtype` bytes (F32, F16 or BF16).
std::vector<uint8_t> encode(const std::vector<float>& v, DType dtype) {
  std::vector<uint8_t> out(v.size() * dtype_size(dtype));
  switch (dtype) {
    case DType::kF32: std::memcpy(out.data(), v.data(), out.size()); break;
    case DType::kF16:
    case DType::kBF16: {
      auto* h = reinterpret_cast<uint16_t*>(out.data());
      const bool bf16 = dtype == DType::kBF16;
      for (size_t i = 0; i < v.size(); ++i) h[i] = bf16 ? float_to_bf16(v[i]) : float_to_fp16(v[i]);
      break;
    }
    default: fail(StatusCode::kInternal, "weights cannot be stored as {}", dtype_name(dtype));
  }
  return out;
}

}  // namespace

Tensor WeightLoader::upload(const std::vector<float>& data, std::initializer_list<int64_t> dims) {
  Tensor t = backend_.allocate_tensor(owner_, DType::kF32, dims);
  if (static_cast<size_t>(t.numel()) != data.size()) {
    fail(StatusCode::kInternal, "upload of {} floats into {}", data.size(), t.shape_string());
  }
  backend_.upload(data.data(), t);
  return t;
}

Tensor WeightLoader::upload_weight(const std::vector<float>& data, std::initializer_list<int64_t> dims) {
  Tensor t = backend_.allocate_tensor(owner_, backend_.activation_dtype(), dims);
  if (static_cast<size_t>(t.numel()) != data.size()) {
    fail(StatusCode::kInternal, "upload of {} floats into {}", data.size(), t.shape_string());
  }
  backend_.upload(encode(data, t.dtype).data(), t);
  return t;
}

void WeightLoader::upload_into(const std::string& name, std::span<const int64_t> shape, Tensor dst) {
  const TensorInfo& info = store_.info(name);
  if (info.dtype == dst.dtype &&
      std::equal(info.shape.begin(), info.shape.end(), shape.begin(), shape.end())) {
    backend_.upload(store_.bytes(name).data(), dst);  // stored as the backend wants it: no copy
    return;
  }
  backend_.upload(encode(store_.load_f32(name, shape), dst.dtype).data(), dst);
}

Tensor WeightLoader::load(const std::string& name, std::initializer_list<int64_t> dims) {
  Tensor t = backend_.allocate_tensor(owner_, backend_.activation_dtype(), dims);
  upload_into(name, std::span<const int64_t>(dims.begin(), dims.size()), t);
  return t;
}

Tensor WeightLoader::load_transposed(const std::string& name, int64_t rows, int64_t cols) {
  // Upload as stored, transpose on the backend (on a GPU that is a few ms; on the host it was
  // most of GPT-2's start-up).
  std::vector<Buffer> staging;
  Tensor stored = backend_.allocate_tensor(staging, backend_.activation_dtype(), {rows, cols});
  const int64_t shape[] = {rows, cols};
  upload_into(name, shape, stored);
  Tensor t = backend_.allocate_tensor(owner_, backend_.activation_dtype(), {cols, rows});
  backend_.transpose(stored, t);
  backend_.synchronize();  // before the staging buffer is freed
  return t;
}

Tensor WeightLoader::load_stacked(const std::vector<std::string>& names,
                                  const std::vector<int64_t>& rows, int64_t cols) {
  int64_t total = 0;
  for (int64_t r : rows) total += r;
  Tensor t = backend_.allocate_tensor(owner_, backend_.activation_dtype(), {total, cols});
  int64_t at = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    const int64_t shape[] = {rows[i], cols};
    upload_into(names[i], shape, t.rows(at, rows[i]));
    at += rows[i];
  }
  return t;
}

Tensor WeightLoader::load_concat(const std::vector<std::string>& names, const std::vector<int64_t>& sizes) {
  int64_t total = 0;
  for (int64_t n : sizes) total += n;
  Tensor t = backend_.allocate_tensor(owner_, backend_.activation_dtype(), {total});
  int64_t at = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    const int64_t shape[] = {sizes[i]};
    upload_into(names[i], shape, t.rows(at, sizes[i]));
    at += sizes[i];
  }
  return t;
}

DecoderActivations DecoderWorkspace::sized(Backend& backend, const ModelConfig& c, bool gated_mlp,
                                         int32_t num_tokens, int32_t num_logits) {
  if (num_tokens > token_capacity_ || num_logits > logit_capacity_) {
    token_capacity_ = std::max(num_tokens, token_capacity_);
    logit_capacity_ = std::max({num_logits, logit_capacity_, 1});
    const int64_t t = token_capacity_, l = logit_capacity_, d = c.hidden_size;
    const int64_t qkv = static_cast<int64_t>(c.num_q_heads + 2 * c.num_kv_heads) * c.head_dim;
    const int64_t f = c.intermediate_size;
    // Keep the old buffers alive: a recorded graph may still point at them.
    for (Buffer& b : buffers_) retired_.push_back(std::move(b));
    buffers_.clear();
    DecoderActivations& a = full_;
    const DType act = backend.activation_dtype();
    a.residual = backend.allocate_tensor(buffers_, act, {t, d});
    a.normed = backend.allocate_tensor(buffers_, act, {t, d});
    a.qkv = backend.allocate_tensor(buffers_, act, {t, qkv});
    a.attn = backend.allocate_tensor(buffers_, act, {t, static_cast<int64_t>(c.num_q_heads) * c.head_dim});
    a.sublayer = backend.allocate_tensor(buffers_, act, {t, d});
    a.mlp_up = backend.allocate_tensor(buffers_, act, {t, gated_mlp ? 2 * f : f});
    a.mlp_act = gated_mlp ? backend.allocate_tensor(buffers_, act, {t, f}) : Tensor();
    a.gathered = backend.allocate_tensor(buffers_, act, {l, d});
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
