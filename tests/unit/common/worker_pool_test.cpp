#include "common/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <stdexcept>
#include <vector>

namespace llmserve {
namespace {

TEST(WorkerPool, RunsTasksInOrderOnOneThread) {
  std::vector<int> order;
  std::promise<void> done;
  {
    WorkerPool pool(1, 100, "test");
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(pool.try_post([&order, i] { order.push_back(i); }));
    ASSERT_TRUE(pool.try_post([&done] { done.set_value(); }));
    done.get_future().wait();
  }
  ASSERT_EQ(order.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(order[i], i);
}

TEST(WorkerPool, RefusesBeyondItsQueueBoundAndCountsIt) {
  WorkerPool pool(1, 2, "test");
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> started;
  ASSERT_TRUE(pool.try_post([&started, released] {
    started.set_value();
    released.wait();
  }));
  started.get_future().wait();  // the one worker is busy: what follows queues
  EXPECT_EQ(pool.num_running(), 1);
  std::atomic<int> ran{0};
  EXPECT_TRUE(pool.try_post([&ran] { ++ran; }));
  EXPECT_TRUE(pool.try_post([&ran] { ++ran; }));
  EXPECT_EQ(pool.num_queued(), 2);
  EXPECT_FALSE(pool.try_post([&ran] { ran += 100; }));
  EXPECT_FALSE(pool.try_post([&ran] { ran += 100; }));
  EXPECT_EQ(pool.num_refused(), 2);
  release.set_value();
  std::promise<void> done;
  while (!pool.try_post([&done] { done.set_value(); })) {
  }
  done.get_future().wait();
  EXPECT_EQ(ran.load(), 2);
  EXPECT_EQ(pool.num_queued(), 0);
}

TEST(WorkerPool, ATaskThatThrowsDoesNotStopItsWorker) {
  WorkerPool pool(1, 10, "test");
  ASSERT_TRUE(pool.try_post([] { throw std::runtime_error("boom"); }));
  std::promise<void> done;
  ASSERT_TRUE(pool.try_post([&done] { done.set_value(); }));
  EXPECT_EQ(done.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
}

TEST(WorkerPool, DestructorRunsWhatIsQueued) {
  std::atomic<int> ran{0};
  {
    WorkerPool pool(2, 1000, "test");
    for (int i = 0; i < 500; ++i) ASSERT_TRUE(pool.try_post([&ran] { ++ran; }));
    EXPECT_EQ(pool.num_threads(), 2);
  }
  EXPECT_EQ(ran.load(), 500);
}

}  // namespace
}  // namespace llmserve
