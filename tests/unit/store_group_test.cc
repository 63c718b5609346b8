// Tests of store/'s GroupStore against both backends (put, get, replace, delete, the
// ordering check), the queue's skip-on-full appends that group fan-out uses, RocksDB
// reopening, and the group record codec on damaged bytes.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "store/rocksdb/internal/schema.h"
#include "tests/unit/store_test_util.h"

namespace sotto::store::testing {
namespace {

GroupId Gid(uint8_t b) {
  GroupId id{};
  id.fill(b);
  return id;
}

GroupRecord Group(uint8_t id, uint64_t version, std::vector<GroupMemberRecord> members) {
  GroupRecord g;
  g.id = Gid(id);
  g.version = version;
  g.created_ms = kT0 + id;
  g.members = std::move(members);
  return g;
}

void ExpectSameGroup(const GroupRecord& got, const GroupRecord& want) {
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.version, want.version);
  EXPECT_EQ(got.created_ms, want.created_ms);
  ASSERT_EQ(got.members.size(), want.members.size());
  for (size_t i = 0; i < want.members.size(); ++i) {
    EXPECT_EQ(got.members[i].account, want.members[i].account);
    EXPECT_EQ(got.members[i].admin, want.members[i].admin);
    EXPECT_EQ(got.members[i].joined_version, want.members[i].joined_version);
  }
}

using GroupStoreTest = StoreTest;

TEST_P(GroupStoreTest, PutGetReplaceDelete) {
  GroupStore& groups = store_->groups();
  EXPECT_FALSE(groups.Get(Gid(1))->has_value());
  const GroupRecord g = Group(1, 1, {{Id(1), true, 1}, {Id(2), false, 1}, {Id(3), false, 1}});
  ASSERT_TRUE(groups.Put(g));
  ASSERT_TRUE(groups.Put(Group(2, 7, {{Id(9), true, 3}})));
  ExpectSameGroup(**groups.Get(Gid(1)), g);
  const auto stored = groups.Get(Gid(1));  // FindMember points into it: keep it alive
  ASSERT_TRUE(stored && stored->has_value());
  const GroupMemberRecord* two = (*stored)->FindMember(Id(2));
  ASSERT_NE(two, nullptr);
  EXPECT_FALSE(two->admin);
  EXPECT_EQ((*stored)->FindMember(Id(4)), nullptr);

  GroupRecord v2 = Group(1, 2, {{Id(1), false, 1}, {Id(3), true, 1}, {Id(4), false, 2}});
  v2.revision = 1;
  ASSERT_TRUE(groups.Put(v2));
  ExpectSameGroup(**groups.Get(Gid(1)), v2);
  ASSERT_TRUE(groups.Delete(Gid(1), 2));
  EXPECT_FALSE(groups.Get(Gid(1))->has_value());
  EXPECT_TRUE(groups.Delete(Gid(1), 0));  // absent, as expected: nothing happens
  EXPECT_EQ((**groups.Get(Gid(2))).version, 7u);
}

TEST_P(GroupStoreTest, PutRefusesMembersOutOfOrderOrTwice) {
  GroupStore& groups = store_->groups();
  auto unordered = groups.Put(Group(1, 1, {{Id(2), true, 1}, {Id(1), false, 1}}));
  ASSERT_FALSE(unordered);
  EXPECT_EQ(unordered.error().detail, Detail(StoreErr::kInvalid));
  auto twice = groups.Put(Group(1, 1, {{Id(1), true, 1}, {Id(1), false, 1}}));
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().detail, Detail(StoreErr::kInvalid));
  EXPECT_FALSE(groups.Get(Gid(1))->has_value());
  EXPECT_TRUE(groups.Put(Group(1, 1, {})));  // no members: allowed (the server deletes instead)
}

TEST_P(GroupStoreTest, SkipAppendDropsOnlyAppendsToFullQueues) {
  const DeviceAddress bob = Addr(2, 1);
  const DeviceAddress carol = Addr(3, 1);
  ASSERT_TRUE(WriteSync(Req({Msg(bob, "1"), Msg(bob, "2")}, {}, 2)).status);
  WriteRequest fanout =
      Req({Msg(carol, "g", "g-id"), Msg(bob, "g", "g-id"), Msg(carol, "h")}, {}, 2);
  fanout.on_full = OnFullQueue::kSkipAppend;
  WriteResult r = WriteSync(std::move(fanout));
  ASSERT_TRUE(r.status) << r.status.error().ToString();
  EXPECT_EQ(r.outcomes,
            (std::vector<AppendOutcome>{AppendOutcome::kStored, AppendOutcome::kSkippedFull,
                                        AppendOutcome::kStored}));
  EXPECT_EQ(r.seqs, (std::vector<uint64_t>{1, 0, 2}));
  EXPECT_EQ(DepthOf(bob), 2u);
  EXPECT_EQ(DepthOf(carol), 2u);
  // The skipped append recorded no dedupe id: once there is room it is stored.
  ASSERT_TRUE(WriteSync(Req({}, {{bob, 1}})).status);
  WriteRequest retry = Req({Msg(bob, "g", "g-id"), Msg(carol, "g", "g-id")}, {}, 2);
  retry.on_full = OnFullQueue::kSkipAppend;
  WriteResult again = WriteSync(std::move(retry));
  ASSERT_TRUE(again.status);
  EXPECT_EQ(again.outcomes,
            (std::vector<AppendOutcome>{AppendOutcome::kStored, AppendOutcome::kDuplicate}));
  EXPECT_EQ(queue().stats().duplicates, 1u);
}

// Issue 12 (consent): a group keeps the accounts that left refusing re-adds; an account
// keeps who may add it to groups.
TEST_P(GroupStoreTest, RefusalsAndGroupAddsAreKept) {
  GroupStore& groups = store_->groups();
  GroupRecord g = Group(1, 4, {{Id(1), true, 1}, {Id(3), false, 1}});
  g.refused = {Id(2), Id(4)};
  ASSERT_TRUE(groups.Put(g));
  auto got = groups.Get(Gid(1));
  ASSERT_TRUE(got && got->has_value());
  ExpectSameGroup(**got, g);
  EXPECT_EQ((*got)->refused, (std::vector<AccountId>{Id(2), Id(4)}));
  EXPECT_TRUE((*got)->Refuses(Id(4)));
  EXPECT_FALSE((*got)->Refuses(Id(3)));
  g.refused.clear();
  g.revision = 1;
  ASSERT_TRUE(groups.Put(g));
  EXPECT_TRUE((*groups.Get(Gid(1)))->refused.empty()) << "a lifted refusal is gone";
  g.revision = 2;

  for (const std::vector<AccountId>& bad :
       {std::vector<AccountId>{Id(4), Id(2)}, std::vector<AccountId>{Id(2), Id(2)},
        std::vector<AccountId>{Id(3)}}) {  // a member
    GroupRecord b = g;
    b.refused = bad;
    auto refused = groups.Put(b);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().detail, Detail(StoreErr::kInvalid));
  }
  EXPECT_TRUE((*groups.Get(Gid(1)))->refused.empty()) << "a refused Put changed nothing";

  AccountRecord a;
  a.id = Id(7);
  a.handle = "+15557";
  a.devices.push_back(DeviceRecord{1, StaticKey{7}, 0, "", kT0, false});
  auto put = store_->accounts().Put(a);
  ASSERT_TRUE(put);
  EXPECT_EQ((*store_->accounts().Get(Id(7)))->group_adds, GroupAdds::kEveryone);
  for (GroupAdds adds : {GroupAdds::kContacts, GroupAdds::kNobody, GroupAdds::kEveryone}) {
    a.group_adds = adds;
    a.revision = *put;
    put = store_->accounts().Put(a);
    ASSERT_TRUE(put);
    EXPECT_EQ((*store_->accounts().Get(Id(7)))->group_adds, adds);
  }
}

// Compare-and-set (docs/store.md): Put and Delete name the revision they read.
TEST_P(GroupStoreTest, PutAndDeleteAreCompareAndSet) {
  GroupStore& groups = store_->groups();
  GroupRecord g = Group(1, 1, {{Id(1), true, 1}});
  auto first = groups.Put(g);
  ASSERT_TRUE(first) << first.error().ToString();
  EXPECT_EQ(*first, 1u);
  auto exists = groups.Put(g);  // revision 0 on an existing group
  ASSERT_FALSE(exists);
  EXPECT_EQ(exists.error().detail, Detail(StoreErr::kStale));
  EXPECT_EQ(exists.error().code, Code::kAborted);

  g.revision = 1;
  g.version = 2;
  auto second = groups.Put(g);
  ASSERT_TRUE(second) << second.error().ToString();
  EXPECT_EQ(*second, 2u);
  g.revision = 1;  // stale
  g.version = 3;
  auto old = groups.Put(g);
  ASSERT_FALSE(old);
  EXPECT_EQ(old.error().detail, Detail(StoreErr::kStale));
  EXPECT_EQ((*groups.Get(Gid(1)))->version, 2u) << "a stale Put wrote nothing";
  EXPECT_EQ((*groups.Get(Gid(1)))->revision, 2u);

  auto stale_delete = groups.Delete(Gid(1), 1);
  ASSERT_FALSE(stale_delete);
  EXPECT_EQ(stale_delete.error().detail, Detail(StoreErr::kStale));
  auto zero_delete = groups.Delete(Gid(1), 0);
  ASSERT_FALSE(zero_delete);
  EXPECT_EQ(zero_delete.error().detail, Detail(StoreErr::kStale));
  EXPECT_TRUE(groups.Get(Gid(1))->has_value()) << "a stale Delete deleted nothing";
  ASSERT_TRUE(groups.Delete(Gid(1), 2));
  auto gone = groups.Delete(Gid(1), 2);  // deleted meanwhile by someone else
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().detail, Detail(StoreErr::kStale));
  g.revision = 2;
  auto resurrect = groups.Put(g);  // a writer that read before the delete
  ASSERT_FALSE(resurrect);
  EXPECT_EQ(resurrect.error().detail, Detail(StoreErr::kStale));
  EXPECT_FALSE(groups.Get(Gid(1))->has_value());
}

TEST_P(GroupStoreTest, ConcurrentReadModifyWriteLosesNoUpdate) {
  constexpr int kThreads = 4;
  constexpr int kIncrements = 200;
  GroupStore& groups = store_->groups();
  ASSERT_TRUE(groups.Put(Group(1, 0, {{Id(1), true, 1}})));
  const CasRace race = RaceReadModifyWrite(
      kThreads, kIncrements,
      [&]() -> std::optional<GroupRecord> {
        auto current = groups.Get(Gid(1));
        if (!current || !current->has_value()) return std::nullopt;
        GroupRecord next = **current;
        ++next.version;
        return next;
      },
      [&](const GroupRecord& next) { return groups.Put(next); });
  EXPECT_EQ(race.errors, 0);
  EXPECT_EQ(race.successes, kThreads * kIncrements);
  RecordProperty("stale_retries", race.stale);
  auto got = groups.Get(Gid(1));
  ASSERT_TRUE(got && got->has_value());
  EXPECT_EQ((*got)->version, static_cast<uint64_t>(kThreads * kIncrements));
  EXPECT_EQ((*got)->revision, 1u + kThreads * kIncrements);
}

INSTANTIATE_TEST_SUITE_P(Backends, GroupStoreTest,
                         ::testing::Values(Backend::kMemory, Backend::kRocksDb), BackendName);

TEST(RocksDbGroupStoreTest, ReopenKeepsGroups) {
  TempDir dir;
  RocksDbOptions options;
  options.path = dir.Sub("db");
  const GroupRecord g = Group(5, 3, {{Id(1), false, 1}, {Id(2), true, 2}});
  {
    auto store = OpenRocksDbStore(options);
    ASSERT_TRUE(store) << store.error().ToString();
    ASSERT_TRUE((*store)->groups().Put(g));
  }
  auto store = OpenRocksDbStore(options);
  ASSERT_TRUE(store) << store.error().ToString();
  auto got = (*store)->groups().Get(g.id);
  ASSERT_TRUE(got && got->has_value());
  ExpectSameGroup(**got, g);
}

// The version-1 encoding of a group without refusals (what older versions wrote): the
// current one without refused_count(4) and revision(8).
std::string V1Group(const GroupRecord& g) {
  std::string v = internal::EncodeGroup(g);
  v.resize(v.size() - 4 - internal::kRevisionBytes);
  v[0] = static_cast<char>(internal::kValueVersion);
  return v;
}

TEST(StoreSchema, DamagedGroupRecordsAreCorrupt) {
  using namespace internal;  // NOLINT(google-build-using-namespace): test of internals
  GroupRecord g = Group(1, 9, {{Id(1), true, 1}, {Id(2), false, 4}});
  g.revision = 1;
  const std::string valid = EncodeGroup(g);
  auto decode = [](std::string_view v) { return DecodeGroup(Gid(1), v); };
  ASSERT_TRUE(decode(valid));
  ExpectSameGroup(*decode(valid), g);
  for (size_t n = 0; n < valid.size(); ++n) {
    auto r = decode(valid.substr(0, n));
    ASSERT_FALSE(r) << "truncated to " << n;
    EXPECT_EQ(r.error().detail, Detail(StoreErr::kCorrupt));
  }
  EXPECT_FALSE(decode(valid + "x"));
  std::string bad_version = valid;
  bad_version[0] = 0x7f;
  EXPECT_FALSE(decode(bad_version));
  // Header: v(1) version(8) created(8) count(4); member 1 flags at 21 + 16.
  std::string bad_flags = valid;
  bad_flags[21 + 16] = 0x03;
  EXPECT_FALSE(decode(bad_flags));
  std::string huge = valid;
  huge.replace(17, 4, "\xff\xff\xff\xff");
  EXPECT_FALSE(decode(huge));
  std::string swapped = V1Group(Group(1, 9, {{Id(1), true, 1}}));
  swapped += V1Group(Group(1, 9, {{Id(0), true, 1}})).substr(21);
  swapped[20] = 2;  // count
  EXPECT_FALSE(decode(swapped)) << "members out of order";
  std::string twice = V1Group(Group(1, 9, {{Id(1), true, 1}}));
  twice += twice.substr(21);
  twice[20] = 2;
  EXPECT_FALSE(decode(twice)) << "a member twice";
}

TEST(StoreSchema, GroupRefusalsAndAccountGroupAddsCodec) {
  using namespace internal;  // NOLINT(google-build-using-namespace): test of internals
  auto decode = [](std::string_view v) { return DecodeGroup(Gid(1), v); };
  GroupRecord g = Group(1, 9, {{Id(1), true, 1}});
  g.revision = 1;
  EXPECT_EQ(static_cast<uint8_t>(EncodeGroup(g)[0]), kGroupRevisionValueVersion);
  const std::string v1 = V1Group(g);
  ASSERT_TRUE(decode(v1)) << "version 1 (older data directories) still reads";
  ExpectSameGroup(*decode(v1), g);
  EXPECT_EQ(decode(v1)->revision, 1u);
  g.refused = {Id(2), Id(3)};
  g.revision = 77;
  const std::string valid = EncodeGroup(g);
  EXPECT_EQ(static_cast<uint8_t>(valid[0]), kGroupRevisionValueVersion);
  EXPECT_EQ(decode(valid)->revision, 77u);
  std::string v2 = valid.substr(0, valid.size() - kRevisionBytes);
  v2[0] = static_cast<char>(kGroupRefusalsValueVersion);
  ASSERT_TRUE(decode(v2)) << "version 2 still reads";
  EXPECT_EQ(decode(v2)->refused, g.refused);
  EXPECT_EQ(decode(v2)->revision, 1u);
  std::string zero = valid;
  zero.replace(zero.size() - kRevisionBytes, kRevisionBytes, std::string(kRevisionBytes, '\0'));
  EXPECT_FALSE(decode(zero)) << "a stored revision is never 0";
  ASSERT_TRUE(decode(valid));
  EXPECT_EQ(decode(valid)->refused, g.refused);
  for (size_t n = 0; n < valid.size(); ++n) {
    auto r = decode(valid.substr(0, n));
    ASSERT_FALSE(r) << "truncated to " << n;
    EXPECT_EQ(r.error().detail, Detail(StoreErr::kCorrupt));
  }
  EXPECT_FALSE(decode(valid + "x"));
  const size_t refusals = 21 + 25;  // header, one member
  std::string swapped = valid;
  std::swap_ranges(swapped.begin() + refusals + 4, swapped.begin() + refusals + 20,
                   swapped.begin() + refusals + 20);
  EXPECT_FALSE(decode(swapped)) << "refusals out of order";
  GroupRecord member = Group(1, 9, {{Id(1), true, 1}});
  member.revision = 1;
  member.refused = {Id(1)};
  EXPECT_FALSE(decode(EncodeGroup(member))) << "a member refuses";
  std::string none = valid.substr(0, refusals) + std::string("\0\0\0\0", 4);
  none[0] = static_cast<char>(kGroupRefusalsValueVersion);
  EXPECT_FALSE(decode(none)) << "version 2 with no refusals";

  AccountRecord a;
  a.id = Id(5);
  a.handle = "+15555";
  EXPECT_EQ(static_cast<uint8_t>(EncodeAccount(a)[0]), kAccountRevisionValueVersion);
  a.group_adds = GroupAdds::kNobody;
  a.revision = 1;
  const std::string account = EncodeAccount(a);
  EXPECT_EQ(static_cast<uint8_t>(account[0]), kAccountRevisionValueVersion);
  ASSERT_TRUE(DecodeAccount(a.id, account));
  EXPECT_EQ(DecodeAccount(a.id, account)->group_adds, GroupAdds::kNobody);
  std::string bad = account;
  bad[bad.size() - 1 - kRevisionBytes] = 3;
  EXPECT_FALSE(DecodeAccount(a.id, bad));
  EXPECT_FALSE(DecodeAccount(a.id, account.substr(0, account.size() - 1)));
}

}  // namespace
}  // namespace sotto::store::testing
