// The RocksDB store on a full disk (docs/store.md, "Disk full"): a real 8 MiB tmpfs is
// filled to the last byte; writes must fail as StoreErr::kNoSpace and storage_health()
// say so; once the space is freed, writes must work again without reopening the store,
// and every write acked before (and after) must still be there, also after a reopen.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "store/rocksdb/rocksdb_store.h"
#include "tests/small_filesystem.h"
#include "tests/unit/store_test_util.h"

namespace sotto::store::testing {
namespace {

using ::sotto::testing::SmallFilesystem;
using std::chrono::milliseconds;

constexpr size_t kFilesystemBytes = 8 << 20;
// Larger than a page, so that a write cannot fit in the WAL's last partial page.
constexpr size_t kBigPayload = 32 * 1024;
constexpr milliseconds kProbeInterval{20};
constexpr auto kRecoveryBound = std::chrono::seconds(20);  // only reached when a test fails

Result<std::unique_ptr<Store>> OpenOn(const std::string& path) {
  RocksDbOptions options;
  options.path = path;
  options.sync = true;
  options.space_probe_interval = kProbeInterval;
  return OpenRocksDbStore(options);
}

// The monitor thread clears disk_full on its own; nothing to wait on from outside but
// its state (the server's /ready polls it the same way).
bool AwaitWritable(const Store& store) {
  const auto until = std::chrono::steady_clock::now() + kRecoveryBound;
  while (store.storage_health().disk_full) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(kProbeInterval);
  }
  return true;
}

WriteResult WriteWait(MessageQueue& queue, WriteRequest request) {
  std::promise<WriteResult> promise;
  auto future = promise.get_future();
  queue.Write(std::move(request), [&promise](WriteRequest&&, WriteResult&& result) {
    promise.set_value(std::move(result));
  });
  return future.get();
}

TEST(RocksDbDiskFull, RefusesWhileFullAndRecoversWithoutLosingAckedWrites) {
  SmallFilesystem fs(kFilesystemBytes);
  ASSERT_TRUE(fs.ok()) << fs.error();
  const std::string path = fs.path() + "/db";
  const DeviceAddress bob = Addr(2, 1);
  auto store = OpenOn(path);
  ASSERT_TRUE(store) << store.error().ToString();
  MessageQueue& q = (*store)->queue();
  for (size_t i = 0; i < 5; ++i) {
    ASSERT_TRUE(WriteWait(q, Req({Msg(bob, "before-" + std::to_string(i))})).status);
  }
  EXPECT_FALSE((*store)->storage_health().disk_full);
  EXPECT_GT((*store)->storage_health().free_bytes, 0u);

  ASSERT_GT(fs.Fill(), 0);
  WriteResult refused = WriteWait(q, Req({Msg(bob, std::string(kBigPayload, 'x'))}));
  ASSERT_FALSE(refused.status);
  EXPECT_EQ(refused.status.error().code, Code::kResourceExhausted);
  EXPECT_EQ(refused.status.error().detail, Detail(StoreErr::kNoSpace));
  StorageHealth full = (*store)->storage_health();
  EXPECT_TRUE(full.disk_full);
  EXPECT_EQ(full.full_episodes, 1u);
  EXPECT_GE(full.writes_refused, 1u);
  EXPECT_EQ(full.recoveries, 0u);
  // Every kind of write says the same while full; reads still work.
  AccountRecord account;
  account.id = Id(9);
  account.handle = "+15550000009";
  auto put = (*store)->accounts().Put(account);
  ASSERT_FALSE(put);
  EXPECT_EQ(put.error().detail, Detail(StoreErr::kNoSpace));
  auto read = q.Read(bob, 0, 100, kT0);
  ASSERT_TRUE(read) << read.error().ToString();
  EXPECT_EQ(read->size(), 5u);
  EXPECT_TRUE((*store)->storage_health().disk_full);

  fs.Free();
  ASSERT_TRUE(AwaitWritable(**store)) << "writes never worked again";
  const StorageHealth healthy = (*store)->storage_health();
  EXPECT_EQ(healthy.recoveries, 1u);
  EXPECT_EQ(healthy.full_episodes, 1u);
  ASSERT_TRUE(WriteWait(q, Req({Msg(bob, "after")})).status);
  ASSERT_TRUE((*store)->accounts().Put(account));

  auto all = q.Read(bob, 0, 100, kT0);
  ASSERT_TRUE(all) << all.error().ToString();
  ASSERT_EQ(all->size(), 6u);
  EXPECT_EQ(all->front().payload, "before-0");
  EXPECT_EQ(all->back().payload, "after");

  store->reset();
  auto reopened = OpenOn(path);
  ASSERT_TRUE(reopened) << reopened.error().ToString();
  auto again = (*reopened)->queue().Read(bob, 0, 100, kT0);
  ASSERT_TRUE(again) << again.error().ToString();
  ASSERT_EQ(again->size(), 6u) << "an acked write was lost";
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ((*again)[i].payload, "before-" + std::to_string(i));
  EXPECT_EQ((*again)[5].payload, "after");
  EXPECT_TRUE((*reopened)->accounts().Get(Id(9)).value().has_value());
}

// The store stays full while the space is still taken, however often it retries.
TEST(RocksDbDiskFull, StaysFullUntilSpaceIsFreed) {
  SmallFilesystem fs(kFilesystemBytes);
  ASSERT_TRUE(fs.ok()) << fs.error();
  auto store = OpenOn(fs.path() + "/db");
  ASSERT_TRUE(store) << store.error().ToString();
  MessageQueue& q = (*store)->queue();
  ASSERT_GT(fs.Fill(), 0);
  ASSERT_FALSE(WriteWait(q, Req({Msg(Addr(2, 1), std::string(kBigPayload, 'x'))})).status);
  // Many probe intervals: each probe fails for lack of space.
  const auto until = std::chrono::steady_clock::now() + 25 * kProbeInterval;
  while (std::chrono::steady_clock::now() < until) {
    EXPECT_TRUE((*store)->storage_health().disk_full);
    std::this_thread::sleep_for(kProbeInterval);
  }
  EXPECT_EQ((*store)->storage_health().recoveries, 0u);
  EXPECT_FALSE(WriteWait(q, Req({Msg(Addr(2, 1), std::string(kBigPayload, 'y'))})).status);
  fs.Free();
  EXPECT_TRUE(AwaitWritable(**store));
  EXPECT_TRUE(WriteWait(q, Req({Msg(Addr(2, 1), "fits")})).status);
}

}  // namespace
}  // namespace sotto::store::testing
