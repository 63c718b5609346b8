// The connection gateway: Noise Pipes over TCP on one epoll loop per core, each with its
// own SO_REUSEPORT listener, so a connection lives on one loop for its whole life. It
// authenticates devices by their Noise static key (DeviceDirectory), enforces every limit
// in GatewayLimits, keeps idle connections small (no read buffer, no timer object: one
// activity-ordered list per loop drives keepalive pings and timeouts) and exports counters
// (metrics.h). Wire format: docs/wire.md; design: docs/gateway.md.
//
// Thread-safety: Start/Shutdown/destructor from one thread; metrics() and
// open_connections() are thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "base/result.h"
#include "net/fd_budget.h"
#include "net/socket.h"
#include "noise/handshake_state.h"
#include "server/config.h"
#include "server/metrics.h"

namespace sotto::server {

class ServerCore;
namespace internal {
class GatewayLoop;
}

struct GatewayOptions {
  GatewayLimits limits;
  uint32_t loops = 1;
  net::SocketAddress listen;
  noise::KeyPair server_static;
  ServerCore* core = nullptr;  // must outlive the gateway
  // Shared with the process's other listeners (one descriptor per connection); nullptr:
  // only max_connections bounds descriptors. Must outlive the gateway.
  net::FdBudget* fd_budget = nullptr;
};

class Gateway {
 public:
  // Binds one listener per loop on `options.listen` (port 0 picks a free port) and
  // starts the loop threads.
  static Result<std::unique_ptr<Gateway>> Start(GatewayOptions options);
  // A gateway with no listener and no loops, for driving SessionProtocol in-process (tests
  // and fuzz targets feed it Noise messages directly). `options.core` must be set.
  static std::unique_ptr<Gateway> WithoutListeners(GatewayOptions options);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  uint16_t port() const { return port_; }
  // Stops accepting, sends every connection a Close(SHUTDOWN) frame, flushes what the
  // sockets take without blocking, closes them and joins the loops. Idempotent.
  void Shutdown();

  std::vector<const LoopMetrics*> metrics() const;
  uint32_t open_connections() const { return open_.load(std::memory_order_relaxed); }

  // Shared by the loops (internal use).
  const GatewayOptions& options() const { return options_; }
  std::atomic<uint32_t>& open_counter() { return open_; }
  // Per-source-IP handshake rate limit, shared by all loops; false = refuse.
  bool AllowHandshakeFrom(const std::string& ip_key, uint64_t now_ms);

  // Per-source caps shared by TCP and WebSocket (limits.max_connections_per_ip and
  // max_handshakes_per_ip): takes a connection and a handshake slot for `source`, or
  // sets `why` and takes nothing. Every admitted connection calls HandshakeDone once its
  // handshake completes and ReleaseSource when it closes (`in_handshake`: not yet done).
  bool AdmitSource(const net::IpKey& source, RefuseCause& why);
  void HandshakeDone(const net::IpKey& source);
  void ReleaseSource(const net::IpKey& source, bool in_handshake);
  // Bytes of incomplete input buffered by all connections, against
  // limits.max_partial_input_bytes.
  std::atomic<uint64_t>& partial_input_bytes() { return partial_input_bytes_; }

 private:
  explicit Gateway(GatewayOptions options);

  GatewayOptions options_;
  uint16_t port_ = 0;
  std::atomic<uint32_t> open_{0};
  std::vector<std::unique_ptr<internal::GatewayLoop>> loops_;
  bool shut_down_ = false;

  struct IpLimiter;
  std::unique_ptr<IpLimiter> ip_limiter_;
  struct SourceSlots;
  std::unique_ptr<SourceSlots> sources_;
  std::atomic<uint64_t> partial_input_bytes_{0};
};

}  // namespace sotto::server
