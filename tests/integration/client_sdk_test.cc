// The client SDK against a real sottod: several Client objects (each its own home and
// SQLite store) in this process, real Noise, real Signal sessions. Waits are on events
// (Client::Poll with a predicate), never sleeps.
#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "client/client.h"
#include "client/content.h"
#include "client/gateway_client.h"
#include "tests/integration/sottod_process.h"
#include "tests/integration/test_account.h"

namespace sotto::client {
namespace {

using std::chrono::milliseconds;
using testing::SottodProcess;

constexpr milliseconds kWait{10'000};

std::string TempHome() {
  char tmpl[] = "/tmp/sotto-client-XXXXXX";
  return std::string(mkdtemp(tmpl)) + "/home";
}

ClientConfig Config(const std::string& home) {
  ClientConfig config;
  config.home = home;
  return config;
}

// One user: a home directory and, while "running", an open Client.
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
    auto opened = Client::Open(Config(home));
    ASSERT_TRUE(opened) << opened.error().ToString();
    client = std::move(*opened);
    client->SetEventSink([this](const Event& e) { events.push_back(e); });
  }
  void Close() { client.reset(); }

  size_t Count(auto pred) const {
    size_t n = 0;
    for (const Event& e : events) n += pred(e) ? size_t{1} : size_t{0};
    return n;
  }
  std::vector<MessageEvent> Messages() const {
    std::vector<MessageEvent> out;
    for (const Event& e : events) {
      if (auto* m = std::get_if<MessageEvent>(&e)) out.push_back(*m);
    }
    return out;
  }
  // Polls until `pred` holds. Past kWait it throws, which gtest reports as this test's
  // failure, so the test stops instead of reading results that are not there.
  void PollUntil(const std::function<bool()>& pred) {
    auto polled = client->Poll(kWait, pred);
    if (!polled) throw std::runtime_error(handle + ": poll failed: " + polled.error().ToString());
    if (!pred()) throw std::runtime_error(handle + ": condition not reached within the wait");
  }
  Tick TickOf(const std::string& peer_handle, const std::string& id) {
    auto conversation = client->Conversation(peer_handle, 1000);
    if (!conversation) {
      ADD_FAILURE() << handle << ": " << conversation.error().ToString();
      return Tick::kBlocked;
    }
    for (const StoredMessage& m : *conversation) {
      if (m.message_id == id) return m.tick;
    }
    return Tick::kBlocked;
  }
};

class ClientSdkTest : public ::testing::Test {
 protected:
  void Register(User& user, const std::string& handle) {
    user.handle = handle;
    if (!user.client) {
      ASSERT_NO_FATAL_FAILURE(user.Open());
    }
    const std::string server = "127.0.0.1:" + std::to_string(sottod_.tcp_address().port());
    auto started = user.client->StartRegistration(server, sottod_.server_key(), handle);
    ASSERT_TRUE(started) << started.error().ToString();
    const std::string code = sottod_.VerificationCode(handle);
    ASSERT_EQ(code.size(), 6u);
    auto finished = user.client->FinishRegistration(code);
    ASSERT_TRUE(finished) << finished.error().ToString();
    ASSERT_TRUE(user.client->registered());
  }

  static testing::SottodOptions KeepPort() {
    testing::SottodOptions options;
    options.keep_tcp_port = true;
    return options;
  }
  SottodProcess sottod_{KeepPort()};
};

TEST_F(ClientSdkTest, TwoUsersChatBothWaysWithTicks) {
  User alice, bob;
  ASSERT_NO_FATAL_FAILURE(Register(alice, "+15550000001"));
  ASSERT_NO_FATAL_FAILURE(Register(bob, "+15550000002"));
  ASSERT_TRUE(bob.client->Connect());

  auto sent = alice.client->SendText(bob.handle, "hello bob");
  ASSERT_TRUE(sent) << sent.error().ToString();
  EXPECT_EQ(sent->tick, Tick::kSent);  // one tick: the server stored it

  bob.PollUntil([&] { return bob.Messages().size() == 1; });
  const MessageEvent got = bob.Messages()[0];
  EXPECT_EQ(got.message.body, "hello bob");
  EXPECT_EQ(got.handle, alice.handle);  // the claimed handle was checked by lookup
  EXPECT_EQ(got.message.message_id, sent->message_id);
  EXPECT_FALSE(got.message.untrusted_identity);

  // Two ticks once bob's device acked it; blue ticks once bob read it.
  alice.PollUntil([&] { return alice.TickOf(bob.handle, sent->message_id) == Tick::kDelivered; });
  auto read = bob.client->MarkRead(alice.handle);
  ASSERT_TRUE(read);
  EXPECT_EQ(*read, 1u);
  alice.PollUntil([&] { return alice.TickOf(bob.handle, sent->message_id) == Tick::kRead; });

  auto reply = bob.client->SendText(alice.handle, "hi alice");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->tick, Tick::kSent);
  alice.PollUntil([&] { return alice.Messages().size() == 1; });
  EXPECT_EQ(alice.Messages()[0].message.body, "hi alice");

  auto conversation = alice.client->Conversation(bob.handle, 100);
  ASSERT_TRUE(conversation);
  ASSERT_EQ(conversation->size(), 2u);
  EXPECT_EQ((*conversation)[0].direction, MessageDirection::kOutgoing);
  EXPECT_EQ((*conversation)[1].body, "hi alice");
}

TEST_F(ClientSdkTest, OfflineRecipientGetsEverythingInOrderAfterRestart) {
  User alice, bob;
  ASSERT_NO_FATAL_FAILURE(Register(alice, "+15550000011"));
  ASSERT_NO_FATAL_FAILURE(Register(bob, "+15550000012"));
  bob.Close();  // bob's device is offline (process gone)
  constexpr int kCount = 30;
  std::vector<std::string> ids;
  for (int i = 0; i < kCount; ++i) {
    auto sent = alice.client->SendText(bob.handle, "message " + std::to_string(i));
    ASSERT_TRUE(sent);
    EXPECT_EQ(sent->tick, Tick::kSent);
    ids.push_back(sent->message_id);
  }
  ASSERT_NO_FATAL_FAILURE(bob.Open());
  ASSERT_TRUE(bob.client->Sync(kWait));
  const auto messages = bob.Messages();
  ASSERT_EQ(messages.size(), static_cast<size_t>(kCount));
  for (int i = 0; i < kCount; ++i) {
    EXPECT_EQ(messages[static_cast<size_t>(i)].message.body, "message " + std::to_string(i));
  }
  alice.PollUntil([&] { return alice.TickOf(bob.handle, ids.back()) == Tick::kDelivered; });
  for (const std::string& id : ids) EXPECT_EQ(alice.TickOf(bob.handle, id), Tick::kDelivered);
}

TEST_F(ClientSdkTest, RestartMidConversationLosesAndDuplicatesNothing) {
  User alice, bob;
  ASSERT_NO_FATAL_FAILURE(Register(alice, "+15550000021"));
  ASSERT_NO_FATAL_FAILURE(Register(bob, "+15550000022"));
  ASSERT_TRUE(bob.client->Connect());
  constexpr size_t kCount = 60;
  for (size_t i = 0; i < kCount; ++i) {
    ASSERT_TRUE(alice.client->SendText(bob.handle, "m" + std::to_string(i)));
    if (i == kCount / 3) {
      // Bob's process dies after reading part of the stream; some envelopes were
      // delivered to it but not acked.
      bob.PollUntil([&] { return !bob.Messages().empty(); });
      bob.Close();
    }
  }
  ASSERT_NO_FATAL_FAILURE(bob.Open());
  ASSERT_TRUE(bob.client->Sync(kWait));
  auto conversation = bob.client->Conversation(alice.handle, 1000);
  ASSERT_TRUE(conversation);
  ASSERT_EQ(conversation->size(), kCount);
  for (size_t i = 0; i < kCount; ++i) EXPECT_EQ((*conversation)[i].body, "m" + std::to_string(i));
}

TEST_F(ClientSdkTest, OutboxSurvivesServerOutageAndClientRestart) {
  User alice, bob;
  ASSERT_NO_FATAL_FAILURE(Register(alice, "+15550000031"));
  ASSERT_NO_FATAL_FAILURE(Register(bob, "+15550000032"));
  ASSERT_TRUE(alice.client->SendText(bob.handle, "before"));  // sessions and contact exist
  ASSERT_EQ(sottod_.Terminate(), 0);
  auto queued = alice.client->SendText(bob.handle, "while the server is down");
  ASSERT_TRUE(queued) << queued.error().ToString();
  EXPECT_EQ(queued->tick, Tick::kPending);
  EXPECT_EQ(*alice.client->PendingCount(), 1u);
  alice.Close();  // the client process restarts too
  ASSERT_TRUE(sottod_.Restart());
  ASSERT_NO_FATAL_FAILURE(alice.Open());
  ASSERT_TRUE(alice.client->Connect());
  alice.PollUntil([&] { return alice.TickOf(bob.handle, queued->message_id) == Tick::kSent; });
  EXPECT_EQ(*alice.client->PendingCount(), 0u);
  ASSERT_TRUE(bob.client->Sync(kWait));
  const auto messages = bob.Messages();
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[1].message.body, "while the server is down");
  EXPECT_EQ(messages[1].message.message_id, queued->message_id);  // the same id throughout
}

TEST_F(ClientSdkTest, IdentityChangeBlocksSendingUntilAccepted) {
  User alice, bob;
  ASSERT_NO_FATAL_FAILURE(Register(alice, "+15550000041"));
  ASSERT_NO_FATAL_FAILURE(Register(bob, "+15550000042"));
  ASSERT_TRUE(alice.client->SendText(bob.handle, "first"));
  auto before = alice.client->GetSafetyNumber(bob.handle);
  ASSERT_TRUE(before);

  // Bob re-registers his number on a new device (new home, new identity key).
  User bob2;
  ASSERT_NO_FATAL_FAILURE(Register(bob2, bob.handle));
  auto held = alice.client->SendText(bob.handle, "are you still bob?");
  ASSERT_TRUE(held) << held.error().ToString();
  EXPECT_EQ(held->tick, Tick::kBlocked);
  EXPECT_EQ(
      alice.Count([](const Event& e) { return std::holds_alternative<IdentityChangedEvent>(e); }),
      1u);
  auto changed = alice.client->GetSafetyNumber(bob.handle);
  ASSERT_TRUE(changed);
  EXPECT_TRUE(changed->pending_change);
  EXPECT_NE(changed->displayable, before->displayable);
  // Still held on a later attempt.
  auto again = alice.client->SendText(bob.handle, "hello?");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->tick, Tick::kBlocked);
  ASSERT_TRUE(bob2.client->Sync(kWait));
  EXPECT_TRUE(bob2.Messages().empty());

  // Alice accepts the new key: the held messages go out, in order.
  ASSERT_TRUE(alice.client->TrustIdentity(bob.handle));
  EXPECT_EQ(alice.TickOf(bob.handle, held->message_id), Tick::kSent);
  bob2.PollUntil([&] { return bob2.Messages().size() == 2; });
  EXPECT_EQ(bob2.Messages()[0].message.body, "are you still bob?");
  EXPECT_EQ(bob2.Messages()[1].message.body, "hello?");
}

TEST_F(ClientSdkTest, ReceivedMessageFromChangedIdentityIsFlagged) {
  User alice, bob;
  ASSERT_NO_FATAL_FAILURE(Register(alice, "+15550000051"));
  ASSERT_NO_FATAL_FAILURE(Register(bob, "+15550000052"));
  ASSERT_TRUE(alice.client->SendText(bob.handle, "hi"));
  ASSERT_TRUE(bob.client->Sync(kWait));
  User bob2;
  ASSERT_NO_FATAL_FAILURE(Register(bob2, bob.handle));
  ASSERT_TRUE(bob2.client->SendText(alice.handle, "new phone, same bob"));
  ASSERT_TRUE(alice.client->Connect());
  alice.PollUntil([&] { return alice.Messages().size() == 1; });
  EXPECT_TRUE(alice.Messages()[0].message.untrusted_identity);
  auto reply = alice.client->SendText(bob.handle, "prove it");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->tick, Tick::kBlocked);
}

TEST_F(ClientSdkTest, SafetyNumbersMatchAndVerify) {
  User alice, bob;
  ASSERT_NO_FATAL_FAILURE(Register(alice, "+15550000061"));
  ASSERT_NO_FATAL_FAILURE(Register(bob, "+15550000062"));
  auto a = alice.client->GetSafetyNumber(bob.handle);
  auto b = bob.client->GetSafetyNumber(alice.handle);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->displayable.size(), 60u);
  EXPECT_EQ(a->displayable, b->displayable);
  EXPECT_FALSE(a->verified);
  auto wrong = alice.client->VerifyContact(bob.handle, std::string(60, '1'));
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().detail, static_cast<uint16_t>(SdkErr::kMismatch));
  ASSERT_TRUE(alice.client->VerifyContact(bob.handle, b->displayable));
  EXPECT_TRUE(alice.client->GetSafetyNumber(bob.handle)->verified);
}

TEST_F(ClientSdkTest, SearchFindsReceivedAndSentMessages) {
  User alice, bob;
  ASSERT_NO_FATAL_FAILURE(Register(alice, "+15550000071"));
  ASSERT_NO_FATAL_FAILURE(Register(bob, "+15550000072"));
  ASSERT_TRUE(alice.client->SendText(bob.handle, "the quarterly report is ready"));
  ASSERT_TRUE(alice.client->SendText(bob.handle, "lunch at noon?"));
  ASSERT_TRUE(bob.client->Sync(kWait));
  auto hits = bob.client->Search("quarter report", 10);
  ASSERT_TRUE(hits);
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].message.body, "the quarterly report is ready");
  EXPECT_EQ(alice.client->Search("lunch", 10)->size(), 1u);
  EXPECT_TRUE(bob.client->Search("dinner", 10)->empty());
}

TEST_F(ClientSdkTest, TypingAndPresence) {
  User alice, bob;
  ASSERT_NO_FATAL_FAILURE(Register(alice, "+15550000081"));
  ASSERT_NO_FATAL_FAILURE(Register(bob, "+15550000082"));
  ASSERT_TRUE(bob.client->AddContact(alice.handle, "Alice"));  // bob lets alice see him
  ASSERT_TRUE(bob.client->Connect());
  auto presence = alice.client->GetPresence(bob.handle);
  ASSERT_TRUE(presence) << presence.error().ToString();
  EXPECT_TRUE(presence->online);
  ASSERT_TRUE(alice.client->SendText(bob.handle, "hi"));  // sets up the session
  ASSERT_TRUE(alice.client->SendTyping(bob.handle, Client::Typing::kStarted));
  bob.PollUntil([&] {
    return bob.Count([](const Event& e) {
      auto* t = std::get_if<TypingEvent>(&e);
      return t != nullptr && t->typing;
    }) == 1;
  });
  bob.Close();
  alice.PollUntil([&] {
    return alice.Count([](const Event& e) {
      auto* p = std::get_if<PresenceEvent>(&e);
      return p != nullptr && !p->online && p->last_seen_ms > 0;
    }) >= 1;
  });
  // A stranger does not see bob's presence (visibility: contacts).
  User carol;
  ASSERT_NO_FATAL_FAILURE(Register(carol, "+15550000083"));
  auto denied = carol.client->GetPresence(bob.handle);
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().detail, static_cast<uint16_t>(SdkErr::kServerRefused));
}

TEST_F(ClientSdkTest, ErrorsAreClear) {
  User alice;
  ASSERT_NO_FATAL_FAILURE(alice.Open());
  auto not_registered = alice.client->SendText("+15550000099", "x");
  ASSERT_FALSE(not_registered);
  EXPECT_EQ(not_registered.error().detail, static_cast<uint16_t>(SdkErr::kNotRegistered));
  const std::string server = "127.0.0.1:" + std::to_string(sottod_.tcp_address().port());
  auto bad = alice.client->StartRegistration(server, sottod_.server_key(), "5550000091");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().detail, static_cast<uint16_t>(SdkErr::kBadHandle));
  alice.handle = "+15550000091";
  ASSERT_NO_FATAL_FAILURE(Register(alice, alice.handle));
  auto unknown = alice.client->SendText("+15550000098", "anyone?");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().detail, static_cast<uint16_t>(SdkErr::kUnknownUser));
  auto self = alice.client->SendText(alice.handle, "note to self");
  ASSERT_FALSE(self);
  EXPECT_EQ(self.error().detail, static_cast<uint16_t>(SdkErr::kBadHandle));
  auto too_long = alice.client->SendText("+15550000098", std::string(kMaxBodyBytes + 1, 'x'));
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().detail, static_cast<uint16_t>(SdkErr::kTooLarge));
  auto again = alice.client->StartRegistration(server, sottod_.server_key(), alice.handle);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().detail, static_cast<uint16_t>(SdkErr::kAlreadyRegistered));
  // A second process on the same home is refused while this one has it open.
  auto second = Client::Open(Config(alice.home));
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().detail, static_cast<uint16_t>(StoreErr::kBusy));
}

TEST_F(ClientSdkTest, ReconnectsByItselfAndFlushesTheOutbox) {
  User alice, bob;
  ASSERT_NO_FATAL_FAILURE(Register(alice, "+15550000111"));
  ASSERT_NO_FATAL_FAILURE(Register(bob, "+15550000112"));
  ASSERT_TRUE(alice.client->SendText(bob.handle, "one"));
  ASSERT_TRUE(sottod_.Kill());  // a crash; alice's client stays up
  alice.PollUntil([&] { return !alice.client->connected(); });
  auto queued = alice.client->SendText(bob.handle, "two");
  ASSERT_TRUE(queued);
  EXPECT_EQ(queued->tick, Tick::kPending);
  const uint64_t reconnects = alice.client->stats().reconnects;
  ASSERT_TRUE(sottod_.Restart());
  // Backoff with jitter, then IK with the pinned key, then the outbox goes out.
  alice.PollUntil([&] { return alice.TickOf(bob.handle, queued->message_id) == Tick::kSent; });
  EXPECT_TRUE(alice.client->connected());
  EXPECT_GT(alice.client->stats().reconnects, reconnects);
  EXPECT_EQ(sottod_.Metric("sotto_handshakes_total{pattern=\"IK\"}"), 1);
  ASSERT_TRUE(bob.client->Sync(kWait));
  ASSERT_EQ(bob.Messages().size(), 2u);
  EXPECT_EQ(bob.Messages()[1].message.body, "two");
}

TEST_F(ClientSdkTest, QueuedMessagesKeepTheirOrderBehindANewOne) {
  User alice, bob;
  ASSERT_NO_FATAL_FAILURE(Register(alice, "+15550000151"));
  ASSERT_NO_FATAL_FAILURE(Register(bob, "+15550000152"));
  ASSERT_TRUE(alice.client->SendText(bob.handle, "m0"));
  ASSERT_TRUE(sottod_.Kill());
  ASSERT_EQ(alice.client->SendText(bob.handle, "m1")->tick, Tick::kPending);
  ASSERT_EQ(alice.client->SendText(bob.handle, "m2")->tick, Tick::kPending);
  ASSERT_TRUE(sottod_.Restart());
  // No Poll in between: the new message must not overtake the two queued ones.
  auto m3 = alice.client->SendText(bob.handle, "m3");
  ASSERT_TRUE(m3) << m3.error().ToString();
  EXPECT_EQ(m3->tick, Tick::kSent);
  ASSERT_TRUE(bob.client->Sync(kWait));
  const auto got = bob.Messages();
  ASSERT_EQ(got.size(), 4u);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].message.body, "m" + std::to_string(i));
}

TEST_F(ClientSdkTest, UndecryptableMessagesAreReportedAndDoNotBlockTheQueue) {
  User alice, bob;
  ASSERT_NO_FATAL_FAILURE(Register(alice, "+15550000161"));
  ASSERT_NO_FATAL_FAILURE(Register(bob, "+15550000162"));
  // A raw device sends bob garbage: a "Signal message" that is not one, and a type no
  // client sends.
  auto mallory = testing::RegisterDevice(sottod_, "+15550000163");
  ASSERT_TRUE(mallory) << mallory.error().ToString();
  testing::TestDevice to;
  const Bytes bob_id = bob.client->account()->account_id;
  to.account_id.assign(bob_id.begin(), bob_id.end());
  to.registration_id = bob.client->account()->registration_id;
  wire::Request garbage = testing::SendTo(to, {1}, "garbage-1", "not a signal message", false);
  garbage.mutable_send()->mutable_messages(0)->set_type(wire::CIPHERTEXT_SIGNAL);
  auto sent = mallory->conn->Call(garbage);
  ASSERT_TRUE(sent);
  ASSERT_EQ(sent->status(), wire::STATUS_OK);
  sent = mallory->conn->Call(testing::SendTo(to, {1}, "garbage-2", "plaintext", false));
  ASSERT_TRUE(sent);
  ASSERT_EQ(sent->status(), wire::STATUS_OK);
  ASSERT_TRUE(alice.client->SendText(bob.handle, "after the garbage"));
  ASSERT_TRUE(bob.client->Sync(kWait));
  ASSERT_EQ(bob.Messages().size(), 1u);
  EXPECT_EQ(bob.Messages()[0].message.body, "after the garbage");
  EXPECT_EQ(
      bob.Count([](const Event& e) { return std::holds_alternative<DecryptionFailedEvent>(e); }),
      2u);
  EXPECT_EQ(bob.client->stats().decrypt_failures, 2u);
  // Acked: a reconnect does not bring them back.
  bob.Close();
  bob.events.clear();
  ASSERT_NO_FATAL_FAILURE(bob.Open());
  ASSERT_TRUE(bob.client->Sync(kWait));
  EXPECT_EQ(
      bob.Count([](const Event& e) { return std::holds_alternative<DecryptionFailedEvent>(e); }),
      0u);
}

TEST_F(ClientSdkTest, KeepalivePingsAnIdleConnection) {
  User alice;
  alice.handle = "+15550000121";
  ClientConfig config = Config(alice.home);
  config.keepalive_interval = std::chrono::milliseconds(50);
  auto opened = Client::Open(config);
  ASSERT_TRUE(opened);
  alice.client = std::move(*opened);
  ASSERT_NO_FATAL_FAILURE(Register(alice, alice.handle));
  alice.PollUntil([&] { return alice.client->stats().pings_sent >= 3; });
  EXPECT_TRUE(alice.client->connected());  // every ping was answered in time
  EXPECT_EQ(alice.client->stats().reconnects, 0u);
}

TEST_F(ClientSdkTest, RefillsOneTimePreKeysWhenTheServerSaysLow) {
  // The server's watermark is 10 by default: 91 first contacts would be needed. Instead
  // count what the device holds: 100 after registration, refilled by 100 after PreKeysLow.
  SottodProcess low([] {
    testing::SottodOptions options;
    options.config_toml = "[prekeys]\nlow_watermark = 99\n";
    return options;
  }());
  User alice, bob, carol;
  auto register_on = [&](User& user, const std::string& handle) {
    user.handle = handle;
    ASSERT_NO_FATAL_FAILURE(user.Open());
    const std::string server = "127.0.0.1:" + std::to_string(low.tcp_address().port());
    ASSERT_TRUE(user.client->StartRegistration(server, low.server_key(), handle));
    ASSERT_TRUE(user.client->FinishRegistration(low.VerificationCode(handle)));
  };
  ASSERT_NO_FATAL_FAILURE(register_on(alice, "+15550000131"));
  ASSERT_NO_FATAL_FAILURE(register_on(bob, "+15550000132"));
  ASSERT_NO_FATAL_FAILURE(register_on(carol, "+15550000133"));
  EXPECT_EQ(*alice.client->store().CountPreKeys(), kOneTimePreKeyBatch);
  ASSERT_TRUE(alice.client->Connect());
  ASSERT_TRUE(bob.client->SendText(alice.handle, "hi"));     // claims one: 99 left
  ASSERT_TRUE(carol.client->SendText(alice.handle, "hey"));  // 98: below the watermark
  alice.PollUntil(
      [&] { return alice.client->stats().prekey_refills >= 1 && alice.Messages().size() == 2; });
  // Two used by the first messages (removed after decrypting), 100 new.
  EXPECT_EQ(*alice.client->store().CountPreKeys(), 2 * kOneTimePreKeyBatch - 2);
}

TEST_F(ClientSdkTest, SimultaneousFirstMessagesBothWays) {
  // Both start a session before either has heard from the other: each side ends up with
  // two sessions and must settle on the one the peer uses.
  User alice, bob;
  ASSERT_NO_FATAL_FAILURE(Register(alice, "+15550000141"));
  ASSERT_NO_FATAL_FAILURE(Register(bob, "+15550000142"));
  ASSERT_TRUE(alice.client->SendText(bob.handle, "alice first"));
  ASSERT_TRUE(bob.client->SendText(alice.handle, "bob first"));
  ASSERT_TRUE(alice.client->Sync(kWait));
  ASSERT_TRUE(bob.client->Sync(kWait));
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(alice.client->SendText(bob.handle, "a" + std::to_string(round)));
    ASSERT_TRUE(bob.client->SendText(alice.handle, "b" + std::to_string(round)));
    // The largest text there is, through the server.
    ASSERT_TRUE(alice.client->SendText(bob.handle, std::string(kMaxBodyBytes, 'x')));
  }
  alice.PollUntil([&] { return alice.Messages().size() == 4; });
  bob.PollUntil([&] { return bob.Messages().size() == 7; });
  EXPECT_EQ(alice.Messages()[3].message.body, "b2");
  EXPECT_EQ(bob.Messages()[6].message.body, std::string(kMaxBodyBytes, 'x'));
  EXPECT_EQ(alice.client->stats().decrypt_failures + bob.client->stats().decrypt_failures, 0u);
}

TEST_F(ClientSdkTest, WrongPinnedServerKeyIsRefused) {
  User alice;
  ASSERT_NO_FATAL_FAILURE(alice.Open());
  crypto::X25519Public wrong = sottod_.server_key();
  wrong[0] ^= 1;
  const std::string server = "127.0.0.1:" + std::to_string(sottod_.tcp_address().port());
  auto r = alice.client->StartRegistration(server, wrong, "+15550000101");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().detail, static_cast<uint16_t>(ClientErr::kServerKeyMismatch));
}

}  // namespace
}  // namespace sotto::client
