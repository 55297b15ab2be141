// WeightLoader: reads checkpoint tensors (any of F32/F16/BF16), re-lays them out for the backend
// (transpose, fuse by concatenation), quantizes the linear layers when asked (int8 weight-only,
// fp8, int4 weight-only; the lm_head in int8 weight-only; model/quantize.h) and uploads them. The
// uploaded buffers belong to the model.
#pragma once

#include <functional>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "model/model.h"
#include "model/model_config.h"
#include "model/weight_store.h"

namespace llmserve {

// Which dimension of an uploaded weight the ranks of a tensor-parallel group split between them:
// kRows = output features (column-parallel layers: QKV, up/gate, and their biases), kCols = input
// features (row-parallel layers: the attention output and down projections). Rank r of n takes
// the r-th of n equal parts; alone (n = 1) every split is the whole tensor.
enum class Split { kNone, kRows, kCols };

// The weight of a linear layer, [out, in], told apart by w.dtype: the backend's weight dtype
// (scales empty; Backend::weight_dtype); I8 under int8 weight-only quantization, with one F32 scale
// per output row (w[n, k] ~ q[n, k] * scales[n]); F8E4M3 under fp8, with one F32 scale per output
// row (w[n, k] ~ e4m3(q[n, k]) * scales[n]); or I32 [out, in / 8] under int4-wo, packed 4-bit codes
// with (scale, zero) pairs [out, 2 * in / group] in the weight dtype (model/quantize.h).
struct LinearWeight {
  Tensor w;
  Tensor scales;  // F32 [out], or the int4 pairs; no data unless quantized
  bool is_quantized() const { return scales.data != nullptr; }
  bool is_fp8() const { return w.dtype == DType::kF8E4M3; }
  bool is_int4() const { return w.dtype == DType::kI32; }
};

// A linear layer's input: x [T, K] in the activation dtype and, for fp8 weights, `fp8`: views
// [T, K] / [T] of the workspace for x's per-token e4m3 codes. `is_quantized`: the op that produced
// x wrote them already (Backend::add_rms_norm_fp8, silu_mul_fp8); otherwise linear() quantizes x.
struct LinearInput {
  Tensor x;
  Fp8Rows fp8;
  bool is_quantized = false;
};

// out = x @ w^T (+ bias): Backend::matmul, matmul_q8, matmul_int4, or quantize_fp8_rows +
// matmul_fp8.
void linear(Backend& backend, const LinearInput& in, const LinearWeight& w, Tensor bias,
            Tensor out);
// out = gelu_tanh(x @ w^T + bias).
void linear_gelu(Backend& backend, const LinearInput& in, const LinearWeight& w, Tensor bias,
                 Tensor out);

// Loads a model's weights onto a backend, from one of two sources:
// - a Hugging Face checkpoint: each weight is read, fused, sliced for this rank, converted to the
//   backend's dtype and quantized here; with LoadOptions::recorder set, every finished weight is
//   handed to it under its key (`llmserve build` writes them into an engine);
// - a built engine's rank file (LoadOptions::engine_source_tensors set): the same calls look their
//   key up and upload the stored bytes as they are.
// Keys: a tensor's checkpoint name (load, load_transposed), the names joined by '+' (load_stacked,
// load_concat); a quantized linear weight stores its codes under the key and its scales under
// key + ".scales".
class WeightLoader {
 public:
  WeightLoader(const WeightStore& store, BackendMemory& backend, std::vector<Buffer>& owner,
               ModelShard shard = {}, const LoadOptions& options = {});

  // Whether the checkpoint has tensor `name` (for a built engine: whether its checkpoint had).
  bool contains(const std::string& name) const;

  // A linear layer's weight: what `load` (one of the loads below) returns, kept as it is without
  // quantization; with int8-wo, fp8 or int4-wo, loaded into a staging buffer (this rank's slice
  // already, in fp32), read back, quantized (model/quantize.h) and uploaded
  // as codes + scales. int4 groups are kInt4DefaultGroup columns, or a pre-quantized AWQ/GPTQ
  // checkpoint's own group size (its codes are then found again where a group's span 0..15).
  LinearWeight linear(const std::function<Tensor()>& load);
  // The same with quantization `q` (not kNone) whatever the loader's, kept under `key` (recorded,
  // and looked up in an engine) in place of the key of what `load` reads: the lm_head in int8-wo
  // (LoadOptions::quantize_lm_head), a tied one made from the embeddings.
  LinearWeight linear_as(Quantization q, const std::string& key,
                         const std::function<Tensor()>& load);
  // Whether the lm_head is loaded through linear_as in int8-wo (LoadOptions::quantize_lm_head).
  bool is_lm_head_quantized() const { return quantize_lm_head_; }

  // The tensor as stored, shape checked, in the backend's dtype for it (stored_dtype: weight dtype
  // for 2-D tensors, activation dtype for 1-D ones; converted unless the checkpoint stores that
  // dtype already, in which case its bytes are uploaded as they are);
  // this rank's part of it under `split` (with `sections` > 1, the split dimension is that many
  // equal blocks split one by one, e.g. GPT-2's fused Q|K|V bias).
  Tensor load(const std::string& name, std::initializer_list<int64_t> dims,
              Split split = Split::kNone, int32_t sections = 1);
  // A tensor stored [rows, cols] (e.g. GPT-2 Conv1D [in, out]) uploaded as [cols, rows]. `split`
  // names a dimension of the uploaded tensor; with `sections` > 1 its rows are that many equal
  // blocks split one by one (GPT-2's fused Q|K|V).
  Tensor load_transposed(const std::string& name, int64_t rows, int64_t cols,
                         Split split = Split::kNone, int32_t sections = 1);
  // Tensors stored [rows_i, cols] stacked into one [sum rows_i, cols] (QKV, gate/up fusion);
  // kRows splits each part's rows.
  Tensor load_stacked(const std::vector<std::string>& names, const std::vector<int64_t>& rows,
                      int64_t cols, Split split = Split::kNone);
  // One stored tensor [sum rows_i, cols] made of row blocks rows_0, rows_1, ... (Phi-3's fused
  // qkv_proj: Q, K and V rows); kRows splits each block's rows, as load_stacked splits its parts.
  Tensor load_row_blocks(const std::string& name, const std::vector<int64_t>& rows, int64_t cols,
                         Split split = Split::kNone);
  // A MoE layer's experts stacked into one [E * R, C'] tensor, expert e's [R, C'] block at rows
  // e * R (R = the sum of this rank's `rows`; Backend's MoeExperts layout): from `fused` when the
  // checkpoint has it — transformers 5's experts.gate_up_proj [E, sum rows, C] / down_proj — else
  // from each expert's tensors `names` ([rows_i, C] each; "{e}" in a name stands for the expert's
  // index), stacked part after part. kRows splits each part's rows, kCols the columns (C' = this
  // rank's part of C). Key: `fused`, or the names joined by '+' with "{e}" left in.
  Tensor load_experts(const std::string& fused, const std::vector<std::string>& names,
                      int64_t num_experts, const std::vector<int64_t>& rows, int64_t cols,
                      Split split);
  // 1-D tensors concatenated (fused biases); kRows splits each part.
  Tensor load_concat(const std::vector<std::string>& names, const std::vector<int64_t>& sizes,
                     Split split = Split::kNone);
  // fp32 values uploaded as fp32 (tables the kernels read in fp32, e.g. RoPE's cos/sin). Computed
  // at every load, never stored in an engine.
  Tensor upload(const std::vector<float>& data, std::initializer_list<int64_t> dims);
  // fp32 values uploaded in the backend's activation dtype.
  Tensor upload_weight(const std::vector<float>& data, std::initializer_list<int64_t> dims);

 private:
  struct Range {
    int64_t begin = 0, count = 0;
  };
  bool from_engine() const { return engine_source_tensors_ != nullptr; }
  // What a loaded tensor of `ndim` dimensions is held in: 2-D ones (linear layers, embedding
  // tables, lm_head) in the backend's weight dtype, 1-D ones (norms, biases) in its activation
  // dtype. The same on every backend but the CPU with 16-bit weights.
  DType stored_dtype(size_t ndim) const {
    if (ndim == 2) return stage_f32_ ? DType::kF32 : backend_.weight_dtype();
    return backend_.activation_dtype();
  }
  // This rank's range of `n` (all of it alone).
  Range part(int64_t n) const;
  // The int4 group size asked of quantize_weight (a pre-quantized checkpoint's own, or the
  // default).
  int32_t int4_group() const;
  // Uploads the stored tensor `name` (checked against `shape`: [R] or [R, C]) into dst; with
  // ranges, only those rows (dim 0) or columns (dim 1), concatenated in order.
  void upload_into(const std::string& name, std::span<const int64_t> shape, Tensor dst, int dim = 0,
                   const std::vector<Range>& ranges = {});
  // Every load's one way in: from an engine, the stored tensor `key` (checked against `dims` and
  // stored_dtype) uploaded as it is; from a checkpoint, `make()` builds it and the
  // recorder sees it. Inside linear() over an engine with quantized weights, only notes key and
  // dims (linear() uploads the codes and scales) and returns an empty tensor.
  Tensor prepared(const std::string& key, std::vector<int64_t> dims,
                  const std::function<Tensor()>& make);
  Tensor upload_stored(const std::string& key, std::span<const int64_t> dims, DType dtype);
  // The engine tensor `name` as it lies in its file's mapping, where the backend reads host
  // memory (BackendMemory::reads_host_memory) and the bytes are 64-byte aligned (engines are
  // written so; Hugging Face checkpoints rarely are, and load converted); else nullopt. The
  // caller has checked its dtype and shape.
  std::optional<Tensor> in_place(const std::string& name);
  // linear() and linear_as(): `load` under quantization `q`, kept under `key` (empty: the load's
  // own key).
  LinearWeight load_linear(Quantization q, const std::string& key,
                           const std::function<Tensor()>& load);
  // The uploads of load_linear from an engine: the codes and scales stored under linear_key_.
  LinearWeight upload_stored_linear(Quantization q);
  void record(const std::string& key, const Tensor& t);

  const WeightStore& store_;
  BackendMemory& backend_;      // loading needs the memory half only
  std::vector<Buffer>* owner_;  // where loads allocate (linear() points it at staging for a while)
  ModelShard shard_;
  Quantization quantization_;
  bool quantize_lm_head_;
  WeightRecorder* recorder_;
  const std::vector<std::string>* engine_source_tensors_;  // sorted; set when loading an engine
  // linear()'s view of the load it wraps, and the quantization it loads it with.
  bool in_linear_ = false;
  Quantization linear_quantization_ = Quantization::kNone;
  // While linear() loads a weight it quantizes: staged in fp32, so the quantizer sees the
  // checkpoint's values unrounded (and a pre-quantized int4 checkpoint's grid exactly).
  bool stage_f32_ = false;
  std::string linear_key_;
  std::vector<int64_t> linear_dims_;
  // Host buffers reused from load to load: upload_into's dtype conversion and linear()'s fp32
  // read-back.
  std::vector<uint8_t> convert_scratch_;
  std::vector<float> staged_scratch_;
};

// What a decoder's activation buffers must hold besides the common ones.
struct WorkspaceLayout {
  bool gated_mlp = false;   // [T, 2F] up projection and a [T, F] activation (SwiGLU)
  bool fp8_inputs = false;  // per-token e4m3 codes of linear inputs (fp8 weights)
  // MoE models (ModelConfig::moe): the router's columns (E, or E + 1 with a shared expert's gate),
  // whether some layer is a dense MLP of intermediate_size, and whether the backend reads
  // MoeScratch (Backend::moe_uses_scratch).
  int32_t router_cols = 0;
  bool has_dense_mlp = true;
  bool moe_scratch = false;
};

// Activation tensors of one decoder forward step.
struct DecoderActivations {
  Tensor residual;  // [T, D] the residual stream
  Tensor normed;    // [T, D] input of the next sublayer
  Tensor qkv;       // [T, (Hq + 2Hk) * d]
  Tensor attn;      // [T, Hq * d]
  Tensor sublayer;  // [T, D] output of attention / MLP before the residual add
  Tensor mlp_up;    // [T, F] (GPT-2) or [T, 2F] (gated MLP)
  Tensor mlp_act;   // [T, F] (gated MLP only)
  Tensor gathered;  // [L, D]
  Tensor logits;    // [L, V]
  Fp8Rows fp8;      // [T, max(D, Hq * d, F)] codes and [T] scales (fp8_inputs only)
  // MoE layers only (router_cols > 0): router logits F32 [T, C], each token's k experts I32 [T, k]
  // and weights F32 [T, k], the shared expert's output [T, D] and moe_experts' scratch for T * k
  // rows.
  Tensor router_logits, expert_ids, expert_weights, shared_out;
  MoeScratch moe;

  // x [T, K] as a linear layer's input, with this step's fp8 code views sized to it (empty
  // without fp8_inputs); `is_quantized` as in LinearInput.
  LinearInput input(Tensor x, bool is_quantized = false) const;
};

// Owns the activation buffers, grown on demand to the largest batch seen (Model::reserve sizes
// them up front so that growth is the exception).
class DecoderWorkspace {
 public:
  // Ensures capacity for `num_tokens` tokens and `num_logits` logit rows; returns views of the
  // right sizes for this step.
  DecoderActivations sized(Backend& backend, const ModelConfig& c, const WorkspaceLayout& layout,
                           int32_t num_tokens, int32_t num_logits);

 private:
  DecoderActivations full_;
  std::vector<Buffer> buffers_;
  std::vector<Buffer> retired_;  // outgrown buffers; graphs recorded earlier still use them
  int32_t token_capacity_ = 0;
  int32_t logit_capacity_ = 0;
};

}  // namespace llmserve
