// A blocking client connection to a Sotto gateway: TCP, the Noise Pipes handshake (IK
// with a pinned server key, XX without; XXfallback when the server's key changed), then
// encrypted wire frames. The SDK's asynchronous connection (client issue) builds on the
// same pieces; this one serves tools and integration tests.
//
// Thread-safety: externally synchronized.
#pragma once

#include <chrono>
#include <deque>
#include <optional>
#include <string>

#include "base/result.h"
#include "crypto/x25519.h"
#include "net/socket.h"
#include "noise/handshake_state.h"
#include "noise/pipes.h"
#include "wire/sotto_wire.pb.h"

namespace sotto::client {

enum class ClientErr : uint16_t {
  kConnect = 8001,
  kHandshake = 8002,
  kServerKeyMismatch = 8003,  // the server proved a key other than the pinned one
  kClosed = 8004,             // the server closed (see last_close())
  kTimeout = 8005,
  kProtocol = 8006,
};

struct ClientOptions {
  net::SocketAddress server;
  noise::KeyPair device_static;
  // The pinned server key. With it the client tries IK and refuses any other key; without
  // it, XX and trust on first use (the caller records server_static()).
  std::optional<crypto::X25519Public> server_static;
  std::string user_agent = "sotto-test/0.1";
  std::chrono::milliseconds timeout{5000};
  // Connect from this local address (port 0), e.g. 127.0.0.2 to be another source to
  // the server's per-source limits in tests; unset: the kernel picks.
  std::optional<net::SocketAddress> source;
};

// Frames Call() keeps for Receive() before it gives up on a response.
inline constexpr size_t kMaxBacklogFrames = 100'000;

class GatewayClient {
 public:
  // Connects and completes the handshake.
  static Result<std::unique_ptr<GatewayClient>> Connect(ClientOptions options);
  ~GatewayClient();
  GatewayClient(const GatewayClient&) = delete;
  GatewayClient& operator=(const GatewayClient&) = delete;

  Status Send(const wire::Frame& frame);
  // Sends raw bytes as they are (tests of malformed input).
  Status SendRawBytes(ByteSpan bytes);
  // Encrypts arbitrary plaintext as one transport message (tests of bad frames).
  Status SendPlaintext(ByteSpan plaintext);
  // The next frame: first those Call() set aside, then from the socket (waiting up to
  // the timeout). A Close frame is returned as a frame; EOF is kClosed.
  Result<wire::Frame> Receive();
  // As Receive(), waiting at most `timeout` (0: only what is already readable).
  Result<wire::Frame> Receive(std::chrono::milliseconds timeout);
  // Whether a frame can be had without waiting for the socket.
  bool HasBufferedFrame() const;
  // Sends a request and waits for its response, answering pings meanwhile; other frames
  // that arrive meanwhile (envelopes, receipts, presence) are kept for Receive().
  Result<wire::Response> Call(wire::Request request);

  noise::HandshakePattern pattern() const { return pattern_; }
  const crypto::X25519Public& server_static() const { return server_static_; }
  int fd() const { return fd_; }

 private:
  GatewayClient(int fd, std::chrono::milliseconds timeout) : fd_(fd), timeout_(timeout) {}
  Status WriteAll(ByteSpan bytes);
  Result<wire::Frame> ReceiveFromSocket(std::chrono::milliseconds timeout);
  Result<Bytes> ReadMessage(std::chrono::milliseconds timeout);

  int fd_;
  std::chrono::milliseconds timeout_;
  noise::CipherState send_;
  noise::CipherState receive_;
  noise::HandshakePattern pattern_ = noise::HandshakePattern::kXX;
  crypto::X25519Public server_static_{};
  Bytes inbox_;                      // bytes read but not yet consumed
  std::deque<wire::Frame> backlog_;  // frames Call() passed over
  uint64_t next_id_ = 1;
};

}  // namespace sotto::client
