// HostGroup: the cpu backend's all-reduce between rank threads — every rank ends with the same
// sums, repeatedly (the barrier reuse), and a CpuBackend group sums tensors in place.
#include "backend/cpu/host_group.h"

#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "backend/backend.h"

namespace llmserve {
namespace {

TEST(HostGroup, EveryRankGetsTheSameSums) {
  constexpr int32_t kRanks = 3;
  constexpr int kRounds = 50;
  HostGroup group(kRanks);
  std::vector<std::vector<std::vector<float>>> results(kRanks);
  std::vector<std::thread> threads;
  for (int32_t r = 0; r < kRanks; ++r) {
    threads.emplace_back([&, r] {
      std::mt19937 rng(static_cast<uint32_t>(r));
      std::uniform_real_distribution<float> u(-1, 1);
      for (int round = 0; round < kRounds; ++round) {
        std::vector<float> v(static_cast<size_t>(1 + round * 7));
        for (size_t i = 0; i < v.size(); ++i)
          v[i] = static_cast<float>(r + 1) * 1000.0f * static_cast<float>(round) +
                 static_cast<float>(i);
        group.all_reduce_sum(r, v.data(), static_cast<int64_t>(v.size()));
        results[static_cast<size_t>(r)].push_back(v);
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int round = 0; round < kRounds; ++round) {
    const auto& v = results[0][static_cast<size_t>(round)];
    for (size_t i = 0; i < v.size(); ++i) {
      // sum over r of (r+1)*1000*round + i = 6000*round + 3i
      ASSERT_EQ(v[i], 6000.0f * static_cast<float>(round) + 3.0f * static_cast<float>(i))
          << round << " " << i;
    }
    for (int32_t r = 1; r < kRanks; ++r)
      EXPECT_EQ(results[static_cast<size_t>(r)][static_cast<size_t>(round)], v);
  }
}

TEST(HostGroup, CpuBackendGroupSumsTensorsInPlace) {
  auto ranks = create_backend_group(DeviceKind::kCpu, DType::kF32, 2);
  ASSERT_EQ(ranks.size(), 2u);
  EXPECT_EQ(ranks[1]->rank(), 1);
  EXPECT_EQ(ranks[1]->group_size(), 2);
  std::vector<std::vector<Buffer>> owners(2);
  std::vector<Tensor> t;
  for (int r = 0; r < 2; ++r) {
    t.push_back(ranks[static_cast<size_t>(r)]->allocate_tensor(owners[static_cast<size_t>(r)],
                                                               DType::kF32, {2, 3}));
    std::vector<float> v(6, static_cast<float>(r + 1));
    ranks[static_cast<size_t>(r)]->upload(v.data(), t.back());
  }
  std::thread other([&] { ranks[1]->all_reduce_sum(t[1]); });
  ranks[0]->all_reduce_sum(t[0]);
  other.join();
  for (int r = 0; r < 2; ++r) {
    std::vector<float> got(6);
    ranks[static_cast<size_t>(r)]->download(t[static_cast<size_t>(r)], got.data());
    EXPECT_EQ(got, std::vector<float>(6, 3.0f));
  }
  // Alone, all_reduce_sum leaves the tensor as it is.
  auto alone = create_backend_group(DeviceKind::kCpu, DType::kF32, 1);
  EXPECT_EQ(alone[0]->group_size(), 1);
}

}  // namespace
}  // namespace llmserve
