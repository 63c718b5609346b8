// Integration tests of the gateway: a real sottod process on 127.0.0.1, spoken to through
// the real Noise Pipes handshake and wire frames. Handshake paths (XX, IK, XXfallback),
// key pinning, registration, every limit at and past its edge, malformed input, keepalive
// and SIGTERM.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "client/gateway_client.h"
#include "tests/integration/sottod_process.h"
#include "tests/integration/test_account.h"
#include "wire/wire.h"

namespace sotto {
namespace {

using client::ClientOptions;
using client::GatewayClient;
using testing::SottodOptions;
using testing::SottodProcess;

SottodOptions WithConfig(std::string toml) {
  SottodOptions o;
  o.config_toml = std::move(toml);
  return o;
}

ClientOptions Options(const SottodProcess& server, bool pin) {
  ClientOptions o;
  o.server = server.tcp_address();
  o.device_static = noise::KeyPair::Generate(crypto::SystemRandom());
  if (pin) o.server_static = server.server_key();
  o.timeout = std::chrono::milliseconds(5000);
  return o;
}

wire::Request Echo(std::string data) {
  wire::Request r;
  r.mutable_echo()->set_data(std::move(data));
  return r;
}

// Registers the connection's key under a fresh handle through the real code flow.
Result<wire::Response> RegisterOn(GatewayClient& c, const SottodProcess& server) {
  static int next = 0;
  return testing::RegisterHandle(c, server, "+1555000" + std::to_string(1000 + next++));
}

// Waits for the server's Close frame and then EOF; returns the close reason.
wire::CloseReason ExpectClose(GatewayClient& c) {
  for (;;) {
    auto f = c.Receive();
    if (!f) {
      ADD_FAILURE() << "connection ended without a Close frame: " << f.error().ToString();
      return wire::CLOSE_UNSPECIFIED;
    }
    if (f->has_close()) {
      auto eof = c.Receive();
      EXPECT_FALSE(eof) << "the socket must close after the Close frame";
      return f->close().reason();
    }
  }
}

// Polls /metrics until `series` reads `value` (the server updates counters on its own
// threads, after the client has seen the outcome); gives up after ~5 s.
bool AwaitMetric(const SottodProcess& server, const std::string& series, long value) {
  for (int attempt = 0; attempt < 500; ++attempt) {
    if (server.Metric(series) == value) return true;
    pollfd none{-1, 0, 0};
    poll(&none, 0, 10);
  }
  return false;
}

// True if the server closed the socket (EOF or reset) within the client's timeout.
bool ClosedByServer(int fd, int timeout_ms = 5000) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0) return false;
  char b;
  return recv(fd, &b, 1, 0) <= 0;
}

TEST(Gateway, XxHandshakeRegistersThenIkReconnects) {
  SottodProcess server;
  ASSERT_TRUE(server.running());
  ClientOptions first = Options(server, /*pin=*/false);
  auto c = GatewayClient::Connect(first);
  ASSERT_TRUE(c) << c.error().ToString();
  EXPECT_EQ((*c)->pattern(), noise::HandshakePattern::kXX);
  EXPECT_EQ((*c)->server_static(), server.server_key());  // trust on first use
  wire::Request who;
  who.mutable_whoami();
  auto w = (*c)->Call(who);
  ASSERT_TRUE(w);
  EXPECT_FALSE(w->whoami().registered());
  auto refused = (*c)->Call(Echo("x"));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status(), wire::STATUS_UNAUTHENTICATED);
  auto reg = RegisterOn(**c, server);
  ASSERT_TRUE(reg);
  EXPECT_EQ(reg->status(), wire::STATUS_OK);
  EXPECT_EQ(reg->register_().account_id().size(), 16u);
  EXPECT_EQ(reg->register_().device_id(), 1u);
  auto echo = (*c)->Call(Echo("hello"));
  ASSERT_TRUE(echo);
  EXPECT_EQ(echo->echo().data(), "hello");

  // Same device key, now pinning the server key: IK, and already registered.
  ClientOptions again = first;
  again.server_static = (*c)->server_static();
  auto ik = GatewayClient::Connect(again);
  ASSERT_TRUE(ik) << ik.error().ToString();
  EXPECT_EQ((*ik)->pattern(), noise::HandshakePattern::kIK);
  auto w2 = (*ik)->Call(who);
  ASSERT_TRUE(w2);
  EXPECT_TRUE(w2->whoami().registered());
  EXPECT_EQ(w2->whoami().account_id(), reg->register_().account_id());
  EXPECT_EQ(server.Metric("sotto_handshakes_total{pattern=\"XX\"}"), 1);
  EXPECT_EQ(server.Metric("sotto_handshakes_total{pattern=\"IK\"}"), 1);
}

TEST(Gateway, StalePinFallsBackToXxfallbackAndThePinRefusesIt) {
  SottodProcess server;
  ClientOptions o = Options(server, /*pin=*/true);
  o.server_static = noise::KeyPair::Generate(crypto::SystemRandom()).public_key;  // rotated
  auto c = GatewayClient::Connect(o);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().detail, static_cast<uint16_t>(client::ClientErr::kServerKeyMismatch));
  EXPECT_TRUE(AwaitMetric(server, "sotto_handshakes_total{pattern=\"XXfallback\"}", 1));
}

TEST(Gateway, MalformedInputClosesOnlyThatConnectionWithAReason) {
  SottodProcess server;
  auto bystander = GatewayClient::Connect(Options(server, true));
  ASSERT_TRUE(bystander);
  ASSERT_TRUE(RegisterOn(**bystander, server));

  auto garbage = GatewayClient::Connect(Options(server, true));
  ASSERT_TRUE(garbage);
  ASSERT_TRUE((*garbage)->SendPlaintext(FromHex("0aff")));  // truncated protobuf
  EXPECT_EQ(ExpectClose(**garbage), wire::CLOSE_MALFORMED_FRAME);

  auto unknown = GatewayClient::Connect(Options(server, true));
  ASSERT_TRUE(unknown);
  ASSERT_TRUE((*unknown)->SendPlaintext(FromHex("98060a")));  // only field 99
  EXPECT_EQ(ExpectClose(**unknown), wire::CLOSE_UNKNOWN_FRAME);

  auto forged = GatewayClient::Connect(Options(server, true));
  ASSERT_TRUE(forged);
  Bytes junk = {0x00, 0x20};
  junk.resize(2 + 32, 0x41);  // 32 bytes that are no valid AEAD message
  ASSERT_TRUE((*forged)->SendRawBytes(junk));
  EXPECT_EQ(ExpectClose(**forged), wire::CLOSE_DECRYPT_FAILED);

  auto zero = GatewayClient::Connect(Options(server, true));
  ASSERT_TRUE(zero);
  ASSERT_TRUE((*zero)->SendRawBytes(FromHex("0000")));
  EXPECT_EQ(ExpectClose(**zero), wire::CLOSE_MALFORMED_FRAME);

  // Garbage instead of a handshake: closed without a frame (there are no keys yet).
  auto raw = net::ConnectBlocking(server.tcp_address());
  ASSERT_TRUE(raw);
  const Bytes hs = FromHex("0005ff00112233");
  ASSERT_EQ(write(*raw, hs.data(), hs.size()), static_cast<ssize_t>(hs.size()));
  EXPECT_TRUE(ClosedByServer(*raw));
  close(*raw);

  auto still = (*bystander)->Call(Echo("still here"));
  ASSERT_TRUE(still);
  EXPECT_EQ(still->echo().data(), "still here");
  EXPECT_EQ(server.Metric("sotto_connections_closed_total{reason=\"malformed_frame\"}"), 2);
  EXPECT_EQ(server.Metric("sotto_connections_closed_total{reason=\"unknown_frame\"}"), 1);
  EXPECT_EQ(server.Metric("sotto_connections_closed_total{reason=\"decrypt_failed\"}"), 1);
  EXPECT_EQ(server.Metric("sotto_connections_closed_total{reason=\"handshake_failed\"}"), 1);
}

TEST(Gateway, FrameSizeLimitAtAndPastTheEdge) {
  SottodProcess server(WithConfig("[limits]\nmax_frame_bytes = 1000\n"));
  auto c = GatewayClient::Connect(Options(server, true));
  ASSERT_TRUE(c);
  ASSERT_TRUE(RegisterOn(**c, server));
  // An encrypted frame of exactly 1000 bytes (984 plaintext + 16 tag) is accepted...
  wire::Frame f;
  f.mutable_ping()->set_nonce(1);
  // Pad with an unknown length-delimited field (number 15) so the frame stays valid.
  Bytes plain;
  wire::SerializeFrame(f, plain);
  const size_t pad = 1000 - noise::kTagSize - plain.size() - 3;
  plain.push_back(0x7a);  // field 15, wire type 2
  plain.push_back(static_cast<uint8_t>(0x80 | (pad & 0x7f)));
  plain.push_back(static_cast<uint8_t>(pad >> 7));
  plain.resize(plain.size() + pad, 0);
  ASSERT_EQ(plain.size() + noise::kTagSize, 1000u);
  ASSERT_TRUE((*c)->SendPlaintext(plain));
  auto pong = (*c)->Receive();
  while (pong && (pong->has_prekeys_low() || pong->has_queue_empty())) pong = (*c)->Receive();
  ASSERT_TRUE(pong);
  EXPECT_TRUE(pong->has_pong());
  // ...and one byte more is refused.
  plain.push_back(0);
  plain[plain.size() - pad - 2] = static_cast<uint8_t>(0x80 | ((pad + 1) & 0x7f));
  plain[plain.size() - pad - 1] = static_cast<uint8_t>((pad + 1) >> 7);
  ASSERT_TRUE((*c)->SendPlaintext(plain));
  EXPECT_EQ(ExpectClose(**c), wire::CLOSE_FRAME_TOO_LARGE);
}

TEST(Gateway, MaxConnectionsRefusesTheNextAndKeepsTheRest) {
  SottodProcess server(WithConfig("[limits]\nmax_connections = 3\n"));
  std::vector<std::unique_ptr<GatewayClient>> clients;
  for (int i = 0; i < 3; ++i) {
    auto c = GatewayClient::Connect(Options(server, true));
    ASSERT_TRUE(c) << i;
    clients.push_back(std::move(*c));
  }
  auto fourth = GatewayClient::Connect(Options(server, true));
  ASSERT_FALSE(fourth);
  EXPECT_EQ(server.Metric("sotto_connections_refused_total{reason=\"max_connections\"}"), 1);
  for (auto& c : clients) {
    ASSERT_TRUE(RegisterOn(*c, server));
    auto e = c->Call(Echo("ok"));
    ASSERT_TRUE(e);
    EXPECT_EQ(e->echo().data(), "ok");
  }
  clients.pop_back();  // a slot frees up once the server sees the close
  ASSERT_TRUE(AwaitMetric(server, "sotto_connections_open", 2));
  EXPECT_TRUE(GatewayClient::Connect(Options(server, true)));
}

TEST(Gateway, RequestRateLimitAtTheBurst) {
  SottodProcess server(WithConfig("[limits]\nrequest_rate_per_s = 0.001\nrequest_burst = 5\n"));
  auto c = GatewayClient::Connect(Options(server, true));
  ASSERT_TRUE(c);
  auto reg = RegisterOn(**c, server);  // 1 and 2 of 5 (code, register)
  ASSERT_TRUE(reg);
  for (int i = 0; i < 3; ++i) {  // 3..5 of 5
    auto e = (*c)->Call(Echo("x"));
    ASSERT_TRUE(e);
    EXPECT_EQ(e->status(), wire::STATUS_OK) << i;
  }
  auto limited = (*c)->Call(Echo("x"));  // 6th
  ASSERT_TRUE(limited);
  EXPECT_EQ(limited->status(), wire::STATUS_RATE_LIMITED);
  EXPECT_NE(limited->reason().find("request_rate_per_s"), std::string::npos);
  EXPECT_EQ(server.Metric("sotto_requests_rate_limited_total"), 1);
}

TEST(Gateway, HandshakeRatePerIpAtTheBurst) {
  SottodProcess server(WithConfig("[limits]\nhandshake_rate_per_ip_per_s = 0.001\nhandshake_burst_per_ip = 3\n"));
  std::vector<std::unique_ptr<GatewayClient>> ok;
  for (int i = 0; i < 3; ++i) {
    auto c = GatewayClient::Connect(Options(server, true));
    ASSERT_TRUE(c) << i;
    ok.push_back(std::move(*c));
  }
  EXPECT_FALSE(GatewayClient::Connect(Options(server, true)));
  EXPECT_EQ(server.Metric("sotto_connections_refused_total{reason=\"handshake_rate\"}"), 1);
}

TEST(Gateway, HandshakeTimeoutClosesSilentConnections) {
  SottodProcess server(WithConfig("[limits]\nhandshake_timeout_ms = 200\n"));
  auto raw = net::ConnectBlocking(server.tcp_address());
  ASSERT_TRUE(raw);
  EXPECT_TRUE(ClosedByServer(*raw, 5000));
  close(*raw);
  EXPECT_EQ(server.Metric("sotto_connections_closed_total{reason=\"handshake_timeout\"}"), 1);
}

TEST(Gateway, KeepalivePingsAndCutsSilentPeers) {
  SottodProcess server(WithConfig("[limits]\nping_interval_ms = 100\nping_timeout_ms = 200\n"));
  auto answering = GatewayClient::Connect(Options(server, true));
  ASSERT_TRUE(answering);
  auto ping = (*answering)->Receive();  // the server pings an idle connection
  ASSERT_TRUE(ping);
  ASSERT_TRUE(ping->has_ping());
  wire::Frame pong;
  pong.mutable_pong()->set_nonce(ping->ping().nonce());
  ASSERT_TRUE((*answering)->Send(pong));
  auto silent = GatewayClient::Connect(Options(server, true));
  ASSERT_TRUE(silent);
  // Never answering: the ping arrives, then the close.
  EXPECT_EQ(ExpectClose(**silent), wire::CLOSE_PING_TIMEOUT);
}

TEST(Gateway, SlowReaderIsCutAtTheWriteQueueBound) {
  SottodProcess server(WithConfig("[limits]\nmax_write_queue_bytes = 70000\nrequest_rate_per_s = 0\n"));
  auto c = GatewayClient::Connect(Options(server, true));
  ASSERT_TRUE(c);
  ASSERT_TRUE(RegisterOn(**c, server));
  // Ask for large echoes and never read: socket buffers fill, then the queue bound hits.
  const int fd = (*c)->fd();
  int small = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  wire::Frame f;
  *f.mutable_request() = Echo(std::string(60000, 'z'));
  for (int i = 0; i < 400; ++i) {
    if (!(*c)->Send(f)) break;  // the server may already have cut us off
    if (server.Metric("sotto_connections_closed_total{reason=\"slow_reader\"}") == 1) break;
  }
  EXPECT_EQ(server.Metric("sotto_connections_closed_total{reason=\"slow_reader\"}"), 1);
}

TEST(Gateway, OpenFileLimitRefusesCleanlyAndServesTheRest) {
  // 96 descriptors: the server's own (listeners, epoll, eventfds, HTTP, the store's files)
  // take some; the rest go to connections until accept() fails with EMFILE. The budgets
  // fit the limit (90 + 4 + 0 <= 96, else sottod refuses to start) but do not bind
  // before EMFILE does.
  SottodOptions options =
      WithConfig("[limits]\nmax_connections = 90\nmax_metrics_connections = 4\nreserved_fds = 0\n");
  options.loops = 1;
  options.open_file_limit = 96;
  SottodProcess server(options);
  std::vector<std::unique_ptr<GatewayClient>> clients;
  int refused = 0;
  for (int i = 0; i < 112; ++i) {
    auto c = GatewayClient::Connect(Options(server, true));
    if (c) {
      clients.push_back(std::move(*c));
    } else {
      ++refused;
    }
  }
  EXPECT_GT(clients.size(), 40u);
  EXPECT_GT(refused, 0);
  // Every connection that got in keeps working at the limit.
  for (auto& c : clients) {
    ASSERT_TRUE(RegisterOn(*c, server));
    auto e = c->Call(Echo("alive"));
    ASSERT_TRUE(e);
    EXPECT_EQ(e->echo().data(), "alive");
  }
  // /metrics needs a descriptor too: free a few before asking.
  clients.resize(clients.size() - 5);
  ASSERT_TRUE(AwaitMetric(server, "sotto_connections_open", static_cast<long>(clients.size())));
  EXPECT_EQ(server.Metric("sotto_connections_refused_total{reason=\"open_files\"}"), refused);
}

// A raw TCP connection from `source` (e.g. "127.0.0.2"; all of 127.0.0.0/8 is loopback),
// connected; -1 on failure.
int ConnectFrom(const std::string& source, const net::SocketAddress& to) {
  auto from = net::ParseHostPort(source + ":0");
  if (!from) return -1;
  auto fd = net::ConnectNonBlocking(to, &*from);
  if (!fd) return -1;
  pollfd p{*fd, POLLOUT, 0};
  if (poll(&p, 1, 5000) != 1 || net::SocketError(*fd) != 0) {
    close(*fd);
    return -1;
  }
  return *fd;
}

// True if `fd` is still open: nothing to read and no EOF (checked without waiting, so
// call it only once the server is known to have dealt with the connection).
bool StillOpen(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) == 0;
}

// Sends the length prefix of a `frame`-byte message and `body` bytes of it: an
// incomplete frame the server has to buffer.
bool SendPartialFrame(int fd, size_t frame, size_t body) {
  Bytes b = {static_cast<uint8_t>(frame >> 8), static_cast<uint8_t>(frame)};
  b.resize(2 + body, 0x5a);
  return write(fd, b.data(), b.size()) == static_cast<ssize_t>(b.size());
}

TEST(Gateway, PartialFrameMustCompleteWithinItsDeadline) {
  // Pings come every 100 ms and would keep the connection alive for 10 s: the partial
  // frame's own deadline (300 ms from its first byte) closes it first, with its reason.
  SottodProcess server(
      WithConfig("[limits]\nping_interval_ms = 100\nping_timeout_ms = "
                 "10000\npartial_frame_timeout_ms = 300\n"));
  auto c = GatewayClient::Connect(Options(server, true));
  ASSERT_TRUE(c);
  ASSERT_TRUE(RegisterOn(**c, server));
  auto bystander = GatewayClient::Connect(Options(server, true));
  ASSERT_TRUE(bystander);
  ASSERT_TRUE(RegisterOn(**bystander, server));
  ASSERT_TRUE((*c)->SendRawBytes(FromHex("03e8aabbccdd")));  // 4 of 1000 bytes
  EXPECT_EQ(ExpectClose(**c), wire::CLOSE_PARTIAL_FRAME_TIMEOUT);
  EXPECT_EQ(server.Metric("sotto_connections_closed_total{reason=\"partial_frame_timeout\"}"), 1);
  auto echo = (*bystander)->Call(Echo("unaffected"));  // answers its pings meanwhile
  ASSERT_TRUE(echo);
  EXPECT_EQ(echo->echo().data(), "unaffected");
}

TEST(Gateway, PartialInputHasAServerWideBudget) {
  // 2000 bytes for incomplete frames in all: two 902-byte partial frames fit, a third
  // does not and closes that connection only; the budget frees when one closes.
  SottodProcess server(
      WithConfig("[limits]\nmax_frame_bytes = 1000\nmax_partial_input_bytes = 2000\n"
                 "handshake_timeout_ms = 60000\npartial_frame_timeout_ms = 60000\n"));
  const net::SocketAddress to = server.tcp_address();
  const int a = ConnectFrom("127.0.0.1", to);
  const int b = ConnectFrom("127.0.0.1", to);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  ASSERT_TRUE(SendPartialFrame(a, 1000, 900));
  ASSERT_TRUE(AwaitMetric(server, "sotto_partial_input_bytes", 902));
  ASSERT_TRUE(SendPartialFrame(b, 1000, 900));
  ASSERT_TRUE(AwaitMetric(server, "sotto_partial_input_bytes", 1804));
  const int over = ConnectFrom("127.0.0.1", to);
  ASSERT_GE(over, 0);
  ASSERT_TRUE(SendPartialFrame(over, 1000, 900));
  EXPECT_TRUE(ClosedByServer(over));
  EXPECT_EQ(server.Metric("sotto_connections_closed_total{reason=\"input_budget\"}"), 1);
  EXPECT_EQ(server.Metric("sotto_partial_input_bytes"), 1804);
  EXPECT_TRUE(StillOpen(a));
  EXPECT_TRUE(StillOpen(b));
  close(a);
  ASSERT_TRUE(AwaitMetric(server, "sotto_partial_input_bytes", 902));
  const int next = ConnectFrom("127.0.0.1", to);
  ASSERT_GE(next, 0);
  ASSERT_TRUE(SendPartialFrame(next, 1000, 900));
  ASSERT_TRUE(AwaitMetric(server, "sotto_partial_input_bytes", 1804));
  EXPECT_TRUE(StillOpen(next));
  for (int fd : {b, over, next}) close(fd);
}

TEST(Gateway, ConnectionsPerSourceAreCappedAndOtherSourcesStillGetIn) {
  SottodProcess server(
      WithConfig("[limits]\nmax_connections_per_ip = 3\nmax_handshakes_per_ip = 10\n"));
  const net::SocketAddress to = server.tcp_address();
  std::vector<int> mine;
  for (int i = 0; i < 3; ++i) {
    mine.push_back(ConnectFrom("127.0.0.2", to));
    ASSERT_GE(mine.back(), 0);
  }
  ASSERT_TRUE(AwaitMetric(server, "sotto_connections_accepted_total", 3));
  const int fourth = ConnectFrom("127.0.0.2", to);  // past the edge
  ASSERT_GE(fourth, 0);
  EXPECT_TRUE(ClosedByServer(fourth));
  EXPECT_EQ(server.Metric("sotto_connections_refused_total{reason=\"per_ip_connections\"}"), 1);
  close(fourth);
  // Another source, and a full client from 127.0.0.1, are not affected.
  const int other = ConnectFrom("127.0.0.3", to);
  ASSERT_GE(other, 0);
  ASSERT_TRUE(AwaitMetric(server, "sotto_connections_accepted_total", 4));
  auto c = GatewayClient::Connect(Options(server, true));
  ASSERT_TRUE(c);
  ASSERT_TRUE(RegisterOn(**c, server));
  // The count is given back on close: 127.0.0.2 gets a slot again.
  close(mine.back());
  mine.pop_back();
  ASSERT_TRUE(AwaitMetric(server, "sotto_connections_open", 4));
  mine.push_back(ConnectFrom("127.0.0.2", to));
  ASSERT_TRUE(AwaitMetric(server, "sotto_connections_accepted_total", 6));
  EXPECT_EQ(server.Metric("sotto_connections_refused_total{reason=\"per_ip_connections\"}"), 1);
  for (int fd : mine) close(fd);
  close(other);
}

TEST(Gateway, HandshakesInProgressPerSourceAreCapped) {
  SottodProcess server(
      WithConfig("[limits]\nmax_connections_per_ip = 10\nmax_handshakes_per_ip = 2\n"));
  const net::SocketAddress to = server.tcp_address();
  // Two silent connections are mid-handshake; a third from the same source is refused.
  const int h1 = ConnectFrom("127.0.0.1", to);
  const int h2 = ConnectFrom("127.0.0.1", to);
  ASSERT_TRUE(AwaitMetric(server, "sotto_connections_accepted_total", 2));
  const int h3 = ConnectFrom("127.0.0.1", to);
  EXPECT_TRUE(ClosedByServer(h3));
  EXPECT_EQ(server.Metric("sotto_connections_refused_total{reason=\"per_ip_handshakes\"}"), 1);
  close(h3);
  // One gives up: a client gets in, and once its handshake is done its slot is free
  // again for the next handshake (connections past the handshake count only as connections).
  close(h1);
  ASSERT_TRUE(AwaitMetric(server, "sotto_connections_open", 1));
  auto c = GatewayClient::Connect(Options(server, true));
  ASSERT_TRUE(c);
  ASSERT_TRUE(RegisterOn(**c, server));
  const int h4 = ConnectFrom("127.0.0.1", to);
  ASSERT_TRUE(AwaitMetric(server, "sotto_connections_accepted_total", 4));
  EXPECT_EQ(server.Metric("sotto_connections_refused_total{reason=\"per_ip_handshakes\"}"), 1);
  close(h2);
  close(h4);
}

TEST(Gateway, SigtermSendsShutdownCloseAndExitsCleanly) {
  SottodProcess server;
  auto c = GatewayClient::Connect(Options(server, true));
  ASSERT_TRUE(c);
  ASSERT_TRUE(RegisterOn(**c, server));
  // Terminate() blocks until exit; read the Close frame it caused afterwards (it is
  // buffered in our socket).
  EXPECT_EQ(server.Terminate(), 0);
  EXPECT_EQ(ExpectClose(**c), wire::CLOSE_SHUTDOWN);
}

}  // namespace
}  // namespace sotto
