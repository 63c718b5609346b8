// Tests of the per-sender quota in a device's queue (WriteRequest::max_per_sender,
// Append::sender) against both backends: at and past the edge, other senders unaffected,
// removals, purges and device deletion give room back, group fan-out skips, and (RocksDB)
// the counts are rebuilt after a reopen.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "store/rocksdb/internal/schema.h"
#include "tests/unit/store_test_util.h"

namespace sotto::store::testing {
namespace {

using QuotaTest = StoreTest;

constexpr uint32_t kQuota = 3;

Append From(const AccountId& sender, const DeviceAddress& to, std::string payload,
            std::string dedupe_id = {}, uint64_t expires_ms = kT0 + kHour) {
  Append a = Msg(to, std::move(payload), std::move(dedupe_id), expires_ms);
  a.sender = sender;
  return a;
}

WriteRequest Quota(std::vector<Append> appends, std::vector<Removal> removals = {},
                   OnFullQueue on_full = OnFullQueue::kRefuseRequest) {
  WriteRequest r = Req(std::move(appends), std::move(removals));
  r.max_per_sender = kQuota;
  r.on_full = on_full;
  return r;
}

uint64_t PurgeAll(MessageQueue& queue, uint64_t now_ms) {
  uint64_t total = 0;
  for (;;) {
    auto n = queue.PurgeExpired(now_ms, 100);
    EXPECT_TRUE(n) << n.error().ToString();
    if (!n || *n == 0) return total;
    total += *n;
  }
}

const AccountId kAlice = Id(1);
const AccountId kCarol = Id(3);
const DeviceAddress kBob = Addr(2, 1);
const DeviceAddress kBobTablet = Addr(2, 2);

TEST_P(QuotaTest, ASenderGetsExactlyItsQuotaAndOthersStillReachTheDevice) {
  for (int i = 0; i < static_cast<int>(kQuota); ++i) {
    WriteResult w = WriteSync(Quota({From(kAlice, kBob, "a" + std::to_string(i))}));
    ASSERT_TRUE(w.status) << i << ": " << w.status.error().ToString();
  }
  WriteResult over = WriteSync(Quota({From(kCarol, kBob, "c0"), From(kAlice, kBob, "a3")}));
  ASSERT_FALSE(over.status);
  EXPECT_EQ(over.status.error().detail, Detail(StoreErr::kSenderQuota));
  EXPECT_EQ(over.full_index, 1u);
  EXPECT_EQ(DepthOf(kBob), kQuota);  // all or nothing: Carol's append was not written either
  // Another sender, an append counted against no sender (a receipt), and Alice to another
  // device of the same account all still go through.
  EXPECT_TRUE(WriteSync(Quota({From(kCarol, kBob, "c0")})).status);
  EXPECT_TRUE(WriteSync(Quota({Msg(kBob, "receipt")})).status);
  EXPECT_TRUE(WriteSync(Quota({From(kAlice, kBobTablet, "a0")})).status);
  EXPECT_EQ(DepthOf(kBob), kQuota + 2);
  // A duplicate of a stored message is still reported as one, quota or not.
  ASSERT_TRUE(WriteSync(Req({From(kAlice, kBob, "dup", "dup-id")})).status);  // unbounded
  WriteResult dup = WriteSync(Quota({From(kAlice, kBob, "dup", "dup-id")}));
  ASSERT_TRUE(dup.status);
  EXPECT_EQ(dup.outcomes[0], AppendOutcome::kDuplicate);
  // Read reports whose each entry is.
  auto all = ReadAll(kBob);
  ASSERT_EQ(all.size(), kQuota + 3);
  EXPECT_EQ(all[0].sender, kAlice);
  EXPECT_EQ(all[kQuota].sender, kCarol);
  EXPECT_FALSE(all[kQuota + 1].sender.has_value());
}

TEST_P(QuotaTest, AppendsOfOneRequestAndOneBatchCountTogether) {
  WriteResult four = WriteSync(Quota({From(kAlice, kBob, "1"), From(kAlice, kBob, "2"),
                                      From(kAlice, kBob, "3"), From(kAlice, kBob, "4")}));
  ASSERT_FALSE(four.status);
  EXPECT_EQ(four.full_index, 3u);
  EXPECT_EQ(DepthOf(kBob), 0u);
  // Across requests of one RocksDB batch: the fourth of Alice's is refused alone.
  std::vector<WriteRequest> requests;
  for (int i = 0; i < 4; ++i) requests.push_back(Quota({From(kAlice, kBob, std::to_string(i))}));
  requests.push_back(Quota({From(kCarol, kBob, "c")}));
  auto results = WriteOneBatch(std::move(requests));
  ASSERT_EQ(results.size(), 5u);
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(results[i].status) << i;
  ASSERT_FALSE(results[3].status);
  EXPECT_EQ(results[3].status.error().detail, Detail(StoreErr::kSenderQuota));
  EXPECT_TRUE(results[4].status);
  EXPECT_EQ(DepthOf(kBob), 4u);
}

TEST_P(QuotaTest, RemovalsPurgesAndDeletionGiveRoomBack) {
  std::vector<uint64_t> seqs;
  for (int i = 0; i < static_cast<int>(kQuota); ++i) {
    WriteResult w = WriteSync(Quota({From(kAlice, kBob, std::to_string(i), {}, kT0 + 10)}));
    ASSERT_TRUE(w.status);
    seqs.push_back(w.seqs[0]);
  }
  // A removal of an unknown seq frees nothing; one of Alice's frees one place, even in the
  // request that uses it.
  EXPECT_FALSE(WriteSync(Quota({From(kAlice, kBob, "x")}, {{kBob, 999}})).status);
  WriteResult swap = WriteSync(Quota({From(kAlice, kBob, "x")}, {{kBob, seqs[0]}}));
  ASSERT_TRUE(swap.status);
  EXPECT_EQ(swap.removed, 1u);
  EXPECT_FALSE(WriteSync(Quota({From(kAlice, kBob, "y")})).status);
  // Expired entries count until purged.
  now_ms_ = kT0 + 20;
  EXPECT_FALSE(WriteSync(Quota({From(kAlice, kBob, "y")})).status);
  EXPECT_EQ(PurgeAll(queue(), kT0 + 20), 2u);  // seqs[1], seqs[2]; "x" lives an hour
  EXPECT_TRUE(WriteSync(Quota({From(kAlice, kBob, "y")})).status);
  EXPECT_TRUE(WriteSync(Quota({From(kAlice, kBob, "z")})).status);
  EXPECT_FALSE(WriteSync(Quota({From(kAlice, kBob, "w")})).status);
  // Deleting the device's queue resets its counts.
  ASSERT_TRUE(queue().DeleteDevice(kBob));
  for (int i = 0; i < static_cast<int>(kQuota); ++i) {
    EXPECT_TRUE(WriteSync(Quota({From(kAlice, kBob, "again")})).status) << i;
  }
  EXPECT_FALSE(WriteSync(Quota({From(kAlice, kBob, "again")})).status);
}

TEST_P(QuotaTest, FanOutSkipsOnlyTheDeviceWhereTheSenderIsAtItsQuota) {
  for (int i = 0; i < static_cast<int>(kQuota); ++i) {
    ASSERT_TRUE(WriteSync(Quota({From(kAlice, kBob, std::to_string(i))})).status);
  }
  WriteResult fan = WriteSync(
      Quota({From(kAlice, kBob, "g"), From(kAlice, kBobTablet, "g"), From(kAlice, Addr(3, 1), "g")},
            {}, OnFullQueue::kSkipAppend));
  ASSERT_TRUE(fan.status);
  EXPECT_EQ(fan.outcomes,
            (std::vector<AppendOutcome>{AppendOutcome::kSkippedSenderQuota, AppendOutcome::kStored,
                                        AppendOutcome::kStored}));
  EXPECT_EQ(fan.seqs[0], 0u);
  EXPECT_EQ(DepthOf(kBob), kQuota);
  // A full queue is reported as full first.
  WriteResult both = WriteSync([] {
    WriteRequest r = Quota({From(kAlice, kBob, "g2")}, {}, OnFullQueue::kSkipAppend);
    r.max_depth = kQuota;
    return r;
  }());
  ASSERT_TRUE(both.status);
  EXPECT_EQ(both.outcomes[0], AppendOutcome::kSkippedFull);
}

// The RocksDB backend keeps the counts only in memory: they are rebuilt from the entries
// (which carry their sender) when a device's state is first loaded after a reopen.
TEST_P(QuotaTest, CountsAreRightAfterAReopen) {
  if (GetParam() != Backend::kRocksDb) GTEST_SKIP() << "the memory store does not persist";
  std::vector<uint64_t> seqs;
  for (int i = 0; i < static_cast<int>(kQuota); ++i) {
    WriteResult w = WriteSync(Quota({From(kAlice, kBob, std::to_string(i))}));
    ASSERT_TRUE(w.status);
    seqs.push_back(w.seqs[0]);
  }
  ASSERT_TRUE(WriteSync(Quota({From(kCarol, kBob, "c"), Msg(kBob, "receipt")})).status);
  Open();
  WriteResult over = WriteSync(Quota({From(kAlice, kBob, "after")}));
  ASSERT_FALSE(over.status);
  EXPECT_EQ(over.status.error().detail, Detail(StoreErr::kSenderQuota));
  EXPECT_TRUE(WriteSync(Quota({From(kCarol, kBob, "c2")})).status);  // Carol holds 1 of 3
  ASSERT_TRUE(WriteSync(Quota({}, {{kBob, seqs[1]}})).status);
  EXPECT_TRUE(WriteSync(Quota({From(kAlice, kBob, "after")})).status);
  // Removed before the reopen: state loaded by a removal first, then an append.
  Open();
  ASSERT_TRUE(WriteSync(Quota({}, {{kBob, seqs[0]}})).status);
  EXPECT_TRUE(WriteSync(Quota({From(kAlice, kBob, "after2")})).status);
  EXPECT_FALSE(WriteSync(Quota({From(kAlice, kBob, "after3")})).status);
  auto all = ReadAll(kBob);
  ASSERT_EQ(all.size(), 6u);
  EXPECT_EQ(all[0].sender, kAlice);  // the sender survives in the stored entry
}

// Entries with a sender are written as value version 2; version 1 (no sender) still
// decodes; every truncation of a version 2 value is corrupt.
TEST(QueueValueSchema, SenderRoundTripsAndTruncationsAreCorrupt) {
  const std::string with = internal::EncodeQueueValue(kT0, "payload", kAlice);
  ASSERT_EQ(with.size(), 1u + 8 + 16 + 7);
  EXPECT_EQ(static_cast<uint8_t>(with[0]), internal::kQueueValueWithSender);
  auto decoded = internal::DecodeQueueValue(with);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->expires_ms, kT0);
  EXPECT_EQ(decoded->payload, "payload");
  EXPECT_EQ(decoded->sender, kAlice);
  for (size_t n = 0; n < 1 + 8 + 16; ++n) {
    EXPECT_FALSE(internal::DecodeQueueValue(with.substr(0, n))) << n;
  }
  const std::string without = internal::EncodeQueueValue(kT0, "payload");
  EXPECT_EQ(static_cast<uint8_t>(without[0]), internal::kValueVersion);
  auto old = internal::DecodeQueueValue(without);
  ASSERT_TRUE(old);
  EXPECT_FALSE(old->sender.has_value());
  EXPECT_EQ(old->payload, "payload");
  std::string unknown = with;
  unknown[0] = 3;
  EXPECT_FALSE(internal::DecodeQueueValue(unknown));
}

INSTANTIATE_TEST_SUITE_P(Backends, QuotaTest,
                         ::testing::Values(Backend::kMemory, Backend::kRocksDb), BackendName);

}  // namespace
}  // namespace sotto::store::testing
