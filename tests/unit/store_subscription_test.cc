// Tests of MessageQueue::Subscribe against both backends (docs/store.md, "Subscriptions
// and ordering"): each stored append is reported once with its seq and payload, nothing
// else is; every subscription of a device gets it; destroying a subscription stops its
// callbacks and waits for one under way; writes from many threads arrive in seq order.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <latch>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/store_test_util.h"

namespace sotto::store::testing {
namespace {

using SubscriptionTest = StoreTest;

// What a subscription was told, in the order it was told.
struct Report {
  DeviceAddress device;
  StoredMessage message;
};

// Records a subscription's reports; waits for them without sleeping.
class Reports {
 public:
  OnNewMessage Make() {
    return [this](const DeviceAddress& device, const StoredMessage& message) {
      std::lock_guard lock(mu_);
      got_.push_back({device, message});
      cv_.notify_all();
    };
  }
  // The reports once there are at least `n` (fails the test after a minute).
  std::vector<Report> WaitFor(size_t n) {
    std::unique_lock lock(mu_);
    const bool arrived =
        cv_.wait_for(lock, std::chrono::minutes(1), [&] { return got_.size() >= n; });
    EXPECT_TRUE(arrived) << "got " << got_.size() << " of " << n;
    return got_;
  }
  size_t size() {
    std::lock_guard lock(mu_);
    return got_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Report> got_;
};

std::vector<uint64_t> SeqsOf(const std::vector<Report>& reports) {
  std::vector<uint64_t> out;
  for (const Report& r : reports) out.push_back(r.message.seq);
  return out;
}

TEST_P(SubscriptionTest, EachStoredAppendIsReportedOnceAndNothingElse) {
  const DeviceAddress bob = Addr(2, 1);
  const DeviceAddress carol = Addr(3, 1);
  Reports reports;
  auto sub = queue().Subscribe(bob, reports.Make());

  WriteResult stored = WriteSync(Req({Msg(bob, "a", "id-a"), Msg(carol, "x"), Msg(bob, "b")}));
  ASSERT_TRUE(stored.status);
  // Nothing of these is a new entry: a duplicate, a refused request, a skipped append, a
  // removal, a purge and a deletion of another device.
  WriteResult duplicate = WriteSync(Req({Msg(bob, "a again", "id-a")}));
  EXPECT_EQ(duplicate.outcomes, std::vector<AppendOutcome>{AppendOutcome::kDuplicate});
  WriteResult refused = WriteSync(Req({Msg(bob, "c")}, {}, 2));
  EXPECT_FALSE(refused.status);
  WriteRequest skip = Req({Msg(bob, "s"), Msg(carol, "y")}, {}, 2);
  skip.on_full = OnFullQueue::kSkipAppend;
  WriteResult skipped = WriteSync(std::move(skip));
  ASSERT_TRUE(skipped.status);
  EXPECT_EQ(skipped.outcomes[0], AppendOutcome::kSkippedFull);
  ASSERT_TRUE(WriteSync(Req({}, {Removal{bob, 1}})).status);
  ASSERT_TRUE(queue().PurgeExpired(kT0 + 2 * kHour, 100));
  ASSERT_TRUE(queue().DeleteDevice(carol));
  // The last write to bob's queue: once it is reported, anything wrongly reported before
  // it has been too (reports come in seq order).
  WriteResult last = WriteSync(Req({Msg(bob, "z", {}, kT0 + 3 * kHour)}));
  ASSERT_TRUE(last.status);
  EXPECT_EQ(last.seqs, std::vector<uint64_t>{3});

  const std::vector<Report> got = reports.WaitFor(3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(SeqsOf(got), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(got[0].message.payload, "a");
  EXPECT_EQ(got[1].message.payload, "b");
  EXPECT_EQ(got[2].message.payload, "z");
  EXPECT_EQ(got[2].message.expires_ms, kT0 + 3 * kHour);
  for (const Report& r : got) EXPECT_EQ(r.device, bob);
}

TEST_P(SubscriptionTest, EverySubscriptionOfADeviceGetsEveryEntry) {
  const DeviceAddress bob = Addr(2, 1);
  const DeviceAddress bob2 = Addr(2, 2);
  Reports first, second, other;
  auto a = queue().Subscribe(bob, first.Make());
  auto b = queue().Subscribe(bob, second.Make());
  auto c = queue().Subscribe(bob2, other.Make());
  Append from_alice = Msg(bob, "m1");
  from_alice.sender = Id(1);
  ASSERT_TRUE(WriteSync(Req({std::move(from_alice), Msg(bob2, "n1")})).status);
  ASSERT_TRUE(WriteSync(Req({Msg(bob, "m2")})).status);

  for (Reports* r : {&first, &second}) {
    const std::vector<Report> got = r->WaitFor(2);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(SeqsOf(got), (std::vector<uint64_t>{1, 2}));
    EXPECT_EQ(got[0].message.payload, "m1");
    EXPECT_EQ(got[0].message.sender, Id(1));
    EXPECT_EQ(got[1].message.payload, "m2");
    EXPECT_FALSE(got[1].message.sender);
  }
  const std::vector<Report> got = other.WaitFor(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].device, bob2);
  EXPECT_EQ(got[0].message.payload, "n1");
}

TEST_P(SubscriptionTest, NoCallbackRunsAfterTheSubscriptionIsDestroyed) {
  const DeviceAddress bob = Addr(2, 1);
  Reports dropped, witness;
  auto sub = queue().Subscribe(bob, dropped.Make());
  auto watching = queue().Subscribe(bob, witness.Make());
  ASSERT_TRUE(WriteSync(Req({Msg(bob, "before")})).status);
  ASSERT_EQ(dropped.WaitFor(1).size(), 1u);
  sub.reset();
  ASSERT_TRUE(WriteSync(Req({Msg(bob, "after")})).status);
  ASSERT_EQ(witness.WaitFor(2).size(), 2u);
  EXPECT_EQ(dropped.size(), 1u);
}

TEST_P(SubscriptionTest, DestroyingWaitsForACallbackUnderWay) {
  const DeviceAddress bob = Addr(2, 1);
  std::latch entered(1);
  std::latch release(1);
  bool finished = false;  // no atomic: without the wait TSan sees the race, too
  auto sub = queue().Subscribe(bob, [&](const DeviceAddress&, const StoredMessage&) {
    entered.count_down();
    release.wait();
    finished = true;
  });
  std::thread writer([&] { EXPECT_TRUE(WriteSync(Req({Msg(bob, "m")})).status); });
  entered.wait();
  std::latch destroying(1);
  bool finished_when_destroyed = false;
  std::thread destroyer([&] {
    destroying.count_down();
    sub.reset();
    finished_when_destroyed = finished;
  });
  destroying.wait();
  release.count_down();
  destroyer.join();
  writer.join();
  EXPECT_TRUE(finished_when_destroyed);
}

TEST_P(SubscriptionTest, ASubscriptionMayBeDestroyedInsideItsOwnCallback) {
  const DeviceAddress bob = Addr(2, 1);
  int calls = 0;
  std::unique_ptr<QueueSubscription> sub;
  sub = queue().Subscribe(bob, [&](const DeviceAddress&, const StoredMessage&) {
    ++calls;
    sub.reset();
  });
  Reports witness;
  auto watching = queue().Subscribe(bob, witness.Make());
  ASSERT_TRUE(WriteSync(Req({Msg(bob, "1"), Msg(bob, "2")})).status);
  ASSERT_TRUE(WriteSync(Req({Msg(bob, "3")})).status);
  ASSERT_EQ(witness.WaitFor(3).size(), 3u);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(sub, nullptr);
}

TEST_P(SubscriptionTest, ACallbackMayWriteToTheQueue) {
  const DeviceAddress bob = Addr(2, 1);
  const DeviceAddress carol = Addr(3, 1);
  Reports carols;
  auto forward =
      queue().Subscribe(bob, [this, carol](const DeviceAddress&, const StoredMessage& m) {
        queue().Write(Req({Msg(carol, "fwd " + m.payload)}), nullptr);
      });
  auto watching = queue().Subscribe(carol, carols.Make());
  ASSERT_TRUE(WriteSync(Req({Msg(bob, "1")})).status);
  ASSERT_TRUE(WriteSync(Req({Msg(bob, "2")})).status);
  const std::vector<Report> got = carols.WaitFor(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].message.payload, "fwd 1");
  EXPECT_EQ(got[1].message.payload, "fwd 2");
}

TEST_P(SubscriptionTest, WritesFromManyThreadsToOneDeviceArriveInSeqOrder) {
  constexpr int kThreads = 4;
  constexpr int kWritesEach = 100;
  const DeviceAddress bob = Addr(2, 1);
  Reports reports;
  auto sub = queue().Subscribe(bob, reports.Make());
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([this, t, bob] {
      const DeviceAddress own = Addr(static_cast<uint8_t>(10 + t), 1);
      for (int i = 0; i < kWritesEach; ++i) {
        queue().Write(Req({Msg(bob, std::to_string(t) + "/" + std::to_string(i)), Msg(own, "o")}),
                      nullptr);
      }
    });
  }
  for (std::thread& w : writers) w.join();
  constexpr size_t kTotal = size_t{kThreads} * kWritesEach;
  const std::vector<Report> got = reports.WaitFor(kTotal);
  ASSERT_EQ(got.size(), kTotal);
  const std::vector<StoredMessage> stored = ReadAll(bob);
  ASSERT_EQ(stored.size(), kTotal);
  for (size_t i = 0; i < kTotal; ++i) {
    ASSERT_EQ(got[i].message.seq, i + 1) << "out of order at " << i;
    EXPECT_EQ(got[i].message.payload, stored[i].payload);
  }
}

TEST_P(SubscriptionTest, ASubscriptionMayOutliveItsStore) {
  Reports reports;
  auto sub = queue().Subscribe(Addr(2, 1), reports.Make());
  store_.reset();
  sub.reset();
  EXPECT_EQ(reports.size(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Backends, SubscriptionTest,
                         ::testing::Values(Backend::kMemory, Backend::kRocksDb), BackendName);

}  // namespace
}  // namespace sotto::store::testing
