// Tests of store/: accounts and their indexes, contacts, device keys and one-time
// prekeys against both backends (memory and RocksDB); RocksDB reopening; the RocksDB
// value codecs on damaged bytes. The queue's tests are in store_queue_test.cc.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <latch>
#include <mutex>
#include <thread>
#include <vector>

#include "store/rocksdb/internal/db.h"
#include "store/rocksdb/internal/schema.h"
#include "tests/unit/store_test_util.h"

namespace sotto::store::testing {
namespace {

DeviceRecord Device(uint32_t id, uint8_t key, std::string endpoint = {}) {
  DeviceRecord d;
  d.device_id = id;
  d.noise_key = NoiseKey(key);
  d.registration_id = 1000 + id;
  d.push_endpoint = std::move(endpoint);
  d.created_ms = kT0 + id;
  return d;
}

AccountRecord Account(uint8_t id, std::string handle, std::vector<DeviceRecord> devices) {
  AccountRecord a;
  a.id = Id(id);
  a.handle = std::move(handle);
  a.presence = PresenceVisibility::kEveryone;
  a.devices = std::move(devices);
  return a;
}

void ExpectSameAccount(const AccountRecord& got, const AccountRecord& want) {
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.handle, want.handle);
  EXPECT_EQ(got.presence, want.presence);
  ASSERT_EQ(got.devices.size(), want.devices.size());
  for (size_t i = 0; i < want.devices.size(); ++i) {
    EXPECT_EQ(got.devices[i].device_id, want.devices[i].device_id);
    EXPECT_EQ(got.devices[i].noise_key, want.devices[i].noise_key);
    EXPECT_EQ(got.devices[i].registration_id, want.devices[i].registration_id);
    EXPECT_EQ(got.devices[i].push_endpoint, want.devices[i].push_endpoint);
    EXPECT_EQ(got.devices[i].created_ms, want.devices[i].created_ms);
    EXPECT_EQ(got.devices[i].pending, want.devices[i].pending);
  }
  EXPECT_EQ(got.device_list, want.device_list);
  EXPECT_EQ(got.device_list_version, want.device_list_version);
  EXPECT_EQ(got.next_device_id, want.next_device_id);
}

DeviceKeys SomeDeviceKeys(uint8_t b) {
  DeviceKeys k;
  k.identity_key = PubKey(b);
  k.registration_id = 4242;
  k.signed_prekey.id = 7;
  k.signed_prekey.public_key = PubKey(static_cast<uint8_t>(b + 1));
  k.signed_prekey.signature.fill(b);
  return k;
}

TEST_P(StoreTest, AccountPutGetAndIndexes) {
  const AccountRecord alice =
      Account(1, "+15551234567", {Device(1, 0x11, "https://push.example/a"), Device(2, 0x12)});
  ASSERT_TRUE(accounts().Put(alice));

  auto got = accounts().Get(alice.id);
  ASSERT_TRUE(got && got->has_value());
  ExpectSameAccount(**got, alice);
  ASSERT_NE((*got)->FindDevice(2), nullptr);
  EXPECT_EQ((*got)->FindDevice(3), nullptr);

  auto by_handle = accounts().FindByHandle("+15551234567");
  ASSERT_TRUE(by_handle && by_handle->has_value());
  EXPECT_EQ(**by_handle, alice.id);
  auto by_key = accounts().FindByNoiseKey(NoiseKey(0x12));
  ASSERT_TRUE(by_key && by_key->has_value());
  EXPECT_EQ(**by_key, Addr(1, 2));

  EXPECT_FALSE(accounts().Get(Id(9))->has_value());
  EXPECT_FALSE(accounts().FindByHandle("+15550000000")->has_value());
  EXPECT_FALSE(accounts().FindByHandle("")->has_value());
  EXPECT_FALSE(accounts().FindByNoiseKey(NoiseKey(0x99))->has_value());
}

TEST_P(StoreTest, AccountPutRemovesIndexEntriesOfDevicesNoLongerListed) {
  ASSERT_TRUE(accounts().Put(Account(1, "+1555", {Device(1, 0x11), Device(2, 0x12)})));
  // Device 2 unlinked, device 1 re-keyed, device 3 added, new handle.
  AccountRecord next = Account(1, "+1666", {Device(1, 0x21), Device(3, 0x13)});
  next.revision = 1;
  ASSERT_TRUE(accounts().Put(next));

  ExpectSameAccount(**accounts().Get(Id(1)), next);
  EXPECT_FALSE(accounts().FindByHandle("+1555")->has_value());
  EXPECT_EQ(**accounts().FindByHandle("+1666"), Id(1));
  EXPECT_FALSE(accounts().FindByNoiseKey(NoiseKey(0x11))->has_value());
  EXPECT_FALSE(accounts().FindByNoiseKey(NoiseKey(0x12))->has_value());
  EXPECT_EQ(**accounts().FindByNoiseKey(NoiseKey(0x21)), Addr(1, 1));
  EXPECT_EQ(**accounts().FindByNoiseKey(NoiseKey(0x13)), Addr(1, 3));

  // The freed key and handle may now go to another account.
  EXPECT_TRUE(accounts().Put(Account(2, "+1555", {Device(1, 0x12)})));
}

TEST_P(StoreTest, AccountPutConflicts) {
  ASSERT_TRUE(accounts().Put(Account(1, "+1555", {Device(1, 0x11)})));

  auto key_taken = accounts().Put(Account(2, "+1777", {Device(1, 0x11)}));
  ASSERT_FALSE(key_taken);
  EXPECT_EQ(key_taken.error().detail, Detail(StoreErr::kConflict));
  auto handle_taken = accounts().Put(Account(2, "+1555", {Device(1, 0x22)}));
  ASSERT_FALSE(handle_taken);
  EXPECT_EQ(handle_taken.error().detail, Detail(StoreErr::kConflict));
  // Another device of the same account may not reuse the key either.
  AccountRecord reuse = Account(1, "+1555", {Device(1, 0x33), Device(2, 0x11)});
  reuse.revision = 1;
  auto same_account = accounts().Put(reuse);
  ASSERT_FALSE(same_account);
  EXPECT_EQ(same_account.error().detail, Detail(StoreErr::kConflict));
  auto twice = accounts().Put(Account(3, "", {Device(1, 0x44), Device(2, 0x44)}));
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().detail, Detail(StoreErr::kConflict));
  auto duplicate_id = accounts().Put(Account(3, "", {Device(1, 0x44), Device(1, 0x45)}));
  ASSERT_FALSE(duplicate_id);
  EXPECT_EQ(duplicate_id.error().detail, Detail(StoreErr::kInvalid));

  // Nothing of the refused Puts was written.
  EXPECT_FALSE(accounts().Get(Id(2))->has_value());
  EXPECT_FALSE(accounts().Get(Id(3))->has_value());
  EXPECT_FALSE(accounts().FindByHandle("+1777")->has_value());
  EXPECT_FALSE(accounts().FindByNoiseKey(NoiseKey(0x22))->has_value());
  EXPECT_FALSE(accounts().FindByNoiseKey(NoiseKey(0x33))->has_value());
  EXPECT_EQ((*accounts().Get(Id(1)))->devices.size(), 1u);
}

// Compare-and-set (docs/store.md): a Put names the revision it read; 0 = must not exist.
TEST_P(StoreTest, AccountPutIsCompareAndSet) {
  AccountRecord a = Account(1, "+1555", {Device(1, 0x11)});
  auto first = accounts().Put(a);
  ASSERT_TRUE(first) << first.error().ToString();
  EXPECT_EQ(*first, 1u);
  EXPECT_EQ((*accounts().Get(Id(1)))->revision, 1u);

  a.presence = PresenceVisibility::kNobody;
  auto again = accounts().Put(a);  // revision 0: the record must not exist, but does
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().detail, Detail(StoreErr::kStale));
  EXPECT_EQ(again.error().code, Code::kAborted);

  a.revision = 1;
  auto second = accounts().Put(a);
  ASSERT_TRUE(second) << second.error().ToString();
  EXPECT_EQ(*second, 2u);

  a.revision = 1;  // what a writer that read before the second Put holds
  a.handle = "+1666";
  a.devices[0].noise_key = NoiseKey(0x22);
  auto old = accounts().Put(a);
  ASSERT_FALSE(old);
  EXPECT_EQ(old.error().detail, Detail(StoreErr::kStale));
  auto got = accounts().Get(Id(1));
  ASSERT_TRUE(got && got->has_value());
  EXPECT_EQ((*got)->revision, 2u);
  EXPECT_EQ((*got)->presence, PresenceVisibility::kNobody);
  EXPECT_EQ((*got)->handle, "+1555") << "a stale Put wrote nothing";
  EXPECT_FALSE(accounts().FindByHandle("+1666")->has_value()) << "nor its indexes";
  EXPECT_FALSE(accounts().FindByNoiseKey(NoiseKey(0x22))->has_value());

  AccountRecord missing = Account(2, "+1777", {Device(1, 0x33)});
  missing.revision = 4;  // a record that is not there has revision 0
  auto absent = accounts().Put(missing);
  ASSERT_FALSE(absent);
  EXPECT_EQ(absent.error().detail, Detail(StoreErr::kStale));
  EXPECT_FALSE(accounts().Get(Id(2))->has_value());
}

// N writers each doing read-modify-write loops that retry on kStale: every increment
// lands exactly once (no lost update), and the revision counts every write.
TEST_P(StoreTest, ConcurrentReadModifyWriteLosesNoUpdate) {
  constexpr int kThreads = 4;
  constexpr int kIncrements = 200;
  ASSERT_TRUE(accounts().Put(Account(1, "+1555", {Device(1, 0x11)})));
  const CasRace race = RaceReadModifyWrite(
      kThreads, kIncrements,
      [&]() -> std::optional<AccountRecord> {
        auto current = accounts().Get(Id(1));
        if (!current || !current->has_value()) return std::nullopt;
        AccountRecord next = **current;
        ++next.devices[0].registration_id;
        return next;
      },
      [&](const AccountRecord& next) { return accounts().Put(next); });
  EXPECT_EQ(race.errors, 0);
  EXPECT_EQ(race.successes, kThreads * kIncrements);
  auto got = accounts().Get(Id(1));
  ASSERT_TRUE(got && got->has_value());
  EXPECT_EQ((*got)->devices[0].registration_id,
            Device(1, 0x11).registration_id + static_cast<uint32_t>(kThreads * kIncrements));
  EXPECT_EQ((*got)->revision, 1u + kThreads * kIncrements);
  RecordProperty("stale_retries", race.stale);
}

TEST_P(StoreTest, Contacts) {
  EXPECT_FALSE(*accounts().HasContact(Id(1), Id(2)));
  ASSERT_TRUE(accounts().AddContact(Id(1), Id(2)));
  ASSERT_TRUE(accounts().AddContact(Id(1), Id(2)));  // idempotent
  EXPECT_TRUE(*accounts().HasContact(Id(1), Id(2)));
  EXPECT_FALSE(*accounts().HasContact(Id(2), Id(1)));  // directed
  ASSERT_TRUE(accounts().RemoveContact(Id(1), Id(2)));
  ASSERT_TRUE(accounts().RemoveContact(Id(1), Id(3)));  // absent: fine
  EXPECT_FALSE(*accounts().HasContact(Id(1), Id(2)));
}

TEST_P(StoreTest, DeviceKeysPutGetReplaceDelete) {
  EXPECT_FALSE(keys().GetDeviceKeys(Addr(1, 1))->has_value());
  ASSERT_TRUE(keys().PutDeviceKeys(Addr(1, 1), SomeDeviceKeys(1)));
  ASSERT_TRUE(keys().PutDeviceKeys(Addr(1, 2), SomeDeviceKeys(2)));
  ASSERT_TRUE(keys().PutDeviceKeys(Addr(1, 1), SomeDeviceKeys(3)));
  auto got = keys().GetDeviceKeys(Addr(1, 1));
  ASSERT_TRUE(got && got->has_value());
  const DeviceKeys want = SomeDeviceKeys(3);
  EXPECT_EQ((*got)->identity_key, want.identity_key);
  EXPECT_EQ((*got)->registration_id, want.registration_id);
  EXPECT_EQ((*got)->signed_prekey.id, want.signed_prekey.id);
  EXPECT_EQ((*got)->signed_prekey.public_key, want.signed_prekey.public_key);
  EXPECT_EQ((*got)->signed_prekey.signature, want.signed_prekey.signature);

  ASSERT_TRUE(keys().DeleteDevice(Addr(1, 1)));
  EXPECT_FALSE(keys().GetDeviceKeys(Addr(1, 1))->has_value());
  EXPECT_TRUE(keys().GetDeviceKeys(Addr(1, 2))->has_value());
}

TEST_P(StoreTest, OneTimePreKeysAddReplaceCountClaimInIdOrder) {
  const DeviceAddress d = Addr(1, 1);
  EXPECT_EQ(*keys().CountOneTimePreKeys(d), 0u);
  EXPECT_FALSE(keys().ClaimOneTimePreKey(d)->has_value());
  const std::vector<OneTimePreKey> first = {{9, PubKey(9)}, {3, PubKey(3)}, {5, PubKey(5)}};
  ASSERT_TRUE(keys().AddOneTimePreKeys(d, first));
  const std::vector<OneTimePreKey> replace = {{3, PubKey(33)}};
  ASSERT_TRUE(keys().AddOneTimePreKeys(d, replace));
  ASSERT_TRUE(keys().AddOneTimePreKeys(Addr(1, 2), first));
  EXPECT_EQ(*keys().CountOneTimePreKeys(d), 3u);

  std::vector<OneTimePreKey> claimed;
  for (;;) {
    auto key = keys().ClaimOneTimePreKey(d);
    ASSERT_TRUE(key);
    if (!key->has_value()) break;
    claimed.push_back(**key);
  }
  ASSERT_EQ(claimed.size(), 3u);
  EXPECT_EQ(claimed[0].id, 3u);
  EXPECT_EQ(claimed[0].public_key, PubKey(33));
  EXPECT_EQ(claimed[1].id, 5u);
  EXPECT_EQ(claimed[2].id, 9u);
  EXPECT_EQ(*keys().CountOneTimePreKeys(d), 0u);
  EXPECT_EQ(*keys().CountOneTimePreKeys(Addr(1, 2)), 3u);

  ASSERT_TRUE(keys().DeleteDevice(Addr(1, 2)));
  EXPECT_EQ(*keys().CountOneTimePreKeys(Addr(1, 2)), 0u);
}

TEST_P(StoreTest, ConcurrentClaimsHandOutEachKeyOnce) {
  constexpr uint32_t kKeys = 400;
  constexpr int kThreads = 8;
  const DeviceAddress d = Addr(7, 1);
  std::vector<OneTimePreKey> pool;
  for (uint32_t id = 1; id <= kKeys; ++id) pool.push_back({id, PubKey(static_cast<uint8_t>(id))});
  ASSERT_TRUE(keys().AddOneTimePreKeys(d, pool));

  std::mutex mu;
  std::vector<uint32_t> claimed;
  int failures = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (;;) {
        auto key = keys().ClaimOneTimePreKey(d);
        std::lock_guard lock(mu);
        if (!key) ++failures;
        if (!key || !key->has_value()) return;
        claimed.push_back((*key)->id);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures, 0);
  std::sort(claimed.begin(), claimed.end());
  ASSERT_EQ(claimed.size(), kKeys);
  for (uint32_t i = 0; i < kKeys; ++i) EXPECT_EQ(claimed[i], i + 1);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest,
                         ::testing::Values(Backend::kMemory, Backend::kRocksDb), BackendName);

// ---- RocksDB only

class RocksDbStoreTest : public ::testing::Test {
 protected:
  Result<std::unique_ptr<Store>> Open(bool sync = false) {
    RocksDbOptions options;
    options.path = dir_.Sub("db");
    options.sync = sync;
    options.clock = [this] { return now_ms_.load(); };
    return OpenRocksDbStore(options);
  }

  std::atomic<uint64_t> now_ms_{kT0};
  TempDir dir_;
};

WriteResult WriteAndWait(MessageQueue& queue, WriteRequest request) {
  std::promise<WriteResult> promise;
  auto future = promise.get_future();
  queue.Write(std::move(request), [&promise](WriteRequest&&, WriteResult&& result) {
    promise.set_value(std::move(result));
  });
  return future.get();
}

TEST_F(RocksDbStoreTest, ReopenKeepsEverything) {
  const DeviceAddress bob = Addr(2, 1);
  {
    auto store = Open();
    ASSERT_TRUE(store) << store.error().ToString();
    Store& s = **store;
    ASSERT_TRUE(s.accounts().Put(Account(1, "+1555", {Device(1, 0x11), Device(2, 0x12)})));
    ASSERT_TRUE(s.accounts().AddContact(Id(1), Id(2)));
    ASSERT_TRUE(s.keys().PutDeviceKeys(bob, SomeDeviceKeys(5)));
    const std::vector<OneTimePreKey> prekeys = {{1, PubKey(1)}, {2, PubKey(2)}};
    ASSERT_TRUE(s.keys().AddOneTimePreKeys(bob, prekeys));
    WriteResult w = WriteAndWait(
        s.queue(), Req({Msg(bob, "one", "d1"), Msg(bob, "two", "d2"), Msg(Addr(3, 1), "other")}));
    ASSERT_TRUE(w.status);
    EXPECT_EQ(w.seqs, (std::vector<uint64_t>{1, 2, 1}));
    // Device 3's queue is acked empty: its seq must still continue after reopening.
    ASSERT_TRUE(WriteAndWait(s.queue(), Req({}, {{Addr(3, 1), 1}})).status);
  }
  auto store = Open();
  ASSERT_TRUE(store) << store.error().ToString();
  Store& s = **store;
  ExpectSameAccount(**s.accounts().Get(Id(1)),
                    Account(1, "+1555", {Device(1, 0x11), Device(2, 0x12)}));
  EXPECT_EQ(**s.accounts().FindByHandle("+1555"), Id(1));
  EXPECT_EQ(**s.accounts().FindByNoiseKey(NoiseKey(0x12)), Addr(1, 2));
  EXPECT_TRUE(*s.accounts().HasContact(Id(1), Id(2)));
  EXPECT_EQ((*s.keys().GetDeviceKeys(bob))->identity_key, PubKey(5));
  EXPECT_EQ(*s.keys().CountOneTimePreKeys(bob), 2u);
  EXPECT_EQ((*s.keys().ClaimOneTimePreKey(bob))->id, 1u);

  auto read = s.queue().Read(bob, 0, 10, kT0);
  ASSERT_TRUE(read);
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[0].payload, "one");
  EXPECT_EQ((*read)[1].seq, 2u);
  EXPECT_EQ(*s.queue().Depth(bob), 2u);

  WriteResult w = WriteAndWait(
      s.queue(), Req({Msg(bob, "dup", "d2"), Msg(bob, "three"), Msg(Addr(3, 1), "again")}));
  ASSERT_TRUE(w.status);
  EXPECT_EQ(w.outcomes[0], AppendOutcome::kDuplicate);
  EXPECT_EQ(w.seqs, (std::vector<uint64_t>{2, 3, 2}));
}

// Counts the entries of one column family of a closed store's database.
size_t CountEntries(const std::string& path, internal::Cf cf) {
  auto db = internal::Db::Open(path, false, std::chrono::milliseconds(1'000));
  EXPECT_TRUE(db) << db.error().ToString();
  if (!db) return 0;
  size_t n = 0;
  internal::KeyScan scan = internal::KeyScan::Below(**db, cf, std::nullopt);
  for (; scan.Valid(); scan.Next()) ++n;
  return n;
}

TEST_F(RocksDbStoreTest, PurgeSweepsDedupeEntriesWithoutAnIndex) {
  const DeviceAddress bob = Addr(2, 1);
  {
    auto store = Open();
    ASSERT_TRUE(store) << store.error().ToString();
    MessageQueue& q = (*store)->queue();
    ASSERT_TRUE(WriteAndWait(q, Req({Msg(bob, "a", "a", kT0 + 10), Msg(bob, "b", "b", kT0 + 10),
                                     Msg(bob, "c", "c", kT0 + 1000)}))
                    .status);
    now_ms_ = kT0 + 20;
    ASSERT_TRUE(WriteAndWait(q, Req({Msg(bob, "a2", "a", kT0 + 2000)})).status);
    for (;;) {
      auto n = q.PurgeExpired(kT0 + 20, 100);
      ASSERT_TRUE(n) << n.error().ToString();
      if (*n == 0) break;
    }
    EXPECT_EQ(*q.Depth(bob), 2u);
  }
  // Only the live entries ("c" and the replaced "a") remain; nothing is indexed.
  const std::string path = dir_.Sub("db");
  EXPECT_EQ(CountEntries(path, internal::Cf::kDedupe), 2u);
  EXPECT_EQ(CountEntries(path, internal::Cf::kQueue), 2u);
  EXPECT_EQ(CountEntries(path, internal::Cf::kLegacyQueueExpiry), 0u);
  EXPECT_EQ(CountEntries(path, internal::Cf::kLegacyDedupeExpiry), 0u);
}

TEST_F(RocksDbStoreTest, OpenClearsTheLegacyExpiryIndexes) {
  const std::string path = dir_.Sub("db");
  {
    auto db = internal::Db::Open(path, false, std::chrono::milliseconds(1'000));
    ASSERT_TRUE(db) << db.error().ToString();
    rocksdb::WriteBatch wb;
    ASSERT_TRUE((*db)->Put(&wb, internal::Cf::kLegacyQueueExpiry, std::string(36, 'q')));
    ASSERT_TRUE((*db)->Put(&wb, internal::Cf::kLegacyQueueExpiry, std::string(36, '\xff')));
    ASSERT_TRUE((*db)->Put(&wb, internal::Cf::kLegacyDedupeExpiry, std::string(30, 'd')));
    ASSERT_TRUE((*db)->Write(&wb, "test"));
  }
  {
    auto store = Open();
    ASSERT_TRUE(store) << store.error().ToString();
  }
  EXPECT_EQ(CountEntries(path, internal::Cf::kLegacyQueueExpiry), 0u);
  EXPECT_EQ(CountEntries(path, internal::Cf::kLegacyDedupeExpiry), 0u);
}

TEST_F(RocksDbStoreTest, SecondOpenOfTheSameDirectoryFails) {
  auto first = Open();
  ASSERT_TRUE(first);
  auto second = Open();
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().detail, Detail(StoreErr::kBackend));
}

TEST_F(RocksDbStoreTest, RejectsBadOptions) {
  RocksDbOptions options;
  auto empty = OpenRocksDbStore(options);
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().detail, Detail(StoreErr::kInvalid));
  options.path = dir_.Sub("db");
  options.max_batch_requests = 0;
  auto no_batch = OpenRocksDbStore(options);
  ASSERT_FALSE(no_batch);
  EXPECT_EQ(no_batch.error().detail, Detail(StoreErr::kInvalid));
}

// ---- codecs: every truncation and extension of a valid value is kCorrupt, never a crash

template <typename Decode>
void ExpectOnlyExactBytesDecode(const std::string& valid, Decode decode) {
  ASSERT_TRUE(decode(valid));
  for (size_t n = 0; n < valid.size(); ++n) {
    auto r = decode(valid.substr(0, n));
    ASSERT_FALSE(r) << "truncated to " << n;
    EXPECT_EQ(r.error().detail, Detail(StoreErr::kCorrupt));
  }
  std::string bad_version = valid;
  bad_version[0] = static_cast<char>(0x7f);
  EXPECT_FALSE(decode(bad_version));
}

// Linked devices (docs/devices.md): the trailer of version-2 account records, the
// active-devices rule, and version-1 records written before it.
TEST(StoreSchema, LinkedDevicesTrailerRoundTripsAndOldRecordsStillDecode) {
  using namespace internal;  // NOLINT(google-build-using-namespace): test of internals
  AccountRecord account = Account(1, "+1555", {Device(1, 0x11), Device(3, 0x13), Device(4, 0x14)});
  account.devices[2].pending = true;
  account.revision = 3;  // what a stored record has (never 0)
  account.device_list = "signed list";
  account.device_list_version = 9;
  account.next_device_id = 5;
  const std::string encoded = EncodeAccount(account);
  auto decode_account = [](std::string_view v) { return DecodeAccount(Id(1), v); };
  ExpectOnlyExactBytesDecode(encoded, decode_account);
  ExpectSameAccount(*decode_account(encoded), account);
  const std::vector<const DeviceRecord*> active = account.ActiveDevices();
  ASSERT_EQ(active.size(), 2u);
  EXPECT_EQ(active[1]->device_id, 3u);
  EXPECT_EQ(account.FindActiveDevice(4), nullptr);
  EXPECT_NE(account.FindDevice(4), nullptr);

  // A pending id that is not one of the account's devices, or is the primary: corrupt.
  std::string unknown = encoded;
  const size_t last_pending = encoded.size() - 1 - 1 - kRevisionBytes;  // then group_adds
  unknown[last_pending] = 9;
  EXPECT_FALSE(decode_account(unknown));
  std::string primary = encoded;
  primary[last_pending] = 1;
  EXPECT_FALSE(decode_account(primary));

  // Version 1 (no trailer): no list, nothing pending.
  AccountRecord plain = Account(1, "+1555", {Device(1, 0x11), Device(2, 0x12)});
  plain.revision = 1;
  std::string v1 = EncodeAccount(plain);
  v1.resize(v1.size() - (4 + 8 + 4 + 4 + 1 + kRevisionBytes));  // the empty trailer
  v1[0] = static_cast<char>(kValueVersion);
  auto old = decode_account(v1);
  ASSERT_TRUE(old);
  ExpectSameAccount(*old, plain);
  EXPECT_FALSE(decode_account(v1 + std::string(20, '\0')));  // v1 with a trailer
}

// Compare-and-set: the revision is stored at the end of version-4 account records;
// older versions read as revision 1; a stored 0 is corrupt.
TEST(StoreSchema, AccountRevisionRoundTripsAndOldRecordsReadAsOne) {
  using namespace internal;  // NOLINT(google-build-using-namespace): test of internals
  AccountRecord a = Account(1, "+1555", {Device(1, 0x11)});
  a.revision = 0x0102030405060708;
  const std::string encoded = EncodeAccount(a);
  EXPECT_EQ(static_cast<uint8_t>(encoded[0]), kAccountRevisionValueVersion);
  auto decoded = DecodeAccount(Id(1), encoded);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->revision, a.revision);
  ExpectSameAccount(*decoded, a);

  std::string zero = encoded;
  zero.replace(zero.size() - kRevisionBytes, kRevisionBytes, std::string(kRevisionBytes, '\0'));
  auto zero_decoded = DecodeAccount(Id(1), zero);
  ASSERT_FALSE(zero_decoded);
  EXPECT_EQ(zero_decoded.error().detail, Detail(StoreErr::kCorrupt));

  // Version 2 (what older versions wrote for the default group-adds): revision 1.
  std::string v2 = encoded;
  v2.resize(v2.size() - 1 - kRevisionBytes);
  v2[0] = static_cast<char>(kAccountValueVersion);
  auto old = DecodeAccount(Id(1), v2);
  ASSERT_TRUE(old);
  EXPECT_EQ(old->revision, 1u);
  ExpectSameAccount(*old, a);
  // Version 3: group_adds, no revision.
  std::string v3 = encoded;
  v3.resize(v3.size() - kRevisionBytes);
  v3[0] = static_cast<char>(kAccountConsentValueVersion);
  ASSERT_TRUE(DecodeAccount(Id(1), v3));
  EXPECT_EQ(DecodeAccount(Id(1), v3)->revision, 1u);
}

TEST(StoreSchema, DamagedValuesAreCorrupt) {
  using namespace internal;  // NOLINT(google-build-using-namespace): test of internals
  AccountRecord account = Account(1, "+1555", {Device(1, 0x11, "url"), Device(2, 0x12)});
  account.revision = 1;
  const std::string encoded = EncodeAccount(account);
  auto decode_account = [](std::string_view v) { return DecodeAccount(Id(1), v); };
  ExpectOnlyExactBytesDecode(encoded, decode_account);
  EXPECT_FALSE(decode_account(encoded + "x"));
  ExpectSameAccount(*decode_account(encoded), account);

  // A device count far beyond the bytes present.
  std::string huge = EncodeAccount(Account(1, "", {}));
  huge.replace(huge.size() - 4 - 1 - kRevisionBytes, 4, "\xff\xff\xff\xff");
  EXPECT_FALSE(decode_account(huge));
  std::string bad_presence = EncodeAccount(Account(1, "", {}));
  bad_presence[5] = 9;
  EXPECT_FALSE(decode_account(bad_presence));

  ExpectOnlyExactBytesDecode(EncodeDeviceKeys(SomeDeviceKeys(1)), DecodeDeviceKeys);
  ExpectOnlyExactBytesDecode(EncodeAccountId(Id(1)), DecodeAccountId);
  ExpectOnlyExactBytesDecode(EncodeDeviceAddress(Addr(1, 2)), DecodeDeviceAddress);
  ExpectOnlyExactBytesDecode(EncodePublicKey(PubKey(1)), DecodePublicKey);
  ExpectOnlyExactBytesDecode(EncodeSeq(42), DecodeSeq);
  ExpectOnlyExactBytesDecode(EncodeDedupeValue({1, 2}), DecodeDedupeValue);
  const std::string queue_value = EncodeQueueValue(kT0, "payload");
  ExpectOnlyExactBytesDecode(queue_value.substr(0, 9), DecodeQueueValue);
  EXPECT_EQ(DecodeQueueValue(queue_value)->payload, "payload");

  EXPECT_FALSE(ParseQueueKey("short"));
  EXPECT_EQ(ParseQueueKey(QueueKey(Addr(1, 2), 99))->seq, 99u);
}

TEST(StoreSchema, KeysSortInLogicalOrder) {
  using namespace internal;  // NOLINT(google-build-using-namespace): test of internals
  EXPECT_LT(QueueKey(Addr(1, 1), 255), QueueKey(Addr(1, 1), 256));
  EXPECT_LT(QueueKey(Addr(1, 1), ~uint64_t{0}), QueueKey(Addr(1, 2), 0));
  // The purge hops from device to device with PrefixSuccessor.
  EXPECT_EQ(PrefixSuccessor(DeviceKey(Addr(1, 1))), DeviceKey(Addr(1, 2)));
  EXPECT_LT(QueueKey(Addr(1, 1), ~uint64_t{0}), *PrefixSuccessor(DeviceKey(Addr(1, 1))));
  EXPECT_EQ(PrefixSuccessor(std::string("a\xff\xff", 3)), "b");
  EXPECT_FALSE(PrefixSuccessor(std::string("\xff\xff", 2)));
}

}  // namespace
}  // namespace sotto::store::testing
