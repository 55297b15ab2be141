#include "common/cpu_budget.h"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace llmserve {
namespace {

std::optional<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::optional<int64_t> parse_int(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  if (text.empty()) return std::nullopt;
  int64_t v = 0;
  size_t i = 0;
  const bool negative = text[0] == '-';
  if (negative) i = 1;
  if (i == text.size()) return std::nullopt;
  for (; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9' || v > (INT64_MAX - 9) / 10) return std::nullopt;
    v = v * 10 + (text[i] - '0');
  }
  return negative ? -v : v;
}

int32_t affinity_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

// "hierarchy:controllers:path" lines of /proc/self/cgroup: the v2 path ("0::/x") and the v1 cpu
// controller's path (a line whose controller list holds "cpu").
void cgroup_paths(const std::string& text, std::optional<std::string>& v2,
                  std::optional<std::string>& v1_cpu) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    const size_t a = line.find(':');
    const size_t b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string hierarchy = line.substr(0, a), controllers = line.substr(a + 1, b - a - 1);
    const std::string path = line.substr(b + 1);
    if (hierarchy == "0" && controllers.empty()) {
      v2 = path;
      continue;
    }
    std::istringstream list(controllers);
    std::string c;
    while (std::getline(list, c, ',')) {
      if (c == "cpu") v1_cpu = path;
    }
  }
}

void take_tighter(CpuBudget& b, std::optional<double> quota, const std::filesystem::path& file) {
  if (quota && (!b.quota || *quota < *b.quota)) {
    b.quota = quota;
    b.quota_source = file.string();
  }
}

// `dir` and each ancestor up to `root` (a path outside `root`, from a cgroup namespace, stops at
// `root`).
std::vector<std::filesystem::path> dir_and_ancestors(const std::filesystem::path& root,
                                                     const std::string& cgroup) {
  std::vector<std::filesystem::path> dirs;
  std::filesystem::path rel = std::filesystem::path(cgroup).relative_path();
  while (true) {
    dirs.push_back(root / rel);
    if (rel.empty()) break;
    rel = rel.parent_path();
  }
  return dirs;
}

}  // namespace

std::optional<double> parse_cpu_max(std::string_view text) {
  const size_t space = text.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  const std::optional<int64_t> quota = parse_int(text.substr(0, space));
  const std::optional<int64_t> period = parse_int(text.substr(space + 1));
  if (!quota || !period || *quota <= 0 || *period <= 0) return std::nullopt;  // "max": none
  return static_cast<double>(*quota) / static_cast<double>(*period);
}

std::optional<double> parse_cfs_quota(std::string_view quota_us, std::string_view period_us) {
  const std::optional<int64_t> quota = parse_int(quota_us);
  const std::optional<int64_t> period = parse_int(period_us);
  if (!quota || !period || *quota <= 0 || *period <= 0) return std::nullopt;  // -1: none
  return static_cast<double>(*quota) / static_cast<double>(*period);
}

CpuBudget cpu_budget(const CpuBudgetPaths& paths) {
  CpuBudget b;
  b.affinity_cpus = affinity_cpus();
  std::optional<std::string> v2, v1_cpu;
  if (const auto text = read_file(paths.proc_self_cgroup)) cgroup_paths(*text, v2, v1_cpu);
  if (v2) {
    for (const auto& dir : dir_and_ancestors(paths.cgroup_root, *v2)) {
      if (const auto text = read_file(dir / "cpu.max"))
        take_tighter(b, parse_cpu_max(*text), dir / "cpu.max");
    }
  }
  if (v1_cpu) {
    for (const char* mount : {"cpu", "cpu,cpuacct", "cpuacct,cpu"}) {
      for (const auto& dir : dir_and_ancestors(paths.cgroup_root / mount, *v1_cpu)) {
        const auto quota = read_file(dir / "cpu.cfs_quota_us");
        const auto period = read_file(dir / "cpu.cfs_period_us");
        if (quota && period)
          take_tighter(b, parse_cfs_quota(*quota, *period), dir / "cpu.cfs_quota_us");
      }
    }
  }
  b.threads = b.affinity_cpus;
  if (b.quota) b.threads = std::min(b.threads, static_cast<int32_t>(std::ceil(*b.quota - 1e-9)));
  b.threads = std::max(b.threads, 1);
  return b;
}

}  // namespace llmserve
