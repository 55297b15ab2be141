// Times the decode GEMVs (src/backend/cuda/gemv.h) on the weight shapes of one Llama-3-8B layer
// and its lm_head, for every kernel and tile variant: the CUDA-core kernels (gemv.cu, gemv_q8.cu)
// and each variant of the tensor-core one (gemv_tc.cuh) for 16-bit, int8 and fp8 weights, and of
// the int4 weight-only one (gemv_int4.cu: packed codes and their group scales, groups of 128). Each
// shape's weights are cycled through copies that together exceed the L2 cache, so every call
// reads its weights from HBM, as a decode step does. Prints one line per kernel, shape and M:
// microseconds a call (mean of --reps back-to-back launches, events around them) and the weight
// bytes moved per second; then, per kernel, one layer's four GEMVs summed. Numbers for
// docs/performance.md; run through scripts/gpu_check.sh (step gemv).
//
//   gemv_bench [--dtype bf16|f16] [--reps N] [--m 1,4,8] [--kernels int4,tc-16bit-v7]
// (--kernels: only the kernels whose names start with one of the comma-separated prefixes)
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/gemv.h"

namespace {

using llmserve::DType;
namespace cuda = llmserve::cuda;

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}

struct WeightShape {
  const char* name;
  int32_t n, k;
};

// Llama-3-8B: fused QKV, o_proj, fused gate_up, down; then the lm_head (16-bit, fp32 logits).
constexpr WeightShape kLayer[] = {
    {"qkv", 6144, 4096}, {"o", 4096, 4096}, {"gate_up", 28672, 4096}, {"down", 4096, 14336}};
constexpr WeightShape kLmHead{"lm_head", 128256, 4096};

struct Kernel {
  std::string name;
  int bytes_per_weight;
  int max_m;
  // Launches one call; returns the launch error.
  cudaError_t (*launch)(const Kernel&, int m, const WeightShape&, const void* w, void* out,
                        cudaStream_t);
  int variant = -1;
  cuda::GemvWeights weights = cuda::GemvWeights::k16Bit;
};

DType g_dtype = DType::kBF16;
void* g_x = nullptr;        // [8, 14336] activations (16-bit) or e4m3 codes
float* g_scales = nullptr;  // per-row / per-token scales (all 1e-3)
void* g_bias = nullptr;

cudaError_t launch_simt16(const Kernel&, int m, const WeightShape& s, const void* w, void* out,
                          cudaStream_t stream) {
  return cuda::launch_gemv({.dtype = g_dtype,
                            .out_dtype = s.n == kLmHead.n ? DType::kF32 : g_dtype,
                            .x = g_x,
                            .w = w,
                            .out = out,
                            .m = m,
                            .n = s.n,
                            .k = s.k},
                           stream);
}

cudaError_t launch_simt8(const Kernel&, int m, const WeightShape& s, const void* w, void* out,
                         cudaStream_t stream) {
  return cuda::launch_gemv_q8({.dtype = g_dtype,
                               .out_dtype = g_dtype,
                               .x = g_x,
                               .w = static_cast<const int8_t*>(w),
                               .scales = g_scales,
                               .out = out,
                               .m = m,
                               .n = s.n,
                               .k = s.k},
                              stream);
}

cudaError_t launch_tc(const Kernel& kernel, int m, const WeightShape& s, const void* w, void* out,
                      cudaStream_t stream) {
  const bool fp8 = kernel.weights == cuda::GemvWeights::kFp8;
  const cuda::GemvTcArgs a{.weights = kernel.weights,
                           .dtype = g_dtype,
                           .out_dtype = s.n == kLmHead.n && !fp8 ? DType::kF32 : g_dtype,
                           .x = g_x,
                           .x_scales = g_scales,
                           .w = w,
                           .w_scales = g_scales,
                           .out = out,
                           .m = m,
                           .n = s.n,
                           .k = s.k};
  return cuda::launch_gemv_tc(a, stream, kernel.variant);
}

// int4: `w` holds the packed codes [N, K / 8] followed by the (scale, zero) pairs [N, 2 * K / 128],
// so the scales are read from HBM with their codes, as in a decode step.
cudaError_t launch_int4(const Kernel& kernel, int m, const WeightShape& s, const void* w, void* out,
                        cudaStream_t stream) {
  const cuda::GemvInt4Args a{.dtype = g_dtype,
                             .x = g_x,
                             .w = w,
                             .scales = static_cast<const uint8_t*>(w) + int64_t{s.n} * s.k / 2,
                             .out = out,
                             .m = m,
                             .n = s.n,
                             .k = s.k,
                             .group = 128};
  return cuda::launch_gemv_int4(a, stream, kernel.variant);
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 50;
  std::vector<int> ms = {1, 4, 8};
  std::vector<std::string> prefixes;  // empty: every kernel
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--dtype" && i + 1 < argc) {
      g_dtype = std::string(argv[++i]) == "f16" ? DType::kF16 : DType::kBF16;
    } else if (arg == "--reps" && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else if (arg == "--m" && i + 1 < argc) {
      ms.clear();
      for (const char* p = argv[++i]; *p != '\0';) {
        char* end = nullptr;
        ms.push_back(static_cast<int>(std::strtol(p, &end, 10)));
        p = *end == ',' ? end + 1 : end;
      }
    } else if (arg == "--kernels" && i + 1 < argc) {
      const std::string list = argv[++i];
      for (size_t at = 0; at <= list.size();) {
        const size_t comma = std::min(list.find(',', at), list.size());
        if (comma > at) prefixes.push_back(list.substr(at, comma - at));
        at = comma + 1;
      }
    } else {
      std::fprintf(stderr,
                   "usage: gemv_bench [--dtype bf16|f16] [--reps N] [--m 1,4,8] "
                   "[--kernels PREFIX,...]\n");
      return 2;
    }
  }
  std::vector<Kernel> kernels;
  kernels.push_back({"simt-16bit", 2, cuda::kGemvMaxRows, launch_simt16});
  kernels.push_back({"simt-int8", 1, cuda::kGemvMaxRows, launch_simt8});
  const std::pair<const char*, cuda::GemvWeights> formats[] = {
      {"tc-16bit", cuda::GemvWeights::k16Bit},
      {"tc-int8", cuda::GemvWeights::kInt8},
      {"tc-fp8", cuda::GemvWeights::kFp8}};
  for (const auto& [name, weights] : formats) {
    for (int v = 0; v < cuda::kGemvTcVariants; ++v) {
      kernels.push_back({std::string(name) + "-v" + std::to_string(v),
                         weights == cuda::GemvWeights::k16Bit ? 2 : 1, cuda::kGemvTcMaxRows,
                         launch_tc, v, weights});
    }
  }

  for (int v = 0; v < cuda::kGemvInt4Variants; ++v)
    kernels.push_back({"int4-v" + std::to_string(v), 0, cuda::kGemvInt4MaxRows, launch_int4, v});

  if (!prefixes.empty()) {
    std::erase_if(kernels, [&](const Kernel& kernel) {
      return std::none_of(prefixes.begin(), prefixes.end(),
                          [&](const std::string& p) { return kernel.name.starts_with(p); });
    });
  }

  cudaStream_t stream;
  check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
  check(cudaMalloc(&g_x, 32 * 14336 * 2), "x");
  check(cudaMalloc(&g_bias, 128256 * 2), "bias");
  check(cudaMalloc(reinterpret_cast<void**>(&g_scales), 128256 * sizeof(float)), "scales");
  {
    std::vector<float> ones(128256, 1e-3f);
    check(cudaMemcpy(g_scales, ones.data(), ones.size() * sizeof(float), cudaMemcpyHostToDevice),
          "scales");
    std::vector<uint16_t> x(32 * 14336, 0x3c00);  // small normal values in fp16, bf16 and e4m3
    check(cudaMemcpy(g_x, x.data(), x.size() * 2, cudaMemcpyHostToDevice), "x");
  }
  void* out = nullptr;
  check(cudaMalloc(&out, 32ull * 128256 * 4), "out");
  // Random bytes (a realistic bit mix for the DRAM) for every weight copy.
  std::vector<uint8_t> noise(64u << 20);
  std::mt19937 rng(1);
  for (size_t i = 0; i < noise.size(); i += 4) {
    const uint32_t r = rng() & 0x3f3f3f3fu;  // keeps 16-bit and e4m3 values finite and small
    std::memcpy(&noise[i], &r, 4);
  }
  int device = 0;
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, device), "properties");
  std::printf("gemv_bench: %s, %d SMs, L2 %d MiB, dtype %s, %d reps\n", prop.name,
              prop.multiProcessorCount, prop.l2CacheSize >> 20,
              g_dtype == DType::kF16 ? "f16" : "bf16", reps);
  std::printf("%-16s %-8s %2s %10s %8s\n", "kernel", "shape", "M", "us/call", "GB/s");

  std::vector<WeightShape> shapes(std::begin(kLayer), std::end(kLayer));
  shapes.push_back(kLmHead);
  std::map<std::pair<std::string, int>, double> layer_us;  // (kernel, M) -> sum over kLayer
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "event");
  check(cudaEventCreate(&stop), "event");
  for (const WeightShape& s : shapes) {
    for (int bytes : {2, 1, 0}) {                    // 0: int4 codes and their group scales
      if (s.n == kLmHead.n && bytes != 2) continue;  // the lm_head stays 16-bit
      const size_t size = bytes > 0 ? static_cast<size_t>(s.n) * s.k * bytes
                                    : static_cast<size_t>(s.n) * s.k / 2 +
                                          static_cast<size_t>(s.n) * (s.k / 128) * 4;
      const size_t copies = std::max<size_t>(2, (size_t{256} << 20) / size + 1);
      std::vector<void*> w(copies);
      for (void*& p : w) {
        check(cudaMalloc(&p, size), "weights");
        for (size_t off = 0; off < size; off += noise.size()) {
          check(cudaMemcpy(static_cast<uint8_t*>(p) + off, noise.data(),
                           std::min(noise.size(), size - off), cudaMemcpyHostToDevice),
                "weights");
        }
      }
      for (const Kernel& kernel : kernels) {
        if (kernel.bytes_per_weight != bytes) continue;
        for (int m : ms) {
          if (m > kernel.max_m) continue;
          for (int i = 0; i < 3; ++i)
            check(kernel.launch(kernel, m, s, w[i % copies], out, stream), "warm-up");
          check(cudaEventRecord(start, stream), "record");
          for (int i = 0; i < reps; ++i) {
            check(kernel.launch(kernel, m, s, w[i % copies], out, stream), kernel.name.c_str());
          }
          check(cudaEventRecord(stop, stream), "record");
          check(cudaEventSynchronize(stop), kernel.name.c_str());
          float ms_total = 0;
          check(cudaEventElapsedTime(&ms_total, start, stop), "elapsed");
          const double us = 1e3 * ms_total / reps;
          std::printf("%-16s %-8s %2d %10.2f %8.0f\n", kernel.name.c_str(), s.name, m, us,
                      static_cast<double>(size) / us / 1e3);
          if (s.n != kLmHead.n) layer_us[{kernel.name, m}] += us;
        }
      }
      for (void* p : w) check(cudaFree(p), "free");
    }
  }
  std::printf(
      "\none layer's four GEMVs (qkv + o + gate_up + down), x32 layers = the decode step's "
      "GEMV time without the lm_head\n");
  for (const auto& [key, us] : layer_us) {
    std::printf("%-16s M %d  %8.1f us a layer  %6.2f ms a step\n", key.first.c_str(), key.second,
                us, us * 32 / 1e3);
  }
  return 0;
}
