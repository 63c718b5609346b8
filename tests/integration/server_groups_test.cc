// Server-side groups through the real wire protocol against a real sottod: membership
// rules and their announcements, limits, member-device paging with the devices digest,
// and group sends (stale digest, fan-out, durability across a restart, receipts, full
// queues, typing). Each test starts its own server.
//
// Accounts have one device each here: companion devices come with linked devices; the
// digest and fan-out over several devices per account are unit-tested (groups_test.cc).
#include <poll.h>

#include <algorithm>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "crypto/hash.h"
#include "tests/integration/sottod_process.h"
#include "tests/integration/test_account.h"

namespace sotto {
namespace {

using testing::NextOf;
using testing::RegisterDevice;
using testing::SottodOptions;
using testing::SottodProcess;
using testing::TestDevice;

SottodOptions WithConfig(std::string toml, bool keep_port = false) {
  SottodOptions o;
  o.config_toml = std::move(toml);
  o.keep_tcp_port = keep_port;
  return o;
}

// Registration of many accounts from one address: no handshake rate limit, no fsync.
constexpr const char* kFastConfig =
    "[limits]\nhandshake_rate_per_ip_per_s = 0\nrequest_rate_per_s = 0\n[store]\nsync = false\n";

bool AwaitMetric(const SottodProcess& server, const std::string& series, long value) {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    if (server.Metric(series) == value) return true;
    pollfd none{-1, 0, 0};
    poll(&none, 0, 10);
  }
  return false;
}

std::string Handle(int n) { return "+1555400" + std::to_string(1000 + n); }

TestDevice Join(const SottodProcess& server, int n) {
  auto d = RegisterDevice(server, Handle(n));
  EXPECT_TRUE(d) << Handle(n);
  return d ? std::move(*d) : TestDevice();
}

#define JOIN(var, server, n)        \
  TestDevice var = Join(server, n); \
  ASSERT_TRUE(var.conn) << "registering " #var

// A call that fails is the test's failure and answers STATUS_INTERNAL (a default
// Response would say STATUS_OK), so no later check for success passes on it.
wire::Response Call(TestDevice& d, const wire::Request& r) {
  auto resp = d.conn->Call(r);
  if (resp) return *resp;
  ADD_FAILURE() << resp.error().ToString();
  wire::Response failed;
  failed.set_status(wire::STATUS_INTERNAL);
  failed.set_reason("the call failed");
  return failed;
}

wire::Request CreateGroup(const std::vector<const TestDevice*>& members) {
  wire::Request r;
  for (const TestDevice* m : members) r.mutable_create_group()->add_members(m->account_id);
  return r;
}

wire::Request Modify(const std::string& group_id, wire::GroupAction action,
                     const std::vector<const TestDevice*>& accounts) {
  wire::Request r;
  wire::ModifyGroupRequest* m = r.mutable_modify_group();
  m->set_group_id(group_id);
  m->set_action(action);
  for (const TestDevice* a : accounts) m->add_accounts(a->account_id);
  return r;
}

wire::Request GroupSend(const std::string& group_id, const std::string& message_id,
                        const std::string& digest, const std::string& ciphertext,
                        bool online_only = false) {
  wire::Request r;
  wire::GroupSendRequest* s = r.mutable_group_send();
  s->set_group_id(group_id);
  s->set_message_id(message_id);
  s->set_devices_digest(digest);
  s->set_ciphertext(ciphertext);
  s->set_online_only(online_only);
  return r;
}

wire::Envelope NextEnvelopeAcked(TestDevice& d) {
  auto f = NextOf(*d.conn, wire::Frame::kEnvelope);
  EXPECT_TRUE(f) << (f ? "" : f.error().ToString());
  if (!f) return {};
  EXPECT_TRUE(testing::Ack(*d.conn, {f->envelope().seq()}));
  return f->envelope();
}

// The next envelope must announce `action` at `version` as a delta (never the whole
// membership: issue 12); returns the delta.
wire::GroupDelta ExpectUpdate(TestDevice& d, uint64_t version, wire::GroupAction action) {
  const wire::Envelope e = NextEnvelopeAcked(d);
  EXPECT_EQ(e.type(), wire::ENVELOPE_GROUP_UPDATE) << d.handle;
  EXPECT_TRUE(e.group_update().has_delta()) << d.handle;
  EXPECT_FALSE(e.group_update().has_group()) << "the membership is not announced";
  EXPECT_EQ(e.group_update().accounts_size(), 0);
  EXPECT_EQ(e.group_update().delta().version(), version) << d.handle;
  EXPECT_EQ(e.group_update().action(), action) << d.handle;
  EXPECT_EQ(e.group_id(), e.group_update().delta().group_id());
  return e.group_update().delta();
}

bool Names(const google::protobuf::RepeatedPtrField<std::string>& list, const TestDevice& d) {
  return std::find(list.begin(), list.end(), d.account_id) != list.end();
}

bool IsAdmin(const wire::GroupInfo& g, const TestDevice& d) {
  for (const wire::GroupMember& m : g.members()) {
    if (m.account_id() == d.account_id) return m.admin();
  }
  return false;
}

bool IsMember(const wire::GroupInfo& g, const TestDevice& d) {
  return std::any_of(g.members().begin(), g.members().end(),
                     [&](const wire::GroupMember& m) { return m.account_id() == d.account_id; });
}

struct DevicePages {
  uint64_t version = 0;
  std::vector<wire::MemberDevices> members;
  std::string server_digest;
  std::string own_digest;  // the documented formula, computed here
  int pages = 0;
  size_t largest_page = 0;
};

// Every page of get_group_devices as `d` sees it; checks the server's digest against
// the formula of sotto_wire.proto.
DevicePages FetchDevices(TestDevice& d, const std::string& group_id) {
  DevicePages out;
  uint32_t offset = 0;
  for (;;) {
    wire::Request r;
    r.mutable_get_group_devices()->set_group_id(group_id);
    r.mutable_get_group_devices()->set_offset(offset);
    wire::Response page = Call(d, r);
    EXPECT_EQ(page.status(), wire::STATUS_OK) << page.reason();
    if (page.status() != wire::STATUS_OK) return out;
    ++out.pages;
    out.largest_page = std::max(out.largest_page, page.ByteSizeLong());
    if (out.pages > 1) {
      EXPECT_EQ(page.group_devices().version(), out.version);
      EXPECT_EQ(page.group_devices().devices_digest(), out.server_digest);
    }
    out.version = page.group_devices().version();
    out.server_digest = page.group_devices().devices_digest();
    for (const auto& m : page.group_devices().members()) out.members.push_back(m);
    offset = page.group_devices().next_offset();
    if (offset == 0) break;
    EXPECT_EQ(offset, out.members.size());
  }
  std::string input;
  for (const wire::MemberDevices& m : out.members) {
    EXPECT_EQ(m.device_ids_size(), m.registration_ids_size());
    for (int i = 0; i < m.device_ids_size(); ++i) {
      if (m.account_id() == d.account_id && m.device_ids(i) == d.device_id) continue;
      input += m.account_id();
      for (uint32_t v : {m.device_ids(i), m.registration_ids(i)}) {
        for (int shift = 24; shift >= 0; shift -= 8) input.push_back(static_cast<char>(v >> shift));
      }
    }
  }
  const crypto::Sha256Digest digest = crypto::Sha256(AsBytes(input));
  out.own_digest.assign(reinterpret_cast<const char*>(digest.data()), digest.size());
  EXPECT_EQ(out.own_digest, out.server_digest) << "the server's digest is not the documented one";
  return out;
}

TEST(ServerGroups, MembershipRulesVersionsAndAnnouncements) {
  SottodProcess server;
  JOIN(alice, server, 1);
  JOIN(bob, server, 2);
  JOIN(carol, server, 3);
  JOIN(dave, server, 4);

  wire::Response created = Call(alice, CreateGroup({&bob, &carol}));
  ASSERT_EQ(created.status(), wire::STATUS_OK) << created.reason();
  const wire::GroupInfo g1 = created.group().group();
  const std::string gid = g1.group_id();
  ASSERT_EQ(gid.size(), 16u);
  EXPECT_EQ(g1.version(), 1u);
  ASSERT_EQ(g1.members_size(), 3);
  EXPECT_TRUE(IsAdmin(g1, alice));
  EXPECT_FALSE(IsAdmin(g1, bob));
  EXPECT_TRUE(
      std::is_sorted(g1.members().begin(), g1.members().end(),
                     [](const auto& a, const auto& b) { return a.account_id() < b.account_id(); }));
  for (TestDevice* d : {&alice, &bob, &carol}) ExpectUpdate(*d, 1, wire::GROUP_CREATE);

  // Only admins change the membership; non-members learn nothing.
  wire::Response denied = Call(bob, Modify(gid, wire::GROUP_ADD, {&dave}));
  EXPECT_EQ(denied.status(), wire::STATUS_PERMISSION_DENIED);
  wire::Request get;
  get.mutable_get_group()->set_group_id(gid);
  EXPECT_EQ(Call(dave, get).status(), wire::STATUS_NOT_MEMBER);
  EXPECT_EQ(Call(dave, Modify(gid, wire::GROUP_LEAVE, {})).status(), wire::STATUS_NOT_MEMBER);
  EXPECT_EQ(Call(dave, GroupSend(gid, "m", std::string(32, 'x'), "ct")).status(),
            wire::STATUS_NOT_MEMBER);
  wire::Request devices;
  devices.mutable_get_group_devices()->set_group_id(gid);
  EXPECT_EQ(Call(dave, devices).status(), wire::STATUS_NOT_MEMBER);
  wire::Request unknown = get;
  unknown.mutable_get_group()->set_group_id(std::string(16, '\x7f'));
  EXPECT_EQ(Call(alice, unknown).status(), wire::STATUS_NOT_FOUND);
  EXPECT_EQ(Call(alice, Modify(gid, wire::GROUP_ADD, {&bob})).status(), wire::STATUS_CONFLICT);
  wire::Request ghost = Modify(gid, wire::GROUP_ADD, {});
  ghost.mutable_modify_group()->add_accounts(std::string(16, '\x01'));
  EXPECT_EQ(Call(alice, ghost).status(), wire::STATUS_NOT_FOUND);
  EXPECT_EQ(Call(alice, Modify(gid, wire::GROUP_ADD, {&dave, &dave})).status(),
            wire::STATUS_BAD_REQUEST);
  EXPECT_EQ(Call(alice, Modify(gid, wire::GROUP_CREATE, {&dave})).status(),
            wire::STATUS_BAD_REQUEST);

  // Add: every member, the new one included, hears of it.
  wire::Response added = Call(alice, Modify(gid, wire::GROUP_ADD, {&dave}));
  ASSERT_EQ(added.status(), wire::STATUS_OK) << added.reason();
  EXPECT_EQ(added.group().group().version(), 2u);
  for (TestDevice* d : {&alice, &bob, &carol, &dave}) {
    const wire::GroupDelta delta = ExpectUpdate(*d, 2, wire::GROUP_ADD);
    ASSERT_EQ(delta.added_size(), 1);
    EXPECT_TRUE(Names(delta.added(), dave));
  }

  // Promote bob; bob removes carol, who hears it too and is then out.
  ASSERT_EQ(Call(alice, Modify(gid, wire::GROUP_PROMOTE, {&bob})).status(), wire::STATUS_OK);
  for (TestDevice* d : {&alice, &bob, &carol, &dave}) {
    const wire::GroupDelta delta = ExpectUpdate(*d, 3, wire::GROUP_PROMOTE);
    EXPECT_TRUE(Names(delta.promoted(), bob));
    EXPECT_EQ(delta.promoted_size() + delta.added_size() + delta.removed_size(), 1);
  }
  EXPECT_EQ(Call(alice, Modify(gid, wire::GROUP_PROMOTE, {&bob})).status(), wire::STATUS_CONFLICT);
  EXPECT_EQ(Call(bob, Modify(gid, wire::GROUP_REMOVE, {&bob})).status(), wire::STATUS_BAD_REQUEST);
  ASSERT_EQ(Call(bob, Modify(gid, wire::GROUP_REMOVE, {&carol})).status(), wire::STATUS_OK);
  for (TestDevice* d : {&alice, &bob, &carol, &dave}) {
    EXPECT_TRUE(Names(ExpectUpdate(*d, 4, wire::GROUP_REMOVE).removed(), carol));
  }
  EXPECT_EQ(Call(carol, get).status(), wire::STATUS_NOT_MEMBER);
  EXPECT_EQ(Call(bob, Modify(gid, wire::GROUP_REMOVE, {&carol})).status(),
            wire::STATUS_BAD_REQUEST);

  // Demote: never below one admin.
  ASSERT_EQ(Call(alice, Modify(gid, wire::GROUP_DEMOTE, {&bob})).status(), wire::STATUS_OK);
  for (TestDevice* d : {&alice, &bob, &dave}) {
    EXPECT_TRUE(Names(ExpectUpdate(*d, 5, wire::GROUP_DEMOTE).demoted(), bob));
  }
  wire::Response last = Call(alice, Modify(gid, wire::GROUP_DEMOTE, {&alice}));
  EXPECT_EQ(last.status(), wire::STATUS_CONFLICT);
  EXPECT_NE(last.reason().find("at least one admin"), std::string::npos);
  EXPECT_EQ(Call(alice, Modify(gid, wire::GROUP_DEMOTE, {&dave})).status(), wire::STATUS_CONFLICT);

  // The last admin leaves: the longest-standing member (bob, since version 1; dave joined
  // at 2) becomes admin. The leaver hears it and is out.
  EXPECT_EQ(Call(alice, Modify(gid, wire::GROUP_LEAVE, {&bob})).status(), wire::STATUS_BAD_REQUEST);
  ASSERT_EQ(Call(alice, Modify(gid, wire::GROUP_LEAVE, {})).status(), wire::STATUS_OK);
  for (TestDevice* d : {&alice, &bob, &dave}) {
    const wire::GroupDelta g = ExpectUpdate(*d, 6, wire::GROUP_LEAVE);
    EXPECT_TRUE(Names(g.removed(), alice));
    EXPECT_TRUE(Names(g.promoted(), bob)) << "the heir";
    EXPECT_EQ(g.promoted_size(), 1);
  }
  wire::Response now = Call(dave, get);
  ASSERT_EQ(now.status(), wire::STATUS_OK);
  EXPECT_EQ(now.group().group().version(), 6u);
  EXPECT_EQ(now.group().group().members_size(), 2);

  // Everyone leaves: the group is gone.
  ASSERT_EQ(Call(dave, Modify(gid, wire::GROUP_LEAVE, {})).status(), wire::STATUS_OK);
  ASSERT_EQ(Call(bob, Modify(gid, wire::GROUP_LEAVE, {})).status(), wire::STATUS_OK);
  EXPECT_EQ(Call(bob, get).status(), wire::STATUS_NOT_FOUND);
  EXPECT_EQ(server.Metric("sotto_group_changes_total"), 8);
}

TEST(ServerGroups, MaxMembersAndRequestAccountsAtAndPastTheEdge) {
  SottodProcess server(WithConfig("[groups]\nmax_members = 3\nmax_request_accounts = 3\n"));
  JOIN(a, server, 1);
  JOIN(b, server, 2);
  JOIN(c, server, 3);
  JOIN(d, server, 4);
  JOIN(e, server, 5);

  wire::Response too_many = Call(a, CreateGroup({&b, &c, &d}));
  EXPECT_EQ(too_many.status(), wire::STATUS_TOO_LARGE);
  EXPECT_NE(too_many.reason().find("groups.max_members"), std::string::npos) << too_many.reason();
  wire::Response too_named = Call(a, CreateGroup({&b, &c, &d, &e}));
  EXPECT_EQ(too_named.status(), wire::STATUS_TOO_LARGE);
  EXPECT_NE(too_named.reason().find("groups.max_request_accounts"), std::string::npos);

  wire::Response two = Call(a, CreateGroup({&b}));
  ASSERT_EQ(two.status(), wire::STATUS_OK) << two.reason();
  const std::string gid = two.group().group().group_id();
  ASSERT_EQ(Call(a, Modify(gid, wire::GROUP_ADD, {&c})).status(), wire::STATUS_OK);  // at 3
  wire::Response past = Call(a, Modify(gid, wire::GROUP_ADD, {&d}));
  EXPECT_EQ(past.status(), wire::STATUS_TOO_LARGE);
  EXPECT_NE(past.reason().find("groups.max_members"), std::string::npos);
  wire::Response full = Call(a, CreateGroup({&b, &c}));  // exactly max_members at creation
  EXPECT_EQ(full.status(), wire::STATUS_OK) << full.reason();
}

TEST(ServerGroups, FullSizeGroupDevicesArePagedUnderTheFrameLimit) {
  SottodProcess server(WithConfig(kFastConfig));
  JOIN(owner, server, 0);
  constexpr int kOthers = 1023;  // groups.max_members (1024) with the owner
  std::vector<TestDevice> others;
  others.reserve(kOthers);
  for (int i = 1; i <= kOthers; ++i) {
    others.push_back(Join(server, i));
    ASSERT_TRUE(others.back().conn);
    others.back().conn.reset();  // the account stays; 1023 idle connections need not
  }
  wire::Request create;
  for (const TestDevice& m : others) create.mutable_create_group()->add_members(m.account_id);
  wire::Response created = Call(owner, create);
  ASSERT_EQ(created.status(), wire::STATUS_OK) << created.reason();
  const std::string gid = created.group().group().group_id();
  ASSERT_EQ(created.group().group().members_size(), 1024);
  const wire::GroupDelta announced = ExpectUpdate(owner, 1, wire::GROUP_CREATE);
  EXPECT_EQ(announced.added_size(), 0) << "members fetch a created group with get_group";
  EXPECT_LT(announced.ByteSizeLong(), 64u);

  const DevicePages pages = FetchDevices(owner, gid);
  EXPECT_EQ(pages.members.size(), 1024u);
  EXPECT_GE(pages.pages, 2) << "one page held every member: paging is untested";
  EXPECT_LT(pages.largest_page, 40'000u);
  std::set<std::string> seen;
  for (const auto& m : pages.members) seen.insert(m.account_id());
  EXPECT_EQ(seen.size(), 1024u);

  // One past the limit.
  JOIN(extra, server, 2000);
  wire::Response past = Call(owner, Modify(gid, wire::GROUP_ADD, {&extra}));
  EXPECT_EQ(past.status(), wire::STATUS_TOO_LARGE);
  wire::Request bad_offset;
  bad_offset.mutable_get_group_devices()->set_group_id(gid);
  bad_offset.mutable_get_group_devices()->set_offset(1025);
  EXPECT_EQ(Call(owner, bad_offset).status(), wire::STATUS_BAD_REQUEST);
}

// Issue 12: a promote/demote toggle on a 300-member group announced the whole membership
// to every member device (membership squared: ~3.5 MB a toggle). Announcements are deltas
// now: a toggle writes ~100 bytes per member device, whatever the membership.
TEST(ServerGroups, AToggleOnA300MemberGroupWritesBytesLinearInMembers) {
  SottodProcess server(WithConfig(kFastConfig));
  JOIN(owner, server, 0);
  constexpr int kOthers = 299;
  std::vector<TestDevice> others;
  others.reserve(kOthers);
  for (int i = 1; i <= kOthers; ++i) {
    others.push_back(Join(server, i));
    ASSERT_TRUE(others.back().conn);
    others.back().conn.reset();
  }
  wire::Request create;
  for (const TestDevice& m : others) create.mutable_create_group()->add_members(m.account_id);
  wire::Response created = Call(owner, create);
  ASSERT_EQ(created.status(), wire::STATUS_OK) << created.reason();
  ASSERT_EQ(created.group().group().members_size(), 300);
  const std::string gid = created.group().group().group_id();
  const long before = server.Metric("sotto_group_update_bytes_queued_total");
  ASSERT_EQ(Call(owner, Modify(gid, wire::GROUP_PROMOTE, {&others[0]})).status(), wire::STATUS_OK);
  ASSERT_EQ(Call(owner, Modify(gid, wire::GROUP_DEMOTE, {&others[0]})).status(), wire::STATUS_OK);
  ASSERT_TRUE(AwaitMetric(server, "sotto_group_changes_total", 3));
  const long per_toggle = (server.Metric("sotto_group_update_bytes_queued_total") - before) / 2;
  // What the announcement was before issue 12, byte for byte: the same envelope with the
  // whole group after the change and the accounts named (the server stored one per device).
  wire::Envelope whole;
  whole.set_type(wire::ENVELOPE_GROUP_UPDATE);
  whole.set_source_account(owner.account_id);
  whole.set_source_device(owner.device_id);
  whole.set_message_id(gid + std::string(8, '\x01'));
  whole.set_group_id(gid);
  whole.set_server_time_ms(1'700'000'000'000);
  wire::Request get;
  get.mutable_get_group()->set_group_id(gid);
  *whole.mutable_group_update()->mutable_group() = Call(owner, get).group().group();
  whole.mutable_group_update()->set_action(wire::GROUP_DEMOTE);
  whole.mutable_group_update()->set_actor(owner.account_id);
  whole.mutable_group_update()->add_accounts(others[0].account_id);
  const long whole_per_toggle = static_cast<long>(whole.ByteSizeLong()) * 300;
  std::printf(
      "bytes queued per promote/demote on a 300-member group: %ld (the whole-membership "
      "announcement: %ld)\n",
      per_toggle, whole_per_toggle);
  // 300 devices, ~135 bytes each; the whole membership was ~6,800 bytes each.
  EXPECT_GT(per_toggle, 300 * 40);
  EXPECT_LT(per_toggle, 300 * 200);
  EXPECT_GT(whole_per_toggle, 40 * per_toggle);
}

// Issue 12: group changes are rate limited; the refusal names the limit.
TEST(ServerGroups, ChangeRateLimitsAreEnforcedAndNamed) {
  SottodProcess server(
      WithConfig("[groups]\naccount_change_rate_per_s = 0.001\naccount_change_burst = 3\n"
                 "group_change_rate_per_s = 0.001\ngroup_change_burst = 4\n"));
  JOIN(alice, server, 1);
  JOIN(bob, server, 2);
  wire::Response created = Call(alice, CreateGroup({&bob}));  // alice: 1 of 3
  ASSERT_EQ(created.status(), wire::STATUS_OK) << created.reason();
  const std::string gid = created.group().group().group_id();
  ASSERT_EQ(Call(alice, Modify(gid, wire::GROUP_PROMOTE, {&bob})).status(), wire::STATUS_OK);
  ASSERT_EQ(Call(alice, Modify(gid, wire::GROUP_DEMOTE, {&bob})).status(), wire::STATUS_OK);
  const long changes = server.Metric("sotto_group_changes_total");
  wire::Response past = Call(alice, Modify(gid, wire::GROUP_PROMOTE, {&bob}));  // 4th
  EXPECT_EQ(past.status(), wire::STATUS_RATE_LIMITED);
  EXPECT_NE(past.reason().find("groups.account_change_rate_per_s"), std::string::npos)
      << past.reason();
  EXPECT_EQ(server.Metric("sotto_group_changes_total"), changes) << "nothing changed";
  EXPECT_EQ(server.Metric("sotto_group_changes_rate_limited_total"), 1);
  wire::Request get;
  get.mutable_get_group()->set_group_id(gid);
  EXPECT_EQ(Call(alice, get).group().group().version(), 3u);
  // Another account's bucket is its own: bob still leaves (the per-group bucket, 4, is
  // unit-tested in groups_membership_test).
  EXPECT_EQ(Call(bob, Modify(gid, wire::GROUP_LEAVE, {})).status(), wire::STATUS_OK);
}

// Issue 12: consent. A member leaves refusing re-adds; an admin's add of it then skips it
// (named in `refused`) and adds the others; it lifts the refusal; GROUP_ADDS_NOBODY.
TEST(ServerGroups, LeaveRefusingReaddsAndGroupAddsChoice) {
  SottodProcess server;
  JOIN(alice, server, 1);
  JOIN(bob, server, 2);
  JOIN(carol, server, 3);
  JOIN(dave, server, 4);
  wire::Response created = Call(alice, CreateGroup({&bob, &carol}));
  ASSERT_EQ(created.status(), wire::STATUS_OK) << created.reason();
  const std::string gid = created.group().group().group_id();
  for (TestDevice* d : {&alice, &bob, &carol}) ExpectUpdate(*d, 1, wire::GROUP_CREATE);

  ASSERT_EQ(Call(bob, Modify(gid, wire::GROUP_LEAVE_REFUSE, {})).status(), wire::STATUS_OK);
  for (TestDevice* d : {&alice, &bob, &carol}) {
    // Announced as a plain leave: the refusal is bob's business.
    EXPECT_TRUE(Names(ExpectUpdate(*d, 2, wire::GROUP_LEAVE).removed(), bob));
  }
  wire::Response readd = Call(alice, Modify(gid, wire::GROUP_ADD, {&bob, &dave}));
  ASSERT_EQ(readd.status(), wire::STATUS_OK) << readd.reason();
  ASSERT_EQ(readd.group().refused_size(), 1);
  EXPECT_EQ(readd.group().refused(0), bob.account_id);
  EXPECT_FALSE(IsMember(readd.group().group(), bob));
  EXPECT_TRUE(IsMember(readd.group().group(), dave));
  const wire::GroupDelta added = ExpectUpdate(alice, 3, wire::GROUP_ADD);
  EXPECT_EQ(added.added_size(), 1);
  EXPECT_TRUE(Names(added.added(), dave));
  // Only bob again: nothing changes, nothing is announced. The count of the copies so far
  // (3 each for create, leave and add) is bumped after their envelopes are posted, so it is
  // awaited rather than read.
  const long queued = 9;
  ASSERT_TRUE(AwaitMetric(server, "sotto_messages_queued_total", queued));
  wire::Response only = Call(alice, Modify(gid, wire::GROUP_ADD, {&bob}));
  ASSERT_EQ(only.status(), wire::STATUS_OK) << only.reason();
  EXPECT_EQ(only.group().refused_size(), 1);
  EXPECT_EQ(only.group().group().version(), 3u);
  EXPECT_EQ(server.Metric("sotto_messages_queued_total"), queued);
  EXPECT_EQ(server.Metric("sotto_group_adds_refused_total"), 2);

  // Lifting: only a refusal that exists; the answer carries no membership.
  EXPECT_EQ(Call(carol, Modify(gid, wire::GROUP_ALLOW_READD, {})).status(), wire::STATUS_CONFLICT);
  wire::Response lifted = Call(bob, Modify(gid, wire::GROUP_ALLOW_READD, {}));
  ASSERT_EQ(lifted.status(), wire::STATUS_OK) << lifted.reason();
  EXPECT_EQ(lifted.group().group().members_size(), 0);
  wire::Response back = Call(alice, Modify(gid, wire::GROUP_ADD, {&bob}));
  ASSERT_EQ(back.status(), wire::STATUS_OK);
  EXPECT_EQ(back.group().refused_size(), 0);
  EXPECT_TRUE(IsMember(back.group().group(), bob));

  // Nobody may add carol to a new group; the group is made without her.
  wire::Request nobody;
  nobody.mutable_set_group_adds()->set_adds(wire::GROUP_ADDS_NOBODY);
  ASSERT_EQ(Call(carol, nobody).status(), wire::STATUS_OK);
  wire::Request bad = nobody;
  bad.mutable_set_group_adds()->set_adds(static_cast<wire::GroupAdds>(9));
  EXPECT_EQ(Call(carol, bad).status(), wire::STATUS_BAD_REQUEST);
  wire::Response second = Call(dave, CreateGroup({&carol, &alice}));
  ASSERT_EQ(second.status(), wire::STATUS_OK) << second.reason();
  ASSERT_EQ(second.group().refused_size(), 1);
  EXPECT_EQ(second.group().refused(0), carol.account_id);
  EXPECT_EQ(second.group().group().members_size(), 2);
}

TEST(ServerGroups, GroupSendChecksTheDigestThenReachesEveryDeviceOnceDurably) {
  SottodProcess server(WithConfig("", /*keep_port=*/true));
  JOIN(alice, server, 1);
  JOIN(bob, server, 2);
  JOIN(carol, server, 3);
  JOIN(dave, server, 4);
  ASSERT_TRUE(NextOf(*bob.conn, wire::Frame::kQueueEmpty));
  wire::Response created = Call(alice, CreateGroup({&bob, &carol}));
  ASSERT_EQ(created.status(), wire::STATUS_OK);
  const std::string gid = created.group().group().group_id();
  ExpectUpdate(bob, 1, wire::GROUP_CREATE);
  ExpectUpdate(alice, 1, wire::GROUP_CREATE);
  carol.conn.reset();  // offline from here on

  const DevicePages before = FetchDevices(alice, gid);
  ASSERT_EQ(before.members.size(), 3u);
  // The membership changes: the old digest is stale and nothing is queued.
  ASSERT_EQ(Call(alice, Modify(gid, wire::GROUP_ADD, {&dave})).status(), wire::STATUS_OK);
  ExpectUpdate(alice, 2, wire::GROUP_ADD);
  ExpectUpdate(bob, 2, wire::GROUP_ADD);
  const long queued = server.Metric("sotto_messages_queued_total");
  wire::Response stale = Call(alice, GroupSend(gid, "g-1", before.server_digest, "sk-ct"));
  EXPECT_EQ(stale.status(), wire::STATUS_STALE_DEVICES);
  EXPECT_EQ(server.Metric("sotto_messages_queued_total"), queued);
  EXPECT_EQ(server.Metric("sotto_group_sends_stale_total"), 1);
  wire::Response short_digest = Call(alice, GroupSend(gid, "g-1", "abc", "sk-ct"));
  EXPECT_EQ(short_digest.status(), wire::STATUS_BAD_REQUEST);

  // Refetch and retry with the same message id: one copy per other device.
  const DevicePages after = FetchDevices(alice, gid);
  EXPECT_NE(after.server_digest, before.server_digest);
  EXPECT_EQ(after.version, 2u);
  wire::Response sent = Call(alice, GroupSend(gid, "g-1", after.server_digest, "sk-ct"));
  ASSERT_EQ(sent.status(), wire::STATUS_OK) << sent.reason();
  EXPECT_EQ(sent.group_send().devices(), 3u);  // bob, carol, dave; not alice's own device
  EXPECT_EQ(sent.group_send().queue_full(), 0u);
  EXPECT_EQ(server.Metric("sotto_group_copies_queued_total"), 3);
  // A retry is stored once.
  wire::Response again = Call(alice, GroupSend(gid, "g-1", after.server_digest, "sk-ct"));
  ASSERT_EQ(again.status(), wire::STATUS_OK);
  EXPECT_EQ(again.group_send().devices(), 3u);
  EXPECT_EQ(server.Metric("sotto_group_copies_queued_total"), 3);

  const wire::Envelope at_bob = NextEnvelopeAcked(bob);
  EXPECT_EQ(at_bob.type(), wire::ENVELOPE_MESSAGE);
  EXPECT_EQ(at_bob.ciphertext_type(), wire::CIPHERTEXT_SENDER_KEY);
  EXPECT_EQ(at_bob.ciphertext(), "sk-ct");
  EXPECT_EQ(at_bob.group_id(), gid);
  EXPECT_EQ(at_bob.source_account(), alice.account_id);
  EXPECT_EQ(at_bob.message_id(), "g-1");
  // bob's ack gives alice a receipt naming the group.
  const wire::Envelope receipt = NextEnvelopeAcked(alice);
  EXPECT_EQ(receipt.type(), wire::ENVELOPE_DELIVERED);
  EXPECT_EQ(receipt.message_id(), "g-1");
  EXPECT_EQ(receipt.group_id(), gid);
  EXPECT_EQ(receipt.source_account(), bob.account_id);

  // Durable: carol (offline) gets it after a restart, once.
  ASSERT_EQ(server.Terminate(), 0);
  ASSERT_TRUE(server.Restart());
  ASSERT_TRUE(testing::Reconnect(server, carol));
  ExpectUpdate(carol, 1, wire::GROUP_CREATE);
  ExpectUpdate(carol, 2, wire::GROUP_ADD);
  const wire::Envelope at_carol = NextEnvelopeAcked(carol);
  EXPECT_EQ(at_carol.ciphertext(), "sk-ct");
  EXPECT_EQ(at_carol.group_id(), gid);
  auto f = carol.conn->Receive();
  while (f && (f->has_prekeys_low() || f->has_ping())) f = carol.conn->Receive();
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->has_queue_empty()) << "a second copy was queued";
  ASSERT_TRUE(testing::Reconnect(server, dave));
  ExpectUpdate(dave, 2, wire::GROUP_ADD);
  EXPECT_EQ(NextEnvelopeAcked(dave).ciphertext(), "sk-ct");
}

TEST(ServerGroups, AFullMemberQueueDropsOnlyThatCopy) {
  SottodProcess server(WithConfig("[store]\nmax_queue_depth = 2\nmax_queued_per_sender = 2\n"));
  JOIN(alice, server, 1);
  JOIN(bob, server, 2);
  JOIN(carol, server, 3);
  wire::Response created = Call(alice, CreateGroup({&bob, &carol}));
  ASSERT_EQ(created.status(), wire::STATUS_OK);
  const std::string gid = created.group().group().group_id();
  carol.conn.reset();  // carol's queue: the create announcement (1 of 2)
  ExpectUpdate(alice, 1, wire::GROUP_CREATE);
  ExpectUpdate(bob, 1, wire::GROUP_CREATE);
  const std::string digest = FetchDevices(alice, gid).server_digest;

  wire::Response first = Call(alice, GroupSend(gid, "f-1", digest, "one"));
  ASSERT_EQ(first.status(), wire::STATUS_OK);
  EXPECT_EQ(first.group_send().devices(), 2u);
  EXPECT_EQ(NextEnvelopeAcked(bob).ciphertext(), "one");
  wire::Response second = Call(alice, GroupSend(gid, "f-2", digest, "two"));
  ASSERT_EQ(second.status(), wire::STATUS_OK) << second.reason();
  EXPECT_EQ(second.group_send().devices(), 1u);
  EXPECT_EQ(second.group_send().queue_full(), 1u);
  EXPECT_EQ(NextEnvelopeAcked(bob).ciphertext(), "two");
  EXPECT_EQ(server.Metric("sotto_group_copies_skipped_full_total"), 1);
}

TEST(ServerGroups, TypingInAGroupReachesOnlyConnectedDevices) {
  SottodProcess server;
  JOIN(alice, server, 1);
  JOIN(bob, server, 2);
  JOIN(carol, server, 3);
  wire::Response created = Call(alice, CreateGroup({&bob, &carol}));
  ASSERT_EQ(created.status(), wire::STATUS_OK);
  const std::string gid = created.group().group().group_id();
  ExpectUpdate(bob, 1, wire::GROUP_CREATE);
  carol.conn.reset();
  ASSERT_TRUE(AwaitMetric(server, "sotto_devices_online", 2));
  const std::string digest = FetchDevices(alice, gid).server_digest;
  wire::Response typing = Call(alice, GroupSend(gid, "t-1", digest, "typing", true));
  ASSERT_EQ(typing.status(), wire::STATUS_OK);
  EXPECT_EQ(typing.group_send().devices(), 1u);
  const wire::Envelope e = NextEnvelopeAcked(bob);
  EXPECT_TRUE(e.online_only());
  EXPECT_EQ(e.group_id(), gid);
  ASSERT_TRUE(testing::Reconnect(server, carol));
  ExpectUpdate(carol, 1, wire::GROUP_CREATE);
  auto f = carol.conn->Receive();
  while (f && (f->has_prekeys_low() || f->has_ping())) f = carol.conn->Receive();
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->has_queue_empty()) << "a typing indicator was queued";
}

// The per-sender quota (store.max_queued_per_sender) applies to group copies too: a member
// device where the sender is at its quota is skipped like a full queue, and another
// member's group message still reaches it.
TEST(ServerGroups, AMemberDeviceAtTheSendersQuotaIsSkippedLikeAFullQueue) {
  SottodProcess server(WithConfig(std::string(kFastConfig) + "max_queued_per_sender = 2\n"));
  JOIN(alice, server, 1);
  JOIN(bob, server, 2);
  JOIN(carol, server, 3);
  wire::Response created = Call(alice, CreateGroup({&bob, &carol}));
  ASSERT_EQ(created.status(), wire::STATUS_OK);
  const std::string gid = created.group().group().group_id();
  carol.conn.reset();  // her queue: the create announcement (the server's, no quota)
  ExpectUpdate(alice, 1, wire::GROUP_CREATE);
  ExpectUpdate(bob, 1, wire::GROUP_CREATE);
  for (const char* id : {"d-1", "d-2"}) {  // Alice's quota at Carol's device, 1:1
    ASSERT_EQ(Call(alice, testing::SendTo(carol, {1}, id, "direct")).status(), wire::STATUS_OK);
  }
  wire::Response direct = Call(alice, testing::SendTo(carol, {1}, "d-3", "direct"));
  EXPECT_EQ(direct.status(), wire::STATUS_QUEUE_FULL);
  EXPECT_NE(direct.reason().find("store.max_queued_per_sender"), std::string::npos);

  wire::Response sent =
      Call(alice, GroupSend(gid, "g-1", FetchDevices(alice, gid).server_digest, "a"));
  ASSERT_EQ(sent.status(), wire::STATUS_OK) << sent.reason();
  EXPECT_EQ(sent.group_send().devices(), 1u);  // Bob's
  EXPECT_EQ(sent.group_send().queue_full(), 1u);
  EXPECT_EQ(server.Metric("sotto_group_copies_skipped_sender_quota_total"), 1);
  EXPECT_EQ(server.Metric("sotto_group_copies_skipped_full_total"), 0);
  EXPECT_EQ(NextEnvelopeAcked(bob).ciphertext(), "a");
  wire::Response other =
      Call(bob, GroupSend(gid, "g-2", FetchDevices(bob, gid).server_digest, "b"));
  ASSERT_EQ(other.status(), wire::STATUS_OK) << other.reason();
  EXPECT_EQ(other.group_send().devices(), 2u);  // Alice's and Carol's
  EXPECT_EQ(other.group_send().queue_full(), 0u);

  ASSERT_TRUE(testing::Reconnect(server, carol));
  ExpectUpdate(carol, 1, wire::GROUP_CREATE);
  EXPECT_EQ(NextEnvelopeAcked(carol).message_id(), "d-1");
  EXPECT_EQ(NextEnvelopeAcked(carol).message_id(), "d-2");
  EXPECT_EQ(NextEnvelopeAcked(carol).ciphertext(), "b");
  ASSERT_TRUE(NextOf(*carol.conn, wire::Frame::kQueueEmpty));
}

}  // namespace
}  // namespace sotto
