// cpu_budget: the cgroup CPU quota (v2 cpu.max up the hierarchy, v1 cfs quota/period) caps the
// affinity mask's CPUs; read from fake /proc/self/cgroup + /sys/fs/cgroup trees.
#include "common/cpu_budget.h"

#include <gtest/gtest.h>

#include <fstream>

namespace llmserve {
namespace {

class FakeCgroups : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            ("cpu_budget_test_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_ / "sys");
    paths_.proc_self_cgroup = root_ / "cgroup";
    paths_.cgroup_root = root_ / "sys";
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  void write(const std::filesystem::path& rel, const std::string& text) {
    const std::filesystem::path p = rel.is_absolute() ? rel : root_ / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  // What a budget is without any quota: the affinity mask's CPUs.
  int32_t unlimited() {
    CpuBudgetPaths none{.proc_self_cgroup = root_ / "missing", .cgroup_root = root_ / "missing"};
    return cpu_budget(none).threads;
  }

  std::filesystem::path root_;
  CpuBudgetPaths paths_;
};

TEST(CpuBudgetParsing, CpuMaxAndCfsQuota) {
  EXPECT_EQ(parse_cpu_max("150000 100000\n"), 1.5);
  EXPECT_EQ(parse_cpu_max("max 100000\n"), std::nullopt);
  EXPECT_EQ(parse_cpu_max("garbage"), std::nullopt);
  EXPECT_EQ(parse_cpu_max("0 100000"), std::nullopt);
  EXPECT_EQ(parse_cfs_quota("200000\n", "100000\n"), 2.0);
  EXPECT_EQ(parse_cfs_quota("-1\n", "100000\n"), std::nullopt);
  EXPECT_EQ(parse_cfs_quota("x", "100000"), std::nullopt);
}

TEST_F(FakeCgroups, NoCgroupFilesMeansTheAffinityMask) {
  const CpuBudget b = cpu_budget(paths_);
  EXPECT_FALSE(b.quota.has_value());
  EXPECT_EQ(b.threads, b.affinity_cpus);
  EXPECT_GE(b.threads, 1);
}

TEST_F(FakeCgroups, V2QuotaOfTheProcessCgroupRoundsUp) {
  write("cgroup", "0::/kubepods/pod1/ctr\n");
  write("sys/kubepods/pod1/ctr/cpu.max", "50000 100000\n");  // half a CPU
  const CpuBudget b = cpu_budget(paths_);
  ASSERT_TRUE(b.quota.has_value());
  EXPECT_DOUBLE_EQ(*b.quota, 0.5);
  EXPECT_EQ(b.threads, 1);
  EXPECT_NE(b.quota_source.find("ctr/cpu.max"), std::string::npos) << b.quota_source;
}

TEST_F(FakeCgroups, V2TightestAncestorWins) {
  write("cgroup", "0::/kubepods/pod1/ctr\n");
  write("sys/kubepods/pod1/ctr/cpu.max", "max 100000\n");
  write("sys/kubepods/pod1/cpu.max", "100000 100000\n");  // the pod's limit: 1 CPU
  write("sys/kubepods/cpu.max", "800000 100000\n");
  const CpuBudget b = cpu_budget(paths_);
  ASSERT_TRUE(b.quota.has_value());
  EXPECT_DOUBLE_EQ(*b.quota, 1.0);
  EXPECT_EQ(b.threads, 1);
}

TEST_F(FakeCgroups, V2NamespaceRootCgroup) {  // a container's own cgroup namespace: "0::/"
  write("cgroup", "0::/\n");
  write("sys/cpu.max", "150000 100000\n");
  const CpuBudget b = cpu_budget(paths_);
  ASSERT_TRUE(b.quota.has_value());
  EXPECT_EQ(b.threads, std::min(2, unlimited()));
}

TEST_F(FakeCgroups, V1CfsQuota) {
  write("cgroup", "12:memory:/x\n4:cpu,cpuacct:/docker/abc\n0::/\n");
  write("sys/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "100000\n");
  write("sys/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
  write("sys/cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
  write("sys/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
  const CpuBudget b = cpu_budget(paths_);
  ASSERT_TRUE(b.quota.has_value());
  EXPECT_DOUBLE_EQ(*b.quota, 1.0);
  EXPECT_EQ(b.threads, 1);
}

TEST_F(FakeCgroups, V1UnlimitedQuotaKeepsTheAffinityMask) {
  write("cgroup", "1:cpu:/\n");
  write("sys/cpu/cpu.cfs_quota_us", "-1\n");
  write("sys/cpu/cpu.cfs_period_us", "100000\n");
  const CpuBudget b = cpu_budget(paths_);
  EXPECT_FALSE(b.quota.has_value());
  EXPECT_EQ(b.threads, unlimited());
}

TEST_F(FakeCgroups, AQuotaAboveTheMaskDoesNotAddThreads) {
  write("cgroup", "0::/\n");
  write("sys/cpu.max", "100000000 100000\n");  // 1,000 CPUs
  EXPECT_EQ(cpu_budget(paths_).threads, unlimited());
}

}  // namespace
}  // namespace llmserve
