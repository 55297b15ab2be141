// Backend: the op set every architecture is written against, and the memory it runs in.
//
// An architecture (src/model/arch/) calls these ops on Tensors the backend allocated; it never
// touches memory directly, so the same code runs on the CPU reference backend and on CUDA.
// Shapes: T = tokens in the flat batch, D = hidden size, Hq/Hk = query/KV heads, d = head dim,
// L = rows whose logits are wanted. All activations are row-major; weights are [out, in]
// (PyTorch Linear layout) whatever the checkpoint stored.
//
// Fused ops (add + norm, rope + KV write) are ops too, with a default composition of the plain
// ones, so a backend only overrides what it can do faster.
//
// Thread-safety: a backend is used by one thread (the engine thread) at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backend/forward_batch.h"
#include "backend/kv_cache.h"
#include "backend/row_sampling.h"
#include "backend/tensor.h"

namespace llmserve {

// An activation [T, K] quantized per row (per token) to fp8 e4m3: x[t, k] ~ e4m3(q[t, k]) *
// scales[t].
struct Fp8Rows {
  Tensor q;       // F8E4M3 [T, K]
  Tensor scales;  // F32 [T]
};

// What Backend::fused_linear does around out = x' @ w^T (+ bias), in a decode step of a pre-norm
// decoder (the ops it replaces then need no kernel of their own):
//   norm_w given: x' = rms_norm(x, norm_w, norm_eps) (x [T, K]);
//   silu_mul:     x' = silu(x[:, :K]) * x[:, K:] (x [T, 2K]);
//   otherwise:    x' = x;
//   accumulate:   out += the product, rounded to out's dtype first (the residual add), else
//                 out = the product.
struct LinearFusion {
  Tensor norm_w{};
  float norm_eps = 0.0f;
  bool silu_mul = false;
  bool accumulate = false;
};

// The shape of one attention layer over a fused QKV activation [T, Hq + 2*Hk, d]:
// heads [0, Hq) are queries, [Hq, Hq+Hk) keys, [Hq+Hk, Hq+2Hk) values.
struct AttentionShape {
  int32_t num_q_heads = 0;
  int32_t num_kv_heads = 0;
  int32_t head_dim = 0;
  float scale = 1.0f;  // softmax scale, usually 1/sqrt(d)
  // Sliding window (Mistral, Gemma 2/3): a query at position p sees the keys at positions
  // p - window + 1 .. p (HF's kv_idx > q_idx - window). 0: every position 0 .. p.
  int32_t window = 0;
  // Logit soft-capping (Gemma 2): each score, after the scale, becomes softcap * tanh(score /
  // softcap) before the softmax. 0: none.
  float softcap = 0.0f;
};

// Mixture of experts (Mixtral, Qwen2-MoE, Qwen3-MoE): how moe_route turns a token's router logits
// into its experts. probs = softmax over the num_experts logits (in fp32); the top_k largest
// (lowest index first on ties) are the token's experts, weighted by their probs, divided by the
// k probs' sum when `renormalize` (Mixtral; Qwen's norm_topk_prob).
struct MoeRouting {
  int32_t num_experts = 0;
  int32_t top_k = 0;
  bool renormalize = false;
};

// The routed experts of one MoE layer, stacked (each expert a SwiGLU MLP of width F, this rank's
// part of it under tensor parallelism): expert e's gate and up rows are gate_up rows
// [e * 2F, (e + 1) * 2F) — F gate rows, then F up rows, [2F, D] — and its down projection is down
// rows [e * D, (e + 1) * D), [D, F]. Each in the weight dtype with empty scales, or quantized as a
// linear layer's weight is (I8 + F32 [rows] scales: int8-wo; I32 packed codes + (scale, zero)
// pairs: int4-wo).
struct MoeExperts {
  int32_t num_experts = 0;
  Tensor gate_up{}, gate_up_scales{};  // [E * 2F, D]
  Tensor down{}, down_scales{};        // [E * D, F]
};

// Scratch of moe_experts for up to T tokens routed to k experts each (P = T * k routed rows),
// sized by the caller so that recorded graphs see fixed addresses; a backend uses what it needs
// (the CPU none of it).
struct MoeScratch {
  Tensor index{};  // I32 [2P + 2(E + 1)]: the rows sorted by expert and their bookkeeping (the
                   // CUDA backend's layout: src/backend/cuda/moe.cu)
  Tensor up{};     // [P, 2F] activation dtype: each routed row's gate and up
  Tensor act{};    // [P, F]: silu(gate) * up
  Tensor down{};   // [P, D]: each routed row's expert output, before the weighted sum
};

// A recorded sequence of ops (a CUDA graph) replayed with whatever the buffers it reads hold.
class StepGraph {
 public:
  virtual ~StepGraph() = default;
  virtual void replay() = 0;
};

// The largest batch a backend must accept; buffers whose addresses recorded graphs bake in are
// sized from it once, before any capture.
struct BatchLimits {
  int32_t max_num_tokens = 0;  // tokens (and logit rows) of one step
  int32_t max_batch_size = 0;  // sequences of one step
  int32_t max_blocks_per_seq = 0;
};

// The device's view of the runner's steps (bench offline --step-timing): busy from a step's
// first upload to the download of its results, idle from that download to the next step's
// first upload (the host's scheduling, bookkeeping and streaming between steps, which the device
// waits through).
struct StepTimeline {
  int64_t num_steps = 0;
  double busy_ms = 0;
  double idle_ms = 0;
};

// Where a backend's tensors live and how bytes reach them, and which shard of the model it holds:
// all that loading weights needs (model/weight_loader.h). `llmserve build`'s WeightCaptureBackend
// implements this half and none of the ops.
class BackendMemory {
 public:
  virtual ~BackendMemory() = default;
  virtual std::string_view name() const = 0;
  // Element type of activations and the KV cache (CPU: F32; CUDA: F16 or BF16). Logits are
  // always F32.
  virtual DType activation_dtype() const { return DType::kF32; }
  // Element type of the 2-D weights: linear layers, embedding tables, lm_head (1-D ones, norms
  // and biases, are in the activation dtype). The activation dtype, except on the CPU, which may
  // keep them in F16 or BF16 and widen them to fp32 as it multiplies (half the bytes a decode
  // step reads).
  virtual DType weight_dtype() const { return activation_dtype(); }
  // The GPU architecture code is built for and engines target ("sm_90" on an H100); empty on
  // backends without one.
  virtual std::string device_arch() const { return {}; }

  virtual Buffer allocate(size_t nbytes) = 0;
  // Whether the backend's tensors are host memory its ops only read from, 64-byte aligned and
  // readable up to the next multiple of 64 bytes (the CPU): a built engine's weights can then be
  // used where the mapped file holds them (WeightLoader) instead of copied.
  virtual bool reads_host_memory() const { return false; }
  // Allocates a tensor and returns its view; the buffer is appended to `owner`.
  Tensor allocate_tensor(std::vector<Buffer>& owner, DType dtype,
                         std::initializer_list<int64_t> dims);
  // Copies host bytes into a backend tensor (same dtype and element count).
  virtual void upload(const void* host, Tensor dst) = 0;
  virtual void download(Tensor src, void* host) = 0;
  // dst[c, r] = src[r, c]; src [R, C], dst [C, R], same dtype (weight loading: GPT-2's Conv1D).
  virtual void transpose(Tensor src, Tensor dst) = 0;
  // Bytes the backend could still allocate (for sizing the KV pool).
  virtual size_t free_memory() const = 0;
  // Waits for the work issued so far (a no-op where ops run on the calling thread).
  virtual void synchronize() {}

  // --- the shard ----------------------------------------------------------------------------
  // Tensor-parallel rank within its stage and the group's size (1 without tensor parallelism).
  virtual int32_t rank() const { return 0; }
  virtual int32_t group_size() const { return 1; }
  // Pipeline stage of this backend and the number of stages (1 without pipeline parallelism).
  virtual int32_t stage() const { return 0; }
  virtual int32_t num_stages() const { return 1; }
};

// A backend: its memory (above) and the ops a forward runs. Every op has a default that throws
// Error(kUnimplemented) naming the op and the backend; the CPU, CUDA and null backends implement
// what they run, the build backend nothing.
class Backend : public BackendMemory {
 public:
  KvCache allocate_kv_cache(const KvCacheSpec& spec);
  // Uploads the batch's arrays; the views stay valid until the next call.
  virtual BatchTensors upload_batch(const ForwardBatch& batch);
  virtual void reserve_batch(const BatchLimits& /*limits*/) {}

  // --- graphs -------------------------------------------------------------------------------
  virtual bool can_capture() const { return false; }
  // Records the ops `body` enqueues into a graph without running them; nullptr when the backend
  // has no graphs (the caller then runs eagerly). Buffers the body touches must outlive the graph.
  virtual std::unique_ptr<StepGraph> capture(const std::function<void()>& /*body*/) {
    return nullptr;
  }

  // --- ops ----------------------------------------------------------------------------------
  // out[t] = table[ids[t]] (+ pos_table[positions[t]] when pos_table has data). out: [T, D].
  virtual void embedding(const BatchTensors& batch, Tensor table, Tensor pos_table, Tensor out);
  // out = (x - mean) / sqrt(var + eps) * w + b, per row. x, out: [T, D]; may alias.
  virtual void layer_norm(Tensor x, Tensor w, Tensor b, float eps, Tensor out);
  // out = x / sqrt(mean(x^2) + eps) * w, per row.
  virtual void rms_norm(Tensor x, Tensor w, float eps, Tensor out);
  // Per-head RMSNorm of the queries and keys in place (Qwen3): in qkv [T, (Hq + 2Hk) * d] each of
  // the Hq query heads' d values is rms-normalised and scaled by q_w [d], each of the Hk key
  // heads' by k_w [d]; values untouched. Default: Error(kUnimplemented).
  virtual void qk_rms_norm(Tensor qkv, const AttentionShape& shape, Tensor q_w, Tensor k_w,
                           float eps);
  // a += b, elementwise, same shape.
  virtual void add(Tensor a, Tensor b);
  // x *= s, elementwise, in the activation dtype (Gemma's embedding scale). Default:
  // Error(kUnimplemented).
  virtual void scale(Tensor x, float s);
  // x = cap * tanh(x / cap), elementwise, in place; x F32 (Gemma 2's final logit soft-capping).
  // Default: Error(kUnimplemented).
  virtual void softcap(Tensor x, float cap);
  // residual += x; out = layer_norm(residual). Default: add then layer_norm.
  virtual void add_layer_norm(Tensor residual, Tensor x, Tensor w, Tensor b, float eps, Tensor out);
  virtual void add_rms_norm(Tensor residual, Tensor x, Tensor w, float eps, Tensor out);
  // out[M, N] = x[M, K] @ w[N, K]^T (+ bias[N] when bias has data).
  virtual void matmul(Tensor x, Tensor w, Tensor bias, Tensor out);
  // out[M, N] = x[M, K] @ (w[N, K] * scales[N])^T (+ bias[N] when bias has data): int8 weight-only
  // quantization, w I8 with one F32 scale per output row. Default: throws Error(kUnimplemented).
  virtual void matmul_q8(Tensor x, Tensor w, Tensor scales, Tensor bias, Tensor out);
  // out[M, N] = x[M, K] @ W^T (+ bias[N]) for int4 weight-only quantization: W[n, k] = (q[n, k] -
  // zero) * scale of k's group, w I32 [N, K / 8] packed codes and scales [N, 2 * K / group] (scale,
  // zero) pairs in the weight dtype (layouts: model/quantize.h); the products summed in fp32.
  // Default: throws Error(kUnimplemented).
  virtual void matmul_int4(Tensor x, Tensor w, Tensor scales, Tensor bias, Tensor out);
  // --- fp8 (e4m3) W8A8: per-token activation scales, per-channel weight scales ------------------
  // x quantized row by row: out.scales[t] = max_k |x[t, k]| / 448 (0 for an all-zero row) and
  // out.q[t, k] = e4m3(x[t, k] / out.scales[t]) (round to nearest even, saturating; 0 when the
  // scale is 0). x: [T, K] in the activation dtype. Default: throws Error(kUnimplemented).
  virtual void quantize_fp8_rows(Tensor x, const Fp8Rows& out);
  // out[M, N] = sum_k e4m3(x.q[m, k]) * e4m3(w[n, k]) * x.scales[m] * w_scales[n] (+ bias[N]):
  // e4m3 products summed in fp32 (as an fp8 tensor-core GEMM does), then both scales. w F8E4M3
  // [N, K], w_scales F32 [N], bias and out in the activation dtype. Default: throws
  // Error(kUnimplemented).
  virtual void matmul_fp8(const Fp8Rows& x, Tensor w, Tensor w_scales, Tensor bias, Tensor out);
  // add_rms_norm, then the normalised rows quantized into q (quantize_fp8_rows). `out` [T, D] is
  // the op's to use: the default composition normalises into it and quantizes from there; a
  // fused backend may leave it untouched.
  virtual void add_rms_norm_fp8(Tensor residual, Tensor x, Tensor w, float eps, Tensor out,
                                const Fp8Rows& q);
  // silu_mul, then quantized into q; `out` [T, F] as in add_rms_norm_fp8.
  virtual void silu_mul_fp8(Tensor gate_up, Tensor out, const Fp8Rows& q);
  // --- decode-step fusions ---------------------------------------------------------------------
  // Whether fused_linear takes a step of num_tokens rows against weights of weight_dtype (the
  // activation dtype, or I8 with scales). Default: false (no backend must fuse).
  virtual bool can_fuse_linear(int64_t /*num_tokens*/, DType /*weight_dtype*/) const {
    return false;
  }
  // out = fusion(x @ w^T (+ bias)) as LinearFusion says; w in the activation dtype (scales without
  // data) or I8 with one F32 scale per row (as matmul_q8). Only where can_fuse_linear said yes;
  // the default throws Error(kUnimplemented).
  virtual void fused_linear(Tensor x, Tensor w, Tensor scales, Tensor bias, const LinearFusion& f,
                            Tensor out);
  // --- mixture of experts ------------------------------------------------------------------
  // Each token's experts: router_logits F32 [T, C] (C >= routing.num_experts; the first
  // num_experts columns are the router's; F32 like the lm_head's logits, so that the choice of
  // experts does not hang on a 16-bit rounding) → expert_ids I32 [T, k] and expert_weights F32
  // [T, k] as MoeRouting says. Default: Error(kUnimplemented).
  virtual void moe_route(Tensor router_logits, const MoeRouting& routing, Tensor expert_ids,
                         Tensor expert_weights);
  // out[t] = sum_j expert_weights[t, j] * down_e(silu(gate_e(x[t])) * up_e(x[t])), e =
  // expert_ids[t, j]: each expert computed only for the tokens routed to it (grouped by expert),
  // products summed in fp32. x, out: [T, D]; experts and scratch as their structs say. Default:
  // Error(kUnimplemented).
  virtual void moe_experts(Tensor x, Tensor expert_ids, Tensor expert_weights,
                           const MoeExperts& experts, const MoeScratch& scratch, Tensor out);
  // Whether moe_experts reads its MoeScratch (the caller may leave it empty otherwise).
  virtual bool moe_uses_scratch() const { return true; }
  // a[t] += sigmoid(gate[t, C - 1]) * x[t] (Qwen2-MoE's shared expert, gated by the last column of
  // the router's logits, F32 [T, C]). a, x: [T, D]. Default: Error(kUnimplemented).
  virtual void add_sigmoid_gated(Tensor a, Tensor x, Tensor gate);
  // x = gelu(x) with the tanh approximation (GPT-2's gelu_new), in place.
  virtual void gelu_tanh(Tensor x);
  // out = gelu_tanh(x @ w^T + bias). Default: matmul then gelu_tanh.
  virtual void matmul_gelu(Tensor x, Tensor w, Tensor bias, Tensor out);
  // out[T, F] = silu(gate_up[:, :F]) * gate_up[:, F:].
  virtual void silu_mul(Tensor gate_up, Tensor out);
  // out[T, F] = gelu_tanh(gate_up[:, :F]) * gate_up[:, F:] (GeGLU: Gemma). Default:
  // Error(kUnimplemented).
  virtual void gelu_mul(Tensor gate_up, Tensor out);
  // Rotates query and key heads of qkv in place (rotate-half / NeoX pairing (i, i + d/2)).
  // rope_table: [max_positions, d], cos in [:, :d/2], sin in [:, d/2:].
  virtual void rope(Tensor qkv, const AttentionShape& shape, Tensor rope_table,
                    const BatchTensors& batch);
  // Stores the key and value heads of qkv into the cache slots of batch.slot_mapping.
  virtual void write_kv(Tensor qkv, const AttentionShape& shape, const BatchTensors& batch,
                        const KvLayer& kv);
  // rope, then write_kv (RoPE architectures): one pass on backends that fuse them.
  virtual void rope_write_kv(Tensor qkv, const AttentionShape& shape, Tensor rope_table,
                             const BatchTensors& batch, const KvLayer& kv);
  // Causal attention of each new token over its sequence's cached context (which already holds
  // this step's keys), within shape.window when it has one, scores soft-capped when
  // shape.softcap says so. out: [T, Hq * d]. GQA: query head h reads KV head h / (Hq / Hk).
  virtual void attention(Tensor qkv, const AttentionShape& shape, const BatchTensors& batch,
                         const KvLayer& kv, Tensor out);
  // out[i] = x[batch.logits_indices[i]]. out: [L, D].
  virtual void gather_rows(Tensor x, const BatchTensors& batch, Tensor out);
  // ids[r] = argmax of logits row r (F32 [L, V]; lowest index on ties) into an I32 [L] tensor.
  // Default: through the host.
  virtual void argmax_rows(Tensor logits, Tensor ids);
  // Whether sample_rows is implemented (the engine then draws on the backend unless a row wants
  // logprobs).
  virtual bool can_sample() const { return false; }
  // ids[r] = a token drawn from logits row r (F32 [L, V], overwritten) under rows[r], after the
  // row's entries of `adjustments`.
  virtual void sample_rows(Tensor logits, const std::vector<RowSampling>& rows,
                           const std::vector<TokenAdjustment>& adjustments, Tensor ids);

  // --- tensor and pipeline parallel (the shard: BackendMemory) ----------------------------------
  // Pipeline: sends x to the same tensor-parallel rank of the next stage / receives it from the
  // previous one into x (same shape on both sides). Alone: no-op.
  virtual void send_to_next_stage(Tensor /*x*/) {}
  virtual void recv_from_prev_stage(Tensor /*x*/) {}
  // x = the elementwise sum of every rank's x, in place, identical on every rank (a row-parallel
  // matmul's partial sums). Every rank of the group must call it, in the same order. Alone: no-op.
  virtual void all_reduce_sum(Tensor /*x*/) {}
  // Makes the calling thread issue work to this backend's device (CUDA: cudaSetDevice); a rank's
  // worker thread calls it once before its first op.
  virtual void bind_thread() {}

  // --- step timing --------------------------------------------------------------------------
  // Off until enabled (it costs two events and a query a step on CUDA). The runner marks a step's
  // first upload and the return of its last download; step_timeline() sums what lies between.
  void enable_step_timing() { step_timing_ = true; }
  void mark_step_begin() {
    if (step_timing_) mark_step(true);
  }
  void mark_step_end() {
    if (step_timing_) mark_step(false);
  }
  StepTimeline step_timeline() const { return timeline_; }

 protected:
  // Throws Error(kUnimplemented): "the <name> backend has no <op> op".
  [[noreturn]] void unsupported(std::string_view op) const;
  // Adds to timeline_. The default reads the host's clock (right for backends that compute on
  // the calling thread); CUDA records events on its stream, so it sees the device's own gaps.
  virtual void mark_step(bool begin);
  StepTimeline timeline_;

 private:
  bool step_timing_ = false;
  std::chrono::steady_clock::time_point step_begin_{}, step_end_{};
};

// kNull: no compute, zero logits (src/backend/null): for measuring the server and load tests.
enum class DeviceKind { kCpu, kCuda, kNull };

// Creates the backend for a device with its dtype: on cuda and null the activation dtype (weights
// and KV cache alike); on cpu, which computes in F32, the weights' dtype (F32, F16 or BF16).
// Throws Error(kUnavailable) when the device is not built in or not present.
std::unique_ptr<Backend> create_backend(DeviceKind kind, DType dtype = DType::kF32);
// Sizes the cpu device's compute pool (OpenMP, which OpenBLAS's OpenMP build shares) and logs the
// choice: `requested` > 0 (--cpu-threads), else OMP_NUM_THREADS when set, else the CPU budget
// (common/cpu_budget.h: the affinity mask capped by the cgroup's CPU quota). Returns the count.
int32_t configure_cpu_threads(int32_t requested);
// Whether this build has the CUDA backend and a CUDA device is visible.
bool cuda_device_available();
// CUDA devices visible to this process (0 without the CUDA backend or a driver).
int32_t cuda_device_count();
// "sm_90" for an H100: the architecture of CUDA device `device`; empty when there is none.
std::string cuda_device_arch(int32_t device = 0);
// Whether GPUs of architecture `arch` ("sm_90", "sm_90a", ...) have fp8 (e4m3) tensor cores:
// compute capability 8.9 and later. False for anything that does not parse.
bool gpu_arch_has_fp8(std::string_view arch);
// tp × pp backends: `pp` pipeline stages of `tp` tensor-parallel ranks each; backend i is stage
// i / tp, rank i % tp, and computes on CUDA device i (ranks talk through NCCL) or on the host
// (cpu/null: ranks are threads sharing memory; a way to test the sharded math without GPUs).
// 1 × 1 is create_backend(). Throws Error(kInvalidArgument) when fewer devices are visible than
// ranks asked for.
std::vector<std::unique_ptr<Backend>> create_backend_group(DeviceKind kind, DType dtype, int32_t tp,
                                                           int32_t pp = 1);

}  // namespace llmserve
