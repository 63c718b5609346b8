// Integration tests of Noise Pipes over WebSocket: a real sottod, a Boost.Beast client,
// one Noise message per binary WebSocket message, the same protocol as over TCP.
#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "noise/pipes.h"
#include "tests/integration/sottod_process.h"
#include "tests/integration/test_account.h"
#include "wire/wire.h"

namespace sotto {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

// A blocking WebSocket client that speaks the gateway protocol.
class WsClient {
 public:
  WsClient(uint16_t port, std::optional<crypto::X25519Public> server_key,
           std::optional<noise::KeyPair> key = std::nullopt)
      : key_(key ? *key : noise::KeyPair::Generate(crypto::SystemRandom())), ws_(io_) {
    tcp::resolver resolver(io_);
    asio::connect(ws_.next_layer(), resolver.resolve("127.0.0.1", std::to_string(port)));
    ws_.handshake("127.0.0.1", "/");
    ws_.binary(true);
    Handshake(server_key);
  }

  void Handshake(std::optional<crypto::X25519Public> server_key) {
    noise::NoisePipe pipe = noise::NoisePipe::Client(key_, server_key, crypto::SystemRandom());
    wire::ClientHello hello;
    hello.set_wire_version(wire::kWireVersion);
    hello.set_user_agent("ws-test");
    const std::string hello_bytes = hello.SerializeAsString();
    bool first = true;
    while (!pipe.IsFinished()) {
      if (pipe.NextAction() == noise::HandshakeAction::kWriteMessage) {
        const bool empty = first && !server_key;  // XX message 1 carries nothing
        auto m = pipe.WriteMessage(empty ? ByteSpan() : AsBytes(hello_bytes));
        ASSERT_TRUE(m);
        ws_.write(asio::buffer(*m));
        first = false;
      } else {
        ASSERT_EQ(pipe.NextAction(), noise::HandshakeAction::kReadMessage);
        beast::flat_buffer b;
        ws_.read(b);
        Bytes in(static_cast<const uint8_t*>(b.cdata().data()),
                 static_cast<const uint8_t*>(b.cdata().data()) + b.size());
        ASSERT_TRUE(pipe.ReadMessage(in));
      }
    }
    pattern_ = *pipe.pattern();
    auto ciphers = pipe.Split();
    ASSERT_TRUE(ciphers);
    send_ = std::move(ciphers->send);
    receive_ = std::move(ciphers->receive);
    ready_ = true;
  }

  void SendPlain(ByteSpan plain) {
    Bytes out(plain.size() + noise::kTagSize);
    auto n = send_.EncryptWithAd({}, plain, out);
    ASSERT_TRUE(n);
    ws_.write(asio::buffer(out.data(), *n));
  }
  void Send(const wire::Frame& f) {
    Bytes plain;
    wire::SerializeFrame(f, plain);
    ASSERT_NO_FATAL_FAILURE(SendPlain(plain));
  }
  std::optional<wire::Frame> Receive() {
    beast::flat_buffer b;
    beast::error_code ec;
    ws_.read(b, ec);
    if (ec) return std::nullopt;
    Bytes plain(b.size());
    auto n = receive_.DecryptWithAd(
        {}, ByteSpan(static_cast<const uint8_t*>(b.cdata().data()), b.size()), plain);
    if (!n) return std::nullopt;
    wire::Frame f;
    if (!wire::ParseFrame(ByteSpan(plain.data(), *n), f)) return std::nullopt;
    return f;
  }

  // Sends a request and returns the next frame if it is a response (nothing else arrives
  // before one here).
  std::optional<wire::Response> Call(uint64_t id, wire::Request request) {
    wire::Frame f;
    *f.mutable_request() = std::move(request);
    f.mutable_request()->set_id(id);
    Send(f);
    auto r = Receive();
    if (!r || !r->has_response()) return std::nullopt;
    return r->response();
  }

  const noise::KeyPair& static_key() const { return key_; }

  bool ready_ = false;
  noise::HandshakePattern pattern_ = noise::HandshakePattern::kXX;

 private:
  noise::KeyPair key_;
  asio::io_context io_;
  websocket::stream<tcp::socket> ws_;
  noise::CipherState send_;
  noise::CipherState receive_;
};

// The code flow over WebSocket: the RequestCode response if refused, else the Register one.
std::optional<wire::Response> RegisterOverWs(WsClient& c, const testing::SottodProcess& server,
                                             const std::string& handle) {
  wire::Request ask;
  ask.mutable_request_code()->set_handle(handle);
  auto code = c.Call(1, ask);
  if (!code || code->status() != wire::STATUS_OK) return code;
  wire::Request reg;
  reg.mutable_register_()->set_handle(handle);
  reg.mutable_register_()->set_code(server.VerificationCode(handle));
  return c.Call(3, reg);
}

TEST(WsGateway, IkAndXxOverWebSocketRegisterAndEcho) {
  testing::SottodProcess server;
  for (bool pin : {true, false}) {
    WsClient c(server.ws_port(), pin ? std::optional(server.server_key()) : std::nullopt);
    ASSERT_TRUE(c.ready_);
    EXPECT_EQ(c.pattern_, pin ? noise::HandshakePattern::kIK : noise::HandshakePattern::kXX);
    auto r = RegisterOverWs(c, server, pin ? "+15557770001" : "+15557770002");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status(), wire::STATUS_OK);
    wire::Frame echo;
    echo.mutable_request()->set_id(2);
    echo.mutable_request()->mutable_echo()->set_data("over websocket");
    ASSERT_NO_FATAL_FAILURE(c.Send(echo));
    auto e = c.Receive();  // after the PreKeysLow and QueueEmpty that registration brings
    while (e && (e->has_prekeys_low() || e->has_queue_empty())) e = c.Receive();
    ASSERT_TRUE(e && e->has_response());
    EXPECT_EQ(e->response().echo().data(), "over websocket");
  }
  EXPECT_EQ(server.Metric("sotto_handshakes_total{pattern=\"IK\"}"), 1);
  EXPECT_EQ(server.Metric("sotto_handshakes_total{pattern=\"XX\"}"), 1);
}

// A device on WebSocket is routed like one on TCP: messages reach it through the router
// (posted to the WebSocket thread), its acks give the TCP sender a delivered receipt, and
// a message queued while it was away drains when it comes back.
TEST(WsGateway, MessagesRouteBetweenWebSocketAndTcp) {
  testing::SottodProcess server;
  const std::string handle = "+15557770003";
  // Waits for the next envelope, skipping PreKeysLow / QueueEmpty.
  auto next_envelope = [](WsClient& c) -> std::optional<wire::Envelope> {
    for (;;) {
      auto f = c.Receive();
      if (!f) return std::nullopt;
      if (f->has_envelope()) return f->envelope();
      if (f->has_close()) return std::nullopt;
    }
  };
  auto ws = std::make_unique<WsClient>(server.ws_port(), server.server_key());
  ASSERT_TRUE(ws->ready_);
  auto registered = RegisterOverWs(*ws, server, handle);
  ASSERT_TRUE(registered);
  ASSERT_EQ(registered->status(), wire::STATUS_OK);
  const std::string account = registered->register_().account_id();
  ASSERT_EQ(account.size(), 16u);

  auto tcp_sender = testing::RegisterDevice(server, "+15557770004");
  ASSERT_TRUE(tcp_sender);
  testing::TestDevice to;
  to.account_id = account;  // registration id 0: no keys uploaded
  auto sent = tcp_sender->conn->Call(testing::SendTo(to, {1}, "ws-1", "over websocket"));
  ASSERT_TRUE(sent);
  ASSERT_EQ(sent->status(), wire::STATUS_OK) << sent->reason();
  auto e = next_envelope(*ws);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->ciphertext(), "over websocket");
  EXPECT_EQ(e->message_id(), "ws-1");
  wire::Frame ack;
  ack.mutable_delivery_ack()->add_seqs(e->seq());
  ASSERT_NO_FATAL_FAILURE(ws->Send(ack));
  auto receipt = testing::NextOf(*tcp_sender->conn, wire::Frame::kEnvelope);
  ASSERT_TRUE(receipt);
  EXPECT_EQ(receipt->envelope().type(), wire::ENVELOPE_DELIVERED);
  EXPECT_EQ(receipt->envelope().message_id(), "ws-1");

  // Offline, then back on WebSocket with the same key (IK authenticates it).
  const noise::KeyPair key = ws->static_key();
  ws.reset();
  sent = tcp_sender->conn->Call(testing::SendTo(to, {1}, "ws-2", "while away"));
  ASSERT_TRUE(sent);
  ASSERT_EQ(sent->status(), wire::STATUS_OK);
  WsClient back(server.ws_port(), server.server_key(), key);
  ASSERT_TRUE(back.ready_);
  auto queued = next_envelope(back);
  ASSERT_TRUE(queued);
  EXPECT_EQ(queued->ciphertext(), "while away");
}

TEST(WsGateway, MalformedFrameGetsACloseWithReason) {
  testing::SottodProcess server;
  WsClient c(server.ws_port(), server.server_key());
  ASSERT_TRUE(c.ready_);
  ASSERT_NO_FATAL_FAILURE(c.SendPlain(FromHex("0aff")));
  auto close = c.Receive();
  ASSERT_TRUE(close && close->has_close());
  EXPECT_EQ(close->close().reason(), wire::CLOSE_MALFORMED_FRAME);
  EXPECT_FALSE(c.Receive());
}

TEST(WsGateway, SigtermClosesWebSocketSessionsWithShutdown) {
  testing::SottodProcess server;
  WsClient c(server.ws_port(), server.server_key());
  ASSERT_TRUE(c.ready_);
  EXPECT_EQ(server.Terminate(), 0);
  auto close = c.Receive();
  ASSERT_TRUE(close && close->has_close());
  EXPECT_EQ(close->close().reason(), wire::CLOSE_SHUTDOWN);
}

}  // namespace
}  // namespace sotto
