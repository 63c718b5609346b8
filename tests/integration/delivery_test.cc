// Delivery under load against a real sottod over TCP: a backlog of maximum-size envelopes
// drains within the connection's write budget (limits.max_write_queue_bytes) instead of
// getting the device closed as a slow reader, a device that reads late gets everything,
// one that never reads is still cut off without losing anything, and the per-sender
// quota in a device's queue (store.max_queued_per_sender). docs/server.md, "Write budget"
// and "Per-sender quota".
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/integration/sottod_process.h"
#include "tests/integration/test_account.h"

namespace sotto {
namespace {

using testing::NextOf;
using testing::SottodOptions;
using testing::SottodProcess;
using testing::TestDevice;

// A ciphertext near the largest a Send can carry (limits.max_frame_bytes = 65535): a few
// of these exceed the default write budget of 256 KiB.
constexpr size_t kBigBytes = 60'000;

SottodOptions WithConfig(std::string toml) {
  SottodOptions o;
  o.config_toml = std::move(toml);
  return o;
}

// A registered device with keys uploaded, or an empty one (the caller asserts conn).
TestDevice Ready(const SottodProcess& server, const std::string& handle, uint32_t reg_id) {
  auto d = testing::RegisterDevice(server, handle);
  if (!d) return {};
  auto up = testing::UploadKeys(*d, reg_id, 1);
  if (!up || up->status() != wire::STATUS_OK) return {};
  return std::move(*d);
}

#define READY(var, ...)                \
  TestDevice var = Ready(__VA_ARGS__); \
  ASSERT_TRUE(var.conn) << "setting up " #var

// Message i's body: its number, then filler up to kBigBytes.
std::string BigBody(int i) {
  std::string body = std::to_string(i) + ":";
  body.resize(kBigBytes, static_cast<char>('a' + i % 26));
  return body;
}

// Sends `count` big messages from `from` to device 1 of `to`, each acknowledged durable.
void SendBig(TestDevice& from, const TestDevice& to, int count, const std::string& prefix) {
  for (int i = 0; i < count; ++i) {
    auto r = from.conn->Call(testing::SendTo(to, {1}, prefix + std::to_string(i), BigBody(i)));
    ASSERT_TRUE(r) << i << ": " << r.error().ToString();
    ASSERT_EQ(r->status(), wire::STATUS_OK) << i << ": " << r->reason();
  }
}

// Reads `count` envelopes in order (message ids prefix0..), acking every `ack_every` as a
// client does, then expects QueueEmpty (sent once per connection).
void DrainInOrder(TestDevice& d, int count, const std::string& prefix, size_t ack_every,
                  bool expect_queue_empty = true) {
  std::vector<uint64_t> pending;
  for (int i = 0; i < count; ++i) {
    auto f = NextOf(*d.conn, wire::Frame::kEnvelope);
    ASSERT_TRUE(f) << "envelope " << i << ": " << f.error().ToString();
    const wire::Envelope& e = f->envelope();
    ASSERT_EQ(e.message_id(), prefix + std::to_string(i)) << "out of order";
    ASSERT_EQ(e.ciphertext(), BigBody(i));
    pending.push_back(e.seq());
    if (pending.size() == ack_every) {
      ASSERT_TRUE(testing::Ack(*d.conn, pending));
      pending.clear();
    }
  }
  ASSERT_TRUE(testing::Ack(*d.conn, pending));
  if (expect_queue_empty) {
    ASSERT_TRUE(NextOf(*d.conn, wire::Frame::kQueueEmpty));
  }
}

constexpr char kSlowReaderCloses[] = "sotto_connections_closed_total{reason=\"slow_reader\"}";

// The poison queue of issue 12: before the fix the reconnect drained delivery_window
// envelopes in one write, past max_write_queue_bytes, and the device was closed as a
// slow reader before it read anything, on every reconnect.
TEST(Delivery, BacklogOfMaximumSizeEnvelopesDrainsInOrderAfterReconnect) {
  SottodProcess server(WithConfig(
      "[store]\nsync = false\ndelivery_window = 32\n[limits]\nrequest_rate_per_s = 0\n"));
  READY(alice, server, "+15553300001", 1);
  READY(bob, server, "+15553300002", 2);
  bob.conn.reset();  // offline
  // 100 x 60 KB: 23 times the write budget and 3 times the delivery window.
  constexpr int kMessages = 100;
  SendBig(alice, bob, kMessages, "big-");
  ASSERT_TRUE(testing::Reconnect(server, bob));
  DrainInOrder(bob, kMessages, "big-", 16);
  EXPECT_EQ(server.Metric(kSlowReaderCloses), 0);
  EXPECT_GT(server.Metric("sotto_deliveries_held_back_total"), 0) << "the budget never bound";
}

// Online, but not reading while the messages arrive: the socket buffers and the write
// budget fill, delivery waits for them to drain, and the device gets every message.
TEST(Delivery, OnlineDeviceThatReadsLateGetsEverything) {
  SottodProcess server(WithConfig("[store]\nsync = false\n[limits]\nrequest_rate_per_s = 0\n"));
  READY(alice, server, "+15553300003", 3);
  READY(bob, server, "+15553300004", 4);
  ASSERT_TRUE(NextOf(*bob.conn, wire::Frame::kQueueEmpty));
  int small = 16 * 1024;  // the kernel then holds little for Bob: the server's queue fills
  ASSERT_EQ(setsockopt(bob.conn->fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
  constexpr int kMessages = 150;
  SendBig(alice, bob, kMessages, "late-");
  DrainInOrder(bob, kMessages, "late-", 1, /*expect_queue_empty=*/false);
  EXPECT_EQ(server.Metric(kSlowReaderCloses), 0);
  EXPECT_GT(server.Metric("sotto_deliveries_held_back_total"), 0) << "the budget never bound";
}

// A device that never reads still gets cut off (its responses overflow the write queue;
// envelopes never do), and what it was sent stays queued for its next connection.
TEST(Delivery, ADeviceThatNeverReadsIsCutOffAndLosesNothing) {
  SottodProcess server(WithConfig("[store]\nsync = false\n[limits]\nrequest_rate_per_s = 0\n"));
  READY(alice, server, "+15553300005", 5);
  READY(bob, server, "+15553300006", 6);
  bob.conn.reset();
  constexpr int kMessages = 20;
  SendBig(alice, bob, kMessages, "kept-");
  ASSERT_TRUE(testing::Reconnect(server, bob));
  int small = 4096;
  ASSERT_EQ(setsockopt(bob.conn->fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
  wire::Frame echo;
  echo.mutable_request()->mutable_echo()->set_data(std::string(kBigBytes, 'e'));
  for (int i = 0; i < 400 && server.Metric(kSlowReaderCloses) == 0; ++i) {
    if (!bob.conn->Send(echo)) break;  // the server may already have cut it off
  }
  EXPECT_EQ(server.Metric(kSlowReaderCloses), 1);
  ASSERT_TRUE(testing::Reconnect(server, bob));
  DrainInOrder(bob, kMessages, "kept-", 4);
}

// One sender fills a device's queue up to its quota: its next Send is refused with a
// reason naming store.max_queued_per_sender, while another sender still reaches the
// device; an ack gives the first sender room again.
TEST(Delivery, PerSenderQuotaStopsOneSenderAndNotTheNext) {
  SottodProcess server(
      WithConfig("[store]\nsync = false\nmax_queue_depth = 10\nmax_queued_per_sender = 3\n"));
  READY(alice, server, "+15553300007", 7);
  READY(bob, server, "+15553300008", 8);
  READY(carol, server, "+15553300009", 9);
  bob.conn.reset();
  for (int i = 0; i < 3; ++i) {  // at the edge: all three stored
    auto r = alice.conn->Call(testing::SendTo(bob, {1}, "a-" + std::to_string(i), "x"));
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status(), wire::STATUS_OK) << i << ": " << r->reason();
  }
  auto over = alice.conn->Call(testing::SendTo(bob, {1}, "a-3", "x"));  // past it
  ASSERT_TRUE(over);
  EXPECT_EQ(over->status(), wire::STATUS_QUEUE_FULL);
  EXPECT_NE(over->reason().find("store.max_queued_per_sender"), std::string::npos)
      << over->reason();
  EXPECT_EQ(server.Metric("sotto_sends_sender_quota_total"), 1);
  auto other = carol.conn->Call(testing::SendTo(bob, {1}, "c-0", "y"));
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status(), wire::STATUS_OK) << other->reason();

  ASSERT_TRUE(testing::Reconnect(server, bob));
  auto first = NextOf(*bob.conn, wire::Frame::kEnvelope);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->envelope().message_id(), "a-0");
  ASSERT_TRUE(testing::Ack(*bob.conn, {first->envelope().seq()}));
  // The receipt is committed with the ack's removal: once Alice has it, she has room.
  auto receipt = NextOf(*alice.conn, wire::Frame::kEnvelope);
  ASSERT_TRUE(receipt);
  EXPECT_EQ(receipt->envelope().type(), wire::ENVELOPE_DELIVERED);
  auto again = alice.conn->Call(testing::SendTo(bob, {1}, "a-3", "x"));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status(), wire::STATUS_OK) << again->reason();
}

}  // namespace
}  // namespace sotto
