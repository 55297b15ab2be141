#include "server/metrics/nvml_sampler.h"

#include <dlfcn.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

namespace llmserve {
namespace {

constexpr NvmlApi::Return kSuccess = 0;
constexpr unsigned int kUuidBufferSize = 96;  // NVML_DEVICE_UUID_V2_BUFFER_SIZE

std::string error_text(const NvmlApi& api, NvmlApi::Return r) {
  const char* text = api.error_string ? api.error_string(r) : nullptr;
  return text ? fmt::format("{} ({})", text, r) : fmt::format("error {}", r);
}

template <typename Fn>
bool resolve(void* library, const char* symbol, Fn& fn, std::string& missing) {
  fn = reinterpret_cast<Fn>(dlsym(library, symbol));
  if (!fn) missing = symbol;
  return fn != nullptr;
}

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return "";
  const auto e = s.find_last_not_of(" \t");
  return std::string(s.substr(b, e - b + 1));
}

// The NVML index an entry of CUDA_VISIBLE_DEVICES names, or -1.
int device_of_entry(const std::string& entry, const std::vector<std::string>& uuids) {
  if (entry.empty()) return -1;
  unsigned int index = 0;
  const auto [end, ec] = std::from_chars(entry.data(), entry.data() + entry.size(), index);
  if (ec == std::errc() && end == entry.data() + entry.size()) {
    return index < uuids.size() ? static_cast<int>(index) : -1;
  }
  // A UUID or a unique prefix of one, with or without "GPU-".
  const std::string key = entry.rfind("GPU-", 0) == 0 ? entry : "GPU-" + entry;
  int found = -1;
  for (size_t i = 0; i < uuids.size(); ++i) {
    if (uuids[i].rfind(key, 0) != 0) continue;
    if (found >= 0) return -1;  // ambiguous
    found = static_cast<int>(i);
  }
  return found;
}

}  // namespace

std::vector<unsigned int> select_visible_devices(const std::vector<std::string>& nvml_uuids,
                                                 const char* visible) {
  std::vector<unsigned int> selected;
  if (visible == nullptr) {
    for (unsigned int i = 0; i < nvml_uuids.size(); ++i) selected.push_back(i);
    return selected;
  }
  std::string_view rest = visible;
  while (true) {
    const size_t comma = rest.find(',');
    const int device = device_of_entry(trim(rest.substr(0, comma)), nvml_uuids);
    if (device < 0) break;  // CUDA ignores this entry and all after it
    const auto d = static_cast<unsigned int>(device);
    if (std::find(selected.begin(), selected.end(), d) != selected.end()) break;
    selected.push_back(d);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return selected;
}

std::unique_ptr<NvmlSampler> NvmlSampler::open(std::string& why_not, const char* library,
                                               const char* visible) {
  void* handle = dlopen(library, RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* error = dlerror();
    why_not = fmt::format("cannot load {} ({})", library, error ? error : "unknown error");
    return nullptr;
  }
  NvmlApi api;
  std::string missing;
  const bool is_complete =
      resolve(handle, "nvmlInit_v2", api.init, missing) &&
      resolve(handle, "nvmlShutdown", api.shutdown, missing) &&
      resolve(handle, "nvmlDeviceGetCount_v2", api.device_count, missing) &&
      resolve(handle, "nvmlDeviceGetHandleByIndex_v2", api.device_by_index, missing) &&
      resolve(handle, "nvmlDeviceGetUUID", api.uuid, missing) &&
      resolve(handle, "nvmlDeviceGetUtilizationRates", api.utilization, missing) &&
      resolve(handle, "nvmlDeviceGetMemoryInfo", api.memory, missing) &&
      resolve(handle, "nvmlDeviceGetPowerUsage", api.power_usage, missing) &&
      resolve(handle, "nvmlDeviceGetEnforcedPowerLimit", api.power_limit, missing) &&
      resolve(handle, "nvmlDeviceGetTotalEnergyConsumption", api.total_energy, missing);
  if (!is_complete) {
    why_not = fmt::format("{} has no {}", library, missing);
    dlclose(handle);
    return nullptr;
  }
  std::string unused;
  resolve(handle, "nvmlErrorString", api.error_string, unused);
  return create(api, handle, visible, why_not);
}

std::unique_ptr<NvmlSampler> NvmlSampler::create(const NvmlApi& api, void* library,
                                                 const char* visible, std::string& why_not) {
  auto close_library = [library] {
    if (library) dlclose(library);
  };
  if (NvmlApi::Return r = api.init(); r != kSuccess) {
    why_not = fmt::format("nvmlInit failed: {}", error_text(api, r));
    close_library();
    return nullptr;
  }
  auto fail_with = [&](std::string message) -> std::unique_ptr<NvmlSampler> {
    why_not = std::move(message);
    api.shutdown();
    close_library();
    return nullptr;
  };
  unsigned int count = 0;
  if (NvmlApi::Return r = api.device_count(&count); r != kSuccess) {
    return fail_with(fmt::format("nvmlDeviceGetCount failed: {}", error_text(api, r)));
  }
  std::vector<NvmlApi::Device> handles(count);
  std::vector<std::string> uuids(count);
  for (unsigned int i = 0; i < count; ++i) {
    char uuid[kUuidBufferSize] = {};
    if (NvmlApi::Return r = api.device_by_index(i, &handles[i]); r != kSuccess) {
      return fail_with(
          fmt::format("nvmlDeviceGetHandleByIndex({}) failed: {}", i, error_text(api, r)));
    }
    if (NvmlApi::Return r = api.uuid(handles[i], uuid, kUuidBufferSize); r != kSuccess) {
      return fail_with(fmt::format("nvmlDeviceGetUUID({}) failed: {}", i, error_text(api, r)));
    }
    uuids[i].assign(uuid, strnlen(uuid, kUuidBufferSize));
  }
  std::vector<Device> devices;
  for (unsigned int i : select_visible_devices(uuids, visible))
    devices.push_back({handles[i], uuids[i]});
  if (devices.empty()) {
    return fail_with(count == 0
                         ? std::string("NVML sees no GPU")
                         : fmt::format("CUDA_VISIBLE_DEVICES='{}' names none of NVML's {} GPUs",
                                       visible ? visible : "", count));
  }
  return std::unique_ptr<NvmlSampler>(new NvmlSampler(api, library, std::move(devices)));
}

NvmlSampler::~NvmlSampler() {
  api_.shutdown();
  if (library_) dlclose(library_);
}

std::vector<GpuSample> NvmlSampler::sample() {
  std::vector<GpuSample> samples;
  samples.reserve(devices_.size());
  for (const Device& d : devices_) {
    GpuSample s;
    s.uuid = d.uuid;
    NvmlApi::Utilization utilization{};
    if (api_.utilization(d.handle, &utilization) == kSuccess)
      s.utilization = utilization.gpu / 100.0;
    NvmlApi::Memory memory{};
    if (api_.memory(d.handle, &memory) == kSuccess) {
      s.memory_total_bytes = memory.total;
      s.memory_used_bytes = memory.used;
    }
    unsigned int milliwatts = 0;
    if (api_.power_usage(d.handle, &milliwatts) == kSuccess)
      s.power_usage_watts = milliwatts / 1000.0;
    if (api_.power_limit(d.handle, &milliwatts) == kSuccess)
      s.power_limit_watts = milliwatts / 1000.0;
    unsigned long long millijoules = 0;
    if (api_.total_energy(d.handle, &millijoules) == kSuccess)
      s.energy_joules = millijoules / 1000.0;
    samples.push_back(std::move(s));
  }
  return samples;
}

}  // namespace llmserve
