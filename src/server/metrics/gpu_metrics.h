// GpuMetrics: Triton's per-GPU gauges (docs/server.md), label gpu_uuid only, refreshed from a
// GpuSampler every metrics poll:
//   nv_gpu_utilization          gauge    fraction 0.0-1.0 of the last sample period the GPU was
//   busy nv_gpu_memory_total_bytes   gauge    bytes nv_gpu_memory_used_bytes    gauge    bytes
//   nv_gpu_power_usage          gauge    watts, instantaneous
//   nv_gpu_power_limit          gauge    watts, the power management limit in force
//   nv_energy_consumption       counter  joules since the server started (Triton's meaning: the
//                                        device counter's growth since the first sample)
// A series appears with the first sample that has its value, so a reading a GPU cannot give
// (e.g. energy before Volta) leaves no misleading 0; no GPU, no family. Triton collects these
// through DCGM; we read NVML directly (nvml_sampler.h).
//
// Thread-safety: update() serialises on a mutex; the prometheus-cpp metrics it writes are
// thread-safe for concurrent scrapes. The registry must outlive this object.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

namespace llmserve {

// One GPU's readings; nullopt where the device cannot report it.
struct GpuSample {
  std::string uuid;                   // NVML's "GPU-xxxxxxxx-...", the gpu_uuid label
  std::optional<double> utilization;  // 0.0-1.0
  std::optional<uint64_t> memory_total_bytes;
  std::optional<uint64_t> memory_used_bytes;
  std::optional<double> power_usage_watts;
  std::optional<double> power_limit_watts;
  std::optional<double> energy_joules;  // the device's cumulative counter, from any origin
};

// Where GPU readings come from: NVML in `serve`, a fake in the tests.
class GpuSampler {
 public:
  virtual ~GpuSampler() = default;
  // One sample per GPU the process uses, in the same order every call.
  virtual std::vector<GpuSample> sample() = 0;
};

class GpuMetrics {
 public:
  GpuMetrics(prometheus::Registry& registry, std::unique_ptr<GpuSampler> sampler);
  // Takes a sample and sets every series from it.
  void update();

 private:
  struct Series {
    prometheus::Gauge* utilization = nullptr;
    prometheus::Gauge* memory_total_bytes = nullptr;
    prometheus::Gauge* memory_used_bytes = nullptr;
    prometheus::Gauge* power_usage = nullptr;
    prometheus::Gauge* power_limit = nullptr;
    prometheus::Counter* energy_consumption = nullptr;
    std::optional<double> last_energy_joules;
  };
  void set(const GpuSample& sample, Series& series);

  prometheus::Registry& registry_;
  std::unique_ptr<GpuSampler> sampler_;
  std::mutex mutex_;  // guards the members below
  prometheus::Family<prometheus::Gauge>* utilization_ =
      nullptr;  // families: created with the first GPU
  prometheus::Family<prometheus::Gauge>* memory_total_bytes_ = nullptr;
  prometheus::Family<prometheus::Gauge>* memory_used_bytes_ = nullptr;
  prometheus::Family<prometheus::Gauge>* power_usage_ = nullptr;
  prometheus::Family<prometheus::Gauge>* power_limit_ = nullptr;
  prometheus::Family<prometheus::Counter>* energy_consumption_ = nullptr;
  std::map<std::string, Series> series_;  // by gpu_uuid
};

}  // namespace llmserve
