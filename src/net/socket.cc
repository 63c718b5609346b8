#include "net/socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "net/event_loop.h"

namespace sotto::net {

uint16_t SocketAddress::port() const {
  if (storage.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
}

void SocketAddress::set_port(uint16_t port) {
  if (storage.ss_family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&storage)->sin_port = htons(port);
  } else {
    reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port = htons(port);
  }
}

std::string SocketAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (storage.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(port());
  }
  inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr, buf, sizeof buf);
  return "[" + std::string(buf) + "]:" + std::to_string(port());
}

bool IpKey::known() const {
  for (uint8_t b : bytes) {
    if (b != 0) return true;
  }
  return false;
}

std::string IpKey::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(bytes.data(), kMapped, sizeof kMapped) == 0) {
    inet_ntop(AF_INET, bytes.data() + 12, buf, sizeof buf);
    return buf;
  }
  inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
  return std::string(buf) + "/64";
}

size_t IpKeyHash::operator()(const IpKey& k) const {
  uint64_t hi = 0;
  uint64_t lo = 0;
  std::memcpy(&hi, k.bytes.data(), 8);
  std::memcpy(&lo, k.bytes.data() + 8, 8);
  return std::hash<uint64_t>{}(hi * 0x9e3779b97f4a7c15ull ^ lo);
}

net::IpKey SocketAddress::Key() const {
  net::IpKey key;
  if (storage.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&storage);
    key.bytes[10] = 0xff;
    key.bytes[11] = 0xff;
    std::memcpy(key.bytes.data() + 12, &a->sin_addr, 4);
    return key;
  }
  if (storage.ss_family != AF_INET6) return key;
  const auto* a = reinterpret_cast<const sockaddr_in6*>(&storage);
  std::memcpy(key.bytes.data(), &a->sin6_addr, 16);
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  // An IPv4-mapped IPv6 peer (a dual-stack listener) is its IPv4 address; any other IPv6
  // peer is its /64.
  if (std::memcmp(key.bytes.data(), kMapped, sizeof kMapped) != 0) {
    std::fill(key.bytes.begin() + 8, key.bytes.end(), uint8_t{0});
  }
  return key;
}

std::string SocketAddress::IpKey() const {
  const net::IpKey key = Key();
  return std::string(reinterpret_cast<const char*>(key.bytes.data()), key.bytes.size());
}

Result<SocketAddress> ParseHostPort(std::string_view text) {
  auto bad = [] {
    return NetError(Code::kInvalidArgument, NetErr::kAddress,
                    "address must be IPv4:PORT or [IPv6]:PORT");
  };
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon + 1 >= text.size()) return bad();
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port > 65535) return bad();
  SocketAddress out;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    const std::string h(host.substr(1, host.size() - 2));
    auto* a = reinterpret_cast<sockaddr_in6*>(&out.storage);
    if (inet_pton(AF_INET6, h.c_str(), &a->sin6_addr) != 1) return bad();
    a->sin6_family = AF_INET6;
    out.length = sizeof(sockaddr_in6);
  } else {
    const std::string h(host);
    auto* a = reinterpret_cast<sockaddr_in*>(&out.storage);
    if (inet_pton(AF_INET, h.c_str(), &a->sin_addr) != 1) return bad();
    a->sin_family = AF_INET;
    out.length = sizeof(sockaddr_in);
  }
  out.set_port(static_cast<uint16_t>(port));
  return out;
}

Result<SocketAddress> ResolveHostPort(std::string_view text) {
  if (auto literal = ParseHostPort(text)) return literal;
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 >= text.size()) {
    return NetError(Code::kInvalidArgument, NetErr::kAddress, "address must be HOST:PORT");
  }
  const std::string host(text.substr(0, colon));
  const std::string port(text.substr(colon + 1));
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0 || found == nullptr) {
    return NetError(Code::kNotFound, NetErr::kAddress, "host name does not resolve");
  }
  SocketAddress out;
  std::memcpy(&out.storage, found->ai_addr, found->ai_addrlen);
  out.length = found->ai_addrlen;
  freeaddrinfo(found);
  return out;
}

Status SetNonBlocking(int fd) {
  const int flags = fcntl(fd, F_GETFL, 0);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
    return NetError(Code::kInternal, NetErr::kSyscall, "fcntl(O_NONBLOCK) failed");
  }
  return Ok();
}

Status SetNoDelay(int fd) {
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
    return NetError(Code::kInternal, NetErr::kSyscall, "setsockopt(TCP_NODELAY) failed");
  }
  return Ok();
}

int SocketError(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno;
  return err;
}

Result<int> Listen(const SocketAddress& address, int backlog, ReusePort reuse_port) {
  const int fd = socket(address.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return NetError(Code::kResourceExhausted, NetErr::kSyscall, "socket() failed");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuse_port == ReusePort::kYes) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&address.storage), address.length) != 0) {
    close(fd);
    return NetError(Code::kFailedPrecondition, NetErr::kSyscall, "bind() failed");
  }
  if (listen(fd, backlog) != 0) {
    close(fd);
    return NetError(Code::kInternal, NetErr::kSyscall, "listen() failed");
  }
  return fd;
}

Result<SocketAddress> LocalAddress(int fd) {
  SocketAddress out;
  out.length = sizeof out.storage;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&out.storage), &out.length) != 0) {
    return NetError(Code::kInternal, NetErr::kSyscall, "getsockname() failed");
  }
  return out;
}

Result<int> ConnectNonBlocking(const SocketAddress& to, const SocketAddress* source) {
  const int fd = socket(to.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return NetError(Code::kResourceExhausted, NetErr::kSyscall, "socket() failed");
  if (source != nullptr) {
    int one = 1;
    // Lets many connections share the source port space per destination.
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (bind(fd, reinterpret_cast<const sockaddr*>(&source->storage), source->length) != 0) {
      close(fd);
      return NetError(Code::kResourceExhausted, NetErr::kSyscall, "bind(source) failed");
    }
  }
  if (connect(fd, reinterpret_cast<const sockaddr*>(&to.storage), to.length) != 0 &&
      errno != EINPROGRESS) {
    close(fd);
    return NetError(Code::kFailedPrecondition, NetErr::kSyscall, "connect() failed");
  }
  (void)SetNoDelay(fd);
  return fd;
}

Result<int> ConnectBlocking(const SocketAddress& to) {
  const int fd = socket(to.storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return NetError(Code::kResourceExhausted, NetErr::kSyscall, "socket() failed");
  if (connect(fd, reinterpret_cast<const sockaddr*>(&to.storage), to.length) != 0) {
    close(fd);
    return NetError(Code::kFailedPrecondition, NetErr::kSyscall, "connect() failed");
  }
  (void)SetNoDelay(fd);
  return fd;
}

}  // namespace sotto::net
