#include "server/internal/gateway_loop.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <spdlog/spdlog.h>

#include "net/socket.h"
#include "server/gateway.h"
#include "wire/wire.h"

namespace sotto::server::internal {
namespace {

constexpr int kMaxAcceptsPerWakeup = 64;
constexpr int kMaxReadsPerWakeup = 4;
constexpr uint64_t kRefuseLogIntervalMs = 10'000;
// Response framing around echoed data, plus the AEAD tag: a safe upper bound.
constexpr size_t kResponseOverhead = 64;

uint32_t Ms32(uint64_t ms) { return static_cast<uint32_t>(ms); }

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

void Connection::OnIo(uint32_t events) { owner->OnConnectionIo(this, events); }

void ConnectionList::PushBack(Connection* c) {
  c->prev = tail_;
  c->next = nullptr;
  if (tail_ != nullptr) {
    tail_->next = c;
  } else {
    head_ = c;
  }
  tail_ = c;
  ++size_;
}

void ConnectionList::Remove(Connection* c) {
  if (c->prev != nullptr) {
    c->prev->next = c->next;
  } else if (head_ == c) {
    head_ = c->next;
  } else {
    return;  // not in this list
  }
  if (c->next != nullptr) {
    c->next->prev = c->prev;
  } else {
    tail_ = c->prev;
  }
  c->prev = c->next = nullptr;
  --size_;
}

GatewayLoop::GatewayLoop(Gateway& gateway, std::unique_ptr<net::EventLoop> loop, int listen_fd)
    : gateway_(gateway), loop_(std::move(loop)), listen_fd_(listen_fd) {
  reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  plaintext_.resize(wire::kMaxNoiseMessage);
  ciphertext_.resize(wire::kLengthPrefixSize + wire::kMaxNoiseMessage);
}

GatewayLoop::~GatewayLoop() {
  Join();
  for (Connection* c : graveyard_) delete c;
  if (listen_fd_ >= 0) close(listen_fd_);
  if (reserve_fd_ >= 0) close(reserve_fd_);
}

void GatewayLoop::Start() {
  (void)loop_->Add(listen_fd_, EPOLLIN, this);
  const GatewayLimits& limits = gateway_.options().limits;
  const uint32_t tick = std::clamp<uint32_t>(
      std::min({limits.ping_interval_ms, limits.ping_timeout_ms, limits.handshake_timeout_ms}) / 4,
      10, 1000);
  loop_->RunEvery(std::chrono::milliseconds(tick), [this] { Tick(); });
  thread_ = std::thread([this] { loop_->Run(); });
}

void GatewayLoop::Stop() {
  loop_->Post([this] {
    stopping_ = true;
    loop_->Remove(listen_fd_);
    close(listen_fd_);
    listen_fd_ = -1;
    CloseAll(CloseCause::kShutdown);
    Reap();
    loop_->Stop();
  });
}

void GatewayLoop::Join() {
  if (thread_.joinable()) thread_.join();
}

void GatewayLoop::OnIo(uint32_t /*events*/) { Accept(); }

void GatewayLoop::RefuseLogged(RefuseCause cause) {
  LoopMetrics::Inc(metrics_.refused[static_cast<size_t>(cause)]);
  if (loop_->NowMs() - last_refuse_log_ms_ >= kRefuseLogIntervalMs) {
    last_refuse_log_ms_ = loop_->NowMs();
    spdlog::warn("refusing connections: {} (further refusals counted in metrics only for {} s)",
                 Name(cause), kRefuseLogIntervalMs / 1000);
  }
}

void GatewayLoop::Accept() {
  const GatewayOptions& options = gateway_.options();
  for (int i = 0; i < kMaxAcceptsPerWakeup && !stopping_; ++i) {
    net::SocketAddress peer;
    peer.length = sizeof peer.storage;
    const int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer.storage), &peer.length,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if ((errno == EMFILE || errno == ENFILE) && reserve_fd_ >= 0) {
        // At the open-file limit (accept fails before it looks at the queue): shed one
        // pending connection with the spare fd so the listener does not spin, and carry
        // on serving the existing ones.
        close(reserve_fd_);
        const int shed = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        reserve_fd_ = -1;
        if (shed >= 0) {
          close(shed);
          RefuseLogged(RefuseCause::kOpenFiles);
        }
        reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (shed >= 0) continue;
      }
      return;  // EAGAIN, or a transient error: wait for the next readiness
    }
    if (gateway_.open_counter().fetch_add(1, std::memory_order_relaxed) >=
        options.limits.max_connections) {
      gateway_.open_counter().fetch_sub(1, std::memory_order_relaxed);
      RefuseLogged(RefuseCause::kMaxConnections);
      close(fd);
      continue;
    }
    if (!gateway_.AllowHandshakeFrom(peer.IpKey(), loop_->NowMs())) {
      gateway_.open_counter().fetch_sub(1, std::memory_order_relaxed);
      RefuseLogged(RefuseCause::kHandshakeRate);
      close(fd);
      continue;
    }
    (void)net::SetNoDelay(fd);
    auto* c = new Connection(this, fd);
    c->last_active_ms = Ms32(loop_->NowMs());
    c->handshake = std::make_unique<noise::NoisePipe>(
        noise::NoisePipe::Server(options.server_static, crypto::SystemRandom()));
    if (!loop_->Add(fd, EPOLLIN | EPOLLRDHUP, c)) {
      close(fd);
      gateway_.open_counter().fetch_sub(1, std::memory_order_relaxed);
      delete c;
      continue;
    }
    handshaking_.PushBack(c);
    LoopMetrics::Inc(metrics_.connections_accepted);
    LoopMetrics::Inc(metrics_.connections_open);
  }
}

void GatewayLoop::OnConnectionIo(Connection* c, uint32_t events) {
  if (c->state == ConnState::kClosed) return;
  if (events & EPOLLOUT) Flush(c);
  if (c->state == ConnState::kClosed) return;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) ReadFrom(c);
}

void GatewayLoop::ReadFrom(Connection* c) {
  const uint32_t max_frame = gateway_.options().limits.max_frame_bytes;
  MutableByteSpan scratch = loop_->scratch();
  for (int i = 0; i < kMaxReadsPerWakeup; ++i) {
    const ssize_t n = read(c->fd, scratch.data(), scratch.size());
    if (n == 0) {
      Close(c, CloseCause::kPeerClosed, SendClose::kNo);
      return;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      Close(c, CloseCause::kIoError, SendClose::kNo);
      return;
    }
    LoopMetrics::Inc(metrics_.bytes_in, static_cast<uint64_t>(n));
    Status split = wire::SplitMessages(
        c->partial, ByteSpan(scratch.data(), static_cast<size_t>(n)), max_frame,
        [&](ByteSpan message) { return HandleMessage(c, message); });
    if (c->state == ConnState::kClosed) return;
    if (!split) {
      Close(c, split.error().detail == static_cast<uint16_t>(wire::WireErr::kTooLarge)
                   ? CloseCause::kFrameTooLarge
                   : CloseCause::kMalformedFrame,
            SendClose::kYes);
      return;
    }
    if (static_cast<size_t>(n) < scratch.size()) return;  // drained
  }
}

bool GatewayLoop::HandleMessage(Connection* c, ByteSpan message) {
  if (c->state == ConnState::kHandshake) return HandleHandshake(c, message);
  if (c->state != ConnState::kOpen) return false;
  auto n = c->receive.DecryptWithAd({}, message, plaintext_);
  if (!n) {
    Close(c, CloseCause::kDecryptFailed, SendClose::kYes);
    return false;
  }
  LoopMetrics::Inc(metrics_.frames_in);
  return HandleFrame(c, ByteSpan(plaintext_.data(), *n));
}

bool GatewayLoop::HandleHandshake(Connection* c, ByteSpan message) {
  noise::NoisePipe& pipe = *c->handshake;
  auto payload = pipe.ReadMessage(message);
  if (!payload) {
    LoopMetrics::Inc(metrics_.handshakes_failed);
    Close(c, CloseCause::kHandshakeFailed, SendClose::kNo);
    return false;
  }
  // The client's hello arrives in IK message 1 or in the last XX/XXfallback message.
  if (!payload->empty()) {
    wire::ClientHello hello;
    if (!hello.ParseFromArray(payload->data(), static_cast<int>(payload->size())) ||
        hello.user_agent().size() > wire::kMaxUserAgent) {
      LoopMetrics::Inc(metrics_.handshakes_failed);
      Close(c, CloseCause::kHandshakeFailed, SendClose::kNo);
      return false;
    }
    if (hello.wire_version() != wire::kWireVersion) {
      LoopMetrics::Inc(metrics_.handshakes_failed);
      Close(c, CloseCause::kUnsupportedVersion, SendClose::kNo);
      return false;
    }
  }
  if (pipe.NextAction() == noise::HandshakeAction::kWriteMessage) {
    wire::ServerHello hello;
    hello.set_wire_version(wire::kWireVersion);
    hello.set_server_time_ms(static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::system_clock::now().time_since_epoch())
            .count()));
    const std::string hello_bytes = hello.SerializeAsString();
    auto reply = pipe.WriteMessage(AsBytes(hello_bytes));
    if (!reply || reply->size() > wire::kMaxNoiseMessage) {
      LoopMetrics::Inc(metrics_.handshakes_failed);
      Close(c, CloseCause::kHandshakeFailed, SendClose::kNo);
      return false;
    }
    Bytes framed;
    framed.reserve(wire::kLengthPrefixSize + reply->size());
    wire::AppendLengthPrefix(framed, reply->size());
    Append(framed, *reply);
    if (!SendRaw(c, framed)) return false;
  }
  if (pipe.IsFinished()) return FinishHandshake(c);
  return true;
}

bool GatewayLoop::FinishHandshake(Connection* c) {
  noise::NoisePipe& pipe = *c->handshake;
  auto ciphers = pipe.Split();
  auto remote = pipe.RemoteStatic();
  if (!ciphers || !remote) {
    LoopMetrics::Inc(metrics_.handshakes_failed);
    Close(c, CloseCause::kHandshakeFailed, SendClose::kNo);
    return false;
  }
  const noise::HandshakePattern pattern = *pipe.pattern();
  HandshakePattern counted = HandshakePattern::kXX;
  if (pattern == noise::HandshakePattern::kIK) counted = HandshakePattern::kIK;
  if (pattern == noise::HandshakePattern::kXXfallback) counted = HandshakePattern::kXXfallback;
  LoopMetrics::Inc(metrics_.handshakes[static_cast<size_t>(counted)]);
  c->send = std::move(ciphers->send);
  c->receive = std::move(ciphers->receive);
  std::copy(remote->begin(), remote->end(), c->remote_static.begin());
  c->handshake.reset();
  if (auto device = gateway_.options().directory->Lookup(c->remote_static)) {
    c->device = *device;
    c->authenticated = true;
  }
  c->state = ConnState::kOpen;
  handshaking_.Remove(c);
  c->last_active_ms = Ms32(loop_->NowMs());
  active_.PushBack(c);
  return true;
}

void GatewayLoop::Touch(Connection* c) {
  c->last_active_ms = Ms32(loop_->NowMs());
  c->ping_outstanding = false;
  active_.MoveToBack(c);
}

bool GatewayLoop::HandleFrame(Connection* c, ByteSpan plaintext) {
  Status parsed = wire::ParseFrame(plaintext, frame_);
  if (!parsed) {
    Close(c,
          parsed.error().detail == static_cast<uint16_t>(wire::WireErr::kUnknown)
              ? CloseCause::kUnknownFrame
              : CloseCause::kMalformedFrame,
          SendClose::kYes);
    return false;
  }
  Touch(c);
  switch (frame_.body_case()) {
    case wire::Frame::kRequest:
      HandleRequest(c, frame_.request());
      break;
    case wire::Frame::kPing: {
      reply_.Clear();
      reply_.mutable_pong()->set_nonce(frame_.ping().nonce());
      SendFrame(c, reply_);
      break;
    }
    case wire::Frame::kPong:
      break;  // Touch() already cleared the outstanding ping
    case wire::Frame::kClose:
      Close(c, CloseCause::kPeerClosed, SendClose::kNo);
      return false;
    case wire::Frame::kResponse:
    case wire::Frame::BODY_NOT_SET:
      Close(c, CloseCause::kUnknownFrame, SendClose::kYes);
      return false;
  }
  return c->state == ConnState::kOpen;
}

void GatewayLoop::HandleRequest(Connection* c, const wire::Request& request) {
  reply_.Clear();
  wire::Response* response = reply_.mutable_response();
  response->set_id(request.id());
  if (!c->requests.Allow(loop_->NowMs(), gateway_.options().limits.request_rate)) {
    LoopMetrics::Inc(metrics_.requests_rate_limited);
    response->set_status(wire::STATUS_RATE_LIMITED);
    response->set_reason("request rate limit (limits.request_rate_per_s) exceeded");
    SendFrame(c, reply_);
    return;
  }
  switch (request.body_case()) {
    case wire::Request::kRegister: {
      auto device = gateway_.options().directory->Register(c->remote_static);
      if (!device) {
        response->set_status(wire::STATUS_INTERNAL);
        response->set_reason("registration failed");
        break;
      }
      c->device = *device;
      c->authenticated = true;
      response->mutable_register_()->set_account_id(c->device.account.data(),
                                                    c->device.account.size());
      response->mutable_register_()->set_device_id(c->device.device_id);
      break;
    }
    case wire::Request::kWhoami: {
      auto* who = response->mutable_whoami();
      who->set_registered(c->authenticated);
      if (c->authenticated) {
        who->set_account_id(c->device.account.data(), c->device.account.size());
        who->set_device_id(c->device.device_id);
      }
      break;
    }
    case wire::Request::kEcho:
      if (!c->authenticated) {
        response->set_status(wire::STATUS_UNAUTHENTICATED);
        response->set_reason("unknown device key: register first");
        break;
      }
      if (request.echo().data().size() + kResponseOverhead > gateway_.options().limits.max_frame_bytes) {
        response->set_status(wire::STATUS_TOO_LARGE);
        response->set_reason("echo reply would exceed limits.max_frame_bytes");
        break;
      }
      response->mutable_echo()->set_data(request.echo().data());
      break;
    case wire::Request::BODY_NOT_SET:
      response->set_status(wire::STATUS_BAD_REQUEST);
      response->set_reason("unknown request");
      break;
  }
  SendFrame(c, reply_);
}

bool GatewayLoop::SendFrame(Connection* c, const wire::Frame& frame) {
  wire::SerializeFrame(frame, frame_bytes_);
  if (frame_bytes_.size() + noise::kTagSize > gateway_.options().limits.max_frame_bytes) {
    // Only an echo of a near-limit request can get here; refuse rather than split.
    reply_.Clear();
    return false;
  }
  auto n = c->send.EncryptWithAd(
      {}, frame_bytes_, MutableByteSpan(ciphertext_).subspan(wire::kLengthPrefixSize));
  if (!n) {
    Close(c, CloseCause::kIoError, SendClose::kNo);
    return false;
  }
  ciphertext_[0] = static_cast<uint8_t>(*n >> 8);
  ciphertext_[1] = static_cast<uint8_t>(*n);
  LoopMetrics::Inc(metrics_.frames_out);
  return SendRaw(c, ByteSpan(ciphertext_.data(), wire::kLengthPrefixSize + *n));
}

bool GatewayLoop::SendRaw(Connection* c, ByteSpan framed) {
  const size_t limit = gateway_.options().limits.max_write_queue_bytes;
  if (c->pending) {
    if (c->pending->size() + framed.size() > limit) {
      Close(c, CloseCause::kSlowReader, SendClose::kNo);
      return false;
    }
    Append(c->pending->data, framed);
    return true;
  }
  size_t sent = 0;
  while (sent < framed.size()) {
    const ssize_t n = send(c->fd, framed.data() + sent, framed.size() - sent,
                           MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    Close(c, CloseCause::kIoError, SendClose::kNo);
    return false;
  }
  LoopMetrics::Inc(metrics_.bytes_out, sent);
  if (sent < framed.size()) {
    c->pending = std::make_unique<WriteQueue>();
    c->pending->data.assign(framed.begin() + static_cast<std::ptrdiff_t>(sent), framed.end());
    SetWriteInterest(c, true);
  }
  return true;
}

void GatewayLoop::Flush(Connection* c) {
  if (!c->pending) {
    SetWriteInterest(c, false);
    return;
  }
  WriteQueue& q = *c->pending;
  while (q.size() > 0) {
    const ssize_t n = send(c->fd, q.data.data() + q.offset, q.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      q.offset += static_cast<size_t>(n);
      LoopMetrics::Inc(metrics_.bytes_out, static_cast<uint64_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    Close(c, CloseCause::kIoError, SendClose::kNo);
    return;
  }
  c->pending.reset();
  SetWriteInterest(c, false);
}

void GatewayLoop::SetWriteInterest(Connection* c, bool on) {
  if (c->want_write == on || c->state == ConnState::kClosed) return;
  c->want_write = on;
  (void)loop_->Modify(c->fd, EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0u), c);
}

void GatewayLoop::Close(Connection* c, CloseCause cause, SendClose send_close) {
  if (c->state == ConnState::kClosed) return;
  if (send_close == SendClose::kYes && c->state == ConnState::kOpen) {
    reply_.Clear();
    reply_.mutable_close()->set_reason(WireReason(cause));
    reply_.mutable_close()->set_detail(Name(cause));
    SendFrame(c, reply_);
    if (c->state == ConnState::kClosed) return;  // the send itself failed and closed
    if (c->pending) Flush(c);
    if (c->state == ConnState::kClosed) return;
    shutdown(c->fd, SHUT_WR);
  }
  if (c->state == ConnState::kHandshake) {
    handshaking_.Remove(c);
  } else {
    active_.Remove(c);
  }
  c->state = ConnState::kClosed;
  // Count before the peer can see the close, so what it reads next is consistent.
  gateway_.open_counter().fetch_sub(1, std::memory_order_relaxed);
  LoopMetrics::Dec(metrics_.connections_open);
  LoopMetrics::Inc(metrics_.closes[static_cast<size_t>(cause)]);
  loop_->Remove(c->fd);
  close(c->fd);
  c->fd = -1;
  c->handshake.reset();
  c->pending.reset();
  c->partial = Bytes();
  graveyard_.push_back(c);
  if (!reap_posted_) {
    reap_posted_ = true;
    loop_->Post([this] { Reap(); });
  }
}

void GatewayLoop::Reap() {
  reap_posted_ = false;
  for (Connection* c : graveyard_) delete c;
  graveyard_.clear();
}

void GatewayLoop::CloseAll(CloseCause cause) {
  while (Connection* c = handshaking_.front()) Close(c, cause, SendClose::kNo);
  while (Connection* c = active_.front()) Close(c, cause, SendClose::kYes);
}

void GatewayLoop::Tick() {
  const GatewayLimits& limits = gateway_.options().limits;
  const uint32_t now = Ms32(loop_->NowMs());
  while (Connection* c = handshaking_.front()) {
    if (now - c->last_active_ms < limits.handshake_timeout_ms) break;
    Close(c, CloseCause::kHandshakeTimeout, SendClose::kNo);
  }
  // Oldest activity first; stop at the first connection that is not yet idle.
  for (Connection* c = active_.front(); c != nullptr;) {
    Connection* next = c->next;
    const uint32_t idle = now - c->last_active_ms;
    if (idle < limits.ping_interval_ms) break;
    if (c->ping_outstanding) {
      if (idle >= limits.ping_interval_ms + limits.ping_timeout_ms) {
        Close(c, CloseCause::kPingTimeout, SendClose::kYes);
      }
    } else {
      c->ping_outstanding = true;
      reply_.Clear();
      reply_.mutable_ping()->set_nonce(now);
      SendFrame(c, reply_);
    }
    c = next;
  }
}

}  // namespace sotto::server::internal
