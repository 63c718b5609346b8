// Thin, Result-returning wrappers over the BSD socket calls the gateway and its load
// generator need: address parsing, listening (SO_REUSEPORT so each loop can own a
// listener), non-blocking connects from a chosen source address.
//
// Thread-safety: functions are thread-safe.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace sotto::net {

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;

  uint16_t port() const;
  void set_port(uint16_t port);
  std::string ToString() const;  // "1.2.3.4:5" or "[::1]:5"
  // The peer's IP only (no port), for per-IP limits; IPv4 as 4 bytes, IPv6 as 16.
  std::string IpKey() const;
};

// Parses "HOST:PORT" where HOST is an IPv4 or bracketed IPv6 literal (no DNS).
Result<SocketAddress> ParseHostPort(std::string_view text);
// As ParseHostPort, and else resolves a host name (getaddrinfo, blocking; the first
// TCP address). NetErr::kAddress if the name does not resolve.
Result<SocketAddress> ResolveHostPort(std::string_view text);

enum class ReusePort : uint8_t { kNo, kYes };

// A non-blocking, close-on-exec listening TCP socket bound to `address`.
Result<int> Listen(const SocketAddress& address, int backlog, ReusePort reuse_port);
// The address a socket is bound to (e.g. to learn the port picked for port 0).
Result<SocketAddress> LocalAddress(int fd);
// Starts a non-blocking connect, optionally from `source` (port 0). The fd becomes
// writable when connected; check SO_ERROR then.
Result<int> ConnectNonBlocking(const SocketAddress& to, const SocketAddress* source);
// A blocking connect (tests, tools).
Result<int> ConnectBlocking(const SocketAddress& to);
Status SetNonBlocking(int fd);
Status SetNoDelay(int fd);
// The pending socket error (SO_ERROR), 0 if none.
int SocketError(int fd);

}  // namespace sotto::net
