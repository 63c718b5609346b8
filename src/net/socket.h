// Thin, Result-returning wrappers over the BSD socket calls the gateway and its load
// generator need: address parsing, listening (SO_REUSEPORT so each loop can own a
// listener), non-blocking connects from a chosen source address.
//
// Thread-safety: functions are thread-safe.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace sotto::net {

// A peer's address as one source for per-source limits (connections, handshakes,
// registration codes): IPv4 as the mapped address ::ffff:a.b.c.d, IPv6 cut to its /64,
// since one host or one customer is given a whole /64 and could otherwise rotate through
// 2^64 keys. All zero = unknown (e.g. a socket whose peer address could not be read).
struct IpKey {
  std::array<uint8_t, 16> bytes{};

  bool operator==(const IpKey&) const = default;
  bool known() const;
  // "1.2.3.4" or "2001:db8:1:2::/64": for operators' tools and tests, never for logs at
  // info or above.
  std::string ToString() const;
};

struct IpKeyHash {
  size_t operator()(const IpKey& k) const;
};

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;

  uint16_t port() const;
  void set_port(uint16_t port);
  std::string ToString() const;  // "1.2.3.4:5" or "[::1]:5"
  // The source key of this address (see IpKey).
  net::IpKey Key() const;
  // Key() as 16 bytes in a string, for maps keyed by strings.
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
