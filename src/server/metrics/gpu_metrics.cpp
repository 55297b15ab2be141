#include "server/metrics/gpu_metrics.h"

namespace llmserve {
namespace {

template <typename T>
T* series_of(prometheus::Family<T>* family, T*& slot, const std::string& uuid) {
  if (!slot) slot = &family->Add({{"gpu_uuid", uuid}});
  return slot;
}

}  // namespace

GpuMetrics::GpuMetrics(prometheus::Registry& registry, std::unique_ptr<GpuSampler> sampler)
    : registry_(registry), sampler_(std::move(sampler)) {}

void GpuMetrics::update() {
  std::vector<GpuSample> samples = sampler_->sample();
  std::lock_guard lock(mutex_);
  if (!samples.empty() && !utilization_) {
    // HELP texts as Triton's.
    utilization_ = &prometheus::BuildGauge()
                        .Name("nv_gpu_utilization")
                        .Help("GPU utilization rate [0.0 - 1.0)")
                        .Register(registry_);
    memory_total_bytes_ = &prometheus::BuildGauge()
                               .Name("nv_gpu_memory_total_bytes")
                               .Help("GPU total memory, in bytes")
                               .Register(registry_);
    memory_used_bytes_ = &prometheus::BuildGauge()
                              .Name("nv_gpu_memory_used_bytes")
                              .Help("GPU used memory, in bytes")
                              .Register(registry_);
    power_usage_ = &prometheus::BuildGauge()
                        .Name("nv_gpu_power_usage")
                        .Help("GPU power usage in watts")
                        .Register(registry_);
    power_limit_ = &prometheus::BuildGauge()
                        .Name("nv_gpu_power_limit")
                        .Help("GPU power management limit in watts")
                        .Register(registry_);
    energy_consumption_ =
        &prometheus::BuildCounter()
             .Name("nv_energy_consumption")
             .Help("GPU energy consumption in joules since the Triton Server started")
             .Register(registry_);
  }
  for (const GpuSample& sample : samples) set(sample, series_[sample.uuid]);
}

void GpuMetrics::set(const GpuSample& s, Series& series) {
  if (s.utilization) series_of(utilization_, series.utilization, s.uuid)->Set(*s.utilization);
  if (s.memory_total_bytes) {
    series_of(memory_total_bytes_, series.memory_total_bytes, s.uuid)
        ->Set(static_cast<double>(*s.memory_total_bytes));
  }
  if (s.memory_used_bytes) {
    series_of(memory_used_bytes_, series.memory_used_bytes, s.uuid)
        ->Set(static_cast<double>(*s.memory_used_bytes));
  }
  if (s.power_usage_watts)
    series_of(power_usage_, series.power_usage, s.uuid)->Set(*s.power_usage_watts);
  if (s.power_limit_watts)
    series_of(power_limit_, series.power_limit, s.uuid)->Set(*s.power_limit_watts);
  if (s.energy_joules) {
    prometheus::Counter* counter =
        series_of(energy_consumption_, series.energy_consumption, s.uuid);
    // A smaller reading means the driver reloaded and its counter restarted: count from there.
    if (series.last_energy_joules && *s.energy_joules > *series.last_energy_joules) {
      counter->Increment(*s.energy_joules - *series.last_energy_joules);
    }
    series.last_energy_joules = s.energy_joules;
  }
}

}  // namespace llmserve
