// Times the CUDA MoE experts op (src/backend/cuda/moe.cu: launch_moe_route + launch_moe_experts)
// on one Qwen3-30B-A3B MoE layer (128 experts of 768, top 8, hidden 2048, bf16) at the token counts
// of batched decode (the GEMV path up to 64 routed rows) and prefill (sort + grouped GEMM), with
// uniformly random router logits. Per token count it prints the time a layer, the bytes of the
// experts the step touched over that time (decode is bound by them: the active-parameter
// roofline) and the tensor throughput (2 * rows * 3 * F * D flops). Weights of several layers are
// cycled so that L2 does not hold them, as in a forward pass. Numbers for docs/performance.md.
//
//   moe_bench [--reps N] [--tokens 1,2,4,...] [--int8]
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "backend/cuda/moe.h"

namespace {

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

constexpr int kExperts = 128, kTopK = 8, kHidden = 2048, kFfn = 768;
constexpr int kLayers = 4;  // weight copies cycled (4 x 1.2 GB of bf16 experts: past any L2)

std::vector<int> parse_list(const char* s) {
  std::vector<int> out;
  for (const char* p = s; *p != 0;) {
    out.push_back(std::atoi(p));
    p = std::strchr(p, ',');
    if (p == nullptr) break;
    ++p;
  }
  return out;
}

void* device_alloc(size_t bytes) {
  void* p = nullptr;
  check(cudaMalloc(&p, bytes), "cudaMalloc");
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 50;
  bool int8 = false;
  std::vector<int> tokens = {1, 2, 4, 8, 16, 32, 64, 256, 1024, 4096};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--reps" && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else if (a == "--tokens" && i + 1 < argc) {
      tokens = parse_list(argv[++i]);
    } else if (a == "--int8") {
      int8 = true;
    } else {
      std::fprintf(stderr, "usage: moe_bench [--reps N] [--tokens 1,2,...] [--int8]\n");
      return 2;
    }
  }
  const size_t wsize = int8 ? 1 : 2;
  const size_t gate_up_elems = size_t{kExperts} * 2 * kFfn * kHidden;
  const size_t down_elems = size_t{kExperts} * kHidden * kFfn;
  std::vector<void*> gate_up(kLayers), down(kLayers);
  std::vector<float*> gate_up_scales(kLayers, nullptr), down_scales(kLayers, nullptr);
  for (int l = 0; l < kLayers; ++l) {
    gate_up[l] = device_alloc(gate_up_elems * wsize);
    down[l] = device_alloc(down_elems * wsize);
    // Small values whatever the bytes mean: the timing does not depend on them.
    check(cudaMemset(gate_up[l], 0x11, gate_up_elems * wsize), "memset");
    check(cudaMemset(down[l], 0x11, down_elems * wsize), "memset");
    if (int8) {
      gate_up_scales[l] = static_cast<float*>(device_alloc(size_t{kExperts} * 2 * kFfn * 4));
      down_scales[l] = static_cast<float*>(device_alloc(size_t{kExperts} * kHidden * 4));
      check(cudaMemset(gate_up_scales[l], 0, size_t{kExperts} * 2 * kFfn * 4), "memset");
      check(cudaMemset(down_scales[l], 0, size_t{kExperts} * kHidden * 4), "memset");
    }
  }
  const auto max_t = static_cast<size_t>(*std::max_element(tokens.begin(), tokens.end()));
  const size_t max_p = max_t * kTopK;
  auto* x = device_alloc(max_t * kHidden * 2);
  auto* out = device_alloc(max_t * kHidden * 2);
  check(cudaMemset(x, 0x11, max_t * kHidden * 2), "memset");
  auto* logits = static_cast<float*>(device_alloc(max_t * kExperts * 4));
  auto* ids = static_cast<int32_t*>(device_alloc(max_p * 4));
  auto* weights = static_cast<float*>(device_alloc(max_p * 4));
  auto* index = static_cast<int32_t*>(device_alloc((2 * max_p + 2 * (kExperts + 1)) * 4));
  auto* up = device_alloc(max_p * 2 * kFfn * 2);
  auto* act = device_alloc(max_p * kFfn * 2);
  auto* rows = device_alloc(max_p * kHidden * 2);
  cudaStream_t stream;
  check(cudaStreamCreate(&stream), "cudaStreamCreate");
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "cudaEventCreate");
  check(cudaEventCreate(&stop), "cudaEventCreate");
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::printf("moe_bench: %d experts x %d, top %d, hidden %d, %s experts, %d reps\n", kExperts,
              kFfn, kTopK, kHidden, int8 ? "int8-wo" : "bf16", reps);
  std::printf("%8s %8s %10s %12s %10s\n", "tokens", "path", "us/layer", "touched GB/s", "TFLOP/s");
  for (const int t : tokens) {
    std::vector<float> host(static_cast<size_t>(t) * kExperts);
    for (float& v : host) v = normal(rng);
    check(cudaMemcpy(logits, host.data(), host.size() * 4, cudaMemcpyHostToDevice), "upload");
    check(llmserve::cuda::launch_moe_route(logits, t, kExperts, kExperts, kTopK,
                                           /*renormalize=*/true, ids, weights, stream),
          "moe_route");
    std::vector<int32_t> chosen(static_cast<size_t>(t) * kTopK);
    check(cudaMemcpy(chosen.data(), ids, chosen.size() * 4, cudaMemcpyDeviceToHost), "download");
    const std::set<int32_t> touched(chosen.begin(), chosen.end());
    llmserve::cuda::MoeExpertsParams p;
    p.dtype = llmserve::DType::kBF16;
    p.weights = int8 ? llmserve::cuda::MoeWeights::kInt8 : llmserve::cuda::MoeWeights::k16Bit;
    p.x = x;
    p.expert_ids = ids;
    p.expert_weights = weights;
    p.num_tokens = t;
    p.top_k = kTopK;
    p.num_experts = kExperts;
    p.hidden = kHidden;
    p.ffn = kFfn;
    p.index = index;
    p.up = up;
    p.act = act;
    p.rows_out = rows;
    p.out = out;
    const auto run = [&](int layer) {
      p.gate_up = gate_up[layer];
      p.down = down[layer];
      p.gate_up_scales = gate_up_scales[layer];
      p.down_scales = down_scales[layer];
      check(llmserve::cuda::launch_moe_experts(p, stream), "moe_experts");
    };
    for (int l = 0; l < kLayers; ++l) run(l);  // warm-up
    check(cudaEventRecord(start, stream), "event");
    for (int r = 0; r < reps; ++r) run(r % kLayers);
    check(cudaEventRecord(stop, stream), "event");
    check(cudaEventSynchronize(stop), "sync");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start, stop), "elapsed");
    const double us = 1e3 * ms / reps;
    const double bytes = static_cast<double>(touched.size()) * 3.0 * kFfn * kHidden * wsize;
    const double flops = 2.0 * t * kTopK * 3.0 * kFfn * kHidden;
    std::printf("%8d %8s %10.1f %12.0f %10.1f\n", t,
                t * kTopK <= llmserve::cuda::kMoeGemvMaxRows ? "decode" : "prefill", us,
                bytes / (us * 1e3), flops / (us * 1e6));
  }
  return 0;
}
