// The server core through the real wire protocol against a real sottod: registration,
// prekeys, online and offline delivery with receipts, TTL, idempotency, stale device
// lists, queue limits, presence rules, push. Each test starts its own server.
#include <poll.h>

#include <condition_variable>
#include <mutex>
#include <set>

#include <gtest/gtest.h>

#include "net/http_server.h"
#include "tests/integration/sottod_process.h"
#include "tests/integration/test_account.h"

namespace sotto {
namespace {

using testing::NextOf;
using testing::RegisterDevice;
using testing::SottodOptions;
using testing::SottodProcess;
using testing::TestDevice;
using testing::UploadKeys;

SottodOptions WithConfig(std::string toml) {
  SottodOptions o;
  o.config_toml = std::move(toml);
  return o;
}

bool AwaitMetricAtLeast(const SottodProcess& server, const std::string& series, long value) {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    if (server.Metric(series) >= value) return true;
    pollfd none{-1, 0, 0};
    poll(&none, 0, 10);
  }
  return false;
}

bool AwaitMetric(const SottodProcess& server, const std::string& series, long value) {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    if (server.Metric(series) == value) return true;
    pollfd none{-1, 0, 0};
    poll(&none, 0, 10);
  }
  return false;
}

// Registers a device with keys (registration id `reg_id`, `one_time` one-time prekeys).
TestDevice Ready(const SottodProcess& server, const std::string& handle, uint32_t reg_id,
                 int one_time = 5) {
  auto d = RegisterDevice(server, handle);
  EXPECT_TRUE(d) << handle;
  if (!d) return {};
  auto up = UploadKeys(*d, reg_id, one_time);
  EXPECT_TRUE(up);
  if (up) {
    EXPECT_EQ(up->status(), wire::STATUS_OK) << up->reason();
  }
  return std::move(*d);
}

// Declares `var` as a registered device with keys, or fails the test.
#define READY(var, ...)                 \
  TestDevice var = Ready(__VA_ARGS__); \
  ASSERT_TRUE(var.conn) << "setting up " #var

// A call that fails is the test's failure and answers STATUS_INTERNAL (a default
// Response would say STATUS_OK), so no later check for success passes on it.
wire::Response MustCall(client::GatewayClient& c, const wire::Request& r) {
  auto resp = c.Call(r);
  if (resp) return *resp;
  ADD_FAILURE() << resp.error().ToString();
  wire::Response failed;
  failed.set_status(wire::STATUS_INTERNAL);
  failed.set_reason("the call failed");
  return failed;
}

wire::Envelope NextEnvelope(TestDevice& d) {
  auto f = NextOf(*d.conn, wire::Frame::kEnvelope);
  EXPECT_TRUE(f) << (f ? "" : f.error().ToString());
  return f ? f->envelope() : wire::Envelope();
}

TEST(ServerCore, RegistrationNeedsTheRightCodeOnce) {
  SottodProcess server;
  auto key = noise::KeyPair::Generate(crypto::SystemRandom());
  auto c = client::GatewayClient::Connect(testing::DeviceOptions(server, key));
  ASSERT_TRUE(c);
  wire::Request bad_handle;
  bad_handle.mutable_request_code()->set_handle("5551234567");
  EXPECT_EQ(MustCall(**c, bad_handle).status(), wire::STATUS_BAD_REQUEST);

  const std::string handle = "+15551230001";
  wire::Request ask;
  ask.mutable_request_code()->set_handle(handle);
  ASSERT_EQ(MustCall(**c, ask).status(), wire::STATUS_OK);
  const std::string code = server.VerificationCode(handle);
  ASSERT_EQ(code.size(), 6u);

  wire::Request reg;
  reg.mutable_register_()->set_handle(handle);
  reg.mutable_register_()->set_code(code == "000000" ? "000001" : "000000");
  EXPECT_EQ(MustCall(**c, reg).status(), wire::STATUS_BAD_CODE);
  wire::Request unauth;
  unauth.mutable_prekey_count();
  EXPECT_EQ(MustCall(**c, unauth).status(), wire::STATUS_UNAUTHENTICATED);

  reg.mutable_register_()->set_code(code);
  wire::Response ok = MustCall(**c, reg);
  ASSERT_EQ(ok.status(), wire::STATUS_OK) << ok.reason();
  EXPECT_EQ(ok.register_().account_id().size(), 16u);
  EXPECT_EQ(ok.register_().device_id(), 1u);
  EXPECT_FALSE(ok.register_().reregistered());

  // Single use: the same code again on another key fails.
  auto other = client::GatewayClient::Connect(
      testing::DeviceOptions(server, noise::KeyPair::Generate(crypto::SystemRandom())));
  ASSERT_TRUE(other);
  EXPECT_EQ(MustCall(**other, reg).status(), wire::STATUS_BAD_CODE);

  // The key is known after a restart: whoami over a fresh IK connection.
  ASSERT_EQ(server.Terminate(), 0);
  ASSERT_TRUE(server.Restart());
  auto again = client::GatewayClient::Connect(testing::DeviceOptions(server, key));
  ASSERT_TRUE(again);
  wire::Request who;
  who.mutable_whoami();
  wire::Response w = MustCall(**again, who);
  EXPECT_TRUE(w.whoami().registered());
  EXPECT_EQ(w.whoami().account_id(), ok.register_().account_id());
}

TEST(ServerCore, CodeAttemptsAndRateAreLimited) {
  SottodProcess server(WithConfig(
      "[registration]\ncode_attempts = 2\ncode_rate_per_s = 0.001\ncode_burst = 2\n"));
  auto c = client::GatewayClient::Connect(
      testing::DeviceOptions(server, noise::KeyPair::Generate(crypto::SystemRandom())));
  ASSERT_TRUE(c);
  const std::string handle = "+15551230002";
  wire::Request ask;
  ask.mutable_request_code()->set_handle(handle);
  ASSERT_EQ(MustCall(**c, ask).status(), wire::STATUS_OK);
  const std::string code = server.VerificationCode(handle);
  wire::Request reg;
  reg.mutable_register_()->set_handle(handle);
  const std::string wrong = code == "123456" ? "654321" : "123456";
  reg.mutable_register_()->set_code(wrong);
  EXPECT_EQ(MustCall(**c, reg).status(), wire::STATUS_BAD_CODE);  // 1 of 2
  EXPECT_EQ(MustCall(**c, reg).status(), wire::STATUS_BAD_CODE);  // 2 of 2: the code is void
  reg.mutable_register_()->set_code(code);
  EXPECT_EQ(MustCall(**c, reg).status(), wire::STATUS_BAD_CODE);
  ASSERT_EQ(MustCall(**c, ask).status(), wire::STATUS_OK);  // burst 2 of 2
  wire::Response limited = MustCall(**c, ask);
  EXPECT_EQ(limited.status(), wire::STATUS_RATE_LIMITED);
  EXPECT_NE(limited.reason().find("registration.code_rate"), std::string::npos);
}

TEST(ServerCore, BundlesHandOutEachOneTimePreKeyOnceThenFallBack) {
  SottodProcess server(WithConfig("[prekeys]\nlow_watermark = 2\n"));
  READY(alice, server, "+15551230010", 1111, 3);
  READY(bob, server, "+15551230011", 2222, 0);
  wire::Request get;
  get.mutable_get_bundle()->set_account_id(alice.account_id);
  std::set<uint32_t> ids;
  for (int i = 0; i < 3; ++i) {
    wire::Response r = MustCall(*bob.conn, get);
    ASSERT_EQ(r.status(), wire::STATUS_OK) << r.reason();
    ASSERT_EQ(r.get_bundle().bundles_size(), 1);
    const wire::DeviceBundle& b = r.get_bundle().bundles(0);
    EXPECT_EQ(b.registration_id(), 1111u);
    EXPECT_EQ(b.identity_key().size(), 33u);
    EXPECT_EQ(b.signed_prekey().signature().size(), 64u);
    ASSERT_TRUE(b.has_one_time_prekey());
    EXPECT_TRUE(ids.insert(b.one_time_prekey().id()).second) << "handed out twice";
  }
  wire::Response empty = MustCall(*bob.conn, get);
  ASSERT_EQ(empty.status(), wire::STATUS_OK);
  EXPECT_FALSE(empty.get_bundle().bundles(0).has_one_time_prekey());  // signed prekey only
  EXPECT_EQ(empty.get_bundle().bundles(0).signed_prekey().public_key().size(), 33u);
  // Alice is told her pool is low (below 2) and refills.
  auto low = NextOf(*alice.conn, wire::Frame::kPrekeysLow);
  ASSERT_TRUE(low);
  EXPECT_LT(low->prekeys_low().count(), 2u);
  wire::Request refill;
  for (uint32_t i = 0; i < 4; ++i) {
    auto* k = refill.mutable_upload_keys()->add_one_time_prekeys();
    k->set_id(100 + i);
    k->set_public_key(std::string(1, '\x05') + std::string(32, static_cast<char>(i + 1)));
  }
  wire::Response refilled = MustCall(*alice.conn, refill);
  ASSERT_EQ(refilled.status(), wire::STATUS_OK) << refilled.reason();
  EXPECT_EQ(refilled.upload_keys().one_time_prekeys(), 4u);
  EXPECT_TRUE(MustCall(*bob.conn, get).get_bundle().bundles(0).has_one_time_prekey());
  // Signed-prekey rotation: same identity, new signed prekey; bundles carry the new one.
  const std::string identity = MustCall(*bob.conn, get).get_bundle().bundles(0).identity_key();
  auto rotated = UploadKeys(alice, 1111, 0, 1, /*signed_id=*/2);
  ASSERT_TRUE(rotated);
  ASSERT_EQ(rotated->status(), wire::STATUS_OK) << rotated->reason();
  wire::Response after = MustCall(*bob.conn, get);
  EXPECT_EQ(after.get_bundle().bundles(0).signed_prekey().id(), 2u);
  EXPECT_EQ(after.get_bundle().bundles(0).identity_key(), identity);
}

TEST(ServerCore, SignedPreKeyMustVerifyAndUploadsAreBounded) {
  SottodProcess server(WithConfig("[prekeys]\nmax_upload = 3\nmax_one_time_prekeys = 4\nlow_watermark = 2\n"));
  auto d = RegisterDevice(server, "+15551230012");
  ASSERT_TRUE(d);
  auto up = UploadKeys(*d, 7, 0);
  ASSERT_TRUE(up);
  ASSERT_EQ(up->status(), wire::STATUS_OK);
  wire::Request forged;
  auto* u = forged.mutable_upload_keys();
  u->set_identity_key(std::string(1, '\x05') + std::string(32, 'a'));
  u->set_registration_id(7);
  u->mutable_signed_prekey()->set_public_key(std::string(1, '\x05') + std::string(32, 'b'));
  u->mutable_signed_prekey()->set_signature(std::string(64, 'c'));
  EXPECT_EQ(MustCall(*d->conn, forged).status(), wire::STATUS_BAD_REQUEST);
  auto batch = [](int n, uint32_t first) {
    wire::Request r;
    for (int i = 0; i < n; ++i) {
      auto* k = r.mutable_upload_keys()->add_one_time_prekeys();
      k->set_id(first + static_cast<uint32_t>(i));
      k->set_public_key(std::string(1, '\x05') + std::string(32, 'k'));
    }
    return r;
  };
  wire::Response too_many = MustCall(*d->conn, batch(4, 1));  // max_upload + 1
  EXPECT_EQ(too_many.status(), wire::STATUS_TOO_LARGE);
  EXPECT_NE(too_many.reason().find("prekeys.max_upload"), std::string::npos);
  EXPECT_EQ(MustCall(*d->conn, batch(3, 1)).status(), wire::STATUS_OK);  // at max_upload
  EXPECT_EQ(MustCall(*d->conn, batch(1, 10)).status(), wire::STATUS_OK);  // pool at 4
  wire::Response full = MustCall(*d->conn, batch(1, 20));                 // 5 > 4
  EXPECT_EQ(full.status(), wire::STATUS_TOO_LARGE);
  EXPECT_NE(full.reason().find("prekeys.max_one_time_prekeys"), std::string::npos);
}

TEST(ServerCore, BundleFetchesAreRateLimitedPerRequester) {
  SottodProcess server(WithConfig("[prekeys]\nbundle_rate_per_s = 0.001\nbundle_burst = 3\n"));
  READY(alice, server, "+15551230013", 1, 10);
  READY(mallory, server, "+15551230014", 2, 0);
  wire::Request get;
  get.mutable_get_bundle()->set_account_id(alice.account_id);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(MustCall(*mallory.conn, get).status(), wire::STATUS_OK);
  wire::Response limited = MustCall(*mallory.conn, get);
  EXPECT_EQ(limited.status(), wire::STATUS_RATE_LIMITED);
  EXPECT_NE(limited.reason().find("prekeys.bundle_rate"), std::string::npos);
  wire::Request count;
  count.mutable_prekey_count();
  EXPECT_EQ(MustCall(*alice.conn, count).prekey_count().count(), 7u);  // only 3 drained
}

TEST(ServerCore, OnlineDeliveryWithServerAckAndDeliveredReceipt) {
  SottodProcess server;
  READY(alice, server, "+15551230020", 11);
  READY(bob, server, "+15551230021", 22);
  wire::Request lookup;
  lookup.mutable_lookup()->set_handle(bob.handle);
  wire::Response found = MustCall(*alice.conn, lookup);
  ASSERT_EQ(found.status(), wire::STATUS_OK);
  EXPECT_EQ(found.lookup().account_id(), bob.account_id);
  ASSERT_EQ(found.lookup().device_ids_size(), 1);

  wire::Response ack = MustCall(*alice.conn, testing::SendTo(bob, {1}, "m-1", "hello bob"));
  ASSERT_EQ(ack.status(), wire::STATUS_OK) << ack.reason();  // one tick
  wire::Envelope e = NextEnvelope(bob);
  EXPECT_EQ(e.type(), wire::ENVELOPE_MESSAGE);
  EXPECT_EQ(e.source_account(), alice.account_id);
  EXPECT_EQ(e.source_device(), 1u);
  EXPECT_EQ(e.message_id(), "m-1");
  EXPECT_EQ(e.ciphertext(), "hello bob");
  EXPECT_GT(e.seq(), 0u);
  ASSERT_TRUE(testing::Ack(*bob.conn, {e.seq()}));
  wire::Envelope receipt = NextEnvelope(alice);  // two ticks
  EXPECT_EQ(receipt.type(), wire::ENVELOPE_DELIVERED);
  EXPECT_EQ(receipt.source_account(), bob.account_id);
  EXPECT_EQ(receipt.message_id(), "m-1");
  EXPECT_TRUE(receipt.ciphertext().empty());
  ASSERT_TRUE(testing::Ack(*alice.conn, {receipt.seq()}));
  // Acked means deleted: a reconnect brings nothing back.
  ASSERT_TRUE(testing::Reconnect(server, bob));
  auto empty = NextOf(*bob.conn, wire::Frame::kQueueEmpty);
  ASSERT_TRUE(empty);
}

TEST(ServerCore, OfflineDeviceDrainsInOrderAfterReconnectAndRestart) {
  SottodProcess server(
      WithConfig("[store]\ndelivery_window = 16\n[limits]\nrequest_rate_per_s = 0\n"));
  READY(alice, server, "+15551230030", 31);
  READY(bob, server, "+15551230031", 32);
  bob.conn.reset();  // offline
  constexpr int kMessages = 100;
  for (int i = 0; i < kMessages; ++i) {
    wire::Response r =
        MustCall(*alice.conn, testing::SendTo(bob, {1}, "id-" + std::to_string(i), std::to_string(i)));
    ASSERT_EQ(r.status(), wire::STATUS_OK) << i;
  }
  // Durable: a clean restart in between loses nothing.
  alice.conn.reset();
  ASSERT_EQ(server.Terminate(), 0);
  ASSERT_TRUE(server.Restart());
  ASSERT_TRUE(testing::Reconnect(server, bob));
  // A reconnect before acking redelivers (at-least-once); then ack in batches.
  wire::Envelope first = NextEnvelope(bob);
  EXPECT_EQ(first.ciphertext(), "0");
  ASSERT_TRUE(testing::Reconnect(server, bob));
  int expected = 0;
  std::vector<uint64_t> pending;
  while (expected < kMessages) {
    wire::Envelope e = NextEnvelope(bob);
    ASSERT_EQ(e.ciphertext(), std::to_string(expected)) << "out of order";
    ++expected;
    pending.push_back(e.seq());
    if (pending.size() == 16) {  // the window: the server waits for acks
      ASSERT_TRUE(testing::Ack(*bob.conn, pending));
      pending.clear();
    }
  }
  ASSERT_TRUE(testing::Ack(*bob.conn, pending));
  ASSERT_TRUE(NextOf(*bob.conn, wire::Frame::kQueueEmpty));
}

TEST(ServerCore, RetriesWithTheSameMessageIdAreStoredOnce) {
  SottodProcess server;
  READY(alice, server, "+15551230040", 41);
  READY(bob, server, "+15551230041", 42);
  bob.conn.reset();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(MustCall(*alice.conn, testing::SendTo(bob, {1}, "same", "x")).status(), wire::STATUS_OK);
  }
  EXPECT_EQ(MustCall(*alice.conn, testing::SendTo(bob, {1}, "other", "y")).status(), wire::STATUS_OK);
  ASSERT_TRUE(testing::Reconnect(server, bob));
  wire::Envelope a = NextEnvelope(bob);
  wire::Envelope b = NextEnvelope(bob);
  EXPECT_EQ(a.message_id(), "same");
  EXPECT_EQ(b.message_id(), "other");
  ASSERT_TRUE(NextOf(*bob.conn, wire::Frame::kQueueEmpty));
  EXPECT_EQ(server.Metric("sotto_sends_duplicate_total"), 2);
  EXPECT_EQ(server.Metric("sotto_messages_queued_total"), 2);  // duplicates are not queued
  // After delivery, a late retry is still recognised and not delivered again.
  ASSERT_TRUE(testing::Ack(*bob.conn, {a.seq(), b.seq()}));
  EXPECT_EQ(MustCall(*alice.conn, testing::SendTo(bob, {1}, "same", "x")).status(), wire::STATUS_OK);
  EXPECT_EQ(server.Metric("sotto_sends_duplicate_total"), 3);
}

TEST(ServerCore, StaleDeviceListsAreRefusedAndNothingIsQueued) {
  SottodProcess server;
  READY(alice, server, "+15551230050", 51);
  READY(bob, server, "+15551230051", 52);
  wire::Response extra = MustCall(*alice.conn, testing::SendTo(bob, {1, 2}, "s-1", "x"));
  EXPECT_EQ(extra.status(), wire::STATUS_STALE_DEVICES);
  ASSERT_EQ(extra.send().extra_devices_size(), 1);
  EXPECT_EQ(extra.send().extra_devices(0), 2u);
  TestDevice stale_view;  // what Alice believes: Bob with another registration id
  stale_view.account_id = bob.account_id;
  stale_view.registration_id = 999;
  wire::Response stale = MustCall(*alice.conn, testing::SendTo(stale_view, {1}, "s-2", "x"));
  EXPECT_EQ(stale.status(), wire::STATUS_STALE_DEVICES);
  ASSERT_EQ(stale.send().stale_devices_size(), 1);
  // To herself, Alice has no other device: device 1 (herself) is extra.
  wire::Response self = MustCall(*alice.conn, testing::SendTo(alice, {1}, "s-3", "x"));
  EXPECT_EQ(self.status(), wire::STATUS_STALE_DEVICES);
  EXPECT_EQ(self.send().extra_devices_size(), 1);
  ASSERT_TRUE(testing::Reconnect(server, bob));
  ASSERT_TRUE(NextOf(*bob.conn, wire::Frame::kQueueEmpty));  // nothing was queued

  // Bob re-registers on a new phone: Alice's next Send finds device 1 stale, and the
  // refetched bundle carries the new identity key.
  wire::Request get;
  get.mutable_get_bundle()->set_account_id(bob.account_id);
  const std::string old_identity = MustCall(*alice.conn, get).get_bundle().bundles(0).identity_key();
  auto new_bob = RegisterDevice(server, bob.handle);
  ASSERT_TRUE(new_bob);
  EXPECT_EQ(new_bob->account_id, bob.account_id);
  ASSERT_TRUE(UploadKeys(*new_bob, 53, 1));
  wire::Response after = MustCall(*alice.conn, testing::SendTo(bob, {1}, "s-4", "x"));
  EXPECT_EQ(after.status(), wire::STATUS_STALE_DEVICES);
  EXPECT_EQ(after.send().stale_devices_size(), 1);
  wire::Response fresh = MustCall(*alice.conn, get);
  ASSERT_EQ(fresh.status(), wire::STATUS_OK);
  EXPECT_NE(fresh.get_bundle().bundles(0).identity_key(), old_identity);
  EXPECT_EQ(fresh.get_bundle().bundles(0).registration_id(), 53u);
  // The old phone was disconnected with a reason.
  for (;;) {
    auto f = bob.conn->Receive();
    ASSERT_TRUE(f) << "no Close frame before the old connection ended";
    if (f->has_close()) {
      EXPECT_EQ(f->close().reason(), wire::CLOSE_REPLACED);
      break;
    }
  }
  EXPECT_EQ(MustCall(*alice.conn, testing::SendTo(*new_bob, {1}, "s-5", "x")).status(),
            wire::STATUS_OK);
}

TEST(ServerCore, QueueDepthIsBoundedWithAClearError) {
  SottodProcess server(WithConfig("[store]\nmax_queue_depth = 3\nmax_queued_per_sender = 3\n"));
  READY(alice, server, "+15551230060", 61);
  READY(bob, server, "+15551230061", 62);
  bob.conn.reset();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(MustCall(*alice.conn, testing::SendTo(bob, {1}, "q" + std::to_string(i), "x")).status(),
              wire::STATUS_OK);
  }
  wire::Response full = MustCall(*alice.conn, testing::SendTo(bob, {1}, "q3", "x"));
  EXPECT_EQ(full.status(), wire::STATUS_QUEUE_FULL);
  EXPECT_NE(full.reason().find("store.max_queue_depth"), std::string::npos);
}

TEST(ServerCore, MessagesExpireAfterTheirTtl) {
  SottodProcess server(WithConfig("[store]\nmessage_ttl_s = 1\npurge_interval_ms = 50\n"));
  READY(alice, server, "+15551230070", 71);
  READY(bob, server, "+15551230071", 72);
  bob.conn.reset();
  ASSERT_EQ(MustCall(*alice.conn, testing::SendTo(bob, {1}, "ttl", "x")).status(), wire::STATUS_OK);
  ASSERT_TRUE(AwaitMetricAtLeast(server, "sotto_queue_expired_total", 1));
  ASSERT_TRUE(testing::Reconnect(server, bob));
  auto f = bob.conn->Receive();
  while (f && (f->has_prekeys_low() || f->has_ping())) f = bob.conn->Receive();
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->has_queue_empty()) << "an expired message was delivered";
}

TEST(ServerCore, TypingIndicatorsReachOnlineDevicesOnly) {
  SottodProcess server;
  READY(alice, server, "+15551230080", 81);
  READY(bob, server, "+15551230081", 82);
  ASSERT_TRUE(NextOf(*bob.conn, wire::Frame::kQueueEmpty));
  EXPECT_EQ(MustCall(*alice.conn, testing::SendTo(bob, {1}, "t1", "typing", true)).status(),
            wire::STATUS_OK);
  wire::Envelope e = NextEnvelope(bob);
  EXPECT_TRUE(e.online_only());
  EXPECT_EQ(e.ciphertext(), "typing");
  bob.conn.reset();
  ASSERT_TRUE(AwaitMetric(server, "sotto_devices_online", 1));
  EXPECT_EQ(MustCall(*alice.conn, testing::SendTo(bob, {1}, "t2", "typing", true)).status(),
            wire::STATUS_OK);
  ASSERT_TRUE(testing::Reconnect(server, bob));
  auto f = bob.conn->Receive();
  while (f && (f->has_prekeys_low() || f->has_ping())) f = bob.conn->Receive();
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->has_queue_empty()) << "a typing indicator was queued";
}

TEST(ServerCore, PresenceFollowsTheOwnersVisibility) {
  SottodProcess server;
  READY(alice, server, "+15551230090", 91);
  READY(bob, server, "+15551230091", 92);
  READY(carol, server, "+15551230092", 93);
  wire::Request sub;
  sub.mutable_subscribe_presence()->set_account_id(alice.account_id);
  // Default: contacts only, and Bob is not one yet.
  EXPECT_EQ(MustCall(*bob.conn, sub).status(), wire::STATUS_PERMISSION_DENIED);
  wire::Request add;
  add.mutable_contact()->set_account_id(bob.account_id);
  ASSERT_EQ(MustCall(*alice.conn, add).status(), wire::STATUS_OK);
  wire::Response seen = MustCall(*bob.conn, sub);
  ASSERT_EQ(seen.status(), wire::STATUS_OK);
  EXPECT_TRUE(seen.presence().online());
  EXPECT_EQ(MustCall(*carol.conn, sub).status(), wire::STATUS_PERMISSION_DENIED);
  // Alice goes offline: Bob is told, with a last-seen time.
  alice.conn.reset();
  auto update = NextOf(*bob.conn, wire::Frame::kPresence);
  ASSERT_TRUE(update);
  EXPECT_EQ(update->presence().account_id(), alice.account_id);
  EXPECT_FALSE(update->presence().online());
  EXPECT_GT(update->presence().last_seen_ms(), 0u);
  // Nobody: even contacts are refused; everyone: strangers see it.
  ASSERT_TRUE(testing::Reconnect(server, alice));
  wire::Request nobody;
  nobody.mutable_set_presence_visibility()->set_visibility(wire::PRESENCE_NOBODY);
  ASSERT_EQ(MustCall(*alice.conn, nobody).status(), wire::STATUS_OK);
  EXPECT_EQ(MustCall(*bob.conn, sub).status(), wire::STATUS_PERMISSION_DENIED);
  wire::Request everyone;
  everyone.mutable_set_presence_visibility()->set_visibility(wire::PRESENCE_EVERYONE);
  ASSERT_EQ(MustCall(*alice.conn, everyone).status(), wire::STATUS_OK);
  wire::Response stranger = MustCall(*carol.conn, sub);
  ASSERT_EQ(stranger.status(), wire::STATUS_OK);
  EXPECT_TRUE(stranger.presence().online());
}

// A local UnifiedPush-style receiver.
struct PushReceiver {
  static constexpr uint32_t kMaxPushBody = 4096;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<net::HttpRequest> received;
  std::unique_ptr<net::HttpServer> server;

  PushReceiver() {
    auto s = net::HttpServer::Start(*net::ParseHostPort("127.0.0.1:0"), [this](const net::HttpRequest& r) {
      {
        std::lock_guard<std::mutex> lock(mu);
        received.push_back(r);
      }
      cv.notify_all();
      return net::HttpResponse{201, "text/plain", ""};
    }, kMaxPushBody);
    EXPECT_TRUE(s);
    if (s) server = std::move(*s);
  }
  bool AwaitCount(size_t n) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10), [&] { return received.size() >= n; });
  }
};

TEST(ServerCore, ContentFreePushForOfflineDevicesIsCoalesced) {
  PushReceiver receiver;
  ASSERT_TRUE(receiver.server);
  SottodProcess server(WithConfig("[push]\ncoalesce_ms = 60000\nallow_private_endpoints = true\n"));
  READY(alice, server, "+15551230100", 101);
  READY(bob, server, "+15551230101", 102);
  wire::Request push;
  push.mutable_register_push()->set_endpoint("http://127.0.0.1:" +
                                            std::to_string(receiver.server->port()) + "/up/bob");
  ASSERT_EQ(MustCall(*bob.conn, push).status(), wire::STATUS_OK);
  wire::Request bad_push;
  bad_push.mutable_register_push()->set_endpoint("ftp://example.invalid/");
  EXPECT_EQ(MustCall(*bob.conn, bad_push).status(), wire::STATUS_BAD_REQUEST);
  // Online: no push.
  ASSERT_EQ(MustCall(*alice.conn, testing::SendTo(bob, {1}, "p0", "x")).status(), wire::STATUS_OK);
  NextEnvelope(bob);
  bob.conn.reset();
  ASSERT_TRUE(AwaitMetric(server, "sotto_devices_online", 1));
  for (int i = 1; i <= 5; ++i) {
    ASSERT_EQ(MustCall(*alice.conn, testing::SendTo(bob, {1}, "p" + std::to_string(i), "secret")).status(),
              wire::STATUS_OK);
  }
  ASSERT_TRUE(receiver.AwaitCount(1))
      << "requested " << server.Metric("sotto_pushes_requested_total") << ", failed "
      << server.Metric("sotto_push_failed_attempts_total");
  ASSERT_TRUE(AwaitMetricAtLeast(server, "sotto_push_coalesced_total", 1));
  std::lock_guard<std::mutex> lock(receiver.mu);
  ASSERT_EQ(receiver.received.size(), 1u) << "five messages, one push";
  const net::HttpRequest& r = receiver.received[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/up/bob");
  EXPECT_EQ(r.body.find("secret"), std::string::npos);
  EXPECT_EQ(r.body.find(alice.handle), std::string::npos);
  EXPECT_EQ(r.body.find(alice.account_id), std::string::npos);
  EXPECT_LT(r.body.size(), 64u);
}

TEST(ServerCore, PushEndpointsInThePrivateNetworkAreRefusedByDefault) {
  SottodProcess server;
  READY(bob, server, "+15551230102", 103);
  for (const char* url : {"http://127.0.0.1:9/x", "http://localhost/x", "https://10.1.2.3/x",
                          "http://169.254.169.254/latest", "http://[::1]/x", "http://[fd00::1]/x"}) {
    wire::Request push;
    push.mutable_register_push()->set_endpoint(url);
    wire::Response r = MustCall(*bob.conn, push);
    EXPECT_EQ(r.status(), wire::STATUS_PERMISSION_DENIED) << url;
    EXPECT_NE(r.reason().find("push.allow_private_endpoints"), std::string::npos);
  }
  // inet_aton's other spellings of 127.0.0.1 (a resolver connects to them): refused as
  // malformed, whatever push.allow_private_endpoints says.
  for (const char* url : {"http://127.1/x", "http://0x7f000001/x", "http://2130706433/x",
                          "http://0177.0.0.1/x", "http://0/x", "http://127.0.0.1./x"}) {
    wire::Request push;
    push.mutable_register_push()->set_endpoint(url);
    wire::Response r = MustCall(*bob.conn, push);
    EXPECT_EQ(r.status(), wire::STATUS_BAD_REQUEST) << url;
    EXPECT_NE(r.reason().find("dotted quad"), std::string::npos) << url << ": " << r.reason();
  }
  // IPv6 forms that reach IPv4 loopback or private space.
  for (const char* url : {"http://[::ffff:7f00:1]/x", "http://[::127.0.0.1]/x",
                          "http://[64:ff9b::7f00:1]/x", "http://[2002:a00:1::]/x"}) {
    wire::Request push;
    push.mutable_register_push()->set_endpoint(url);
    EXPECT_EQ(MustCall(*bob.conn, push).status(), wire::STATUS_PERMISSION_DENIED) << url;
  }
  wire::Request public_push;
  public_push.mutable_register_push()->set_endpoint("https://push.example.org/up/abc");
  EXPECT_EQ(MustCall(*bob.conn, public_push).status(), wire::STATUS_OK);
  wire::Request too_long;
  too_long.mutable_register_push()->set_endpoint("https://push.example.org/" + std::string(600, 'a'));
  wire::Response r = MustCall(*bob.conn, too_long);
  EXPECT_EQ(r.status(), wire::STATUS_TOO_LARGE);
  EXPECT_NE(r.reason().find("push.max_endpoint_bytes"), std::string::npos);
}

}  // namespace
}  // namespace sotto
