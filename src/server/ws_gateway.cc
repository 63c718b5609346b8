#include "server/ws_gateway.h"

#include <chrono>
#include <cstring>
#include <deque>
#include <set>
#include <thread>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>

#include "server/internal/session.h"

namespace sotto::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {
constexpr auto kShutdownGrace = std::chrono::milliseconds(500);
// Largest read of one message at a time (Beast reads it into the session's buffer).
constexpr size_t kWsReadChunk = size_t{16} * 1024;
// A read buffer above this is freed once its message is handled: idle sessions keep
// only a small one.
constexpr size_t kWsKeepBufferBytes = size_t{4} * 1024;
uint64_t NowMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}
}  // namespace

class WsSession;

struct WsGateway::Impl {
  explicit Impl(Gateway& g) : gateway(g), protocol(g, metrics) {}
  void Accept();

  Gateway& gateway;
  LoopMetrics metrics;
  internal::SessionProtocol protocol;
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  std::set<WsSession*> sessions;  // io thread only
  std::thread thread;
  bool stopped = false;
};

// One WebSocket connection. Owned by its pending asynchronous operations (shared_ptr).
class WsSession : public std::enable_shared_from_this<WsSession>, public internal::SessionOutput {
 public:
  WsSession(WsGateway::Impl& owner, tcp::socket socket)
      : owner_(owner),
        ws_(std::move(socket)),
        handshake_timer_(owner.io),
        partial_timer_(owner.io) {}

  void Start(const net::IpKey& peer) {
    const GatewayLimits& limits = owner_.gateway.options().limits;
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = std::chrono::milliseconds(limits.handshake_timeout_ms);
    timeouts.idle_timeout = std::chrono::milliseconds(limits.ping_interval_ms + limits.ping_timeout_ms);
    timeouts.keep_alive_pings = true;
    ws_.set_option(timeouts);
    ws_.read_message_max(limits.max_frame_bytes);
    // Beast grows the read buffer geometrically (and by at least 512 bytes a read): cap
    // it at one message, so a session never holds more than one frame.
    buffer_.max_size(limits.max_frame_bytes);
    ws_.binary(true);
    owner_.sessions.insert(this);
    owner_.protocol.Begin(state_, peer);
    handshake_timer_.expires_after(std::chrono::milliseconds(limits.handshake_timeout_ms));
    handshake_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec && !self->state_.open) self->Close(CloseCause::kHandshakeTimeout, internal::SendClose::kNo);
    });
    ws_.async_accept([self = shared_from_this()](beast::error_code ec) {
      if (ec) return self->Close(CloseCause::kHandshakeFailed, internal::SendClose::kNo);
      self->Read();
    });
  }

  bool WriteMessage(ByteSpan message) override {
    if (closed_) return false;
    if (queued_bytes_ + message.size() > owner_.gateway.options().limits.max_write_queue_bytes) {
      Close(CloseCause::kSlowReader, internal::SendClose::kNo);
      return false;
    }
    queue_.emplace_back(message.begin(), message.end());
    queued_bytes_ += message.size();
    LoopMetrics::Inc(owner_.metrics.bytes_out, message.size());
    if (!writing_) WriteNext();
    return true;
  }

  size_t QueuedBytes() const override { return queued_bytes_; }

  void Shutdown() {
    Close(CloseCause::kShutdown, internal::SendClose::kYes);
  }

  std::shared_ptr<internal::SessionLink> MakeLink() override;
  void CloseFromSession(CloseCause cause) override { Close(cause, internal::SendClose::kYes); }
  // Runs a posted function on the io thread if the session is still open.
  void RunPosted(const std::function<void(internal::SessionContext&)>& fn) {
    if (closed_) return;
    internal::SessionContext ctx{owner_.protocol, state_, *this};
    fn(ctx);
  }

 private:
  // Reads a message a piece at a time, so that an incomplete one is seen: it is counted
  // against limits.max_partial_input_bytes and must complete within
  // limits.partial_frame_timeout_ms of its first piece. Beast answers pings and reads
  // pongs inside the read, so only this timer (not the idle timeout) bounds it.
  void Read() {
    ws_.async_read_some(
        buffer_, kWsReadChunk,
        [self = shared_from_this()](beast::error_code ec, size_t n) { self->OnRead(ec, n); });
  }

  // Counts the buffer of an incomplete message in the gateway's total; false (and
  // closed) past limits.max_partial_input_bytes.
  bool AccountPartial() {
    std::atomic<uint64_t>& total = owner_.gateway.partial_input_bytes();
    const size_t held = partial_ ? buffer_.capacity() : 0;
    if (held <= partial_counted_) {
      total.fetch_sub(partial_counted_ - held, std::memory_order_relaxed);
      partial_counted_ = held;
      return true;
    }
    const uint64_t grow = held - partial_counted_;
    partial_counted_ = held;
    if (total.fetch_add(grow, std::memory_order_relaxed) + grow >
        owner_.gateway.options().limits.max_partial_input_bytes) {
      Close(CloseCause::kInputBudget, internal::SendClose::kYes);
      return false;
    }
    return true;
  }

  void OnRead(beast::error_code ec, size_t n) {
    if (closed_) return;
    if (ec == websocket::error::message_too_big) {
      return Close(CloseCause::kFrameTooLarge, internal::SendClose::kYes);
    }
    if (ec) return Close(CloseCause::kPeerClosed, internal::SendClose::kNo);
    LoopMetrics::Inc(owner_.metrics.bytes_in, n);
    if (!ws_.is_message_done()) {
      if (!partial_) {
        partial_ = true;
        partial_timer_.expires_after(
            std::chrono::milliseconds(owner_.gateway.options().limits.partial_frame_timeout_ms));
        partial_timer_.async_wait([self = shared_from_this()](beast::error_code wait_ec) {
          if (!wait_ec && self->partial_) {
            self->Close(CloseCause::kPartialFrameTimeout, internal::SendClose::kYes);
          }
        });
      }
      if (!AccountPartial()) return;
      return Read();
    }
    if (partial_) {
      partial_ = false;
      partial_timer_.cancel();
    }
    if (!ws_.got_binary()) return Close(CloseCause::kMalformedFrame, internal::SendClose::kYes);
    bool became_open = false;
    const auto data = buffer_.cdata();
    const internal::Verdict v = owner_.protocol.OnMessage(
        state_, ByteSpan(static_cast<const uint8_t*>(data.data()), data.size()), *this, NowMs(),
        became_open);
    buffer_.consume(buffer_.size());
    if (buffer_.capacity() > kWsKeepBufferBytes) buffer_.shrink_to_fit();
    (void)AccountPartial();  // no longer partial: gives its count back
    if (closed_) return;
    if (!v.keep) return Close(v.cause, v.send_close);
    if (became_open) {
      handshake_timer_.cancel();
      handshake_done_ = true;
      owner_.gateway.HandshakeDone(state_.peer);
    }
    Read();
  }

  void WriteNext() {
    if (queue_.empty()) {
      writing_ = false;
      if (closing_) {
        FinishClose();
      } else if (!closed_) {
        // Everything was written: envelopes held back for the write budget may go now.
        owner_.protocol.OnWriteQueueDrained(state_, *this);
      }
      return;
    }
    writing_ = true;
    ws_.async_write(asio::buffer(queue_.front()),
                    [self = shared_from_this()](beast::error_code ec, size_t) {
                      self->queued_bytes_ -= self->queue_.front().size();
                      self->queue_.pop_front();
                      if (ec) {
                        self->queue_.clear();
                        self->queued_bytes_ = 0;
                        self->writing_ = false;
                        if (!self->closed_) self->Close(CloseCause::kIoError, internal::SendClose::kNo);
                        else if (self->closing_) self->FinishClose();
                        return;
                      }
                      self->WriteNext();
                    });
  }

  // Counts the close once, sends a Close frame if asked, then closes the WebSocket after
  // the queued writes.
  void Close(CloseCause cause, internal::SendClose send_close) {
    if (closed_ || close_started_) return;  // a failing Close-frame write cannot re-enter
    close_started_ = true;
    // Counted before the peer can see anything of the close (the frame may be written
    // at once), so what it reads from /metrics next agrees with what it saw.
    handshake_timer_.cancel();
    partial_ = false;
    partial_timer_.cancel();
    (void)AccountPartial();  // gives back what this session counted
    LoopMetrics::Dec(owner_.metrics.connections_open);
    LoopMetrics::Inc(owner_.metrics.closes[static_cast<size_t>(cause)]);
    owner_.gateway.open_counter().fetch_sub(1, std::memory_order_relaxed);
    owner_.gateway.ReleaseSource(state_.peer, /*in_handshake=*/!handshake_done_);
    if (net::FdBudget* budget = owner_.gateway.options().fd_budget) budget->Release();
    if (send_close == internal::SendClose::kYes) owner_.protocol.SendCloseFrame(state_, cause, *this);
    closed_ = true;
    closing_ = true;
    owner_.sessions.erase(this);
    owner_.protocol.OnClosed(state_);
    if (!writing_) FinishClose();
  }

  void FinishClose() {
    closing_ = false;
    if (ws_.is_open()) {
      ws_.async_close(websocket::close_code::normal,
                      [self = shared_from_this()](beast::error_code) {});
    } else {
      beast::error_code ignored;
      beast::get_lowest_layer(ws_).socket().close(ignored);
    }
  }

  WsGateway::Impl& owner_;
  websocket::stream<beast::tcp_stream> ws_;
  asio::steady_timer handshake_timer_;
  asio::steady_timer partial_timer_;  // armed while a message is incomplete
  beast::flat_buffer buffer_;
  size_t partial_counted_ = 0;  // buffer_ bytes counted in the gateway's partial total
  bool partial_ = false;        // a message has begun and not completed
  bool handshake_done_ = false;
  bool close_started_ = false;
  internal::SessionState state_;
  std::deque<Bytes> queue_;
  size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool closed_ = false;
  bool closing_ = false;
};

// The thread-safe handle on a WebSocket session: posts to the io thread.
class WsLink final : public internal::SessionLink {
 public:
  WsLink(asio::io_context& io, std::weak_ptr<WsSession> session)
      : io_(io), session_(std::move(session)) {}
  void Post(std::function<void(internal::SessionContext&)> fn) override {
    asio::post(io_, [session = session_, fn = std::move(fn)] {
      if (auto s = session.lock()) s->RunPosted(fn);
    });
  }

 private:
  asio::io_context& io_;
  std::weak_ptr<WsSession> session_;
};

std::shared_ptr<internal::SessionLink> WsSession::MakeLink() {
  return std::make_shared<WsLink>(owner_.io, weak_from_this());
}

void WsGateway::Impl::Accept() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || stopped) return;
    if (!ec) {
      const GatewayOptions& options = gateway.options();
      beast::error_code addr_ec;
      const auto remote = socket.remote_endpoint(addr_ec);
      // The same per-IP key as the TCP gateway: net::SocketAddress::IpKey.
      net::SocketAddress peer;
      if (!addr_ec && remote.size() <= sizeof peer.storage) {
        std::memcpy(&peer.storage, remote.data(), remote.size());
        peer.length = static_cast<socklen_t>(remote.size());
      }
      const std::string ip_key = peer.length != 0 ? peer.IpKey() : std::string();
      const net::IpKey source = peer.Key();
      net::FdBudget* budget = options.fd_budget;
      RefuseCause why = RefuseCause::kCount;
      if (gateway.open_counter().fetch_add(1, std::memory_order_relaxed) >=
          options.limits.max_connections) {
        gateway.open_counter().fetch_sub(1, std::memory_order_relaxed);
        LoopMetrics::Inc(metrics.refused[static_cast<size_t>(RefuseCause::kMaxConnections)]);
      } else if (budget != nullptr && !budget->TryAcquire()) {
        gateway.open_counter().fetch_sub(1, std::memory_order_relaxed);
        LoopMetrics::Inc(metrics.refused[static_cast<size_t>(RefuseCause::kFdBudget)]);
      } else if (!gateway.AdmitSource(source, why)) {
        gateway.open_counter().fetch_sub(1, std::memory_order_relaxed);
        if (budget != nullptr) budget->Release();
        LoopMetrics::Inc(metrics.refused[static_cast<size_t>(why)]);
      } else if (!gateway.AllowHandshakeFrom(ip_key, NowMs())) {
        gateway.ReleaseSource(source, /*in_handshake=*/true);
        gateway.open_counter().fetch_sub(1, std::memory_order_relaxed);
        if (budget != nullptr) budget->Release();
        LoopMetrics::Inc(metrics.refused[static_cast<size_t>(RefuseCause::kHandshakeRate)]);
      } else {
        LoopMetrics::Inc(metrics.connections_accepted);
        LoopMetrics::Inc(metrics.connections_open);
        std::make_shared<WsSession>(*this, std::move(socket))->Start(source);
      }
    } else if (ec == asio::error::no_descriptors) {
      LoopMetrics::Inc(metrics.refused[static_cast<size_t>(RefuseCause::kOpenFiles)]);
    }
    Accept();
  });
}

Result<std::unique_ptr<WsGateway>> WsGateway::Start(const net::SocketAddress& address,
                                                    Gateway& gateway) {
  auto impl = std::make_unique<Impl>(gateway);
  SOTTO_ASSIGN_OR_RETURN(int fd, net::Listen(address, 1024, net::ReusePort::kNo));
  SOTTO_ASSIGN_OR_RETURN(net::SocketAddress bound, net::LocalAddress(fd));
  beast::error_code ec;
  impl->acceptor.assign(address.storage.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd, ec);
  if (ec) {
    ::close(fd);
    return MakeError(Code::kInternal, Module::kServer, 0, "WebSocket acceptor setup failed");
  }
  impl->Accept();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<WsGateway>(new WsGateway(std::move(impl), bound.port()));
}

void WsGateway::Shutdown() {
  if (!impl_ || impl_->stopped || !impl_->thread.joinable()) return;
  Impl* impl = impl_.get();
  asio::post(impl->io, [impl] {
    impl->stopped = true;
    beast::error_code ignored;
    impl->acceptor.close(ignored);
    const std::set<WsSession*> open = impl->sessions;  // Shutdown() erases from the set
    for (WsSession* s : open) s->Shutdown();
    // Give the Close frames and WebSocket closes a moment to go out, then stop.
    auto grace = std::make_shared<asio::steady_timer>(impl->io, kShutdownGrace);
    grace->async_wait([impl, grace](beast::error_code) { impl->io.stop(); });
  });
  impl->thread.join();
}

WsGateway::WsGateway(std::unique_ptr<Impl> impl, uint16_t port)
    : impl_(std::move(impl)), port_(port) {}

WsGateway::~WsGateway() { Shutdown(); }

const LoopMetrics& WsGateway::metrics() const { return impl_->metrics; }

}  // namespace sotto::server
