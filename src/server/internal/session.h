// The gateway's per-connection protocol, independent of the transport: the Noise Pipes
// handshake as responder, device authentication, and the encrypted frames (requests,
// pings, close). TCP (gateway_loop.cc) and WebSocket (ws_gateway.cc) drive the same code;
// they only differ in how a Noise message reaches the socket.
//
// Thread-safety: a SessionProtocol is Loop-affine (one per loop or I/O thread; it owns
// scratch buffers); a SessionState belongs to one connection.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "base/bytes.h"
#include "net/socket.h"
#include "noise/cipher_state.h"
#include "noise/pipes.h"
#include "server/gateway.h"
#include "server/internal/session_link.h"
#include "store/store.h"
#include "server/metrics.h"
#include "server/rate_limiter.h"
#include "wire/sotto_wire.pb.h"

namespace sotto::server::internal {

// One unacked envelope on this connection: what a delivery receipt needs.
struct InFlight {
  uint64_t seq = 0;
  bool wants_receipt = false;  // a message (not a receipt) from another device
  store::DeviceAddress source;
  std::string message_id;
  std::string group_id;  // a group message: its receipt names the group
};

// Messaging state of an authenticated connection (allocated at authentication, so idle
// unauthenticated connections do not pay for it). Loop-affine.
struct DeviceSession {
  std::shared_ptr<SessionLink> link;  // shared with the router, presence, queue_subscription
  uint64_t sent_up_to = 0;            // highest queue seq sent on this connection
  bool catch_up = true;               // the store may hold seqs > sent_up_to not yet sent
  bool read_posted = false;           // a queue read is scheduled on this thread
  bool queue_empty_sent = false;
  // An envelope did not fit the connection's write budget (SessionProtocol::EnvelopeFits):
  // delivery waits until the transport reports its write queue drained (OnWriteQueueDrained).
  bool write_blocked = false;
  std::vector<InFlight> in_flight;    // sent, not yet acked; seq order
  std::vector<store::AccountId> presence_subscriptions;
  // Tells this connection of new entries in its device's queue (ServerCore::OnOnline);
  // dropped when it closes. Declared last: destroyed first, while `link` still lives.
  std::unique_ptr<store::QueueSubscription> queue_subscription;
};

// A provisioning id bound to this connection (docs/devices.md), registered or not.
struct ProvisionSession {
  std::shared_ptr<SessionLink> link;  // shared with the core's provisioning registry
  std::string id;
};

struct SessionState {
  bool open = false;  // handshake done
  bool authenticated = false;
  bool ping_outstanding = false;
  TokenBucket requests;
  net::IpKey peer;  // the source (IPv4, or IPv6 /64) for per-source limits
  std::unique_ptr<noise::NoisePipe> handshake;  // only during the handshake
  bool client_hello = false;  // a ClientHello with kWireVersion arrived in the handshake
  noise::CipherState send;
  noise::CipherState receive;
  store::StaticKey remote_static{};
  store::DeviceAddress device;
  std::unique_ptr<DeviceSession> messaging;  // once authenticated
  std::unique_ptr<ProvisionSession> provisioning;  // after ProvisionOpen
  // Where the blocking-work pool answers an unauthenticated connection (register,
  // link_device; docs/server.md "Threads"); made on first need. Authenticated ones use
  // messaging->link.
  std::shared_ptr<SessionLink> link;
};

// How a session's Noise messages leave: one call per message, unframed.
class SessionOutput {
 public:
  virtual ~SessionOutput() = default;
  // False if the transport closed the connection (e.g. its write queue overflowed).
  virtual bool WriteMessage(ByteSpan noise_message) = 0;
  // Bytes written but not yet taken by the socket: what counts against
  // limits.max_write_queue_bytes. When it drops back to 0 after an envelope was held back,
  // the transport calls SessionProtocol::OnWriteQueueDrained.
  virtual size_t QueuedBytes() const = 0;
  // A new link to this connection (at authentication, ProvisionOpen, and for the first
  // pool job of an unauthenticated connection). The transport must drop posts to every
  // link it handed out once the connection closed.
  virtual std::shared_ptr<SessionLink> MakeLink() = 0;
  // Closes the connection from inside a posted function (e.g. replaced by a newer one).
  virtual void CloseFromSession(CloseCause cause) = 0;
};

enum class SendClose : uint8_t { kNo, kYes };

// What the transport must do after a message: keep going, or close with a cause (and,
// if send_close, after sending a Close frame with SessionProtocol::SendCloseFrame).
struct Verdict {
  bool keep = true;
  CloseCause cause = CloseCause::kPeerClosed;
  SendClose send_close = SendClose::kNo;

  static Verdict Keep() { return {}; }
  static Verdict Close(CloseCause cause, SendClose send) { return {false, cause, send}; }
};

class SessionProtocol {
 public:
  SessionProtocol(Gateway& gateway, LoopMetrics& metrics);

  // Prepares a new connection from `peer` for the handshake.
  void Begin(SessionState& s, const net::IpKey& peer);
  // Handles one Noise message from the peer. `became_open` is set when this message
  // completed the handshake.
  Verdict OnMessage(SessionState& s, ByteSpan message, SessionOutput& out, uint64_t now_ms,
                    bool& became_open);
  bool SendFrame(SessionState& s, const wire::Frame& frame, SessionOutput& out);
  bool SendPing(SessionState& s, uint64_t nonce, SessionOutput& out);
  // Best effort: a Close frame naming `cause` (only on an open session).
  void SendCloseFrame(SessionState& s, CloseCause cause, SessionOutput& out);
  // The transport calls this once when the connection closes, whatever the cause.
  void OnClosed(SessionState& s);
  // Whether an envelope frame of about `frame_bytes` (as written: tag and prefix included)
  // may be written now. Envelopes leave one largest frame of the write queue
  // (limits.max_write_queue_bytes) free for responses, pings and Close frames, so only
  // those can overflow it (a peer that does not read); one envelope is always allowed
  // into an empty queue, so delivery always progresses.
  bool EnvelopeFits(SessionOutput& out, size_t frame_bytes) const;
  // The transport calls this when its write queue emptied (the socket took everything):
  // delivery held back by EnvelopeFits resumes. Cheap when nothing was held back.
  void OnWriteQueueDrained(SessionState& s, SessionOutput& out);
  // Marks the session authenticated as `device` and starts its messaging.
  void Authenticate(SessionState& s, const store::DeviceAddress& device, SessionOutput& out);
  Gateway& gateway() { return gateway_; }
  LoopMetrics& metrics() { return metrics_; }

 private:
  Verdict OnHandshake(SessionState& s, ByteSpan message, SessionOutput& out, bool& became_open);
  Verdict FinishHandshake(SessionState& s);
  Verdict OnFrame(SessionState& s, ByteSpan plaintext, SessionOutput& out, uint64_t now_ms);
  void OnRequest(SessionState& s, const wire::Request& request, SessionOutput& out,
                 uint64_t now_ms);
  // Answers a request the gateway serves itself (echo, whoami); false if not one.
  bool OnGatewayRequest(SessionState& s, const wire::Request& request, wire::Response& response);

  Gateway& gateway_;
  LoopMetrics& metrics_;
  wire::Frame frame_;
  wire::Frame reply_;
  Bytes frame_bytes_;
  Bytes plaintext_;
  Bytes ciphertext_;
};

}  // namespace sotto::server::internal
