// Unit tests of server/groups.{h,cc} over the memory store: the membership rules, the
// successor of a last admin, versions, the cache, serialized changes, the devices digest
// over several devices per account, and get_group_devices pages for 1024 members with 5
// devices each.
#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "crypto/random.h"
#include "server/groups.h"
#include "store/memory_store.h"

namespace sotto::server {
namespace {

AccountId Acc(uint16_t n) {
  AccountId id{};
  id[0] = static_cast<uint8_t>(n >> 8);
  id[1] = static_cast<uint8_t>(n);
  return id;
}

uint16_t Detail(GroupErr e) { return static_cast<uint16_t>(e); }

class GroupsTest : public ::testing::Test {
 protected:
  // No rate limits unless a test sets them: several tests make many changes at one time.
  static GroupsConfig Unlimited() {
    GroupsConfig c;
    c.account_change_rate = {};
    c.group_change_rate = {};
    return c;
  }
  void SetUp() override { Make(Unlimited()); }

  void Make(GroupsConfig config) {
    groups_ = std::make_unique<Groups>(store_->groups(), accounts_, config);
  }

  // Accounts 1..n, each with `devices` devices (ids 1..devices, registration id 100n+d).
  void AddAccounts(uint16_t n, uint32_t devices = 1) {
    for (uint16_t i = 1; i <= n; ++i) {
      store::AccountRecord a;
      a.id = Acc(i);
      for (uint32_t d = 1; d <= devices; ++d) {
        store::DeviceRecord dev;
        dev.device_id = d;
        dev.noise_key[0] = static_cast<uint8_t>(i >> 8);
        dev.noise_key[1] = static_cast<uint8_t>(i);
        dev.noise_key[2] = static_cast<uint8_t>(d);
        dev.registration_id = 100u * i + d;
        a.devices.push_back(dev);
      }
      ASSERT_TRUE(store_->accounts().Put(a));
    }
  }

  GroupId CreateOk(uint16_t creator, std::vector<uint16_t> others) {
    std::vector<AccountId> ids;
    for (uint16_t o : others) ids.push_back(Acc(o));
    auto c = groups_->Create(Acc(creator), ids, now_ms_, crypto::SystemRandom());
    EXPECT_TRUE(c) << (c ? "" : c.error().ToString());
    return c ? c->after.id : GroupId{};
  }

  Result<GroupChange> Do(uint16_t actor, const GroupId& g, GroupOp op, std::vector<uint16_t> who) {
    std::vector<AccountId> ids;
    for (uint16_t w : who) ids.push_back(Acc(w));
    return groups_->Modify(Acc(actor), g, op, ids, now_ms_);
  }

  bool IsAdmin(const GroupId& g, uint16_t a) {
    auto got = groups_->Get(g);
    const store::GroupMemberRecord* m = got && *got ? (*got)->FindMember(Acc(a)) : nullptr;
    return m != nullptr && m->admin;
  }

  void SetGroupAdds(uint16_t account, store::GroupAdds adds) {
    ASSERT_TRUE(accounts_.SetGroupAdds(Acc(account), adds));
  }

  uint64_t now_ms_ = 1000;  // the rate limits' clock
  std::unique_ptr<store::Store> store_ = store::NewMemoryStore();
  Accounts accounts_{store_->accounts()};
  std::unique_ptr<Groups> groups_;
};

TEST_F(GroupsTest, CreateChecksItsAccounts) {
  ASSERT_NO_FATAL_FAILURE(AddAccounts(4));
  auto c =
      groups_->Create(Acc(1), std::vector<AccountId>{Acc(3), Acc(2)}, 1000, crypto::SystemRandom());
  ASSERT_TRUE(c);
  EXPECT_EQ(c->after.version, 1u);
  ASSERT_EQ(c->after.members.size(), 3u);
  EXPECT_EQ(c->after.members[0].account, Acc(1));
  EXPECT_TRUE(c->after.members[0].admin);
  EXPECT_FALSE(c->after.members[1].admin);
  EXPECT_EQ(c->accounts, (std::vector<AccountId>{Acc(2), Acc(3)}));
  EXPECT_EQ(c->notify, (std::vector<AccountId>{Acc(1), Acc(2), Acc(3)}));

  auto self = groups_->Create(Acc(1), std::vector<AccountId>{Acc(1)}, 0, crypto::SystemRandom());
  EXPECT_EQ(self.error().detail, Detail(GroupErr::kBadRequest));
  auto twice =
      groups_->Create(Acc(1), std::vector<AccountId>{Acc(2), Acc(2)}, 0, crypto::SystemRandom());
  EXPECT_EQ(twice.error().detail, Detail(GroupErr::kBadRequest));
  auto ghost = groups_->Create(Acc(1), std::vector<AccountId>{Acc(99)}, 0, crypto::SystemRandom());
  EXPECT_EQ(ghost.error().detail, Detail(GroupErr::kNoAccount));
  auto alone = groups_->Create(Acc(1), {}, 0, crypto::SystemRandom());
  EXPECT_TRUE(alone);
}

TEST_F(GroupsTest, LimitsAtAndPastTheEdge) {
  ASSERT_NO_FATAL_FAILURE(AddAccounts(6));
  Make(GroupsConfig{4, 3});
  const GroupId g = CreateOk(1, {2, 3, 4});  // 4 members, 3 named: both limits exactly
  EXPECT_EQ(Do(1, g, GroupOp::kAdd, {5}).error().detail, Detail(GroupErr::kTooManyMembers));
  auto named = groups_->Create(Acc(1), std::vector<AccountId>{Acc(2), Acc(3), Acc(4), Acc(5)}, 0,
                               crypto::SystemRandom());
  EXPECT_EQ(named.error().detail, Detail(GroupErr::kTooManyAccounts));
  ASSERT_TRUE(Do(1, g, GroupOp::kRemove, {2, 3, 4}));
  EXPECT_EQ(Do(1, g, GroupOp::kAdd, {2, 3, 4, 5}).error().detail,
            Detail(GroupErr::kTooManyAccounts));
  EXPECT_TRUE(Do(1, g, GroupOp::kAdd, {2, 3, 4}));
}

TEST_F(GroupsTest, AdminRulesAndVersions) {
  ASSERT_NO_FATAL_FAILURE(AddAccounts(5));
  const GroupId g = CreateOk(1, {2, 3});
  EXPECT_EQ(Do(2, g, GroupOp::kAdd, {4}).error().detail, Detail(GroupErr::kNotAdmin));
  EXPECT_EQ(Do(4, g, GroupOp::kLeave, {}).error().detail, Detail(GroupErr::kNotMember));
  EXPECT_EQ(Do(1, GroupId{}, GroupOp::kLeave, {}).error().detail, Detail(GroupErr::kNoGroup));
  EXPECT_EQ(Do(1, g, GroupOp::kAdd, {}).error().detail, Detail(GroupErr::kBadRequest));
  EXPECT_EQ(Do(1, g, GroupOp::kCreate, {4}).error().detail, Detail(GroupErr::kBadRequest));
  auto added = Do(1, g, GroupOp::kAdd, {4});
  ASSERT_TRUE(added);
  EXPECT_EQ(added->after.version, 2u);
  EXPECT_EQ(added->notify, (std::vector<AccountId>{Acc(1), Acc(2), Acc(3), Acc(4)}));
  ASSERT_TRUE(Do(1, g, GroupOp::kPromote, {2}));
  EXPECT_TRUE(IsAdmin(g, 2));
  auto removed = Do(2, g, GroupOp::kRemove, {3});
  ASSERT_TRUE(removed);
  EXPECT_EQ(removed->after.version, 4u);
  EXPECT_EQ(removed->notify.size(), 4u) << "the removed member is told too";
  EXPECT_EQ(removed->after.FindMember(Acc(3)), nullptr);
  EXPECT_EQ(Do(2, g, GroupOp::kRemove, {2}).error().detail, Detail(GroupErr::kBadRequest));
  EXPECT_EQ(Do(1, g, GroupOp::kDemote, {4}).error().detail, Detail(GroupErr::kConflict));
  EXPECT_EQ(Do(1, g, GroupOp::kPromote, {2}).error().detail, Detail(GroupErr::kConflict));
  ASSERT_TRUE(Do(1, g, GroupOp::kDemote, {1}));  // bob is still admin
  EXPECT_EQ(Do(2, g, GroupOp::kDemote, {2}).error().detail, Detail(GroupErr::kConflict));
  EXPECT_EQ((*groups_->Get(g))->version, 5u);
}

TEST_F(GroupsTest, TheLongestStandingMemberSucceedsTheLastAdmin) {
  ASSERT_NO_FATAL_FAILURE(AddAccounts(5));
  const GroupId g = CreateOk(5, {3, 4});      // 3 and 4 since version 1
  ASSERT_TRUE(Do(5, g, GroupOp::kAdd, {2}));  // 2 since version 2: lowest id, but newer
  auto left = Do(5, g, GroupOp::kLeave, {});
  ASSERT_TRUE(left);
  EXPECT_EQ(left->after.version, 3u);
  EXPECT_EQ(left->accounts, std::vector<AccountId>{Acc(5)});
  EXPECT_FALSE(IsAdmin(g, 2));
  EXPECT_TRUE(IsAdmin(g, 3)) << "version 1 beats version 2; then the lower id";
  EXPECT_FALSE(IsAdmin(g, 4));
  // A non-admin leaving hands nothing over; the last member leaving deletes the group.
  ASSERT_TRUE(Do(4, g, GroupOp::kLeave, {}));
  EXPECT_TRUE(IsAdmin(g, 3));
  ASSERT_TRUE(Do(3, g, GroupOp::kLeave, {}));
  EXPECT_TRUE(IsAdmin(g, 2));
  auto last = Do(2, g, GroupOp::kLeave, {});
  ASSERT_TRUE(last);
  EXPECT_TRUE(last->after.members.empty());
  EXPECT_EQ(last->notify, std::vector<AccountId>{Acc(2)});
  EXPECT_EQ(*groups_->Get(g), nullptr);
  EXPECT_FALSE(store_->groups().Get(g)->has_value());
}

// Issue 12: the announcement is a delta, so the change says exactly what changed.
TEST_F(GroupsTest, ChangesCarryTheirDelta) {
  AddAccounts(5);
  auto created = groups_->Create(Acc(1), std::vector<AccountId>{Acc(3), Acc(2)}, now_ms_,
                                 crypto::SystemRandom());
  ASSERT_TRUE(created);
  EXPECT_EQ(created->added, (std::vector<AccountId>{Acc(2), Acc(3)}));
  const GroupId g = created->after.id;
  auto added = Do(1, g, GroupOp::kAdd, {5, 4});
  ASSERT_TRUE(added);
  EXPECT_EQ(added->added, (std::vector<AccountId>{Acc(4), Acc(5)}));
  EXPECT_TRUE(added->removed.empty() && added->promoted.empty() && added->demoted.empty());
  auto promoted = Do(1, g, GroupOp::kPromote, {2});
  ASSERT_TRUE(promoted);
  EXPECT_EQ(promoted->promoted, std::vector<AccountId>{Acc(2)});
  EXPECT_TRUE(promoted->added.empty());
  auto demoted = Do(1, g, GroupOp::kDemote, {2});
  ASSERT_TRUE(demoted);
  EXPECT_EQ(demoted->demoted, std::vector<AccountId>{Acc(2)});
  auto removed = Do(1, g, GroupOp::kRemove, {5});
  ASSERT_TRUE(removed);
  EXPECT_EQ(removed->removed, std::vector<AccountId>{Acc(5)});
  // The last admin leaves: out, and the heir (2, since version 1) is promoted.
  auto left = Do(1, g, GroupOp::kLeave, {});
  ASSERT_TRUE(left);
  EXPECT_EQ(left->removed, std::vector<AccountId>{Acc(1)});
  EXPECT_EQ(left->promoted, std::vector<AccountId>{Acc(2)});
}

// Issue 12: group changes are rate limited per acting account and per group.
TEST_F(GroupsTest, ChangeRateLimitsPerAccountAndPerGroupAtAndPastTheEdge) {
  AddAccounts(6);
  GroupsConfig config;
  config.account_change_rate = {1, 3};  // 3 at once, then one a second
  config.group_change_rate = {1, 4};
  Make(config);
  const GroupId g = CreateOk(1, {2, 3});          // account 1: 1 of 3
  ASSERT_TRUE(Do(1, g, GroupOp::kPromote, {2}));  // 1: 2 of 3; group: 1 of 4
  ASSERT_TRUE(Do(1, g, GroupOp::kDemote, {2}));   // 1: 3 of 3; group: 2 of 4
  auto past = Do(1, g, GroupOp::kPromote, {2});
  ASSERT_FALSE(past);
  EXPECT_EQ(past.error().detail, Detail(GroupErr::kRateLimited));
  EXPECT_NE(std::string(past.error().message).find("groups.account_change_rate_per_s"),
            std::string::npos);
  EXPECT_FALSE(IsAdmin(g, 2)) << "a refused change changes nothing";
  now_ms_ += 1000;  // one more token each: account 1 has 1, the group 3 of 4
  ASSERT_TRUE(Do(1, g, GroupOp::kPromote, {3}));  // group: 2 left
  ASSERT_TRUE(Do(3, g, GroupOp::kAdd, {4}));      // group: 1 left
  ASSERT_TRUE(Do(3, g, GroupOp::kAdd, {5}));      // group: 0 left (account 3: 1 left)
  auto group_past = Do(3, g, GroupOp::kRemove, {5});
  ASSERT_FALSE(group_past);
  EXPECT_EQ(group_past.error().detail, Detail(GroupErr::kRateLimited));
  EXPECT_NE(std::string(group_past.error().message).find("groups.group_change_rate_per_s"),
            std::string::npos);
  // Leaving never waits for the group's bucket.
  EXPECT_TRUE(Do(4, g, GroupOp::kLeave, {}));
  now_ms_ += 1000;
  EXPECT_TRUE(Do(3, g, GroupOp::kRemove, {5}));
  // Creates take the creator's bucket.
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(groups_->Create(Acc(6), {}, now_ms_, crypto::SystemRandom()));
  }
  auto create_past = groups_->Create(Acc(6), {}, now_ms_, crypto::SystemRandom());
  ASSERT_FALSE(create_past);
  EXPECT_EQ(create_past.error().detail, Detail(GroupErr::kRateLimited));
}

// Issue 12: consent. Leaving with kLeaveRefuse makes later adds of that account to that
// group skip it (reported), until it lifts the refusal.
TEST_F(GroupsTest, LeaveRefuseBlocksReaddsOfThatAccountOnlyUntilLifted) {
  AddAccounts(4);
  const GroupId g = CreateOk(1, {2, 3});
  auto left = Do(2, g, GroupOp::kLeaveRefuse, {});
  ASSERT_TRUE(left);
  EXPECT_EQ(left->removed, std::vector<AccountId>{Acc(2)});
  EXPECT_EQ(left->after.refused, std::vector<AccountId>{Acc(2)});
  EXPECT_EQ((*store_->groups().Get(g))->refused, std::vector<AccountId>{Acc(2)}) << "durable";

  auto readd = Do(1, g, GroupOp::kAdd, {2, 4});
  ASSERT_TRUE(readd);
  EXPECT_TRUE(readd->changed);
  EXPECT_EQ(readd->refused, std::vector<AccountId>{Acc(2)});
  EXPECT_EQ(readd->added, std::vector<AccountId>{Acc(4)});
  EXPECT_EQ(readd->after.FindMember(Acc(2)), nullptr);
  EXPECT_NE(readd->after.FindMember(Acc(4)), nullptr);
  const uint64_t version = readd->after.version;
  auto only = Do(1, g, GroupOp::kAdd, {2});
  ASSERT_TRUE(only);
  EXPECT_FALSE(only->changed) << "nothing else changes";
  EXPECT_EQ(only->refused, std::vector<AccountId>{Acc(2)});
  EXPECT_EQ((*groups_->Get(g))->version, version);

  // Only the refuser lifts it, and only a refusal that exists.
  EXPECT_EQ(Do(3, g, GroupOp::kAllowReadd, {}).error().detail, Detail(GroupErr::kConflict));
  EXPECT_EQ(Do(2, g, GroupOp::kAllowReadd, {3}).error().detail, Detail(GroupErr::kBadRequest));
  auto lifted = Do(2, g, GroupOp::kAllowReadd, {});
  ASSERT_TRUE(lifted);
  EXPECT_FALSE(lifted->changed);
  EXPECT_TRUE(lifted->after.refused.empty());
  EXPECT_EQ((*groups_->Get(g))->version, version) << "lifting changes no membership";
  EXPECT_EQ(Do(2, g, GroupOp::kAllowReadd, {}).error().detail, Detail(GroupErr::kConflict));
  auto back = Do(1, g, GroupOp::kAdd, {2});
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->refused.empty());
  EXPECT_NE(back->after.FindMember(Acc(2)), nullptr);
}

TEST_F(GroupsTest, GroupAddsNobodyAndContacts) {
  AddAccounts(4);
  SetGroupAdds(2, store::GroupAdds::kNobody);
  SetGroupAdds(3, store::GroupAdds::kContacts);
  ASSERT_TRUE(store_->accounts().AddContact(Acc(3), Acc(4)));  // 3 lets 4 add it
  auto c = groups_->Create(Acc(1), std::vector<AccountId>{Acc(2), Acc(3), Acc(4)}, now_ms_,
                           crypto::SystemRandom());
  ASSERT_TRUE(c);
  EXPECT_EQ(c->refused, (std::vector<AccountId>{Acc(2), Acc(3)}));
  EXPECT_EQ(c->after.members.size(), 2u);  // 1 and 4
  EXPECT_EQ(c->added, std::vector<AccountId>{Acc(4)});
  ASSERT_TRUE(Do(1, c->after.id, GroupOp::kPromote, {4}));
  auto by_contact = Do(4, c->after.id, GroupOp::kAdd, {3, 2});
  ASSERT_TRUE(by_contact);
  EXPECT_EQ(by_contact->added, std::vector<AccountId>{Acc(3)});
  EXPECT_EQ(by_contact->refused, std::vector<AccountId>{Acc(2)});
  SetGroupAdds(2, store::GroupAdds::kEveryone);
  EXPECT_TRUE(Do(4, c->after.id, GroupOp::kAdd, {2}));
}

TEST_F(GroupsTest, ReadsComeFromTheCacheAndMatchTheStore) {
  ASSERT_NO_FATAL_FAILURE(AddAccounts(3));
  const GroupId g = CreateOk(1, {2});
  const GroupPtr first = *groups_->Get(g);
  EXPECT_EQ(first.get(), groups_->Get(g)->get()) << "a hit must not re-read or re-parse";
  ASSERT_TRUE(Do(1, g, GroupOp::kAdd, {3}));
  const GroupPtr second = *groups_->Get(g);
  EXPECT_NE(first.get(), second.get());
  EXPECT_EQ(first->version, 1u) << "a published snapshot never changes";
  EXPECT_EQ(second->version, 2u);
  Groups fresh(store_->groups(), accounts_, GroupsConfig{});
  const GroupPtr stored = *fresh.Get(g);
  ASSERT_NE(stored, nullptr);
  EXPECT_EQ(stored->version, 2u);
  EXPECT_EQ(stored->members.size(), 3u);
}

// Two nodes (two Groups objects with their own caches and stripes, over one store) add
// members to one group concurrently. Each change is a compare-and-set: a node whose cached
// group is stale re-reads it from the store, so no node's addition undoes the other's.
TEST_F(GroupsTest, TwoNodesChangingOneGroupLoseNoUpdate) {
  constexpr uint16_t kEach = 40;
  ASSERT_NO_FATAL_FAILURE(AddAccounts(1 + 2 * kEach));
  const GroupId g = CreateOk(1, {});
  Accounts accounts2(store_->accounts());
  Groups node2(store_->groups(), accounts2, Unlimited());
  ASSERT_NE(*node2.Get(g), nullptr);  // both caches warm
  std::atomic<int> reported{0};
  std::atomic<int> errors{0};
  std::latch start(2);
  auto add_all = [&](Groups& node, uint16_t first) {
    start.arrive_and_wait();
    for (uint16_t i = 0; i < kEach; ++i) {
      const std::vector<AccountId> who = {Acc(static_cast<uint16_t>(first + i))};
      for (;;) {
        auto r = node.Modify(Acc(1), g, GroupOp::kAdd, who, now_ms_);
        if (r) break;
        if (r.error().module != Module::kStore ||
            r.error().detail != static_cast<uint16_t>(store::StoreErr::kStale)) {
          ++errors;
          break;
        }
        ++reported;  // lost kMaxCasAttempts times in a row: reported, so retried here
      }
    }
  };
  std::thread one([&] { add_all(*groups_, 2); });
  std::thread two([&] { add_all(node2, static_cast<uint16_t>(2 + kEach)); });
  one.join();
  two.join();
  EXPECT_EQ(errors.load(), 0);
  auto stored = store_->groups().Get(g);
  ASSERT_TRUE(stored && stored->has_value());
  EXPECT_EQ((*stored)->members.size(), 1u + 2 * kEach) << "an addition was lost";
  EXPECT_EQ((*stored)->version, 1u + 2 * kEach);
  EXPECT_EQ((*stored)->revision, 1u + 2 * kEach);
  RecordProperty("reported_conflicts", reported.load());
}

TEST_F(GroupsTest, ConcurrentChangesToOneGroupAreSerialized) {
  constexpr uint16_t kThreads = 8;
  constexpr uint16_t kEach = 20;
  ASSERT_NO_FATAL_FAILURE(AddAccounts(1 + kThreads * kEach));
  const GroupId g = CreateOk(1, {});
  std::vector<std::thread> threads;
  for (uint16_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (uint16_t i = 0; i < kEach; ++i) {
        EXPECT_TRUE(Do(1, g, GroupOp::kAdd, {static_cast<uint16_t>(2 + t * kEach + i)}));
      }
    });
  }
  for (auto& t : threads) t.join();
  const GroupPtr after = *groups_->Get(g);
  EXPECT_EQ(after->members.size(), 1u + kThreads * kEach);
  EXPECT_EQ(after->version, 1u + kThreads * kEach);
}

TEST_F(GroupsTest, DigestCoversEveryOtherDeviceInOrder) {
  ASSERT_NO_FATAL_FAILURE(AddAccounts(3, 2));
  const GroupId g = CreateOk(2, {1, 3});
  auto members = groups_->MemberAccounts(**groups_->Get(g));
  ASSERT_TRUE(members);
  ASSERT_EQ(members->size(), 3u);
  // By hand: account order, device order, without (2, 1) but with (2, 2).
  std::string input;
  for (uint16_t a : {uint16_t{1}, uint16_t{2}, uint16_t{3}}) {
    for (uint32_t d : {1u, 2u}) {
      if (a == 2 && d == 1) continue;
      const AccountId id = Acc(a);
      input.append(reinterpret_cast<const char*>(id.data()), id.size());
      for (uint32_t v : {d, 100u * a + d}) {
        for (int shift = 24; shift >= 0; shift -= 8) input.push_back(static_cast<char>(v >> shift));
      }
    }
  }
  EXPECT_EQ(input.size(), 5u * 24);
  EXPECT_EQ(GroupDevicesDigest(*members, {Acc(2), 1}), crypto::Sha256(AsBytes(input)));
  EXPECT_NE(GroupDevicesDigest(*members, {Acc(2), 2}), crypto::Sha256(AsBytes(input)));
}

TEST_F(GroupsTest, DevicePagesOfAFullGroupWithFiveDevicesStayUnderTheFrameLimit) {
  ASSERT_NO_FATAL_FAILURE(AddAccounts(1024, 5));
  std::vector<uint16_t> others;
  for (uint16_t i = 2; i <= 1024; ++i) others.push_back(i);
  const GroupId g = CreateOk(1, others);
  auto members = groups_->MemberAccounts(**groups_->Get(g));
  ASSERT_TRUE(members);
  std::set<AccountId> seen;
  uint32_t offset = 0;
  int pages = 0;
  do {
    wire::Frame frame;
    wire::Response* r = frame.mutable_response();
    r->set_id(UINT64_MAX);
    wire::GetGroupDevicesResponse* page = r->mutable_group_devices();
    page->set_version(UINT64_MAX);
    page->set_devices_digest(std::string(32, 'd'));
    FillGroupDevicesPage(*members, offset, *page);
    ++pages;
    EXPECT_LT(frame.ByteSizeLong(), 32'000u) << "page at " << offset;
    ASSERT_GT(page->members_size(), 0);
    for (const auto& m : page->members()) {
      EXPECT_EQ(m.device_ids_size(), 5);
      AccountId id{};
      std::copy(m.account_id().begin(), m.account_id().end(), id.begin());
      EXPECT_TRUE(seen.insert(id).second);
    }
    offset = page->next_offset();
  } while (offset != 0 && pages < 100);
  EXPECT_EQ(seen.size(), 1024u);
  EXPECT_GE(pages, 2);
}

}  // namespace
}  // namespace sotto::server
