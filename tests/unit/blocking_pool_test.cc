// The server's blocking-work pool (src/server/internal/blocking_pool.h): jobs run on its
// threads, the queue refuses past its bound, a reserved slot holds room until used or
// dropped, Stop runs what was queued, zero threads run inline.
#include "server/internal/blocking_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace sotto::server::internal {
namespace {

// A gate jobs wait at until the test opens it; counts who waits.
class Gate {
 public:
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    ++waiting_;
    cv_.notify_all();
    cv_.wait(lock, [this] { return open_; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  // Waits until `n` jobs wait at the gate.
  void AwaitWaiting(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return waiting_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;  // GUARDED_BY(mu_)
  int waiting_ = 0;    // GUARDED_BY(mu_)
};

TEST(BlockingPool, RunsJobsOnItsOwnThreads) {
  BlockingPool pool(2, 8);
  Gate gate;
  std::mutex mu;
  std::vector<std::thread::id> ran;
  for (int i = 0; i < 2; ++i) {
    auto slot = pool.Reserve();
    ASSERT_TRUE(slot);
    pool.Submit(std::move(*slot), [&] {
      {
        std::lock_guard<std::mutex> lock(mu);
        ran.push_back(std::this_thread::get_id());
      }
      gate.Wait();
    });
  }
  gate.AwaitWaiting(2);  // both run at once: two threads
  EXPECT_EQ(pool.running(), 2u);
  gate.Open();
  pool.Stop();
  ASSERT_EQ(ran.size(), 2u);
  EXPECT_NE(ran[0], ran[1]);
  EXPECT_NE(ran[0], std::this_thread::get_id());
  EXPECT_NE(ran[1], std::this_thread::get_id());
}

TEST(BlockingPool, RefusesPastTheQueueBoundAndTakesJobsAgainWhenRoomFrees) {
  BlockingPool pool(1, 2);
  Gate gate;
  auto busy = pool.Reserve();
  ASSERT_TRUE(busy);
  pool.Submit(std::move(*busy), [&] { gate.Wait(); });
  gate.AwaitWaiting(1);  // the one thread is taken; the queue is empty
  std::atomic<int> done{0};
  for (int i = 0; i < 2; ++i) {
    auto slot = pool.Reserve();
    ASSERT_TRUE(slot) << "room for " << pool.max_queued() << " waiting jobs";
    pool.Submit(std::move(*slot), [&] { done.fetch_add(1); });
  }
  EXPECT_EQ(pool.queued(), 2u);
  EXPECT_FALSE(pool.Reserve());  // at the bound
  EXPECT_EQ(pool.refused(), 1u);
  gate.Open();
  pool.Stop();  // drains: both queued jobs run
  EXPECT_EQ(done.load(), 2);
  EXPECT_EQ(pool.queued(), 0u);
}

TEST(BlockingPool, AReservedSlotHoldsRoomUntilDropped) {
  BlockingPool pool(1, 1);
  {
    auto slot = pool.Reserve();
    ASSERT_TRUE(slot);
    EXPECT_FALSE(pool.Reserve());  // the reservation counts against the bound
  }
  EXPECT_EQ(pool.queued(), 0u);
  EXPECT_TRUE(pool.Reserve());  // given back unused
}

TEST(BlockingPool, ZeroThreadsRunJobsInline) {
  BlockingPool pool(0, 1);
  std::thread::id ran;
  auto slot = pool.Reserve();
  ASSERT_TRUE(slot);
  pool.Submit(std::move(*slot), [&] { ran = std::this_thread::get_id(); });
  EXPECT_EQ(ran, std::this_thread::get_id());
  EXPECT_EQ(pool.queued(), 0u);
}

TEST(BlockingPool, AfterStopReserveRefusesAndAnEarlierSlotStillRuns) {
  BlockingPool pool(1, 4);
  auto early = pool.Reserve();
  ASSERT_TRUE(early);
  pool.Stop();
  EXPECT_FALSE(pool.Reserve());
  bool ran = false;
  pool.Submit(std::move(*early), [&] { ran = true; });  // inline: the threads are gone
  EXPECT_TRUE(ran);
  pool.Stop();  // idempotent
}

}  // namespace
}  // namespace sotto::server::internal
