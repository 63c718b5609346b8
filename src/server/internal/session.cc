#include "server/internal/session.h"

#include "server/core.h"
#include "wire/wire.h"

namespace sotto::server::internal {
namespace {

// Response framing around echoed data, plus the AEAD tag: a safe upper bound.
constexpr size_t kResponseOverhead = 64;

wire::CloseReason WireReason(CloseCause cause) {
  switch (cause) {
    case CloseCause::kMalformedFrame: return wire::CLOSE_MALFORMED_FRAME;
    case CloseCause::kUnknownFrame: return wire::CLOSE_UNKNOWN_FRAME;
    case CloseCause::kFrameTooLarge: return wire::CLOSE_FRAME_TOO_LARGE;
    case CloseCause::kPingTimeout: return wire::CLOSE_PING_TIMEOUT;
    case CloseCause::kSlowReader: return wire::CLOSE_SLOW_READER;
    case CloseCause::kShutdown: return wire::CLOSE_SHUTDOWN;
    case CloseCause::kUnsupportedVersion: return wire::CLOSE_UNSUPPORTED_VERSION;
    case CloseCause::kDecryptFailed: return wire::CLOSE_DECRYPT_FAILED;
    case CloseCause::kReplaced: return wire::CLOSE_REPLACED;
    case CloseCause::kPartialFrameTimeout: return wire::CLOSE_PARTIAL_FRAME_TIMEOUT;
    case CloseCause::kInputBudget: return wire::CLOSE_SERVER_BUSY;
    case CloseCause::kPeerClosed:
    case CloseCause::kHandshakeFailed:
    case CloseCause::kHandshakeTimeout:
    case CloseCause::kUnauthenticated:
    case CloseCause::kIoError:
    case CloseCause::kCount:
      break;
  }
  return wire::CLOSE_UNSPECIFIED;
}

}  // namespace

SessionProtocol::SessionProtocol(Gateway& gateway, LoopMetrics& metrics)
    : gateway_(gateway), metrics_(metrics) {
  plaintext_.resize(wire::kMaxNoiseMessage);
  ciphertext_.resize(wire::kMaxNoiseMessage);
}

void SessionProtocol::Begin(SessionState& s, const net::IpKey& peer) {
  s.peer = peer;
  s.handshake = std::make_unique<noise::NoisePipe>(
      noise::NoisePipe::Server(gateway_.options().server_static, crypto::SystemRandom()));
}

Verdict SessionProtocol::OnMessage(SessionState& s, ByteSpan message, SessionOutput& out,
                                   uint64_t now_ms, bool& became_open) {
  became_open = false;
  if (!s.open) return OnHandshake(s, message, out, became_open);
  auto n = s.receive.DecryptWithAd({}, message, plaintext_);
  if (!n) return Verdict::Close(CloseCause::kDecryptFailed, SendClose::kYes);
  LoopMetrics::Inc(metrics_.frames_in);
  return OnFrame(s, ByteSpan(plaintext_.data(), *n), out, now_ms);
}

Verdict SessionProtocol::OnHandshake(SessionState& s, ByteSpan message, SessionOutput& out,
                                     bool& became_open) {
  auto failed = [&](CloseCause cause) {
    LoopMetrics::Inc(metrics_.handshakes_failed);
    return Verdict::Close(cause, SendClose::kNo);
  };
  noise::NoisePipe& pipe = *s.handshake;
  auto payload = pipe.ReadMessage(message);
  if (!payload) return failed(CloseCause::kHandshakeFailed);
  // The client's hello arrives in IK message 1 or in the last XX/XXfallback message.
  if (!payload->empty()) {
    wire::ClientHello hello;
    if (!hello.ParseFromArray(payload->data(), static_cast<int>(payload->size())) ||
        hello.user_agent().size() > wire::kMaxUserAgent) {
      return failed(CloseCause::kHandshakeFailed);
    }
    if (hello.wire_version() != wire::kWireVersion) return failed(CloseCause::kUnsupportedVersion);
    s.client_hello = true;
  }
  if (pipe.NextAction() == noise::HandshakeAction::kWriteMessage) {
    wire::ServerHello hello;
    hello.set_wire_version(wire::kWireVersion);
    hello.set_server_time_ms(store::SystemClockMs());
    const std::string hello_bytes = hello.SerializeAsString();
    auto reply = pipe.WriteMessage(AsBytes(hello_bytes));
    if (!reply || reply->size() > wire::kMaxNoiseMessage) return failed(CloseCause::kHandshakeFailed);
    if (!out.WriteMessage(*reply)) return Verdict::Close(CloseCause::kIoError, SendClose::kNo);
  }
  if (!pipe.IsFinished()) return Verdict::Keep();
  // No hello means no version: refused like an unknown one (docs/wire.md).
  if (!s.client_hello) return failed(CloseCause::kUnsupportedVersion);
  Verdict v = FinishHandshake(s);
  became_open = v.keep;
  if (v.keep && s.authenticated) {
    SessionContext ctx{*this, s, out};
    gateway_.options().core->OnOnline(ctx);
  }
  return v;
}

Verdict SessionProtocol::FinishHandshake(SessionState& s) {
  noise::NoisePipe& pipe = *s.handshake;
  auto ciphers = pipe.Split();
  auto remote = pipe.RemoteStatic();
  if (!ciphers || !remote) {
    LoopMetrics::Inc(metrics_.handshakes_failed);
    return Verdict::Close(CloseCause::kHandshakeFailed, SendClose::kNo);
  }
  HandshakePattern counted = HandshakePattern::kXX;
  if (pipe.pattern() == noise::HandshakePattern::kIK) counted = HandshakePattern::kIK;
  if (pipe.pattern() == noise::HandshakePattern::kXXfallback) {
    counted = HandshakePattern::kXXfallback;
  }
  LoopMetrics::Inc(metrics_.handshakes[static_cast<size_t>(counted)]);
  s.send = std::move(ciphers->send);
  s.receive = std::move(ciphers->receive);
  std::copy(remote->begin(), remote->end(), s.remote_static.begin());
  s.handshake.reset();
  if (auto device = gateway_.options().core->Authenticate(s.remote_static)) {
    s.device = *device;
    s.authenticated = true;
  }
  s.open = true;
  return Verdict::Keep();
}

Verdict SessionProtocol::OnFrame(SessionState& s, ByteSpan plaintext, SessionOutput& out,
                                 uint64_t now_ms) {
  Status parsed = wire::ParseFrame(plaintext, frame_);
  if (!parsed) {
    return Verdict::Close(parsed.error().detail == static_cast<uint16_t>(wire::WireErr::kUnknown)
                              ? CloseCause::kUnknownFrame
                              : CloseCause::kMalformedFrame,
                          SendClose::kYes);
  }
  s.ping_outstanding = false;  // any frame proves the peer is alive
  switch (frame_.body_case()) {
    case wire::Frame::kRequest:
      OnRequest(s, frame_.request(), out, now_ms);
      break;
    case wire::Frame::kPing:
      reply_.Clear();
      reply_.mutable_pong()->set_nonce(frame_.ping().nonce());
      if (!SendFrame(s, reply_, out)) return Verdict::Close(CloseCause::kIoError, SendClose::kNo);
      break;
    case wire::Frame::kPong:
      break;
    case wire::Frame::kDeliveryAck: {
      if (!s.messaging) break;
      SessionContext ctx{*this, s, out};
      gateway_.options().core->OnDeliveryAck(ctx, frame_.delivery_ack());
      break;
    }
    case wire::Frame::kClose:
      return Verdict::Close(CloseCause::kPeerClosed, SendClose::kNo);
    case wire::Frame::kResponse:
    case wire::Frame::kEnvelope:
    case wire::Frame::kQueueEmpty:
    case wire::Frame::kPrekeysLow:
    case wire::Frame::kPresence:
    case wire::Frame::kProvision:
    case wire::Frame::BODY_NOT_SET:
      return Verdict::Close(CloseCause::kUnknownFrame, SendClose::kYes);
  }
  return Verdict::Keep();
}

void SessionProtocol::OnRequest(SessionState& s, const wire::Request& request, SessionOutput& out,
                                uint64_t now_ms) {
  const GatewayLimits& limits = gateway_.options().limits;
  // A request may be answered after frames it causes are sent; keep its own response
  // object (reply_ is scratch for every frame).
  wire::Frame reply;
  wire::Response* response = reply.mutable_response();
  response->set_id(request.id());
  if (!s.requests.Allow(now_ms, limits.request_rate)) {
    LoopMetrics::Inc(metrics_.requests_rate_limited);
    response->set_status(wire::STATUS_RATE_LIMITED);
    response->set_reason("request rate limit (limits.request_rate_per_s) exceeded");
    SendFrame(s, reply, out);
    return;
  }
  if (!OnGatewayRequest(s, request, *response)) {
    SessionContext ctx{*this, s, out};
    const bool was_authenticated = s.authenticated;
    if (!gateway_.options().core->HandleRequest(ctx, request, *response, now_ms)) return;
    SendFrame(s, reply, out);
    // Registration authenticated the session: its messaging starts after the response.
    if (!was_authenticated && s.authenticated && !s.messaging) {
      gateway_.options().core->OnOnline(ctx);
    }
    return;
  }
  SendFrame(s, reply, out);
}

bool SessionProtocol::OnGatewayRequest(SessionState& s, const wire::Request& request,
                                       wire::Response& response) {
  const GatewayLimits& limits = gateway_.options().limits;
  switch (request.body_case()) {
    case wire::Request::kWhoami: {
      auto* who = response.mutable_whoami();
      who->set_registered(s.authenticated);
      if (s.authenticated) {
        who->set_account_id(s.device.account.data(), s.device.account.size());
        who->set_device_id(s.device.device_id);
      }
      return true;
    }
    case wire::Request::kEcho:
      if (!s.authenticated) {
        response.set_status(wire::STATUS_UNAUTHENTICATED);
        response.set_reason("unknown device key: register first");
        return true;
      }
      if (request.echo().data().size() + kResponseOverhead > limits.max_frame_bytes) {
        response.set_status(wire::STATUS_TOO_LARGE);
        response.set_reason("echo reply would exceed limits.max_frame_bytes");
        return true;
      }
      response.mutable_echo()->set_data(request.echo().data());
      return true;
    default:
      return false;
  }
}

void SessionProtocol::Authenticate(SessionState& s, const store::DeviceAddress& device,
                                   SessionOutput& /*out*/) {
  s.device = device;
  s.authenticated = true;
}

void SessionProtocol::OnClosed(SessionState& s) {
  gateway_.options().core->OnOffline(s);
}

bool SessionProtocol::EnvelopeFits(SessionOutput& out, size_t frame_bytes) const {
  const size_t queued = out.QueuedBytes();
  if (queued == 0) return true;
  const GatewayLimits& limits = gateway_.options().limits;
  const size_t reserve = size_t{limits.max_frame_bytes} + wire::kLengthPrefixSize;
  return queued + frame_bytes + reserve <= limits.max_write_queue_bytes;
}

void SessionProtocol::OnWriteQueueDrained(SessionState& s, SessionOutput& out) {
  if (!s.messaging || !s.messaging->write_blocked) return;
  SessionContext ctx{*this, s, out};
  gateway_.options().core->OnWriteQueueDrained(ctx);
}

bool SessionProtocol::SendFrame(SessionState& s, const wire::Frame& frame, SessionOutput& out) {
  // Disk full: whatever store write made a request fail, the client is told the cause.
  // (Rare path: the frame is copied only then.)
  // A handler that mapped the store's kNoSpace itself (StatusFor) answers storage full
  // already; both kinds are counted here, once.
  ServerCore* core = gateway_.options().core;
  if (frame.has_response() && core != nullptr) {
    const wire::StatusCode status = frame.response().status();
    if (status == wire::STATUS_STORAGE_FULL) {
      core->CountStorageFullRefusal();
    } else if (status == wire::STATUS_INTERNAL && core->StorageFull()) {
      wire::Frame refused = frame;
      refused.mutable_response()->set_status(wire::STATUS_STORAGE_FULL);
      refused.mutable_response()->set_reason(
          "server storage full: nothing was stored; try again later");
      return SendFrame(s, refused, out);
    }
  }
  wire::SerializeFrame(frame, frame_bytes_);
  if (frame_bytes_.size() + noise::kTagSize > gateway_.options().limits.max_frame_bytes) {
    return false;  // OnRequest bounds what it echoes; nothing else comes near the limit
  }
  auto n = s.send.EncryptWithAd({}, frame_bytes_, ciphertext_);
  if (!n) return false;
  LoopMetrics::Inc(metrics_.frames_out);
  return out.WriteMessage(ByteSpan(ciphertext_.data(), *n));
}

bool SessionProtocol::SendPing(SessionState& s, uint64_t nonce, SessionOutput& out) {
  s.ping_outstanding = true;
  reply_.Clear();
  reply_.mutable_ping()->set_nonce(nonce);
  return SendFrame(s, reply_, out);
}

void SessionProtocol::SendCloseFrame(SessionState& s, CloseCause cause, SessionOutput& out) {
  if (!s.open) return;
  reply_.Clear();
  reply_.mutable_close()->set_reason(WireReason(cause));
  reply_.mutable_close()->set_detail(Name(cause));
  SendFrame(s, reply_, out);
}

}  // namespace sotto::server::internal
