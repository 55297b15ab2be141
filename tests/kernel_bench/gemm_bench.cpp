// Times cuBLASLt's GEMMs on the weight shapes of one Llama-3-8B layer at the token counts of
// batched decode and prefill, for each way an fp8 W8A8 GEMM can be asked of it — and checks that
// each scaled variant computes what it claims, against a host reference on a sample of outputs:
//
//   bf16          x bf16 [M, K] @ w bf16 [N, K]^T -> bf16 (the baseline)
//   fp8-unscaled  e4m3 @ e4m3 -> bf16, then the scaling pass (kernels.h launch_scale_fp8_output):
//                 what src/backend/cuda/cuda_matmul.cpp runs above the GEMV today
//   fp8-tensor    one scale per operand (SCALAR_32F) applied inside the GEMM
//   fp8-outer     per-token x per-channel (OUTER_VEC_32F)
//   fp8-block     per-token 1x128 activation blocks (VEC128_32F) x 128x128 weight blocks
//                 (BLK128x128_32F), the layout of block-wise fp8 checkpoints
// each fp8 variant with and without CUBLASLT_MATMUL_DESC_FAST_ACCUM ("+fast"). A variant with no
// cuBLASLt algorithm prints "no plan". For fp8-block the scale tensors' memory order is tried both
// ways (K blocks contiguous or the other dimension contiguous) and the check says which one
// cuBLASLt reads. Weights are cycled through copies exceeding the L2 cache, as in a forward pass.
// Numbers for docs/performance.md; run through scripts/gpu_check.sh (step gemm).
//
//   gemm_bench [--reps N] [--m 128,256,...]
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/kernels.h"

namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

void check_lt(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) {
    std::fprintf(stderr, "%s: cuBLASLt status %d\n", what, static_cast<int>(s));
    std::exit(1);
  }
}

struct Shape {
  const char* name;
  int n, k;
};
constexpr Shape kLayer[] = {
    {"qkv", 6144, 4096}, {"o", 4096, 4096}, {"gate_up", 28672, 4096}, {"down", 4096, 14336}};

enum class Kind { kBf16, kFp8Unscaled, kFp8Tensor, kFp8Outer, kFp8Block };
const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kBf16:
      return "bf16";
    case Kind::kFp8Unscaled:
      return "fp8-unscaled";
    case Kind::kFp8Tensor:
      return "fp8-tensor";
    case Kind::kFp8Outer:
      return "fp8-outer";
    case Kind::kFp8Block:
      return "fp8-block";
  }
  return "?";
}

struct Variant {
  Kind kind;
  bool fast_accum = false;
  // fp8-block scale orders: K blocks contiguous (true) or the N / M dimension contiguous.
  bool w_k_major = true, x_k_major = true;
  std::string label() const {
    std::string s = kind_name(kind);
    if (kind == Kind::kFp8Block)
      s += std::string("[w ") + (w_k_major ? "k" : "n") + "-major, x " + (x_k_major ? "k" : "m") +
           "-major]";
    if (fast_accum) s += "+fast";
    return s;
  }
};

cublasLtHandle_t g_lt = nullptr;
void* g_workspace = nullptr;
constexpr size_t kWorkspaceBytes = 32u << 20;

struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool ok = false;
};

void destroy(Plan& p) {
  if (p.a) cublasLtMatrixLayoutDestroy(p.a);
  if (p.b) cublasLtMatrixLayoutDestroy(p.b);
  if (p.c) cublasLtMatrixLayoutDestroy(p.c);
  if (p.desc) cublasLtMatmulDescDestroy(p.desc);
  p = Plan{};
}

// Row-major out[M, N] = x[M, K] @ w[N, K]^T as column-major D[N, M] = A^T B with A = w ([K, N]),
// B = x ([K, M]), as src/backend/cuda/cuda_matmul.cpp sets it up.
Plan make_plan(const Variant& v, int m, int n, int k) {
  Plan p;
  check_lt(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "DescCreate");
  const cublasOperation_t t = CUBLAS_OP_T, nt = CUBLAS_OP_N;
  cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof t);
  cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &nt, sizeof nt);
  const bool fp8 = v.kind != Kind::kBf16;
  if (fp8) {
    const int8_t fast = v.fast_accum ? 1 : 0;
    cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast, sizeof fast);
  }
  int32_t a_mode = -1, b_mode = -1;
  if (v.kind == Kind::kFp8Tensor) a_mode = b_mode = CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F;
  if (v.kind == Kind::kFp8Outer) a_mode = b_mode = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
  if (v.kind == Kind::kFp8Block) {
    a_mode = CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F;
    b_mode = CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
  }
  if (a_mode >= 0) {
    cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &a_mode,
                                   sizeof a_mode);
    cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &b_mode,
                                   sizeof b_mode);
  }
  const cudaDataType_t in = fp8 ? CUDA_R_8F_E4M3 : CUDA_R_16BF;
  check_lt(cublasLtMatrixLayoutCreate(&p.a, in, k, n, k), "layout A");
  check_lt(cublasLtMatrixLayoutCreate(&p.b, in, k, m, k), "layout B");
  check_lt(cublasLtMatrixLayoutCreate(&p.c, CUDA_R_16BF, n, m, n), "layout C");
  cublasLtMatmulPreference_t pref = nullptr;
  cublasLtMatmulPreferenceCreate(&pref);
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                       &kWorkspaceBytes, sizeof kWorkspaceBytes);
  cublasLtMatmulHeuristicResult_t r{};
  int found = 0;
  const cublasStatus_t s =
      cublasLtMatmulAlgoGetHeuristic(g_lt, p.desc, p.a, p.b, p.c, p.c, pref, 1, &r, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (s != CUBLAS_STATUS_SUCCESS || found == 0) {
    destroy(p);
    return p;
  }
  p.algo = r.algo;
  p.ok = true;
  return p;
}

// Device operands for one shape: weights (copies), activations, scales.
struct Operands {
  int m = 0, n = 0, k = 0;
  std::vector<void*> w16, w8;  // copies of the weights (bf16 and e4m3)
  void* x16 = nullptr;
  void* x8 = nullptr;
  void* out = nullptr;
  float* w_scale_tensor = nullptr;  // [1]
  float* x_scale_tensor = nullptr;  // [1]
  float* w_scale_rows = nullptr;    // [N]
  float* x_scale_rows = nullptr;    // [M]
  float* w_scale_blocks = nullptr;  // [N/128 * K/128]
  float* x_scale_blocks = nullptr;  // [M * K/128]
};

void launch(const Plan& p, const Variant& v, const Operands& o, int copy) {
  const float alpha = 1.0f, beta = 0.0f;
  const bool fp8 = v.kind != Kind::kBf16;
  const void* w = fp8 ? o.w8[copy] : o.w16[copy];
  const void* x = fp8 ? o.x8 : o.x16;
  const void* ws = nullptr;
  const void* xs = nullptr;
  if (v.kind == Kind::kFp8Tensor) ws = o.w_scale_tensor, xs = o.x_scale_tensor;
  if (v.kind == Kind::kFp8Outer) ws = o.w_scale_rows, xs = o.x_scale_rows;
  if (v.kind == Kind::kFp8Block) ws = o.w_scale_blocks, xs = o.x_scale_blocks;
  if (ws != nullptr) {
    cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &ws, sizeof ws);
    cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &xs, sizeof xs);
  }
  check_lt(cublasLtMatmul(g_lt, p.desc, &alpha, w, p.a, x, p.b, &beta, o.out, p.c, o.out, p.c,
                          &p.algo, g_workspace, kWorkspaceBytes, nullptr),
           "cublasLtMatmul");
  if (v.kind == Kind::kFp8Unscaled) {
    check(llmserve::cuda::launch_scale_fp8_output(llmserve::DType::kBF16, o.out, o.x_scale_rows,
                                                  o.w_scale_rows, nullptr, 1.0f, o.m, o.n, nullptr),
          "scale_fp8_output");
  }
}

// e4m3 codes with values in about [-2, 2] (no NaN codes), and their float values.
uint8_t random_code(std::mt19937& rng) {
  for (;;) {
    const uint8_t c = static_cast<uint8_t>(rng());
    const int exp = (c >> 3) & 0xF;
    if ((c & 0x7F) == 0x7F || exp > 8) continue;
    return c;
  }
}
float e4m3_value(uint8_t c) {
  const int sign = c >> 7, exp = (c >> 3) & 0xF, man = c & 7;
  const float v = exp == 0 ? std::ldexp(man / 8.0f, -6) : std::ldexp(1.0f + man / 8.0f, exp - 7);
  return sign ? -v : v;
}

template <typename T>
T* upload(const std::vector<T>& h) {
  void* d = nullptr;
  check(cudaMalloc(&d, h.size() * sizeof(T)), "cudaMalloc");
  check(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice), "upload");
  return static_cast<T*>(d);
}

struct HostData {
  std::vector<uint8_t> w8, x8;
  std::vector<__nv_bfloat16> w16, x16;
  std::vector<float> ws_rows, xs_rows, ws_blocks_k, ws_blocks_n, xs_blocks_k, xs_blocks_m;
  float ws_tensor = 0.5f, xs_tensor = 0.25f;
};

HostData make_host(int m, int n, int k, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> scale(0.25f, 2.0f);
  HostData h;
  h.w8.resize(static_cast<size_t>(n) * k);
  h.x8.resize(static_cast<size_t>(m) * k);
  for (auto& c : h.w8) c = random_code(rng);
  for (auto& c : h.x8) c = random_code(rng);
  h.w16.resize(h.w8.size());
  h.x16.resize(h.x8.size());
  for (size_t i = 0; i < h.w8.size(); ++i) h.w16[i] = __float2bfloat16(e4m3_value(h.w8[i]));
  for (size_t i = 0; i < h.x8.size(); ++i) h.x16[i] = __float2bfloat16(e4m3_value(h.x8[i]));
  const int kb = (k + 127) / 128, nb = (n + 127) / 128;
  h.ws_rows.resize(n);
  h.xs_rows.resize(m);
  for (auto& s : h.ws_rows) s = scale(rng);
  for (auto& s : h.xs_rows) s = scale(rng);
  h.ws_blocks_k.resize(static_cast<size_t>(nb) * kb);
  h.ws_blocks_n.resize(h.ws_blocks_k.size());
  for (int i = 0; i < nb; ++i)
    for (int j = 0; j < kb; ++j)
      h.ws_blocks_n[static_cast<size_t>(j) * nb + i] =
          h.ws_blocks_k[static_cast<size_t>(i) * kb + j] = scale(rng);
  h.xs_blocks_k.resize(static_cast<size_t>(m) * kb);
  h.xs_blocks_m.resize(h.xs_blocks_k.size());
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < kb; ++j)
      h.xs_blocks_m[static_cast<size_t>(j) * m + i] =
          h.xs_blocks_k[static_cast<size_t>(i) * kb + j] = scale(rng);
  return h;
}

// The exact value of out[i, j] under variant v (double accumulation).
double reference(const HostData& h, const Variant& v, int m, int n, int k, int i, int j) {
  const int kb = (k + 127) / 128;
  double acc = 0;
  for (int t = 0; t < k; ++t) {
    double s = 1;
    if (v.kind == Kind::kFp8Block)
      s = h.ws_blocks_k[static_cast<size_t>(j / 128) * kb + t / 128] *
          h.xs_blocks_k[static_cast<size_t>(i) * kb + t / 128];
    acc += s * e4m3_value(h.x8[static_cast<size_t>(i) * k + t]) *
           e4m3_value(h.w8[static_cast<size_t>(j) * k + t]);
  }
  if (v.kind == Kind::kFp8Tensor) acc *= double(h.ws_tensor) * h.xs_tensor;
  if (v.kind == Kind::kFp8Outer || v.kind == Kind::kFp8Unscaled)
    acc *= double(h.ws_rows[j]) * h.xs_rows[i];
  return acc;
}

Operands make_operands(const HostData& h, const Variant* block_order, int m, int n, int k,
                       int copies) {
  Operands o;
  o.m = m, o.n = n, o.k = k;
  for (int c = 0; c < copies; ++c) {
    o.w16.push_back(upload(h.w16));
    o.w8.push_back(upload(h.w8));
  }
  o.x16 = upload(h.x16);
  o.x8 = upload(h.x8);
  check(cudaMalloc(&o.out, static_cast<size_t>(m) * n * 2), "cudaMalloc out");
  o.w_scale_tensor = upload(std::vector<float>{h.ws_tensor});
  o.x_scale_tensor = upload(std::vector<float>{h.xs_tensor});
  o.w_scale_rows = upload(h.ws_rows);
  o.x_scale_rows = upload(h.xs_rows);
  const bool wk = block_order == nullptr || block_order->w_k_major;
  const bool xk = block_order == nullptr || block_order->x_k_major;
  o.w_scale_blocks = upload(wk ? h.ws_blocks_k : h.ws_blocks_n);
  o.x_scale_blocks = upload(xk ? h.xs_blocks_k : h.xs_blocks_m);
  return o;
}

void free_operands(Operands& o) {
  for (void* p : o.w16) cudaFree(p);
  for (void* p : o.w8) cudaFree(p);
  for (void* p : {o.x16, o.x8, o.out}) cudaFree(p);
  for (float* p : {o.w_scale_tensor, o.x_scale_tensor, o.w_scale_rows, o.x_scale_rows,
                   o.w_scale_blocks, o.x_scale_blocks})
    cudaFree(p);
  o = Operands{};
}

std::vector<Variant> all_variants() {
  std::vector<Variant> vs{{Kind::kBf16}};
  for (bool fast : {false, true}) {
    vs.push_back({Kind::kFp8Unscaled, fast});
    vs.push_back({Kind::kFp8Tensor, fast});
    vs.push_back({Kind::kFp8Outer, fast});
    for (bool wk : {true, false})
      for (bool xk : {true, false}) vs.push_back({Kind::kFp8Block, fast, wk, xk});
  }
  return vs;
}

// Correctness on one mid-size shape (several blocks each way): max relative error over a sample
// of outputs against the host reference, per variant.
void check_variants() {
  const int m = 256, n = 384, k = 512;
  const HostData h = make_host(m, n, k, 7);
  std::printf(
      "== correctness: [%d x %d] @ [%d x %d]^T, 256 sampled outputs, error relative to "
      "the sample's largest |value|\n",
      m, k, n, k);
  for (const Variant& v : all_variants()) {
    Plan p = make_plan(v, m, n, k);
    if (!p.ok) {
      std::printf("check %-40s no plan\n", v.label().c_str());
      continue;
    }
    Operands o = make_operands(h, &v, m, n, k, 1);
    launch(p, v, o, 0);
    check(cudaDeviceSynchronize(), "check run");
    std::vector<__nv_bfloat16> out(static_cast<size_t>(m) * n);
    check(cudaMemcpy(out.data(), o.out, out.size() * 2, cudaMemcpyDeviceToHost), "download");
    std::mt19937 rng(11);
    double max_err = 0, max_ref = 0;
    for (int s = 0; s < 256; ++s) {
      const int i = static_cast<int>(rng() % m), j = static_cast<int>(rng() % n);
      const double ref = reference(h, v, m, n, k, i, j);
      max_ref = std::max(max_ref, std::fabs(ref));
      max_err =
          std::max(max_err, std::fabs(ref - __bfloat162float(out[static_cast<size_t>(i) * n + j])));
    }
    std::printf("check %-40s max rel err %.2e %s\n", v.label().c_str(), max_err / max_ref,
                max_err / max_ref < 2e-2 ? "ok" : "WRONG");
    free_operands(o);
    destroy(p);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 20;
  std::vector<int> ms{128, 256, 512, 1024, 2048, 8192};
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--reps")) reps = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--m")) {
      ms.clear();
      for (const char* s = argv[i + 1]; *s;) {
        ms.push_back(std::atoi(s));
        while (*s && *s != ',') ++s;
        if (*s == ',') ++s;
      }
    }
  }
  check_lt(cublasLtCreate(&g_lt), "cublasLtCreate");
  check(cudaMalloc(&g_workspace, kWorkspaceBytes), "workspace");
  std::printf("cuBLASLt version %zu\n", cublasLtGetVersion());
  check_variants();

  // Timing: one block order (k-major both ways) stands for fp8-block; the check says which is
  // right.
  cudaEvent_t t0, t1;
  cudaEventCreate(&t0);
  cudaEventCreate(&t1);
  std::printf("== timing: microseconds a GEMM (mean of %d), TFLOP/s\n", reps);
  for (const Shape& s : kLayer) {
    for (int m : ms) {
      const HostData h = make_host(m, s.n, s.k, 1);
      const size_t w_bytes = static_cast<size_t>(s.n) * s.k;
      const int copies = static_cast<int>(std::max<size_t>(1, (256u << 20) / (2 * w_bytes) + 1));
      Operands o = make_operands(h, nullptr, m, s.n, s.k, std::min(copies, 8));
      for (const Variant& v : all_variants()) {
        if (v.kind == Kind::kFp8Block && !(v.w_k_major && v.x_k_major)) continue;
        Plan p = make_plan(v, m, s.n, s.k);
        if (!p.ok) {
          std::printf("%-8s M %5d %-28s no plan\n", s.name, m, v.label().c_str());
          continue;
        }
        const int nc = static_cast<int>(o.w8.size());
        for (int r = 0; r < 3; ++r) launch(p, v, o, r % nc);
        cudaEventRecord(t0);
        for (int r = 0; r < reps; ++r) launch(p, v, o, r % nc);
        cudaEventRecord(t1);
        check(cudaEventSynchronize(t1), "timing");
        float ms_total = 0;
        cudaEventElapsedTime(&ms_total, t0, t1);
        const double us = 1e3 * ms_total / reps;
        std::printf("%-8s M %5d %-28s %9.1f us %7.1f TFLOP/s\n", s.name, m, v.label().c_str(), us,
                    2.0 * m * s.n * s.k / us * 1e-6);
        destroy(p);
      }
      free_operands(o);
    }
  }
  return 0;
}
