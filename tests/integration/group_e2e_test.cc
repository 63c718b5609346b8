// Groups end to end: many SDK Clients (each its own home and SQLite store) in this process
// against a real sottod, real Signal sessions and Sender Keys. Waits are on events
// (Client::Poll with a predicate, Sync), never sleeps.
#include <unistd.h>

#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "client/client.h"
#include "client/content.h"
#include "client/gateway_client.h"
#include "signal/error.h"
#include "signal/group.h"
#include "signal/protocol.h"
#include "tests/integration/sottod_process.h"
#include "tests/integration/test_account.h"

namespace sotto::client {
namespace {

using std::chrono::milliseconds;
using testing::SottodProcess;

constexpr milliseconds kWait{20'000};

std::string Hex(std::string_view bytes) { return ToHex(AsBytes(bytes)); }

std::string TempHome() {
  char tmpl[] = "/tmp/sotto-group-XXXXXX";
  return std::string(mkdtemp(tmpl)) + "/home";
}

struct User {
  std::string handle;
  std::string home = TempHome();
  std::unique_ptr<Client> client;
  std::vector<Event> events;

  ~User() {
    client.reset();
    std::filesystem::remove_all(std::filesystem::path(home).parent_path());
  }
  void Open() {
    ClientConfig config;
    config.home = home;
    auto opened = Client::Open(config);
    ASSERT_TRUE(opened) << opened.error().ToString();
    client = std::move(*opened);
    client->SetEventSink([this](const Event& e) { events.push_back(e); });
  }
  void Close() { client.reset(); }
  std::string account() const { return ToHex(client->account()->account_id); }

  std::vector<MessageEvent> GroupMessages() const {
    std::vector<MessageEvent> out;
    for (const Event& e : events) {
      if (auto* m = std::get_if<MessageEvent>(&e); m && !m->message.group_id.empty()) {
        out.push_back(*m);
      }
    }
    return out;
  }
  size_t GroupEvents(const std::string& action) const {
    size_t n = 0;
    for (const Event& e : events) {
      if (auto* g = std::get_if<GroupEvent>(&e); g && g->action == action) ++n;
    }
    return n;
  }
  size_t Failures() const {
    size_t n = 0;
    for (const Event& e : events)
      n += std::holds_alternative<DecryptionFailedEvent>(e) ? size_t{1} : size_t{0};
    return n;
  }
  size_t Receipts(const std::string& id, Tick tick) const {
    size_t n = 0;
    for (const Event& e : events) {
      if (auto* r = std::get_if<ReceiptEvent>(&e);
          r && r->message_id == id && r->tick == tick && !r->group_id.empty()) {
        ++n;
      }
    }
    return n;
  }
  void PollUntil(const std::function<bool()>& pred) {
    auto polled = client->Poll(kWait, pred);
    if (!polled) throw std::runtime_error(handle + ": poll failed: " + polled.error().ToString());
    if (!pred()) throw std::runtime_error(handle + ": condition not reached within the wait");
  }
  Tick GroupTick(const std::string& group, const std::string& id) {
    auto conversation = client->GroupConversation(group, 10000);
    if (!conversation) return Tick::kBlocked;
    for (const StoredMessage& m : *conversation) {
      if (m.message_id == id) return m.tick;
    }
    return Tick::kBlocked;
  }
};

testing::SottodOptions Options() {
  testing::SottodOptions options;
  options.keep_tcp_port = true;
  // One sender fetches a bundle and sends a distribution per member: no request limits.
  options.config_toml =
      "[limits]\nrequest_rate_per_s = 0\nhandshake_rate_per_ip_per_s = 0\n"
      "[prekeys]\nbundle_rate_per_s = 100000\nbundle_burst = 100000\n"
      "[store]\nsync = false\n";
  return options;
}

std::string Handle(int i) {
  std::string n = std::to_string(1000000 + i);
  return "+1556" + n;
}

class GroupE2eTest : public ::testing::Test {
 protected:
  void Register(User& user, const std::string& handle) {
    user.handle = handle;
    if (!user.client) {
      ASSERT_NO_FATAL_FAILURE(user.Open());
    }
    const std::string server = "127.0.0.1:" + std::to_string(sottod_.tcp_address().port());
    auto started = user.client->StartRegistration(server, sottod_.server_key(), handle);
    ASSERT_TRUE(started) << started.error().ToString();
    auto finished = user.client->FinishRegistration(sottod_.VerificationCode(handle));
    ASSERT_TRUE(finished) << finished.error().ToString();
  }
  // Waits until `user` knows the group (it processed the announcement).
  void AwaitGroup(User& user, const std::string& group) {
    user.PollUntil([&] { return user.client->GroupInfo(group).has_value(); });
  }
  SottodProcess sottod_{Options()};
};

// 50 members, three senders: everyone gets every other member's messages exactly once, in
// each sender's order; the senders see every member's delivered receipt.
TEST_F(GroupE2eTest, FiftyMembersExchangeMessages) {
  constexpr int kMembers = 50;
  constexpr int kSenders = 3;
  constexpr int kPerSender = 3;
  std::vector<std::unique_ptr<User>> users;
  for (int i = 0; i < kMembers; ++i) {
    users.push_back(std::make_unique<User>());
    ASSERT_NO_FATAL_FAILURE(Register(*users.back(), Handle(i)));
  }
  std::vector<std::string> handles;
  for (int i = 1; i < kMembers; ++i) handles.push_back(users[static_cast<size_t>(i)]->handle);
  auto created = users[0]->client->CreateGroup("fifty", handles);
  ASSERT_TRUE(created) << created.error().ToString();
  const std::string group = created->id;
  EXPECT_EQ(created->members.size(), static_cast<size_t>(kMembers));
  EXPECT_TRUE(created->admin);
  for (const GroupMemberInfo& m : created->members) {
    // Our key went to every other member at creation (so they learn the name).
    EXPECT_EQ(m.has_our_key, m.account_id != users[0]->account()) << m.handle;
  }

  std::map<int, std::vector<std::string>> sent_ids;  // per sender
  for (int s = 0; s < kSenders; ++s) {
    User& sender = *users[static_cast<size_t>(s)];
    if (s > 0) AwaitGroup(sender, group);
    for (int k = 0; k < kPerSender; ++k) {
      auto sent = sender.client->SendGroupText(
          group, "from " + std::to_string(s) + " #" + std::to_string(k));
      ASSERT_TRUE(sent) << sent.error().ToString();
      EXPECT_EQ(sent->tick, Tick::kSent);
      sent_ids[s].push_back(sent->message_id);
    }
  }
  for (int i = 0; i < kMembers; ++i) {
    User& u = *users[static_cast<size_t>(i)];
    const size_t expected =
        static_cast<size_t>(kSenders * kPerSender - (i < kSenders ? kPerSender : 0));
    u.PollUntil([&] { return u.GroupMessages().size() >= expected; });
    ASSERT_TRUE(u.client->Sync(kWait));
    const auto messages = u.GroupMessages();
    ASSERT_EQ(messages.size(), expected) << u.handle;
    std::map<std::string, std::vector<std::string>> by_sender;
    for (const MessageEvent& m : messages) {
      EXPECT_EQ(m.message.group_id, group);
      by_sender[m.message.group_sender].push_back(m.message.message_id);
    }
    for (int s = 0; s < kSenders; ++s) {
      if (s == i) continue;
      EXPECT_EQ(by_sender[users[static_cast<size_t>(s)]->account()], sent_ids[s]) << u.handle;
    }
  }
  // Every member's device acked: two ticks on each sender's side, per member and overall.
  for (int s = 0; s < kSenders; ++s) {
    User& sender = *users[static_cast<size_t>(s)];
    const std::string last = sent_ids[s].back();
    sender.PollUntil([&] { return sender.GroupTick(group, last) == Tick::kDelivered; });
    auto receipts = sender.client->GroupReceipts(group, last);
    ASSERT_TRUE(receipts);
    EXPECT_EQ(receipts->size(), static_cast<size_t>(kMembers - 1));
    for (const GroupReceipt& r : *receipts) EXPECT_NE(r.delivered_ms, 0u);
    EXPECT_EQ(sender.Receipts(last, Tick::kDelivered), static_cast<size_t>(kMembers - 1));
  }
}

// After a removal every remaining member rotates its sender key: the removed member does
// not get later messages, and even given their ciphertexts (captured by a raw member
// device) cannot decrypt them, while it did read the ones from before.
TEST_F(GroupE2eTest, RemovedMemberCannotReadLaterMessages) {
  User alice, bob, carol;
  ASSERT_NO_FATAL_FAILURE(Register(alice, "+15560000101"));
  ASSERT_NO_FATAL_FAILURE(Register(bob, "+15560000102"));
  ASSERT_NO_FATAL_FAILURE(Register(carol, "+15560000103"));
  // Eve is a member whose device speaks the raw wire protocol: it sees the ciphertexts.
  auto eve = testing::RegisterDevice(sottod_, "+15560000104");
  ASSERT_TRUE(eve) << eve.error().ToString();
  ASSERT_TRUE(testing::UploadKeys(*eve, 4242, 10));

  auto created = alice.client->CreateGroup("rotation", {bob.handle, carol.handle, eve->handle});
  ASSERT_TRUE(created) << created.error().ToString();
  const std::string group = created->id;
  AwaitGroup(bob, group);
  AwaitGroup(carol, group);
  auto m1 = alice.client->SendGroupText(group, "before the removal");
  ASSERT_TRUE(m1) << m1.error().ToString();
  carol.PollUntil([&] { return carol.GroupMessages().size() == 1; });
  EXPECT_EQ(carol.GroupMessages()[0].message.body, "before the removal");

  ASSERT_TRUE(alice.client->RemoveMembers(group, {carol.handle}));
  bob.PollUntil([&] { return bob.GroupEvents("remove") == 1; });
  auto bob_group = bob.client->store().GetGroup(group);
  ASSERT_TRUE(bob_group && *bob_group);
  EXPECT_TRUE((*bob_group)->rotate);  // bob rotates before his next message
  carol.PollUntil([&] { return carol.GroupEvents("remove") == 1; });
  auto carol_view = carol.client->GroupInfo(group);
  ASSERT_TRUE(carol_view);
  EXPECT_FALSE(carol_view->member);

  auto m2 = alice.client->SendGroupText(group, "after the removal");
  ASSERT_TRUE(m2) << m2.error().ToString();
  auto m3 = bob.client->SendGroupText(group, "bob after the removal");
  ASSERT_TRUE(m3) << m3.error().ToString();
  bob.PollUntil([&] { return bob.GroupMessages().size() == 2; });
  EXPECT_EQ(bob.GroupMessages()[1].message.body, "after the removal");
  alice.PollUntil([&] { return alice.GroupMessages().size() == 1; });
  EXPECT_EQ(alice.GroupMessages()[0].message.body, "bob after the removal");

  // Eve's raw view: the three group ciphertexts.
  std::map<std::string, wire::Envelope> ciphertexts;  // by message id (hex)
  while (ciphertexts.size() < 3) {
    auto frame = testing::NextOf(*eve->conn, wire::Frame::kEnvelope);
    ASSERT_TRUE(frame) << frame.error().ToString();
    const wire::Envelope& env = frame->envelope();
    if (env.ciphertext_type() == wire::CIPHERTEXT_SENDER_KEY) {
      ciphertexts[Hex(env.message_id())] = env;
    }
    ASSERT_TRUE(testing::Ack(*eve->conn, {env.seq()}));
  }
  ASSERT_TRUE(ciphertexts.contains(m1->message_id));
  ASSERT_TRUE(ciphertexts.contains(m2->message_id));
  ASSERT_TRUE(ciphertexts.contains(m3->message_id));
  auto key_id = [&](const std::string& id) {
    auto view = signal::ParseSenderKeyMessage(AsBytes(ciphertexts[id].ciphertext()));
    EXPECT_TRUE(view);
    return view ? view->key_id : 0u;
  };
  EXPECT_NE(key_id(m1->message_id), key_id(m2->message_id));  // alice rotated

  // Carol's device got nothing after the removal...
  ASSERT_TRUE(carol.client->Sync(kWait));
  EXPECT_EQ(carol.GroupMessages().size(), 1u);
  // ...and cannot read the later ciphertexts with what it holds.
  const signal::ProtocolAddress alice_device{alice.account(), 1};
  const signal::ProtocolAddress bob_device{bob.account(), 1};
  signal::GroupCipher from_alice(carol.client->store(), {group, alice_device});
  signal::GroupCipher from_bob(carol.client->store(), {group, bob_device});
  auto earlier = from_alice.Decrypt(AsBytes(ciphertexts[m1->message_id].ciphertext()));
  ASSERT_FALSE(earlier);  // already read once: the key was there
  EXPECT_EQ(earlier.error().detail, static_cast<uint16_t>(signal::Err::kDuplicateMessage));
  auto later = from_alice.Decrypt(AsBytes(ciphertexts[m2->message_id].ciphertext()));
  ASSERT_FALSE(later);
  EXPECT_NE(later.error().detail, static_cast<uint16_t>(signal::Err::kDuplicateMessage));
  auto later_bob = from_bob.Decrypt(AsBytes(ciphertexts[m3->message_id].ciphertext()));
  EXPECT_FALSE(later_bob);
  // A removed member cannot send to the group either.
  auto refused = carol.client->SendGroupText(group, "still here?");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().detail, static_cast<uint16_t>(SdkErr::kNotMember));
}

TEST_F(GroupE2eTest, LeaveAdminRulesAndRename) {
  User alice, bob, carol, dave;
  ASSERT_NO_FATAL_FAILURE(Register(alice, "+15560000201"));
  ASSERT_NO_FATAL_FAILURE(Register(bob, "+15560000202"));
  ASSERT_NO_FATAL_FAILURE(Register(carol, "+15560000203"));
  ASSERT_NO_FATAL_FAILURE(Register(dave, "+15560000204"));
  auto created = alice.client->CreateGroup("rules", {bob.handle, carol.handle});
  ASSERT_TRUE(created) << created.error().ToString();
  const std::string group = created->id;
  AwaitGroup(bob, group);
  bob.PollUntil([&] {
    auto info = bob.client->GroupInfo(group);
    return info && info->name == "rules";  // the name came with alice's sender key
  });

  // Only admins change the membership or the name.
  auto denied = bob.client->AddMembers(group, {dave.handle});
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().detail, static_cast<uint16_t>(SdkErr::kNotAdmin));
  auto rename_denied = bob.client->RenameGroup(group, "bob's", "");
  ASSERT_FALSE(rename_denied);
  EXPECT_EQ(rename_denied.error().detail, static_cast<uint16_t>(SdkErr::kNotAdmin));

  ASSERT_TRUE(alice.client->SetAdmin(group, bob.handle, true));
  bob.PollUntil([&] { return bob.GroupEvents("promote") == 1; });
  EXPECT_TRUE(bob.client->GroupInfo(group)->admin);
  auto added = bob.client->AddMembers(group, {dave.handle});
  ASSERT_TRUE(added) << added.error().ToString();
  AwaitGroup(dave, group);
  dave.PollUntil([&] { return dave.client->GroupInfo(group)->name == "rules"; });

  ASSERT_TRUE(alice.client->RenameGroup(group, "renamed", "a description"));
  carol.PollUntil([&] { return carol.GroupEvents("rename") == 1; });
  EXPECT_EQ(carol.client->GroupInfo(group)->name, "renamed");
  EXPECT_EQ(carol.client->GroupInfo(group)->description, "a description");
  EXPECT_TRUE(alice.client->ResolveGroup("renamed").has_value());     // by exact name
  EXPECT_EQ(*alice.client->ResolveGroup(group.substr(0, 6)), group);  // by id prefix

  // Dave leaves: everyone sees it, and dave can no longer send.
  ASSERT_TRUE(dave.client->LeaveGroup(group));
  EXPECT_FALSE(dave.client->GroupInfo(group)->member);
  carol.PollUntil([&] { return carol.GroupEvents("leave") == 1; });
  EXPECT_EQ(carol.client->GroupInfo(group)->members.size(), 3u);
  auto after_leave = dave.client->SendGroupText(group, "bye");
  ASSERT_FALSE(after_leave);
  EXPECT_EQ(after_leave.error().detail, static_cast<uint16_t>(SdkErr::kNotMember));
  // The rest still talk (with fresh keys, since someone left).
  ASSERT_TRUE(carol.client->SendGroupText(group, "still here"));
  alice.PollUntil([&] { return alice.GroupMessages().size() == 1; });
  ASSERT_TRUE(dave.client->Sync(kWait));
  EXPECT_TRUE(dave.GroupMessages().empty());
  EXPECT_EQ(dave.GroupEvents("rename"), 1u);  // sent while dave was still a member
  for (User* u : {&alice, &bob, &carol, &dave}) {
    EXPECT_EQ(u->Failures(), 0u) << u->handle;
  }
}

// Issue 12: announcements are deltas the SDK applies (membership and admin flags follow
// a promote/demote toggle), group events name people by number and contact name, and
// consent: leaving refusing re-adds, lifting it, and "nobody may add me".
TEST_F(GroupE2eTest, DeltasConsentAndNamedGroupEvents) {
  User alice, bob, carol;
  Register(alice, "+15560000701");
  Register(bob, "+15560000702");
  Register(carol, "+15560000703");
  ASSERT_TRUE(bob.client->AddContact(alice.handle, "Alice"));
  auto created = alice.client->CreateGroup("consent", {bob.handle, carol.handle});
  ASSERT_TRUE(created) << created.error().ToString();
  EXPECT_TRUE(created->refused.empty());
  const std::string group = created->id;
  AwaitGroup(bob, group);  // first sight: fetched with get_group
  AwaitGroup(carol, group);
  EXPECT_EQ(bob.client->GroupInfo(group)->members.size(), 3u);

  ASSERT_TRUE(alice.client->SetAdmin(group, carol.handle, true));
  ASSERT_TRUE(alice.client->SetAdmin(group, carol.handle, false));
  ASSERT_TRUE(alice.client->SetAdmin(group, carol.handle, true));
  bob.PollUntil([&] { return bob.GroupEvents("promote") == 2 && bob.GroupEvents("demote") == 1; });
  auto seen = bob.client->GroupInfo(group);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->version, 4u);
  for (const GroupMemberInfo& m : seen->members) {
    EXPECT_EQ(m.admin, m.account_id == alice.account() || m.account_id == carol.account())
        << m.handle;
  }
  const GroupEvent* promote = nullptr;
  for (const Event& e : bob.events) {
    if (auto* g = std::get_if<GroupEvent>(&e); g && g->action == "promote") promote = g;
  }
  ASSERT_NE(promote, nullptr);
  EXPECT_EQ(promote->by.handle, alice.handle);
  EXPECT_EQ(promote->by.name, "Alice");
  ASSERT_EQ(promote->people.size(), 1u);
  EXPECT_EQ(promote->people[0].account, carol.account());

  // bob leaves refusing re-adds: alice's add of him is refused for him alone.
  ASSERT_TRUE(bob.client->LeaveGroup(group, ReAdds::kRefuse));
  EXPECT_FALSE(bob.client->GroupInfo(group)->member);
  alice.PollUntil([&] { return alice.GroupEvents("leave") == 1; });
  auto refused = alice.client->AddMembers(group, {bob.handle});
  ASSERT_TRUE(refused) << refused.error().ToString();
  EXPECT_EQ(*refused, std::vector<std::string>{bob.handle});
  EXPECT_EQ(alice.client->GroupInfo(group)->members.size(), 2u);
  auto not_refused = carol.client->AllowGroupReadd(group);
  ASSERT_FALSE(not_refused);
  EXPECT_EQ(not_refused.error().detail, static_cast<uint16_t>(SdkErr::kNotRefused));
  ASSERT_TRUE(bob.client->AllowGroupReadd(group));
  auto back = alice.client->AddMembers(group, {bob.handle});
  ASSERT_TRUE(back) << back.error().ToString();
  EXPECT_TRUE(back->empty());
  bob.PollUntil([&] { return bob.client->GroupInfo(group)->member; });

  // carol lets nobody add her: a new group is made without her.
  ASSERT_TRUE(carol.client->SetGroupAdds("nobody"));
  EXPECT_FALSE(carol.client->SetGroupAdds("strangers"));
  auto second = alice.client->CreateGroup("second", {carol.handle, bob.handle});
  ASSERT_TRUE(second) << second.error().ToString();
  EXPECT_EQ(second->refused, std::vector<std::string>{carol.handle});
  EXPECT_EQ(second->members.size(), 2u);
  for (User* u : {&alice, &bob, &carol}) EXPECT_EQ(u->Failures(), 0u) << u->handle;
}

TEST_F(GroupE2eTest, ReceiptsPerMemberReachTheSender) {
  User alice, bob, carol;
  ASSERT_NO_FATAL_FAILURE(Register(alice, "+15560000301"));
  ASSERT_NO_FATAL_FAILURE(Register(bob, "+15560000302"));
  ASSERT_NO_FATAL_FAILURE(Register(carol, "+15560000303"));
  auto created = alice.client->CreateGroup("receipts", {bob.handle, carol.handle});
  ASSERT_TRUE(created);
  const std::string group = created->id;
  auto sent = alice.client->SendGroupText(group, "did you read this?");
  ASSERT_TRUE(sent);
  const std::string id = sent->message_id;
  bob.PollUntil([&] { return bob.GroupMessages().size() == 1; });
  carol.PollUntil([&] { return carol.GroupMessages().size() == 1; });
  alice.PollUntil([&] { return alice.Receipts(id, Tick::kDelivered) == 2; });
  EXPECT_EQ(alice.GroupTick(group, id), Tick::kDelivered);

  ASSERT_EQ(*bob.client->MarkGroupRead(group), 1u);
  alice.PollUntil([&] { return alice.Receipts(id, Tick::kRead) == 1; });
  EXPECT_EQ(alice.GroupTick(group, id), Tick::kDelivered);  // carol has not read it yet
  auto receipts = alice.client->GroupReceipts(group, id);
  ASSERT_TRUE(receipts);
  for (const GroupReceipt& r : *receipts) {
    EXPECT_EQ(r.read_ms != 0, r.account_id == bob.account()) << r.handle;
  }
  ASSERT_EQ(*carol.client->MarkGroupRead(group), 1u);
  alice.PollUntil([&] { return alice.GroupTick(group, id) == Tick::kRead; });
  EXPECT_EQ(alice.Receipts(id, Tick::kRead), 2u);
}

TEST_F(GroupE2eTest, GroupMessageSurvivesSenderGoingOffline) {
  User alice, bob;
  ASSERT_NO_FATAL_FAILURE(Register(alice, "+15560000401"));
  ASSERT_NO_FATAL_FAILURE(Register(bob, "+15560000402"));
  auto created = alice.client->CreateGroup("outbox", {bob.handle});
  ASSERT_TRUE(created);
  const std::string group = created->id;
  ASSERT_EQ(sottod_.Terminate(), 0);
  auto queued = alice.client->SendGroupText(group, "while the server is down");
  ASSERT_TRUE(queued) << queued.error().ToString();
  EXPECT_EQ(queued->tick, Tick::kPending);
  EXPECT_EQ(*alice.client->PendingCount(), 1u);
  alice.Close();  // the sender's process goes away too
  ASSERT_TRUE(sottod_.Restart());
  ASSERT_NO_FATAL_FAILURE(alice.Open());
  ASSERT_TRUE(alice.client->Connect());
  alice.PollUntil([&] { return alice.GroupTick(group, queued->message_id) == Tick::kSent; });
  EXPECT_EQ(*alice.client->PendingCount(), 0u);
  bob.PollUntil([&] { return bob.GroupMessages().size() == 1; });
  EXPECT_EQ(bob.GroupMessages()[0].message.body, "while the server is down");
  EXPECT_EQ(bob.GroupMessages()[0].message.message_id, queued->message_id);
}

// A member learns a later version first (its own change's answer) and never applies the
// announcement of the removal in between: it still rotates.
TEST_F(GroupE2eTest, SkippedRemovalStillRotates) {
  User alice, bob, carol;
  ASSERT_NO_FATAL_FAILURE(Register(alice, "+15560000501"));
  ASSERT_NO_FATAL_FAILURE(Register(bob, "+15560000502"));
  ASSERT_NO_FATAL_FAILURE(Register(carol, "+15560000503"));
  auto created = alice.client->CreateGroup("skip", {bob.handle, carol.handle});
  ASSERT_TRUE(created);
  const std::string group = created->id;
  ASSERT_TRUE(alice.client->SetAdmin(group, bob.handle, true));
  AwaitGroup(bob, group);
  bob.PollUntil([&] { return bob.GroupEvents("promote") == 1; });
  ASSERT_TRUE(bob.client->RemoveMembers(group, {carol.handle}));
  ASSERT_FALSE((*alice.client->store().GetGroup(group))->rotate);
  ASSERT_TRUE(alice.client->SetAdmin(group, bob.handle, false));  // answer: after the removal
  auto stored = alice.client->store().GetGroup(group);
  ASSERT_TRUE(stored && *stored);
  EXPECT_EQ((*stored)->members.size(), 2u);
  EXPECT_TRUE((*stored)->rotate);
}

// A member re-registers (a new identity key): until the sender accepts the new key, that
// member gets no sender key and cannot read the group; the others are not held up. After
// `TrustIdentity` the next message hands it the key, and its new device, which never saw
// the group's announcements, learns the group from the server.
TEST_F(GroupE2eTest, ChangedIdentityGetsNoKeyUntilTrusted) {
  User alice, bob, carol;
  ASSERT_NO_FATAL_FAILURE(Register(alice, "+15560000601"));
  ASSERT_NO_FATAL_FAILURE(Register(bob, "+15560000602"));
  ASSERT_NO_FATAL_FAILURE(Register(carol, "+15560000603"));
  auto created = alice.client->CreateGroup("trust", {bob.handle, carol.handle});
  ASSERT_TRUE(created);
  const std::string group = created->id;
  ASSERT_TRUE(alice.client->SendGroupText(group, "before"));
  carol.PollUntil([&] { return carol.GroupMessages().size() == 1; });
  const std::string carol_account = carol.account();
  carol.Close();
  User carol2;  // carol's number on a new device: a new identity key
  ASSERT_NO_FATAL_FAILURE(Register(carol2, carol.handle));
  ASSERT_EQ(carol2.account(), carol_account);

  auto held = alice.client->SendGroupText(group, "while carol's key is not accepted");
  ASSERT_TRUE(held) << held.error().ToString();
  EXPECT_EQ(held->tick, Tick::kSent);  // the others are not held up
  size_t changed = 0;
  for (const Event& e : alice.events) {
    if (auto* c = std::get_if<IdentityChangedEvent>(&e); c && c->peer == carol_account) ++changed;
  }
  EXPECT_GE(changed, 1u);
  auto info = alice.client->GroupInfo(group);
  ASSERT_TRUE(info);
  for (const GroupMemberInfo& m : info->members) {
    if (m.account_id != carol_account) continue;
    EXPECT_TRUE(m.identity_changed);
    EXPECT_FALSE(m.has_our_key);
  }
  bob.PollUntil([&] { return bob.GroupMessages().size() == 2; });
  ASSERT_TRUE(carol2.client->Sync(kWait));
  EXPECT_TRUE(carol2.GroupMessages().empty());
  EXPECT_GE(carol2.Failures(), 1u);  // it arrived, and could not be read

  ASSERT_TRUE(alice.client->TrustIdentity(carol.handle));
  ASSERT_TRUE(alice.client->SendGroupText(group, "after the key was accepted"));
  carol2.PollUntil([&] { return carol2.GroupMessages().size() == 1; });
  EXPECT_EQ(carol2.GroupMessages()[0].message.body, "after the key was accepted");
  carol2.PollUntil([&] { return carol2.client->GroupInfo(group).has_value(); });
  EXPECT_EQ(carol2.client->GroupInfo(group)->name, "trust");
  EXPECT_EQ(carol2.client->GroupInfo(group)->members.size(), 3u);
}

}  // namespace
}  // namespace sotto::client
