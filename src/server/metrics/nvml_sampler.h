// NvmlSampler: GPU readings for GpuMetrics from NVIDIA's management library, loaded at run time
// (dlopen "libnvidia-ml.so.1", which the driver installs), so the build needs no nvml.h and a
// machine without the driver only loses the GPU gauges. The few NVML types and functions used
// are declared in NvmlApi from NVML's public C API.
//
// Devices: those CUDA would let this process use. CUDA_VISIBLE_DEVICES unset: every NVML device.
// Set: its comma-separated entries in order, each an index into NVML's enumeration or a GPU UUID
// (or a unique prefix of one, "GPU-" included), up to the first entry that names no GPU, as CUDA
// stops there. NVML enumerates by PCI bus id; CUDA's default order (fastest first) equals it on
// machines of one GPU model. MIG instances are not mapped (their entries end the list).
//
// Thread-safety: sample() from one thread at a time (GpuMetrics::update serialises it).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "server/metrics/gpu_metrics.h"

namespace llmserve {

// NVML's C ABI, as documented by NVIDIA (nvmlReturn_t is a C enum: 0 = NVML_SUCCESS).
struct NvmlApi {
  using Return = int;
  using Device = struct nvmlDevice_st*;
  struct Utilization {  // nvmlUtilization_t: percent of the last sample period
    unsigned int gpu;
    unsigned int memory;
  };
  struct Memory {  // nvmlMemory_t: bytes
    unsigned long long total;
    unsigned long long free;
    unsigned long long used;
  };
  // NVML's names: nvmlInit_v2, nvmlShutdown, nvmlDeviceGetCount_v2, nvmlDeviceGetHandleByIndex_v2,
  // nvmlDeviceGetUUID, nvmlDeviceGetUtilizationRates, nvmlDeviceGetMemoryInfo,
  // nvmlDeviceGetPowerUsage (mW), nvmlDeviceGetEnforcedPowerLimit (mW),
  // nvmlDeviceGetTotalEnergyConsumption (mJ), nvmlErrorString (optional).
  Return (*init)() = nullptr;
  Return (*shutdown)() = nullptr;
  Return (*device_count)(unsigned int*) = nullptr;
  Return (*device_by_index)(unsigned int, Device*) = nullptr;
  Return (*uuid)(Device, char*, unsigned int) = nullptr;
  Return (*utilization)(Device, Utilization*) = nullptr;
  Return (*memory)(Device, Memory*) = nullptr;
  Return (*power_usage)(Device, unsigned int*) = nullptr;
  Return (*power_limit)(Device, unsigned int*) = nullptr;
  Return (*total_energy)(Device, unsigned long long*) = nullptr;
  const char* (*error_string)(Return) = nullptr;
};

inline constexpr const char* kNvmlLibrary = "libnvidia-ml.so.1";

// The NVML indices CUDA_VISIBLE_DEVICES (`visible`; null = unset) leaves, given NVML's device
// UUIDs in its order.
std::vector<unsigned int> select_visible_devices(const std::vector<std::string>& nvml_uuids,
                                                 const char* visible);

class NvmlSampler final : public GpuSampler {
 public:
  // Loads `library`, initialises NVML and picks the visible devices (`visible` as
  // CUDA_VISIBLE_DEVICES). Null, with `why_not` saying why, when any step fails or no GPU is left.
  static std::unique_ptr<NvmlSampler> open(std::string& why_not, const char* library,
                                           const char* visible);
  // The same over an API already resolved (the tests pass fakes); `library` (may be null) is
  // dlclose'd by the sampler, or at once when this fails.
  static std::unique_ptr<NvmlSampler> create(const NvmlApi& api, void* library, const char* visible,
                                             std::string& why_not);
  ~NvmlSampler() override;  // nvmlShutdown, dlclose
  NvmlSampler(const NvmlSampler&) = delete;
  NvmlSampler& operator=(const NvmlSampler&) = delete;

  std::vector<GpuSample> sample() override;
  size_t num_devices() const { return devices_.size(); }

 private:
  struct Device {
    NvmlApi::Device handle;
    std::string uuid;
  };
  NvmlSampler(const NvmlApi& api, void* library, std::vector<Device> devices)
      : api_(api), library_(library), devices_(std::move(devices)) {}

  NvmlApi api_;
  void* library_;
  std::vector<Device> devices_;
};

}  // namespace llmserve
