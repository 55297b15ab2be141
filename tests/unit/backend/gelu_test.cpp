// The CPU backend's tanh GELU (gelu_tanh, gelu_mul): the AVX2 path (its own exp, 8 values at a
// time) against the formula in double precision over a sweep that covers the flat tails, the
// sign change and values too small or too large for exp, and against the libm path.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "testing/kernel_choice.h"

namespace llmserve {
namespace {

double gelu_double(double v) {
  return 0.5 * v * (1.0 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
}

std::vector<float> sweep() {
  std::vector<float> x;
  for (float v = -12.0f; v <= 12.0f; v += 0.00731f) x.push_back(v);
  for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-7f, -1e-7f, 3e-4f, -3e-4f, 20.0f, -20.0f, 60.0f,
                  -60.0f, 1e4f, -1e4f})
    x.push_back(v);
  x.push_back(1.5f);  // one value past a multiple of 8: the scalar tail
  return x;
}

// gelu_tanh over `x` on the CPU backend with the vector path on or off.
std::vector<float> run_gelu(const std::vector<float>& x, bool vector) {
  const testing::ScopedCpuKernels<set_cpu_vector_gelu> choice(vector);
  auto backend = create_backend(DeviceKind::kCpu, DType::kF32);
  std::vector<Buffer> owner;
  Tensor t = backend->allocate_tensor(owner, DType::kF32, {static_cast<int64_t>(x.size())});
  backend->upload(x.data(), t);
  backend->gelu_tanh(t);
  std::vector<float> out(x.size());
  backend->download(t, out.data());
  return out;
}

TEST(CpuGelu, VectorPathWithin2e7OfTheFormula) {
  if (!cpu_vector_gelu_available()) GTEST_SKIP() << "no AVX2 + FMA on this CPU";
  const std::vector<float> x = sweep();
  const std::vector<float> got = run_gelu(x, true), libm = run_gelu(x, false);
  double worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = gelu_double(x[i]);
    const double err = std::abs(got[i] - want) / std::max(1.0, std::abs(static_cast<double>(x[i])));
    worst = std::max(worst, err);
    ASSERT_LE(err, 2e-7) << "x = " << x[i] << ": " << got[i] << " vs " << want;
    ASSERT_LE(std::abs(libm[i] - want) / std::max(1.0, std::abs(static_cast<double>(x[i]))), 2e-7)
        << "libm path, x = " << x[i];
  }
  std::printf("[ note ] vector GELU: worst error %.3g (relative to max(1, |x|))\n", worst);
}

TEST(CpuGelu, GeluMulGatesTheUpHalf) {
  // gate_up [2, 2F]: out[r, i] = gelu(gate[r, i]) * up[r, i], both paths.
  const int64_t f = 21;
  std::vector<float> gu(2 * 2 * f);
  for (size_t i = 0; i < gu.size(); ++i) gu[i] = std::sin(0.37f * static_cast<float>(i)) * 3.0f;
  for (const bool vector : {true, false}) {
    if (vector && !cpu_vector_gelu_available()) continue;
    const testing::ScopedCpuKernels<set_cpu_vector_gelu> choice(vector);
    auto backend = create_backend(DeviceKind::kCpu, DType::kF32);
    std::vector<Buffer> owner;
    Tensor tg = backend->allocate_tensor(owner, DType::kF32, {2, 2 * f});
    Tensor to = backend->allocate_tensor(owner, DType::kF32, {2, f});
    backend->upload(gu.data(), tg);
    backend->gelu_mul(tg, to);
    std::vector<float> out(2 * f);
    backend->download(to, out.data());
    for (int64_t r = 0; r < 2; ++r) {
      for (int64_t i = 0; i < f; ++i) {
        const double want = gelu_double(gu[r * 2 * f + i]) * gu[r * 2 * f + f + i];
        EXPECT_NEAR(out[r * f + i], want, 2e-6 * (1 + std::abs(want)))
            << vector << " " << r << "," << i;
      }
    }
  }
}

}  // namespace
}  // namespace llmserve
