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

uint32_t Ms32(uint64_t ms) { return static_cast<uint32_t>(ms); }

}  // namespace

void Connection::OnIo(uint32_t events) { owner->OnConnectionIo(this, events); }

bool Connection::WriteMessage(ByteSpan noise_message) {
  return owner->WriteFramed(this, noise_message);
}

std::shared_ptr<SessionLink> Connection::MakeLink() {
  return std::make_shared<TcpLink>(owner, this);
}

void Connection::CloseFromSession(CloseCause cause) { owner->Close(this, cause, SendClose::kYes); }

void TcpLink::Post(std::function<void(SessionContext&)> fn) {
  owner->PostTo(shared_from_this(), std::move(fn));
}

void GatewayLoop::PostTo(std::shared_ptr<TcpLink> link, std::function<void(SessionContext&)> fn) {
  loop_->Post([this, link = std::move(link), fn = std::move(fn)] {
    Connection* c = link->conn;
    if (c == nullptr || c->state != ConnState::kOpen) return;
    // A commit posts many frames at once (responses, envelopes, receipts), often several
    // to one connection: collect them and write each connection once, after the run of
    // tasks (the uncork task is queued behind them).
    if (!c->corked) {
      c->corked = true;
      corked_.push_back(c);
      if (!uncork_posted_) {
        uncork_posted_ = true;
        loop_->Post([this] { Uncork(); });
      }
    }
    SessionContext ctx{protocol_, c->session, *c};
    fn(ctx);
  });
}

void GatewayLoop::Uncork() {
  uncork_posted_ = false;
  std::vector<Connection*> corked;
  corked.swap(corked_);
  for (Connection* c : corked) {
    if (c != nullptr) Uncork(c);
  }
}

void GatewayLoop::Uncork(Connection* c) {
  c->corked = false;
  if (c->state == ConnState::kClosed || !c->pending) return;
  Flush(c);
  if (c->state != ConnState::kClosed && c->pending) SetWriteInterest(c, true);
}

GatewayLoop::GatewayLoop(Gateway& gateway, std::unique_ptr<net::EventLoop> loop, int listen_fd)
    : gateway_(gateway),
      loop_(std::move(loop)),
      listen_fd_(listen_fd),
      protocol_(gateway, metrics_) {
  reserve_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
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
      std::min({limits.ping_interval_ms, limits.ping_timeout_ms, limits.handshake_timeout_ms,
                limits.partial_frame_timeout_ms}) /
          4,
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
    net::FdBudget* budget = options.fd_budget;
    if (budget != nullptr && !budget->TryAcquire()) {
      gateway_.open_counter().fetch_sub(1, std::memory_order_relaxed);
      RefuseLogged(RefuseCause::kFdBudget);
      close(fd);
      continue;
    }
    const net::IpKey source = peer.Key();
    RefuseCause why = RefuseCause::kCount;
    const bool admitted = gateway_.AdmitSource(source, why);
    if (!admitted || !gateway_.AllowHandshakeFrom(peer.IpKey(), loop_->NowMs())) {
      if (admitted) {
        gateway_.ReleaseSource(source, /*in_handshake=*/true);
        why = RefuseCause::kHandshakeRate;
      }
      gateway_.open_counter().fetch_sub(1, std::memory_order_relaxed);
      if (budget != nullptr) budget->Release();
      RefuseLogged(why);
      close(fd);
      continue;
    }
    (void)net::SetNoDelay(fd);
    auto* c = new Connection(this, fd);
    c->last_active_ms = Ms32(loop_->NowMs());
    protocol_.Begin(c->session, source);
    if (!loop_->Add(fd, EPOLLIN | EPOLLRDHUP, c)) {
      close(fd);
      gateway_.open_counter().fetch_sub(1, std::memory_order_relaxed);
      gateway_.ReleaseSource(source, /*in_handshake=*/true);
      if (budget != nullptr) budget->Release();
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
  // What this read causes (responses, a queue drain after acks) goes out in one write.
  const bool cork = !c->corked;
  if (cork) c->corked = true;
  ReadMessages(c);
  if (cork) Uncork(c);
}

void GatewayLoop::ReadMessages(Connection* c) {
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
    const bool had_partial = !c->partial.empty();
    size_t completed = 0;
    Status split = wire::SplitMessages(c->partial, ByteSpan(scratch.data(), static_cast<size_t>(n)),
                                       max_frame, [&](ByteSpan message) {
                                         ++completed;
                                         return HandleMessage(c, message);
                                       });
    if (c->state == ConnState::kClosed) return;
    if (!split) {
      Close(c, split.error().detail == static_cast<uint16_t>(wire::WireErr::kTooLarge)
                   ? CloseCause::kFrameTooLarge
                   : CloseCause::kMalformedFrame,
            SendClose::kYes);
      return;
    }
    if (!AccountPartial(c, !had_partial || completed > 0)) return;
    if (static_cast<size_t>(n) < scratch.size()) return;  // drained
  }
}

bool GatewayLoop::AccountPartial(Connection* c, bool new_frame) {
  if (c->partial.empty()) {
    partial_.Remove(c);
  } else if (new_frame || !partial_.Contains(c)) {
    // A message's deadline runs from its first byte; only completing it ends the clock
    // (pings, pongs and other frames cannot arrive before it on the same stream).
    c->partial_since_ms = Ms32(loop_->NowMs());
    partial_.Remove(c);
    partial_.PushBack(c);
  }
  std::atomic<uint64_t>& total = gateway_.partial_input_bytes();
  const size_t held = c->partial.capacity();
  if (held <= c->partial_counted) {
    total.fetch_sub(c->partial_counted - held, std::memory_order_relaxed);
    c->partial_counted = static_cast<uint32_t>(held);
    return true;
  }
  const uint64_t grow = held - c->partial_counted;
  c->partial_counted = static_cast<uint32_t>(held);
  if (total.fetch_add(grow, std::memory_order_relaxed) + grow >
      gateway_.options().limits.max_partial_input_bytes) {
    Close(c, CloseCause::kInputBudget, SendClose::kYes);
    return false;
  }
  return true;
}

bool GatewayLoop::HandleMessage(Connection* c, ByteSpan message) {
  const bool was_open = c->session.open;
  bool became_open = false;
  const Verdict v = protocol_.OnMessage(c->session, message, *c, loop_->NowMs(), became_open);
  if (c->state == ConnState::kClosed) return false;  // a write inside failed and closed it
  if (!v.keep) {
    Close(c, v.cause, v.send_close);
    return false;
  }
  c->last_active_ms = Ms32(loop_->NowMs());
  if (became_open) {
    gateway_.HandshakeDone(c->session.peer);
    c->state = ConnState::kOpen;
    handshaking_.Remove(c);
    active_.PushBack(c);
  } else if (was_open) {
    active_.MoveToBack(c);  // activity order drives keepalive
  }
  return true;
}

bool GatewayLoop::WriteFramed(Connection* c, ByteSpan noise_message) {
  if (c->state == ConnState::kClosed) return false;
  const uint8_t prefix[wire::kLengthPrefixSize] = {static_cast<uint8_t>(noise_message.size() >> 8),
                                                   static_cast<uint8_t>(noise_message.size())};
  const size_t total = sizeof prefix + noise_message.size();
  const size_t limit = gateway_.options().limits.max_write_queue_bytes;
  size_t sent = 0;
  if (!c->pending && !c->corked) {
    iovec iov[2] = {{const_cast<uint8_t*>(prefix), sizeof prefix},
                    {const_cast<uint8_t*>(noise_message.data()), noise_message.size()}};
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;
    for (;;) {
      const ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n >= 0) {
        sent = static_cast<size_t>(n);
        break;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      Close(c, CloseCause::kIoError, SendClose::kNo);
      return false;
    }
    LoopMetrics::Inc(metrics_.bytes_out, sent);
    if (sent == total) return true;
    c->pending = std::make_unique<WriteQueue>();
    SetWriteInterest(c, true);
  } else if (!c->pending) {
    c->pending = std::make_unique<WriteQueue>();  // corked: Uncork() writes it
  }
  if (c->pending->size() + (total - sent) > limit) {
    Close(c, CloseCause::kSlowReader, SendClose::kNo);
    return false;
  }
  Bytes& q = c->pending->data;
  for (size_t i = sent; i < sizeof prefix; ++i) q.push_back(prefix[i]);
  const size_t body_from = sent > sizeof prefix ? sent - sizeof prefix : 0;
  q.insert(q.end(), noise_message.begin() + static_cast<std::ptrdiff_t>(body_from),
           noise_message.end());
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
  // The socket took everything: envelopes held back for the write budget may go now
  // (they go straight to the socket; what it does not take queues again).
  if (c->state == ConnState::kOpen) protocol_.OnWriteQueueDrained(c->session, *c);
}

void GatewayLoop::SetWriteInterest(Connection* c, bool on) {
  if (c->want_write == on || c->state == ConnState::kClosed) return;
  c->want_write = on;
  (void)loop_->Modify(c->fd, EPOLLIN | EPOLLRDHUP | (on ? EPOLLOUT : 0u), c);
}

void GatewayLoop::Close(Connection* c, CloseCause cause, SendClose send_close) {
  if (c->state == ConnState::kClosed || c->state == ConnState::kClosing) return;
  const ConnState was = c->state;
  c->state = ConnState::kClosing;  // a failing write of the Close frame cannot re-enter
  // Count before the peer can see anything of the close (the frame, the FIN), so what it
  // reads from /metrics next agrees with what it saw.
  gateway_.open_counter().fetch_sub(1, std::memory_order_relaxed);
  gateway_.ReleaseSource(c->session.peer, was == ConnState::kHandshake);
  if (gateway_.options().fd_budget != nullptr) gateway_.options().fd_budget->Release();
  LoopMetrics::Dec(metrics_.connections_open);
  LoopMetrics::Inc(metrics_.closes[static_cast<size_t>(cause)]);
  partial_.Remove(c);
  gateway_.partial_input_bytes().fetch_sub(c->partial_counted, std::memory_order_relaxed);
  c->partial_counted = 0;
  if (was == ConnState::kHandshake) {
    handshaking_.Remove(c);
  } else {
    active_.Remove(c);
  }
  if (send_close == SendClose::kYes && was == ConnState::kOpen) {
    protocol_.SendCloseFrame(c->session, cause, *c);
    if (c->pending) Flush(c);
    shutdown(c->fd, SHUT_WR);
  }
  c->state = ConnState::kClosed;
  if (c->corked) std::replace(corked_.begin(), corked_.end(), c, static_cast<Connection*>(nullptr));
  if (c->session.provisioning) {
    static_cast<TcpLink*>(c->session.provisioning->link.get())->conn = nullptr;
  }
  if (c->session.link) static_cast<TcpLink*>(c->session.link.get())->conn = nullptr;
  if (c->session.messaging) {
    static_cast<TcpLink*>(c->session.messaging->link.get())->conn = nullptr;
    protocol_.OnClosed(c->session);
  } else if (c->session.provisioning) {
    protocol_.OnClosed(c->session);
  }
  loop_->Remove(c->fd);
  close(c->fd);
  c->fd = -1;
  c->session.handshake.reset();
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
  while (Connection* c = partial_.front()) {
    if (now - c->partial_since_ms < limits.partial_frame_timeout_ms) break;
    Close(c, CloseCause::kPartialFrameTimeout, SendClose::kYes);
  }
  // Oldest activity first; stop at the first connection that is not yet idle.
  for (Connection* c = active_.front(); c != nullptr;) {
    Connection* next = c->next;
    const uint32_t idle = now - c->last_active_ms;
    if (idle < limits.ping_interval_ms) break;
    if (c->session.ping_outstanding) {
      if (idle >= limits.ping_interval_ms + limits.ping_timeout_ms) {
        Close(c, CloseCause::kPingTimeout, SendClose::kYes);
      }
    } else {
      protocol_.SendPing(c->session, now, *c);
    }
    c = next;
  }
}

}  // namespace sotto::server::internal
