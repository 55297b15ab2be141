// Helpers of the GPU tests: random data, fp32 <-> fp16/bf16 on the host, tensors on either
// backend, the comparison metrics (relative L2 error, worst element), and the fixture of the ops
// tests (a CUDA backend beside the CPU reference).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "common/half.h"

namespace llmserve::testing_gpu {

#define LLMSERVE_REQUIRE_GPU()                                                  \
  do {                                                                          \
    if (!::llmserve::cuda_device_available()) GTEST_SKIP() << "no CUDA device"; \
  } while (0)

inline std::vector<float> random_vector(size_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Rounds through `dtype` (what the GPU sees), in place; returns v.
inline std::vector<float> rounded(std::vector<float> v, DType dtype) {
  for (float& x : v) {
    if (dtype == DType::kF16) x = fp16_to_float(float_to_fp16(x));
    if (dtype == DType::kBF16) x = bf16_to_float(float_to_bf16(x));
  }
  return v;
}

inline std::vector<uint8_t> encode(const std::vector<float>& v, DType dtype) {
  std::vector<uint8_t> out(v.size() * dtype_size(dtype));
  for (size_t i = 0; i < v.size(); ++i) {
    if (dtype == DType::kF32) {
      std::memcpy(out.data() + 4 * i, &v[i], 4);
    } else {
      const uint16_t h = dtype == DType::kF16 ? float_to_fp16(v[i]) : float_to_bf16(v[i]);
      std::memcpy(out.data() + 2 * i, &h, 2);
    }
  }
  return out;
}

inline std::vector<float> decode(const std::vector<uint8_t>& bytes, DType dtype) {
  const size_t n = bytes.size() / dtype_size(dtype);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) {
    if (dtype == DType::kF32) {
      std::memcpy(&v[i], bytes.data() + 4 * i, 4);
    } else {
      uint16_t h;
      std::memcpy(&h, bytes.data() + 2 * i, 2);
      v[i] = dtype == DType::kF16 ? fp16_to_float(h) : bf16_to_float(h);
    }
  }
  return v;
}

// A tensor on `backend` holding `values` as `dtype`.
inline Tensor make_tensor(Backend& backend, std::vector<Buffer>& owner,
                          const std::vector<float>& values, DType dtype,
                          std::initializer_list<int64_t> dims) {
  Tensor t = backend.allocate_tensor(owner, dtype, dims);
  backend.upload(encode(values, dtype).data(), t);
  return t;
}

inline std::vector<float> read_tensor(Backend& backend, Tensor t) {
  std::vector<uint8_t> bytes(t.nbytes());
  backend.download(t, bytes.data());
  return decode(bytes, t.dtype);
}

struct Diff {
  double rel_l2 = 0;  // ||got - want|| / ||want||
  double max_abs = 0;
  size_t worst = 0;
  bool has_nan = false;
};

inline Diff compare(const std::vector<float>& got, const std::vector<float>& want) {
  Diff d;
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size() && i < got.size(); ++i) {
    if (!std::isfinite(got[i])) d.has_nan = true;
    const double e = static_cast<double>(got[i]) - want[i];
    num += e * e;
    den += static_cast<double>(want[i]) * want[i];
    if (std::abs(e) > d.max_abs) {
      d.max_abs = std::abs(e);
      d.worst = i;
    }
  }
  d.rel_l2 = std::sqrt(num / std::max(den, 1e-30));
  return d;
}

#define EXPECT_CLOSE_REL(got, want, tol, what)                                      \
  do {                                                                              \
    const auto _d = ::llmserve::testing_gpu::compare((got), (want));                \
    ASSERT_EQ((got).size(), (want).size()) << (what);                               \
    EXPECT_FALSE(_d.has_nan) << (what) << ": non-finite output";                    \
    EXPECT_LE(_d.rel_l2, (tol)) << (what) << ": worst at " << _d.worst << " got "   \
                                << (got)[_d.worst] << " want " << (want)[_d.worst]; \
  } while (0)

inline const char* dtype_label(DType t) {
  return t == DType::kF16 ? "f16" : "bf16";
}

// Ops tests: a CUDA backend computing in the parameter's dtype (fp16 or bf16) beside the CPU
// backend (fp32), and inputs placed on both.
class CudaVsCpu : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    LLMSERVE_REQUIRE_GPU();
    gpu_ = std::make_unique<CudaBackend>(GetParam());
    // The CPU reference of matmul_q8 stays weight-only: its integer decode kernels
    // (cpu_matmul_q8.cpp) round x to int8, which the GPU's do not.
    previous_q8_kernels_ = set_cpu_int8_dot_kernels(false);
  }
  void TearDown() override { set_cpu_int8_dot_kernels(previous_q8_kernels_); }
  DType dt() const { return GetParam(); }
  // Relative L2 error of one output rounding to dt() (GEMMs accumulate in fp32 and land near it).
  double tol() const { return dt() == DType::kF16 ? 2e-3 : 1.2e-2; }
  // The same values on both backends (GPU in dt(), CPU in fp32 after rounding through dt()).
  std::pair<Tensor, Tensor> both(const std::vector<float>& v, std::initializer_list<int64_t> dims) {
    const auto r = rounded(v, dt());
    return {make_tensor(cpu_, cpu_mem_, r, DType::kF32, dims),
            make_tensor(*gpu_, gpu_mem_, r, dt(), dims)};
  }
  // The same bytes as `dtype` on both backends (quantized weights, fp32 scales).
  std::pair<Tensor, Tensor> both_bytes(const void* host, DType dtype,
                                       std::initializer_list<int64_t> dims) {
    std::pair<Tensor, Tensor> t{cpu_.allocate_tensor(cpu_mem_, dtype, dims),
                                gpu_->allocate_tensor(gpu_mem_, dtype, dims)};
    cpu_.upload(host, t.first);
    gpu_->upload(host, t.second);
    return t;
  }
  std::pair<Tensor, Tensor> both_empty(std::initializer_list<int64_t> dims, DType gpu_dtype) {
    return {cpu_.allocate_tensor(cpu_mem_, DType::kF32, dims),
            gpu_->allocate_tensor(gpu_mem_, gpu_dtype, dims)};
  }
  std::pair<Tensor, Tensor> both_empty(std::initializer_list<int64_t> dims) {
    return both_empty(dims, dt());
  }

  bool previous_q8_kernels_ = true;
  CpuBackend cpu_;
  std::unique_ptr<CudaBackend> gpu_;
  std::vector<Buffer> cpu_mem_, gpu_mem_;
  std::mt19937 rng_{1234};
};

}  // namespace llmserve::testing_gpu
