// GPU gauges without a GPU: the exposition from a fake GpuSampler through MetricsRegistry, the
// NVML sampler over a fake NVML function table (units, CUDA_VISIBLE_DEVICES, failing readings),
// and the missing-library path that `serve` takes on a machine without the NVIDIA driver.
#include "server/metrics/gpu_metrics.h"

#include <cmath>
#include <cstdio>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "server/metrics/metrics_registry.h"
#include "server/metrics/nvml_sampler.h"

namespace llmserve {
namespace {

double sample_value(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  ADD_FAILURE() << "no sample " << series << " in:\n" << text;
  return std::nan("");
}

class FakeSampler final : public GpuSampler {
 public:
  explicit FakeSampler(std::vector<GpuSample>* samples) : samples_(samples) {}
  std::vector<GpuSample> sample() override { return *samples_; }

 private:
  std::vector<GpuSample>* samples_;
};

GpuSample full_sample(const std::string& uuid) {
  GpuSample s;
  s.uuid = uuid;
  s.utilization = 0.5;
  s.memory_total_bytes = 80ull << 30;
  s.memory_used_bytes = 10ull << 30;
  s.power_usage_watts = 120.5;
  s.power_limit_watts = 700;
  s.energy_joules = 5000;
  return s;
}

TEST(GpuMetrics, NoSamplerNoGpuFamilies) {
  MetricsRegistry metrics("llama");
  metrics.update_gpu();
  EXPECT_EQ(metrics.render_text().find("nv_gpu"), std::string::npos);
  EXPECT_EQ(metrics.render_text().find("nv_energy"), std::string::npos);
}

TEST(GpuMetrics, TritonNamesTypesAndGpuUuidLabel) {
  std::vector<GpuSample> samples = {full_sample("GPU-aaaa"), full_sample("GPU-bbbb")};
  samples[1].utilization = 1.0;
  MetricsRegistry metrics("llama");
  metrics.add_gpu_metrics(std::make_unique<FakeSampler>(&samples));
  const std::string text = metrics.render_text();
  for (const char* type_line :
       {"# TYPE nv_gpu_utilization gauge", "# TYPE nv_gpu_memory_total_bytes gauge",
        "# TYPE nv_gpu_memory_used_bytes gauge", "# TYPE nv_gpu_power_usage gauge",
        "# TYPE nv_gpu_power_limit gauge", "# TYPE nv_energy_consumption counter",
        "# HELP nv_gpu_utilization GPU utilization rate [0.0 - 1.0)"}) {
    EXPECT_NE(text.find(type_line), std::string::npos) << type_line << " in\n" << text;
  }
  // gpu_uuid is the only label; no model/version on GPU series.
  EXPECT_EQ(sample_value(text, R"(nv_gpu_utilization{gpu_uuid="GPU-aaaa"})"), 0.5);
  EXPECT_EQ(sample_value(text, R"(nv_gpu_utilization{gpu_uuid="GPU-bbbb"})"), 1.0);
  EXPECT_EQ(sample_value(text, R"(nv_gpu_memory_total_bytes{gpu_uuid="GPU-aaaa"})"),
            80.0 * (1ull << 30));
  EXPECT_EQ(sample_value(text, R"(nv_gpu_memory_used_bytes{gpu_uuid="GPU-aaaa"})"),
            10.0 * (1ull << 30));
  EXPECT_EQ(sample_value(text, R"(nv_gpu_power_usage{gpu_uuid="GPU-aaaa"})"), 120.5);
  EXPECT_EQ(sample_value(text, R"(nv_gpu_power_limit{gpu_uuid="GPU-aaaa"})"), 700);
  // Energy counts from the server's start: 0 at the first sample, whatever the device counter.
  EXPECT_EQ(sample_value(text, R"(nv_energy_consumption{gpu_uuid="GPU-aaaa"})"), 0);
}

TEST(GpuMetrics, RefreshedOnUpdateAndEnergyCountsDeltas) {
  std::vector<GpuSample> samples = {full_sample("GPU-aaaa")};
  MetricsRegistry metrics("llama");
  metrics.add_gpu_metrics(std::make_unique<FakeSampler>(&samples));
  samples[0].utilization = 0.25;
  samples[0].energy_joules = 5300;
  metrics.update_gpu();
  std::string text = metrics.render_text();
  EXPECT_EQ(sample_value(text, R"(nv_gpu_utilization{gpu_uuid="GPU-aaaa"})"), 0.25);
  EXPECT_EQ(sample_value(text, R"(nv_energy_consumption{gpu_uuid="GPU-aaaa"})"), 300);
  samples[0].energy_joules = 10;  // the driver reloaded: its counter restarted
  metrics.update_gpu();
  samples[0].energy_joules = 30;
  metrics.update_gpu();
  text = metrics.render_text();
  EXPECT_EQ(sample_value(text, R"(nv_energy_consumption{gpu_uuid="GPU-aaaa"})"), 320);
}

TEST(GpuMetrics, ReadingsAGpuCannotGiveLeaveNoSeries) {
  GpuSample s;
  s.uuid = "GPU-old";
  s.memory_total_bytes = 1000;
  s.memory_used_bytes = 10;
  std::vector<GpuSample> samples = {s};
  MetricsRegistry metrics("llama");
  metrics.add_gpu_metrics(std::make_unique<FakeSampler>(&samples));
  const std::string text = metrics.render_text();
  EXPECT_EQ(sample_value(text, R"(nv_gpu_memory_total_bytes{gpu_uuid="GPU-old"})"), 1000);
  EXPECT_EQ(text.find(R"(nv_gpu_power_usage{)"), std::string::npos);
  EXPECT_EQ(text.find(R"(nv_energy_consumption{)"), std::string::npos);
}

TEST(GpuMetrics, PolledWithTheEngineStats) {
  std::vector<GpuSample> samples = {full_sample("GPU-aaaa")};
  MetricsRegistry metrics("llama");
  metrics.add_gpu_metrics(std::make_unique<FakeSampler>(&samples));
  samples[0].power_usage_watts = 333;  // the poller reads `samples` on its thread from here on
  metrics.start_polling([] { return EngineStats{}; }, std::chrono::milliseconds(5));
  for (int i = 0; i < 400; ++i) {
    if (metrics.render_text().find(R"(nv_gpu_power_usage{gpu_uuid="GPU-aaaa"} 333)") !=
        std::string::npos)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  metrics.stop_polling();
  EXPECT_EQ(sample_value(metrics.render_text(), R"(nv_gpu_power_usage{gpu_uuid="GPU-aaaa"})"), 333);
}

TEST(NvmlSampler, MissingLibraryIsAReasonNotAFailure) {
  std::string why_not;
  auto sampler = NvmlSampler::open(why_not, "libllmserve-no-such-nvml.so.1", nullptr);
  EXPECT_EQ(sampler, nullptr);
  EXPECT_NE(why_not.find("cannot load libllmserve-no-such-nvml.so.1"), std::string::npos)
      << why_not;
}

TEST(NvmlSampler, LibraryWithoutNvmlSymbols) {
  std::string why_not;
  auto sampler = NvmlSampler::open(why_not, "libc.so.6", nullptr);  // loads, but is no NVML
  EXPECT_EQ(sampler, nullptr);
  EXPECT_NE(why_not.find("has no nvmlInit_v2"), std::string::npos) << why_not;
}

TEST(NvmlSampler, VisibleDevicesFollowCudaVisibleDevices) {
  const std::vector<std::string> uuids = {"GPU-11aa", "GPU-22bb", "GPU-22cc"};
  using V = std::vector<unsigned int>;
  EXPECT_EQ(select_visible_devices(uuids, nullptr), (V{0, 1, 2}));
  EXPECT_EQ(select_visible_devices(uuids, ""), V{});
  EXPECT_EQ(select_visible_devices(uuids, "2,0"), (V{2, 0}));
  EXPECT_EQ(select_visible_devices(uuids, " 1 , 0 "), (V{1, 0}));
  EXPECT_EQ(select_visible_devices(uuids, "0,7,1"), V{0});  // CUDA stops at an invalid entry
  EXPECT_EQ(select_visible_devices(uuids, "-1"), V{});
  EXPECT_EQ(select_visible_devices(uuids, "GPU-22cc,11a"), (V{2, 0}));  // UUIDs and unique prefixes
  EXPECT_EQ(select_visible_devices(uuids, "GPU-22"), V{});              // ambiguous prefix
  EXPECT_EQ(select_visible_devices(uuids, "1,1"), V{1});
}

// A fake NVML: two GPUs; the second cannot report power or energy.
struct FakeNvml {
  static inline int num_inits = 0;
  static inline int num_shutdowns = 0;
  static NvmlApi::Device handle(unsigned int i) {
    return reinterpret_cast<NvmlApi::Device>(uintptr_t{0x100} + i);
  }
  static unsigned int index(NvmlApi::Device d) {
    return static_cast<unsigned int>(reinterpret_cast<uintptr_t>(d) - 0x100);
  }
  static NvmlApi api() {
    NvmlApi a;
    a.init = [] {
      ++num_inits;
      return 0;
    };
    a.shutdown = [] {
      ++num_shutdowns;
      return 0;
    };
    a.device_count = [](unsigned int* n) {
      *n = 2;
      return 0;
    };
    a.device_by_index = [](unsigned int i, NvmlApi::Device* d) {
      *d = handle(i);
      return i < 2 ? 0 : 2;
    };
    a.uuid = [](NvmlApi::Device d, char* buf, unsigned int size) {
      std::snprintf(buf, size, "GPU-fake-%u", index(d));
      return 0;
    };
    a.utilization = [](NvmlApi::Device d, NvmlApi::Utilization* u) {
      *u = {37, 5};
      return 0;
    };
    a.memory = [](NvmlApi::Device, NvmlApi::Memory* m) {
      *m = {1000, 600, 400};
      return 0;
    };
    a.power_usage = [](NvmlApi::Device d, unsigned int* mw) {
      *mw = 123456;
      return index(d) == 0 ? 0 : 3;
    };
    a.power_limit = [](NvmlApi::Device d, unsigned int* mw) {
      *mw = 700000;
      return index(d) == 0 ? 0 : 3;
    };
    a.total_energy = [](NvmlApi::Device d, unsigned long long* mj) {
      *mj = 2500;
      return index(d) == 0 ? 0 : 3;
    };
    return a;
  }
};

TEST(NvmlSampler, ReadsAndConvertsUnits) {
  FakeNvml::num_shutdowns = 0;
  std::string why_not;
  auto sampler = NvmlSampler::create(FakeNvml::api(), nullptr, nullptr, why_not);
  ASSERT_NE(sampler, nullptr) << why_not;
  const auto samples = sampler->sample();
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_EQ(samples[0].uuid, "GPU-fake-0");
  EXPECT_EQ(samples[0].utilization, 0.37);  // percent → fraction
  EXPECT_EQ(samples[0].memory_total_bytes, 1000u);
  EXPECT_EQ(samples[0].memory_used_bytes, 400u);
  EXPECT_EQ(samples[0].power_usage_watts, 123.456);  // mW → W
  EXPECT_EQ(samples[0].power_limit_watts, 700.0);
  EXPECT_EQ(samples[0].energy_joules, 2.5);  // mJ → J
  EXPECT_EQ(samples[1].uuid, "GPU-fake-1");
  EXPECT_FALSE(samples[1].power_usage_watts);
  EXPECT_FALSE(samples[1].energy_joules);
  sampler.reset();
  EXPECT_EQ(FakeNvml::num_shutdowns, 1);
}

TEST(NvmlSampler, OnlyTheVisibleGpus) {
  std::string why_not;
  auto sampler = NvmlSampler::create(FakeNvml::api(), nullptr, "GPU-fake-1", why_not);
  ASSERT_NE(sampler, nullptr) << why_not;
  ASSERT_EQ(sampler->sample().size(), 1u);
  EXPECT_EQ(sampler->sample()[0].uuid, "GPU-fake-1");
  FakeNvml::num_shutdowns = 0;
  EXPECT_EQ(NvmlSampler::create(FakeNvml::api(), nullptr, "5", why_not), nullptr);
  EXPECT_NE(why_not.find("CUDA_VISIBLE_DEVICES='5' names none of NVML's 2 GPUs"), std::string::npos)
      << why_not;
  EXPECT_EQ(FakeNvml::num_shutdowns, 1);  // NVML is shut down again
}

TEST(NvmlSampler, InitFailureIsAReason) {
  NvmlApi api = FakeNvml::api();
  api.init = [] { return 9; };  // NVML_ERROR_DRIVER_NOT_LOADED
  api.error_string = [](NvmlApi::Return) -> const char* { return "Driver Not Loaded"; };
  std::string why_not;
  EXPECT_EQ(NvmlSampler::create(api, nullptr, nullptr, why_not), nullptr);
  EXPECT_EQ(why_not, "nvmlInit failed: Driver Not Loaded (9)");
}

}  // namespace
}  // namespace llmserve
