// The server's request handling in-process (tests/support/in_process_server.h): the
// gateway session and the core on the in-memory store, without sockets. Requests without a
// known body, handshakes without a ClientHello, text fields with invalid UTF-8, device-list
// version jumps, and the one mapping from errors to wire statuses.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <google/protobuf/stubs/logging.h>

#include "server/internal/core_util.h"
#include "tests/support/in_process_server.h"
#include "wire/protobuf_log.h"

namespace sotto {
namespace {

using testing::InProcessConnection;
using testing::InProcessServer;

store::StaticKey RandomKey() { return noise::KeyPair::Generate(crypto::SystemRandom()).public_key; }

Bytes FrameOf(const wire::Request& r) {
  wire::Frame f;
  *f.mutable_request() = r;
  Bytes out;
  wire::SerializeFrame(f, out);
  return out;
}

// The response to request `id` among the frames the connection wrote.
std::optional<wire::Response> ResponseTo(InProcessConnection& c, uint64_t id) {
  for (wire::Frame& f : c.TakeFrames()) {
    if (f.has_response() && f.response().id() == id) return f.response();
  }
  return std::nullopt;
}

// A registered primary on its own clear connection.
struct Primary {
  InProcessConnection* conn = nullptr;
  std::string account;
};

Primary RegisterPrimary(InProcessServer& server, const std::string& handle) {
  Primary p;
  p.conn = &server.Connect(RandomKey());
  auto reg = server.Register(*p.conn, handle);
  EXPECT_TRUE(reg) << "registration of " << handle << " failed";
  if (reg) p.account = reg->account_id();
  return p;
}

// --- Unknown or empty request types ------------------------------------------------------

TEST(ServerSession, EmptyOrUnknownRequestTypeIsBadRequestAndTheConnectionStays) {
  InProcessServer server;
  Primary alice = RegisterPrimary(server, "+15550100001");
  ASSERT_FALSE(alice.account.empty());
  InProcessConnection& stranger = server.Connect(RandomKey());  // not registered

  for (InProcessConnection* c : {alice.conn, &stranger}) {
    wire::Request empty;
    empty.set_id(41);
    auto r = server.Call(*c, empty);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status(), wire::STATUS_BAD_REQUEST);
    EXPECT_EQ(r->reason(), "unknown or empty request type (docs/wire.md)");

    // A body under a field number this server has no request for (a newer client's):
    // field 99, length-delimited, 3 bytes.
    wire::Request known;
    known.set_id(42);
    std::string bytes = known.SerializeAsString();
    bytes += std::string("\x9a\x06\x03", 3) + "abc";
    wire::Request unknown;
    ASSERT_TRUE(unknown.ParseFromString(bytes));
    ASSERT_EQ(unknown.body_case(), wire::Request::BODY_NOT_SET);
    auto u = server.Call(*c, unknown);
    ASSERT_TRUE(u);
    EXPECT_EQ(u->status(), wire::STATUS_BAD_REQUEST);
    EXPECT_FALSE(c->closed);
  }
  // The connection still serves: whoami answers for alice.
  wire::Request who;
  who.set_id(43);
  who.mutable_whoami();
  auto w = server.Call(*alice.conn, who);
  ASSERT_TRUE(w);
  EXPECT_EQ(w->status(), wire::STATUS_OK);
  EXPECT_TRUE(w->whoami().registered());
}

// --- The ClientHello is required ---------------------------------------------------------

// Runs a real Noise Pipes handshake against the in-process session. `hello` is the payload
// of the client's hello-carrying message (empty = no hello). Returns the server's verdict
// on the last message the client sent.
server::internal::Verdict Handshake(InProcessServer& server, InProcessConnection& c,
                                    bool pin_server_key, const std::string& hello) {
  const noise::KeyPair device = noise::KeyPair::Generate(crypto::SystemRandom());
  std::optional<crypto::X25519Public> pinned;
  if (pin_server_key) pinned = server.server_static().public_key;
  noise::NoisePipe pipe = noise::NoisePipe::Client(device, pinned, crypto::SystemRandom());
  server::internal::Verdict last = server::internal::Verdict::Keep();
  while (!pipe.IsFinished() && last.keep) {
    if (pipe.NextAction() == noise::HandshakeAction::kWriteMessage) {
      const bool first_xx = !pinned && pipe.pattern() == noise::HandshakePattern::kXX &&
                            pipe.RemoteStatic() == std::nullopt;
      auto msg = pipe.WriteMessage(first_xx ? ByteSpan() : AsBytes(hello));
      EXPECT_TRUE(msg);
      if (!msg) break;
      last = server.Deliver(c, *msg);
    } else {
      if (c.written.empty()) break;  // the server sent nothing (it closed)
      auto payload = pipe.ReadMessage(c.written.front());
      c.written.erase(c.written.begin());
      EXPECT_TRUE(payload);
      if (!payload) break;
    }
  }
  return last;
}

std::string HelloBytes(uint32_t version) {
  wire::ClientHello hello;
  hello.set_wire_version(version);
  hello.set_user_agent("server-session-test");
  return hello.SerializeAsString();
}

TEST(ServerSession, HandshakeWithoutClientHelloIsRefusedAsUnsupportedVersion) {
  InProcessServer server;
  for (bool pin : {false, true}) {  // XX, then IK
    SCOPED_TRACE(pin ? "IK" : "XX");
    InProcessConnection& with = server.Accept();
    server::internal::Verdict ok = Handshake(server, with, pin, HelloBytes(wire::kWireVersion));
    EXPECT_TRUE(ok.keep);
    EXPECT_TRUE(with.state.open);

    InProcessConnection& without = server.Accept();
    server::internal::Verdict refused = Handshake(server, without, pin, "");
    EXPECT_FALSE(refused.keep);
    EXPECT_EQ(refused.cause, server::CloseCause::kUnsupportedVersion);
    EXPECT_FALSE(without.state.open);
    ASSERT_TRUE(without.closed);

    InProcessConnection& wrong = server.Accept();
    server::internal::Verdict old =
        Handshake(server, wrong, pin, HelloBytes(wire::kWireVersion + 1));
    EXPECT_FALSE(old.keep);
    EXPECT_EQ(old.cause, server::CloseCause::kUnsupportedVersion);
  }
}

// --- Invalid UTF-8 in text fields --------------------------------------------------------

std::vector<std::string>& SinkLines() {
  static std::vector<std::string> lines;
  return lines;
}
void RecordLine(std::string_view line) { SinkLines().emplace_back(line); }

TEST(ServerSession, InvalidUtf8InATextFieldGetsAClearErrorAndLogsNothing) {
  wire::InstallProtobufLogHandler(&RecordLine);
  const uint64_t lines_before = wire::ProtobufLogLines();
  InProcessServer server;
  Primary alice = RegisterPrimary(server, "+15550100002");
  ASSERT_FALSE(alice.account.empty());
  const std::string bad_utf8 = "+1555\xff\xfe\xc3\x28";
  constexpr int kFrames = 50;
  for (int i = 0; i < kFrames; ++i) {
    wire::Request r;
    r.set_id(100 + static_cast<uint64_t>(i));
    switch (i % 3) {
      case 0:
        r.mutable_request_code()->set_handle(bad_utf8);
        break;
      case 1:
        r.mutable_lookup()->set_handle(bad_utf8);
        break;
      default:
        r.mutable_register_()->set_handle("+15550100002");
        r.mutable_register_()->set_code("\xff\xff\xff\xff\xff\xff");
        break;
    }
    ASSERT_TRUE(server.Deliver(*alice.conn, FrameOf(r)).keep) << "frame " << i << " closed";
    auto resp = ResponseTo(*alice.conn, r.id());
    ASSERT_TRUE(resp) << "frame " << i;
    if (i % 3 == 2) {
      EXPECT_EQ(resp->status(), wire::STATUS_BAD_CODE);
    } else {
      EXPECT_EQ(resp->status(), wire::STATUS_BAD_REQUEST);
      EXPECT_EQ(resp->reason(), "handle must be an E.164 number (+ and 8..15 digits)");
    }
  }
  EXPECT_FALSE(alice.conn->closed);
  EXPECT_EQ(wire::ProtobufLogLines(), lines_before) << "libprotobuf logged for a frame";
}

TEST(ServerSession, ProtobufLogLinesAreCountedAndRateLimited) {
  wire::InstallProtobufLogHandler(&RecordLine);
  const uint64_t lines_before = wire::ProtobufLogLines();
  const uint64_t dropped_before = wire::ProtobufLogLinesDropped();
  const size_t written_before = SinkLines().size();
  constexpr uint64_t kLines = 100;
  for (uint64_t i = 0; i < kLines; ++i) GOOGLE_LOG(ERROR) << "a line per bad message";
  const uint64_t written = SinkLines().size() - written_before;
  const uint64_t dropped = wire::ProtobufLogLinesDropped() - dropped_before;
  EXPECT_EQ(wire::ProtobufLogLines() - lines_before, kLines);
  // Within one minute at most kProtobufLogLinesPerMinute get through (fewer if this
  // process already wrote some in the same minute); every line is either written or
  // counted as dropped.
  EXPECT_LE(written, wire::kProtobufLogLinesPerMinute);
  EXPECT_GE(dropped, kLines - wire::kProtobufLogLinesPerMinute);
  EXPECT_EQ(written + dropped, kLines);
}

// --- Device-list versions ----------------------------------------------------------------

TEST(ServerSession, DeviceListVersionMayJumpAtMostTheStepSoThePrimaryCanAlwaysPublish) {
  InProcessServer server;
  Primary alice = RegisterPrimary(server, "+15550100003");
  ASSERT_FALSE(alice.account.empty());
  crypto::Random& random = crypto::SystemRandom();
  const crypto::X25519Private identity = crypto::GeneratePrivateKey(random);
  wire::Request up = testing::UploadKeysRequest(identity, 7, 0, random);
  up.set_id(10);
  auto uploaded = server.Call(*alice.conn, up);
  ASSERT_TRUE(uploaded);
  ASSERT_EQ(uploaded->status(), wire::STATUS_OK) << uploaded->reason();

  uint64_t id = 20;
  auto publish = [&](uint64_t version) {
    wire::Request r = testing::PublishPrimaryOnly(alice.account, version, identity, random);
    r.set_id(++id);
    auto resp = server.Call(*alice.conn, r);
    EXPECT_TRUE(resp);
    return resp ? *resp : wire::Response();
  };
  auto published_version = [&] {
    wire::Request r;
    r.set_id(++id);
    r.mutable_get_device_list();
    auto resp = server.Call(*alice.conn, r);
    EXPECT_TRUE(resp && resp->status() == wire::STATUS_OK);
    return resp ? resp->device_list().version() : 0;
  };
  constexpr uint64_t kStep = wire::kMaxDeviceListVersionStep;

  EXPECT_EQ(publish(kStep).status(), wire::STATUS_OK);  // 0 -> kStep: at the edge
  EXPECT_EQ(published_version(), kStep);
  const wire::Response past = publish(2 * kStep + 1);  // one past the edge
  EXPECT_EQ(past.status(), wire::STATUS_BAD_REQUEST);
  EXPECT_NE(past.reason().find("kMaxDeviceListVersionStep"), std::string::npos) << past.reason();
  const wire::Response max = publish(std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(max.status(), wire::STATUS_BAD_REQUEST);
  EXPECT_EQ(published_version(), kStep);                        // refusals touched nothing
  EXPECT_EQ(publish(2 * kStep).status(), wire::STATUS_OK);      // at the edge again
  EXPECT_EQ(publish(2 * kStep + 1).status(), wire::STATUS_OK);  // the primary still publishes
  EXPECT_EQ(publish(2 * kStep + 1).status(), wire::STATUS_STALE_DEVICE_LIST);
  EXPECT_EQ(published_version(), 2 * kStep + 1);
}

// --- From errors to statuses -------------------------------------------------------------

TEST(ServerSession, ErrorsMapToStatusesByCanonicalCode) {
  using server::internal::StatusFor;
  auto err = [](Code code, Module module, uint16_t detail) {
    return Error{code, module, detail, "static text"};
  };
  const uint16_t backend = static_cast<uint16_t>(store::StoreErr::kBackend);
  const uint16_t conflict = static_cast<uint16_t>(store::StoreErr::kConflict);
  const uint16_t full = static_cast<uint16_t>(store::StoreErr::kQueueFull);
  EXPECT_EQ(StatusFor(err(Code::kInternal, Module::kStore, backend)), wire::STATUS_INTERNAL);
  EXPECT_EQ(StatusFor(err(Code::kDataLoss, Module::kStore, backend)), wire::STATUS_INTERNAL);
  // Accounts report a missing account as kNotFound with the store's kConflict detail.
  EXPECT_EQ(StatusFor(err(Code::kNotFound, Module::kStore, conflict)), wire::STATUS_NOT_FOUND);
  EXPECT_EQ(StatusFor(err(Code::kAlreadyExists, Module::kStore, conflict)), wire::STATUS_CONFLICT);
  EXPECT_EQ(StatusFor(err(Code::kResourceExhausted, Module::kStore, full)),
            wire::STATUS_QUEUE_FULL);
  // The same number in another module is not a full queue (details are unique anyway).
  EXPECT_EQ(StatusFor(err(Code::kResourceExhausted, Module::kServer, full)),
            wire::STATUS_UNAVAILABLE);
  EXPECT_EQ(StatusFor(err(Code::kInvalidArgument, Module::kStore, 0)), wire::STATUS_BAD_REQUEST);
  EXPECT_EQ(StatusFor(err(Code::kPermissionDenied, Module::kServer, 0)),
            wire::STATUS_PERMISSION_DENIED);

  wire::Response r;
  server::internal::FailFromError(r, err(Code::kInternal, Module::kStore, backend));
  EXPECT_EQ(r.reason(), "store failure");  // the server's own failures stay vague
  server::internal::FailFromError(r, err(Code::kNotFound, Module::kStore, conflict));
  EXPECT_EQ(r.reason(), "static text");
}

TEST(ServerSession, DetailNumbersLieInTheirModulesRanges) {
  // A few from each module; scripts/check-error-details.sh checks every enum.
  EXPECT_GT(static_cast<uint16_t>(store::StoreErr::kBackend), DetailBase(Module::kStore));
  EXPECT_GT(static_cast<uint16_t>(wire::WireErr::kMalformed), DetailBase(Module::kWire));
  EXPECT_GT(static_cast<uint16_t>(server::VerifyErr::kBadHandle), DetailBase(Module::kServer));
  EXPECT_NE(static_cast<uint16_t>(store::StoreErr::kConflict),
            static_cast<uint16_t>(wire::WireErr::kVersion));
  EXPECT_LT(static_cast<uint16_t>(server::GroupErr::kConflict),
            DetailBase(Module::kServer) + kDetailsPerModule);
}

TEST(ServerSession, MissingAccountsAreNotFoundAndStoreFailuresAreInternal) {
  InProcessServer server;
  Primary alice = RegisterPrimary(server, "+15550100004");
  ASSERT_FALSE(alice.account.empty());
  const std::string nobody(16, '\x5a');  // never cached: every read reaches the store
  uint64_t id = 60;
  auto call = [&](wire::Request r) {
    r.set_id(++id);
    auto resp = server.Call(*alice.conn, r);
    EXPECT_TRUE(resp);
    return resp ? *resp : wire::Response();
  };
  wire::Request contact;
  contact.mutable_contact()->set_account_id(nobody);
  wire::Request subscribe;
  subscribe.mutable_subscribe_presence()->set_account_id(nobody);
  wire::Request list;
  list.mutable_get_device_list()->set_account_id(nobody);
  wire::Request lookup;
  lookup.mutable_lookup()->set_handle("+15550109999");
  wire::Request unlink;
  unlink.mutable_unlink_device()->set_device_id(9);
  for (const wire::Request* r : {&contact, &subscribe, &list, &lookup}) {
    const wire::Response missing = call(*r);
    EXPECT_EQ(missing.status(), wire::STATUS_NOT_FOUND) << r->ShortDebugString();
  }
  const wire::Response unlinked = call(unlink);
  EXPECT_EQ(unlinked.status(), wire::STATUS_NOT_FOUND);
  EXPECT_EQ(unlinked.reason(), "no such device");

  // A store that cannot read is the server's failure, not a missing account.
  server.store().fail_account_reads = true;
  for (const wire::Request* r : {&contact, &subscribe, &list, &lookup}) {
    const wire::Response broken = call(*r);
    EXPECT_EQ(broken.status(), wire::STATUS_INTERNAL) << r->ShortDebugString();
    EXPECT_EQ(broken.reason(), "store failure");
  }
  server.store().fail_account_reads = false;
  EXPECT_EQ(call(contact).status(), wire::STATUS_NOT_FOUND);  // nothing was changed
}

// --- Delivery through the store's subscription ---------------------------------------

std::vector<wire::Envelope> EnvelopesIn(std::vector<wire::Frame> frames) {
  std::vector<wire::Envelope> out;
  for (wire::Frame& f : frames) {
    if (f.has_envelope()) out.push_back(f.envelope());
  }
  return out;
}

// Two cores over one store, as two nodes of a cluster: a message stored through one
// reaches a device connected to the other on that core's next loop turn, without a poll
// or a reconnect, once; and the receipt comes back the same way.
TEST(ServerSession, AMessageStoredThroughOneCoreReachesADeviceOnAnotherAtOnce) {
  InProcessServer node_a;
  InProcessServer node_b(node_a.shared_store());
  Primary alice = RegisterPrimary(node_a, "+15550100020");
  Primary bob = RegisterPrimary(node_b, "+15550100021");
  ASSERT_FALSE(alice.account.empty());
  ASSERT_FALSE(bob.account.empty());
  bob.conn->TakeFrames();

  wire::Request send;
  send.set_id(70);
  send.mutable_send()->set_message_id("m-1");
  send.mutable_send()->set_recipient(bob.account);
  wire::DeviceMessage* m = send.mutable_send()->add_messages();
  m->set_device_id(1);
  m->set_type(wire::CIPHERTEXT_PLAINTEXT);
  m->set_ciphertext("hello from node a");
  auto ack = node_a.Call(*alice.conn, send);
  ASSERT_TRUE(ack);
  ASSERT_EQ(ack->status(), wire::STATUS_OK) << ack->reason();

  EXPECT_TRUE(EnvelopesIn(bob.conn->TakeFrames()).empty());  // node b has not run yet
  node_b.RunPosted();
  std::vector<wire::Envelope> got = EnvelopesIn(bob.conn->TakeFrames());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].ciphertext(), "hello from node a");
  EXPECT_EQ(got[0].source_account(), alice.account);
  EXPECT_GT(got[0].seq(), 0u);
  node_b.RunPosted();
  EXPECT_TRUE(EnvelopesIn(bob.conn->TakeFrames()).empty());  // once

  wire::Frame delivery_ack;
  delivery_ack.mutable_delivery_ack()->add_seqs(got[0].seq());
  Bytes bytes;
  wire::SerializeFrame(delivery_ack, bytes);
  node_b.Deliver(*bob.conn, bytes);
  alice.conn->TakeFrames();
  node_a.RunPosted();
  std::vector<wire::Envelope> receipts = EnvelopesIn(alice.conn->TakeFrames());
  ASSERT_EQ(receipts.size(), 1u);
  EXPECT_EQ(receipts[0].type(), wire::ENVELOPE_DELIVERED);
  EXPECT_EQ(receipts[0].message_id(), "m-1");
}

// A message committed right after a connection subscribed (before its first queue read)
// and one committed right after that read (before the read's result is sent) each reach
// the device once, in order: the read sends the first and the report of it is dropped;
// the second comes through the subscription.
TEST(ServerSession, MessagesCommittedWhileAConnectionStartsArriveOnceInOrder) {
  InProcessServer server;
  const store::StaticKey bob_key = RandomKey();
  InProcessConnection* first = &server.Connect(bob_key);
  auto reg = server.Register(*first, "+15550100030");
  ASSERT_TRUE(reg);
  store::DeviceAddress bob{};
  server::internal::ToAccountId(reg->account_id(), bob.account);
  bob.device_id = 1;
  server.Close(*first, server::CloseCause::kShutdown);

  testing::HookedQueue& queue = server.store().hooked_queue();
  auto commit = [&](const std::string& text) {
    wire::Envelope e;
    e.set_type(wire::ENVELOPE_MESSAGE);
    e.set_ciphertext(text);
    store::WriteRequest request;
    store::Append a;
    a.recipient = bob;
    a.expires_ms = ~uint64_t{0};
    a.payload = e.SerializeAsString();
    request.appends.push_back(std::move(a));
    queue.Write(std::move(request), nullptr);  // memory store: durable on return
  };
  int subscribed = 0;
  int reads = 0;
  queue.after_subscribe = [&](const store::DeviceAddress& d) {
    if (d == bob && subscribed++ == 0) commit("after subscribing");
  };
  queue.after_read = [&](const store::DeviceAddress& d) {
    if (d == bob && reads++ == 0) commit("after the first read");
  };
  InProcessConnection& again = server.Connect(bob_key);  // runs what was posted, too
  server.RunPosted();
  std::vector<std::string> got;
  for (const wire::Envelope& e : EnvelopesIn(again.TakeFrames())) got.push_back(e.ciphertext());
  EXPECT_EQ(got, (std::vector<std::string>{"after subscribing", "after the first read"}));
  queue.after_subscribe = nullptr;
  queue.after_read = nullptr;
}

}  // namespace
}  // namespace sotto
