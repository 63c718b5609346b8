// Noise Pipes over WebSocket (Boost.Beast): one Noise message per binary WebSocket
// message, no length prefix, driven by the same SessionProtocol as the TCP gateway and
// sharing its options, device directory, connection counter and per-IP limiter. Runs on
// its own I/O thread. Keepalive is the WebSocket's own ping/idle timeout
// (limits.ping_interval_ms + limits.ping_timeout_ms); the Noise handshake must finish
// within limits.handshake_timeout_ms. Design notes: docs/gateway.md.
//
// Thread-safety: Start/Shutdown from one thread; metrics() is thread-safe.
#pragma once

#include <memory>

#include "base/result.h"
#include "net/socket.h"
#include "server/gateway.h"
#include "server/metrics.h"

namespace sotto::server {

class WsGateway {
 public:
  // Listens on `address` (port 0 picks one). `gateway` must outlive this object.
  static Result<std::unique_ptr<WsGateway>> Start(const net::SocketAddress& address,
                                                  Gateway& gateway);
  ~WsGateway();
  WsGateway(const WsGateway&) = delete;
  WsGateway& operator=(const WsGateway&) = delete;

  uint16_t port() const { return port_; }
  // Stops accepting, sends every open session Close(SHUTDOWN), closes them, joins.
  void Shutdown();
  const LoopMetrics& metrics() const;

  struct Impl;

 private:
  WsGateway(std::unique_ptr<Impl> impl, uint16_t port);
  std::unique_ptr<Impl> impl_;
  uint16_t port_;
};

}  // namespace sotto::server
