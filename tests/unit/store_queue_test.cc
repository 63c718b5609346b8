// Tests of store/'s MessageQueue against both backends: seqs, reads and paging, depth
// limits, de-duplication, removals, expiry, device deletion; and (RocksDB) group commit.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <iostream>
#include <thread>
#include <vector>

#include "tests/unit/store_test_util.h"

namespace sotto::store::testing {
namespace {

using QueueTest = StoreTest;

std::vector<uint64_t> Seqs(const std::vector<StoredMessage>& messages) {
  std::vector<uint64_t> out;
  for (const auto& m : messages) out.push_back(m.seq);
  return out;
}

TEST_P(QueueTest, SeqsIncreasePerDeviceAndReadPagesInOrder) {
  const DeviceAddress bob = Addr(2, 1);
  const DeviceAddress carol = Addr(3, 1);
  WriteResult first = WriteSync(Req({Msg(bob, "a"), Msg(bob, "b"), Msg(carol, "x")}));
  ASSERT_TRUE(first.status) << first.status.error().ToString();
  EXPECT_EQ(first.seqs, (std::vector<uint64_t>{1, 2, 1}));
  EXPECT_EQ(first.outcomes, std::vector<AppendOutcome>(3, AppendOutcome::kStored));
  WriteResult second = WriteSync(Req({Msg(bob, "c"), Msg(bob, "d"), Msg(bob, "e")}));
  EXPECT_EQ(second.seqs, (std::vector<uint64_t>{3, 4, 5}));

  auto all = ReadAll(bob);
  EXPECT_EQ(Seqs(all), (std::vector<uint64_t>{1, 2, 3, 4, 5}));
  ASSERT_EQ(all.size(), 5u);
  EXPECT_EQ(all[0].payload, "a");
  EXPECT_EQ(all[4].payload, "e");
  EXPECT_EQ(all[4].expires_ms, kT0 + kHour);

  std::vector<uint64_t> paged;
  uint64_t after = 0;
  for (;;) {
    auto page = queue().Read(bob, after, 2, kT0);
    ASSERT_TRUE(page);
    if (page->empty()) break;
    EXPECT_LE(page->size(), 2u);
    for (const auto& m : *page) paged.push_back(m.seq);
    after = page->back().seq;
  }
  EXPECT_EQ(paged, (std::vector<uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_TRUE(queue().Read(bob, 5, 10, kT0)->empty());
  EXPECT_TRUE(queue().Read(bob, ~uint64_t{0}, 10, kT0)->empty());
  EXPECT_TRUE(queue().Read(bob, 0, 0, kT0)->empty());
  EXPECT_EQ(Seqs(ReadAll(carol)), (std::vector<uint64_t>{1}));
  EXPECT_TRUE(ReadAll(Addr(2, 2)).empty());
  EXPECT_EQ(DepthOf(bob), 5u);
}

// Order is promised per device queue (store.h, MessageQueue::Write): requests to one
// device apply in Write order, so its seqs follow that order.
TEST_P(QueueTest, RequestsToOneDeviceApplyInWriteOrder) {
  constexpr size_t kRequests = 200;
  const DeviceAddress bob = Addr(2, 1);
  Callbacks callbacks;
  for (size_t i = 0; i < kRequests; ++i) {
    queue().Write(Req({Msg(bob, std::to_string(i))}), callbacks.Make(i));
  }
  callbacks.WaitFor(kRequests);
  auto results = callbacks.Take();
  ASSERT_EQ(results.size(), kRequests);
  for (size_t i = 0; i < kRequests; ++i) {
    ASSERT_EQ(results[i].size(), 1u);
    EXPECT_EQ(results[i][0].seqs, std::vector<uint64_t>{i + 1});
  }
  auto all = ReadAll(bob);
  ASSERT_EQ(all.size(), kRequests);
  for (size_t i = 0; i < kRequests; ++i) EXPECT_EQ(all[i].payload, std::to_string(i));
}

TEST_P(QueueTest, MaxDepthAcceptsExactlyTheLimitAndRefusesWholeRequests) {
  const DeviceAddress bob = Addr(2, 1);
  const DeviceAddress carol = Addr(3, 1);
  WriteResult fill = WriteSync(Req({Msg(bob, "1"), Msg(bob, "2"), Msg(bob, "3")}, {}, 3));
  ASSERT_TRUE(fill.status);
  EXPECT_EQ(DepthOf(bob), 3u);

  // One more, after an append to another queue and a removal elsewhere: all refused.
  WriteResult over = WriteSync(Req({Msg(carol, "c", "c-id"), Msg(bob, "4")}, {{bob, 99}}, 3));
  ASSERT_FALSE(over.status);
  EXPECT_EQ(over.status.error().detail, Detail(StoreErr::kQueueFull));
  EXPECT_EQ(over.full_index, 1u);
  EXPECT_TRUE(over.outcomes.empty());
  EXPECT_EQ(DepthOf(carol), 0u);
  EXPECT_EQ(DepthOf(bob), 3u);
  // Its dedupe id was not recorded either.
  WriteResult retry = WriteSync(Req({Msg(carol, "c", "c-id")}));
  EXPECT_EQ(retry.outcomes, std::vector<AppendOutcome>{AppendOutcome::kStored});

  // A removal in the same request makes room; a refused request keeps its removals too.
  WriteResult refused = WriteSync(Req({Msg(bob, "4"), Msg(bob, "5")}, {{bob, 1}}, 3));
  EXPECT_FALSE(refused.status);
  EXPECT_EQ(refused.full_index, 1u);
  EXPECT_EQ(Seqs(ReadAll(bob)), (std::vector<uint64_t>{1, 2, 3}));
  WriteResult room = WriteSync(Req({Msg(bob, "4")}, {{bob, 1}}, 3));
  ASSERT_TRUE(room.status);
  EXPECT_EQ(room.removed, 1u);
  EXPECT_EQ(room.seqs, std::vector<uint64_t>{4});
  EXPECT_EQ(Seqs(ReadAll(bob)), (std::vector<uint64_t>{2, 3, 4}));

  // Unbounded requests are not limited by the depth others asked for.
  EXPECT_TRUE(WriteSync(Req({Msg(bob, "5")})).status);
  EXPECT_EQ(DepthOf(bob), 4u);
}

TEST_P(QueueTest, DuplicatesInLaterRequestsAreNotStored) {
  const DeviceAddress bob = Addr(2, 1);
  WriteResult first = WriteSync(Req({Msg(bob, "hello", "alice.1:m1")}));
  ASSERT_TRUE(first.status);
  WriteResult again = WriteSync(Req({Msg(bob, "hello", "alice.1:m1"), Msg(bob, "next", "m2")}));
  ASSERT_TRUE(again.status);
  EXPECT_EQ(again.outcomes,
            (std::vector<AppendOutcome>{AppendOutcome::kDuplicate, AppendOutcome::kStored}));
  EXPECT_EQ(again.seqs, (std::vector<uint64_t>{1, 2}));
  // The same id towards another device is a different message.
  EXPECT_EQ(WriteSync(Req({Msg(Addr(2, 2), "hello", "alice.1:m1")})).outcomes[0],
            AppendOutcome::kStored);
  EXPECT_EQ(DepthOf(bob), 2u);
  // Duplicates take no room: a full queue still reports them as duplicates.
  WriteResult full = WriteSync(Req({Msg(bob, "hello", "alice.1:m1")}, {}, 2));
  ASSERT_TRUE(full.status);
  EXPECT_EQ(full.outcomes[0], AppendOutcome::kDuplicate);

  const QueueStats stats = queue().stats();
  EXPECT_EQ(stats.appends, 3u);
  EXPECT_EQ(stats.duplicates, 2u);
}

TEST_P(QueueTest, DuplicatesInTheSameRequestAndTheSameBatch) {
  const DeviceAddress bob = Addr(2, 1);
  const uint64_t commits_before = queue().stats().commits;
  std::vector<WriteRequest> requests;
  requests.push_back(Req({Msg(bob, "a", "x"), Msg(bob, "a again", "x"), Msg(bob, "b", "y")}));
  requests.push_back(Req({Msg(bob, "b again", "y"), Msg(bob, "c", "z")}));
  requests.push_back(Req({Msg(bob, "full", "w")}, {}, 3));  // refused: its "w" stays unused
  requests.push_back(Req({Msg(bob, "w", "w")}));
  std::vector<WriteResult> results = WriteOneBatch(std::move(requests));
  ASSERT_EQ(results.size(), 4u);

  using O = AppendOutcome;
  EXPECT_EQ(results[0].outcomes, (std::vector<O>{O::kStored, O::kDuplicate, O::kStored}));
  EXPECT_EQ(results[0].seqs, (std::vector<uint64_t>{1, 1, 2}));
  EXPECT_EQ(results[1].outcomes, (std::vector<O>{O::kDuplicate, O::kStored}));
  EXPECT_EQ(results[1].seqs, (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(results[2].status.error().detail, Detail(StoreErr::kQueueFull));
  EXPECT_EQ(results[3].outcomes, (std::vector<O>{O::kStored}));
  EXPECT_EQ(results[3].seqs, (std::vector<uint64_t>{4}));
  EXPECT_EQ(Seqs(ReadAll(bob)), (std::vector<uint64_t>{1, 2, 3, 4}));
  if (GetParam() == Backend::kRocksDb) {
    EXPECT_EQ(queue().stats().commits, commits_before + 1);
  }
}

TEST_P(QueueTest, DuplicateOfAnExpiredOriginalIsNew) {
  const DeviceAddress bob = Addr(2, 1);
  ASSERT_TRUE(WriteSync(Req({Msg(bob, "m", "id", kT0 + 100)})).status);
  now_ms_ = kT0 + 99;
  EXPECT_EQ(WriteSync(Req({Msg(bob, "m", "id", kT0 + 500)})).outcomes[0],
            AppendOutcome::kDuplicate);
  now_ms_ = kT0 + 100;
  WriteResult fresh = WriteSync(Req({Msg(bob, "m", "id", kT0 + 500)}));
  EXPECT_EQ(fresh.outcomes[0], AppendOutcome::kStored);
  EXPECT_EQ(fresh.seqs[0], 2u);
  // The new entry de-duplicates until its own expiry.
  now_ms_ = kT0 + 499;
  WriteResult dup = WriteSync(Req({Msg(bob, "m", "id", kT0 + 900)}));
  EXPECT_EQ(dup.outcomes[0], AppendOutcome::kDuplicate);
  EXPECT_EQ(dup.seqs[0], 2u);
}

TEST_P(QueueTest, DedupeIdLongerThanTheLimitIsInvalid) {
  const DeviceAddress bob = Addr(2, 1);
  WriteResult ok = WriteSync(Req({Msg(bob, "m", std::string(kMaxDedupeIdBytes, 'a'))}));
  EXPECT_TRUE(ok.status);
  WriteResult bad = WriteSync(Req({Msg(bob, "m", std::string(kMaxDedupeIdBytes + 1, 'a'))}));
  ASSERT_FALSE(bad.status);
  EXPECT_EQ(bad.status.error().detail, Detail(StoreErr::kInvalid));
  EXPECT_EQ(DepthOf(bob), 1u);
}

TEST_P(QueueTest, RemovalsIgnoreUnknownSeqsAndKeepDepthRight) {
  const DeviceAddress bob = Addr(2, 1);
  ASSERT_TRUE(WriteSync(Req({Msg(bob, "1"), Msg(bob, "2"), Msg(bob, "3")})).status);
  WriteResult r = WriteSync(Req({}, {{bob, 2}, {bob, 2}, {bob, 42}, {Addr(2, 2), 1}}));
  ASSERT_TRUE(r.status);
  EXPECT_EQ(r.removed, 1u);
  EXPECT_EQ(DepthOf(bob), 2u);
  EXPECT_EQ(Seqs(ReadAll(bob)), (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ(WriteSync(Req({}, {{bob, 2}})).removed, 0u);

  // Append and remove in one batch: the later request sees the earlier one's message.
  std::vector<WriteRequest> requests;
  requests.push_back(Req({Msg(bob, "4")}));
  requests.push_back(Req({}, {{bob, 4}, {bob, 1}}));
  requests.push_back(Req({}, {{bob, 4}}));
  auto results = WriteOneBatch(std::move(requests));
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[1].removed, 2u);
  EXPECT_EQ(results[2].removed, 0u);
  EXPECT_EQ(Seqs(ReadAll(bob)), (std::vector<uint64_t>{3}));
  EXPECT_EQ(DepthOf(bob), 1u);
  // The depth the limit sees is right too: two more fit under 3, not three.
  WriteResult fit = WriteSync(Req({Msg(bob, "5"), Msg(bob, "6"), Msg(bob, "7")}, {}, 3));
  EXPECT_EQ(fit.full_index, 2u);
  EXPECT_TRUE(WriteSync(Req({Msg(bob, "5"), Msg(bob, "6")}, {}, 3)).status);
  EXPECT_EQ(queue().stats().removals, 3u);
}

TEST_P(QueueTest, ReadSkipsExpiredAndDepthCountsThemUntilPurged) {
  const DeviceAddress bob = Addr(2, 1);
  ASSERT_TRUE(WriteSync(Req({Msg(bob, "soon", {}, kT0 + 10), Msg(bob, "later", {}, kT0 + 1000),
                             Msg(bob, "soon2", {}, kT0 + 10)}))
                  .status);
  auto read = queue().Read(bob, 0, 10, kT0 + 10);
  ASSERT_TRUE(read);
  EXPECT_EQ(Seqs(*read), std::vector<uint64_t>{2});
  // `max` counts only what is returned.
  EXPECT_EQ(Seqs(*queue().Read(bob, 0, 1, kT0 + 10)), std::vector<uint64_t>{2});
  EXPECT_EQ(Seqs(*queue().Read(bob, 0, 10, kT0 + 9)), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(DepthOf(bob), 3u);
}

TEST_P(QueueTest, PurgeExpiredDeletesUpToMaxAndFreesRoom) {
  const DeviceAddress bob = Addr(2, 1);
  const DeviceAddress carol = Addr(3, 1);
  ASSERT_TRUE(WriteSync(Req({Msg(bob, "e1", "d1", kT0 + 10), Msg(bob, "e2", {}, kT0 + 10),
                             Msg(carol, "e3", "d3", kT0 + 20), Msg(bob, "live", "d4", kT0 + 30)}))
                  .status);
  auto none = queue().PurgeExpired(kT0 + 9, 100);
  ASSERT_TRUE(none);
  EXPECT_EQ(*none, 0u);
  auto first = queue().PurgeExpired(kT0 + 25, 2);
  ASSERT_TRUE(first) << first.error().ToString();
  EXPECT_EQ(*first, 2u);
  auto second = queue().PurgeExpired(kT0 + 25, 2);
  ASSERT_TRUE(second);
  EXPECT_EQ(*second, 1u);
  EXPECT_EQ(*queue().PurgeExpired(kT0 + 25, 2), 0u);
  EXPECT_EQ(DepthOf(bob), 1u);
  EXPECT_EQ(DepthOf(carol), 0u);
  EXPECT_EQ(queue().stats().expired, 3u);
  EXPECT_EQ(Seqs(ReadAll(bob)), std::vector<uint64_t>{3});

  // The limit sees the freed room; the live message's dedupe entry survived.
  now_ms_ = kT0 + 25;
  WriteResult after = WriteSync(Req({Msg(bob, "x"), Msg(bob, "live", "d4")}, {}, 2));
  ASSERT_TRUE(after.status);
  EXPECT_EQ(after.outcomes[1], AppendOutcome::kDuplicate);
  // Expired ids de-duplicate no more, purged or not.
  EXPECT_EQ(WriteSync(Req({Msg(bob, "e1", "d1")})).outcomes[0], AppendOutcome::kStored);
}

// Purges until a call deletes nothing; returns the total.
uint64_t PurgeAll(MessageQueue& queue, uint64_t now_ms, size_t max) {
  uint64_t total = 0;
  for (;;) {
    auto n = queue.PurgeExpired(now_ms, max);
    EXPECT_TRUE(n) << n.error().ToString();
    if (!n || *n == 0) return total;
    EXPECT_LE(*n, max);
    total += *n;
  }
}

TEST_P(QueueTest, PurgeResumesAcrossCallsAndReachesEveryDevice) {
  // More devices than one RocksDB purge step visits, each with two expired messages
  // before a live one.
  constexpr uint32_t kDevices = 3000;
  std::vector<Append> appends;
  for (uint32_t d = 1; d <= kDevices; ++d) {
    appends.push_back(Msg(Addr(2, d), "e1", {}, kT0 + 10));
    appends.push_back(Msg(Addr(2, d), "e2", {}, kT0 + 10));
    appends.push_back(Msg(Addr(2, d), "live"));
  }
  ASSERT_TRUE(WriteSync(Req(std::move(appends))).status);
  // A small `max` per call: each call resumes where the last one stopped.
  EXPECT_EQ(PurgeAll(queue(), kT0 + 10, 7), 2u * kDevices);
  for (uint32_t d = 1; d <= kDevices; d += 499) {
    EXPECT_EQ(DepthOf(Addr(2, d)), 1u);
    EXPECT_EQ(Seqs(ReadAll(Addr(2, d))), std::vector<uint64_t>{3});
  }
  EXPECT_EQ(queue().stats().expired, 2u * kDevices);
  // A call that deletes less than `max` has reached every device.
  std::vector<Append> more;
  for (uint32_t d = 1; d <= kDevices; ++d) more.push_back(Msg(Addr(3, d), "e", {}, kT0 + 20));
  ASSERT_TRUE(WriteSync(Req(std::move(more))).status);
  auto all = queue().PurgeExpired(kT0 + 20, 10 * kDevices);
  ASSERT_TRUE(all);
  EXPECT_EQ(*all, kDevices);
  // The writer's depth cache followed: the limit sees the room.
  EXPECT_TRUE(WriteSync(Req({Msg(Addr(2, 1), "x")}, {}, 2)).status);
}

TEST_P(QueueTest, ExpiredBehindALiveMessageIsSkippedAndPurgedOnceItLeads) {
  const DeviceAddress bob = Addr(2, 1);
  // The TTL was shortened between the two appends: seq 2 expires before seq 1.
  ASSERT_TRUE(
      WriteSync(Req({Msg(bob, "long", {}, kT0 + 1000), Msg(bob, "short", {}, kT0 + 10)})).status);
  PurgeAll(queue(), kT0 + 20, 100);
  EXPECT_EQ(Seqs(*queue().Read(bob, 0, 10, kT0 + 20)), std::vector<uint64_t>{1});
  ASSERT_EQ(WriteSync(Req({}, {{bob, 1}})).removed, 1u);
  PurgeAll(queue(), kT0 + 20, 100);
  EXPECT_EQ(DepthOf(bob), 0u);
}

TEST_P(QueueTest, PurgeKeepsADedupeEntryReplacedBeforeIt) {
  const DeviceAddress bob = Addr(2, 1);
  ASSERT_TRUE(
      WriteSync(Req({Msg(bob, "m", "id", kT0 + 10), Msg(bob, "n", "gone", kT0 + 10)})).status);
  now_ms_ = kT0 + 20;
  // Queued, not awaited: the purge after it still sees the replacement (writes apply in
  // order with purges) and must keep it.
  Callbacks callbacks;
  queue().Write(Req({Msg(bob, "m2", "id", kT0 + 1000)}), callbacks.Make(0));
  EXPECT_EQ(PurgeAll(queue(), kT0 + 20, 100), 2u);
  callbacks.WaitFor(1);
  EXPECT_EQ(WriteSync(Req({Msg(bob, "m3", "id")})).outcomes[0], AppendOutcome::kDuplicate);
  EXPECT_EQ(WriteSync(Req({Msg(bob, "n2", "gone")})).outcomes[0], AppendOutcome::kStored);
  // Purged state survives a reopen (RocksDB; the memory store starts empty).
  if (GetParam() == Backend::kRocksDb) {
    Open();
    EXPECT_EQ(WriteSync(Req({Msg(bob, "m4", "id")})).outcomes[0], AppendOutcome::kDuplicate);
    EXPECT_EQ(DepthOf(bob), 2u);
    EXPECT_EQ(PurgeAll(queue(), kT0 + 2 * kHour, 100), 2u);
    EXPECT_EQ(DepthOf(bob), 0u);
  }
}

TEST_P(QueueTest, DeleteDeviceDropsQueueAndDedupeButSeqsContinue) {
  const DeviceAddress bob = Addr(2, 1);
  ASSERT_TRUE(WriteSync(Req({Msg(bob, "1", "a"), Msg(bob, "2"), Msg(Addr(2, 2), "other")})).status);
  ASSERT_TRUE(queue().DeleteDevice(bob));
  EXPECT_EQ(DepthOf(bob), 0u);
  EXPECT_TRUE(ReadAll(bob).empty());
  EXPECT_EQ(DepthOf(Addr(2, 2)), 1u);
  WriteResult w = WriteSync(Req({Msg(bob, "1", "a")}, {}, 1));
  ASSERT_TRUE(w.status);
  EXPECT_EQ(w.outcomes[0], AppendOutcome::kStored);
  EXPECT_EQ(w.seqs[0], 3u);
  ASSERT_TRUE(queue().DeleteDevice(Addr(9, 9)));  // unknown: fine
}

TEST_P(QueueTest, CloseRunsPendingWritesThenRefuses) {
  const DeviceAddress bob = Addr(2, 1);
  Callbacks callbacks;
  for (size_t i = 0; i < 50; ++i) queue().Write(Req({Msg(bob, "m")}), callbacks.Make(i));
  store_->Close();
  callbacks.WaitFor(50);  // already run: Close drained them
  for (const auto& results : callbacks.Take()) {
    ASSERT_EQ(results.size(), 1u);
    EXPECT_TRUE(results[0].status);
  }
  WriteResult late = WriteSync(Req({Msg(bob, "late")}));
  ASSERT_FALSE(late.status);
  EXPECT_EQ(late.status.error().detail, Detail(StoreErr::kClosed));
  EXPECT_FALSE(queue().PurgeExpired(kT0, 10));
  EXPECT_FALSE(queue().DeleteDevice(bob));
  EXPECT_EQ(DepthOf(bob), 50u);  // reads still work
}

INSTANTIATE_TEST_SUITE_P(Backends, QueueTest,
                         ::testing::Values(Backend::kMemory, Backend::kRocksDb), BackendName);

// ---- group commit (RocksDB, fsync on)

class GroupCommitTest : public ::testing::Test {
 protected:
  std::unique_ptr<Store> Open(const std::string& name, size_t max_batch_requests) {
    RocksDbOptions options;
    options.path = dir_.Sub(name);
    options.sync = true;
    options.max_batch_requests = max_batch_requests;
    auto store = OpenRocksDbStore(options);
    EXPECT_TRUE(store) << store.error().ToString();
    return store ? std::move(*store) : nullptr;
  }

  // kThreads writers issue kPerThread one-message requests each, to their own device,
  // without waiting; returns once every callback ran, having checked each ran once.
  void WriteFromThreads(MessageQueue& queue, WriterGate* gate) {
    Callbacks callbacks;
    std::vector<std::thread> threads;
    for (uint8_t t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (size_t i = 0; i < kPerThread; ++i) {
          queue.Write(Req({Msg(Addr(t, 1), "m")}), callbacks.Make(size_t{t} * kPerThread + i));
        }
      });
    }
    for (auto& thread : threads) thread.join();
    if (gate != nullptr) gate->Release();
    callbacks.WaitFor(kRequests);
    auto results = callbacks.Take();
    ASSERT_EQ(results.size(), kRequests);
    for (const auto& r : results) {
      ASSERT_EQ(r.size(), 1u);
      EXPECT_TRUE(r[0].status);
    }
    for (uint8_t t = 0; t < kThreads; ++t) {
      auto read = queue.Read(Addr(t, 1), 0, kRequests, 0);
      ASSERT_TRUE(read);
      ASSERT_EQ(read->size(), kPerThread);
      EXPECT_EQ(read->back().seq, kPerThread);
    }
  }

  static constexpr uint8_t kThreads = 4;
  static constexpr size_t kPerThread = 500;
  static constexpr size_t kRequests = kThreads * kPerThread;
  TempDir dir_;
};

TEST_F(GroupCommitTest, ConcurrentWritersShareFsyncs) {
  auto store = Open("db", 4096);
  ASSERT_NE(store, nullptr);
  ASSERT_NO_FATAL_FAILURE(WriteFromThreads(store->queue(), nullptr));
  const QueueStats stats = store->queue().stats();
  EXPECT_EQ(stats.requests, kRequests);
  EXPECT_EQ(stats.appends, kRequests);
  EXPECT_LE(stats.commits * 4, stats.requests);
  std::cout << "[ group commit ] " << stats.requests << " requests in " << stats.commits
            << " fsynced commits, " << stats.commit_micros << " us writing\n";
}

// The server's pattern: each connection waits for its write before the next one. Without
// group commit every request would cost one fsync.
TEST_F(GroupCommitTest, WritersWaitingForTheirCallbacksShareFsyncs) {
  auto store = Open("db", 4096);
  ASSERT_NE(store, nullptr);
  constexpr size_t kPerWaitingThread = 100;
  std::vector<std::thread> threads;
  for (uint8_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = 0; i < kPerWaitingThread; ++i) {
        std::promise<bool> done;
        store->queue().Write(Req({Msg(Addr(t, 1), "m")}),
                             [&done](WriteRequest&&, WriteResult&& result) {
                               done.set_value(result.status.has_value());
                             });
        EXPECT_TRUE(done.get_future().get());
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const QueueStats stats = store->queue().stats();
  EXPECT_EQ(stats.requests, kThreads * kPerWaitingThread);
  EXPECT_LT(stats.commits, stats.requests);
  std::cout << "[ group commit ] waiting writers: " << stats.requests << " requests in "
            << stats.commits << " fsynced commits\n";
}

TEST_F(GroupCommitTest, PendingRequestsGoIntoOneBatchUpToTheLimit) {
  auto store = Open("one", 4096);
  ASSERT_NE(store, nullptr);
  {
    WriterGate gate(store->queue());
    ASSERT_NO_FATAL_FAILURE(WriteFromThreads(store->queue(), &gate));
  }
  EXPECT_EQ(store->queue().stats().commits, 1u);  // the gate's empty request wrote nothing

  store = Open("limited", 100);
  ASSERT_NE(store, nullptr);
  const uint64_t before = store->queue().stats().commits;
  {
    WriterGate gate(store->queue());
    ASSERT_NO_FATAL_FAILURE(WriteFromThreads(store->queue(), &gate));
  }
  EXPECT_EQ(store->queue().stats().commits - before, kRequests / 100);
}

}  // namespace
}  // namespace sotto::store::testing
