// How many CPUs this process may really use: the CPUs of its affinity mask, capped by the CPU
// quota of its cgroup (a Kubernetes CPU limit). OpenMP and OpenBLAS size their pools from the
// affinity mask alone, so a pod limited to 2 CPUs on a 64-core node would otherwise run 64
// compute threads and spend most of its time throttled.
//
// cgroup v2: cpu.max ("<quota> <period>" or "max <period>") of the process's cgroup and of each
// ancestor (the tightest wins); v1: cpu.cfs_quota_us / cpu.cfs_period_us (-1: none) of the cpu
// controller's cgroup, under cpu/ or cpu,cpuacct/. The cgroup comes from /proc/self/cgroup.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace llmserve {

struct CpuBudget {
  int32_t affinity_cpus = 1;    // CPUs in the affinity mask
  std::optional<double> quota;  // CPUs' worth of time the cgroup allows; none: unlimited
  std::string quota_source;     // the file the quota came from
  int32_t threads = 1;          // min(affinity, ceil(quota)), at least 1
};

// Where to look; tests point these at a fake tree.
struct CpuBudgetPaths {
  std::filesystem::path proc_self_cgroup = "/proc/self/cgroup";
  std::filesystem::path cgroup_root = "/sys/fs/cgroup";
};

CpuBudget cpu_budget(const CpuBudgetPaths& paths = {});
// cgroup v2 cpu.max: "150000 100000" -> 1.5; "max 100000" -> none; malformed -> none.
std::optional<double> parse_cpu_max(std::string_view text);
// cgroup v1: quota_us "-1" -> none; else quota / period.
std::optional<double> parse_cfs_quota(std::string_view quota_us, std::string_view period_us);

}  // namespace llmserve
