// A small blocking HTTP/1.1 client on Boost.Beast, for the server's outgoing POSTs
// (content-free push notifications, verification-code webhooks). One request per
// connection; no redirects, no proxies, no keep-alive.
//
// `https://` uses TLS 1.2 or later with the system CA store, SNI and host-name
// verification. The whole exchange (name resolution, connect, TLS handshake, write and
// read) is bounded by the caller's timeout. A host-name lookup still running at the
// deadline finishes on a detached thread and its result is discarded; at most
// kMaxPendingLookups such lookups may be outstanding.
//
// Thread-safety: functions are thread-safe; each call uses its own io_context.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"

namespace sotto::net {

// Detail codes for Module::kNet errors from this client (after NetErr's).
enum class HttpClientErr : uint16_t {
  kBadUrl = 5020,     // the URL did not parse or uses an unsupported scheme
  kBadHeader = 5021,  // an extra header name or value is not allowed
  kResolve = 5022,    // the host name did not resolve
  kConnect = 5023,    // no address accepted the connection
  kTls = 5024,        // TLS setup, handshake or certificate verification failed
  kTimeout = 5025,    // the deadline passed
  kIo = 5026,         // write or read failed, or the response did not parse
  kTooLarge = 5027,   // the response head or body exceeded its limit
  kBusy = 5028,       // too many host-name lookups outstanding
  kInternal = 5029,   // a library failure
};

inline constexpr size_t kMaxUrlBytes = 2048;
inline constexpr uint32_t kMaxResponseBodyBytes = 64 * 1024;
inline constexpr uint32_t kMaxResponseHeaderBytes = 16 * 1024;
inline constexpr uint32_t kMaxPendingLookups = 16;

enum class Scheme : uint8_t { kHttp, kHttps };

struct ParsedUrl {
  Scheme scheme = Scheme::kHttp;
  std::string host;  // a name, an IPv4 literal, or an IPv6 literal without brackets
  uint16_t port = 0;
  std::string target;  // path and query, always starting with '/'; no fragment
};

// Parses `http://host[:port][/path][?query][#fragment]` and the same with `https`.
// The scheme is case-insensitive; the port defaults to 80 or 443; the target to "/".
// IPv6 literals are bracketed (`http://[::1]:8080/`). Rejects with kBadUrl: other
// schemes, user info (`user@host`), an empty or malformed host or port, control
// characters or spaces, and URLs longer than kMaxUrlBytes.
Result<ParsedUrl> ParseUrl(std::string_view url);

// True for "localhost" (and names under it) and for IP literals that are not public:
// loopback, private (RFC 1918, IPv6 ULA), link-local, carrier-grade NAT, unspecified,
// and IPv4-mapped forms of those. Host names are not resolved: a public name that
// resolves to a private address is not caught here.
bool IsLocalOrPrivateHost(std::string_view host);

struct HttpHeader {
  std::string_view name;
  std::string_view value;
};

struct HttpClientResponse {
  unsigned status = 0;
  std::string body;
};

// POSTs `body` with `content_type` (and `headers`, which must not repeat Host,
// Content-Type, Content-Length or Connection) to `url` and returns the status and body
// of the response, whatever the status. Blocks for at most about `timeout`.
// Errors (Module::kNet, HttpClientErr): kBadUrl, kBadHeader (names must be tokens,
// values free of control characters), kResolve, kConnect, kTls, kTimeout, kIo,
// kTooLarge (past kMaxResponseHeaderBytes / kMaxResponseBodyBytes), kBusy, kInternal.
// Canonical codes: kInvalidArgument for the caller's input, kOutOfRange for a timeout
// (as GatewayClient), kResourceExhausted for limits, kFailedPrecondition for the
// network or the peer, kInternal for library failures.
Result<HttpClientResponse> HttpPost(std::string_view url, std::string_view content_type,
                                    std::string_view body, std::chrono::milliseconds timeout,
                                    std::span<const HttpHeader> headers = {});

}  // namespace sotto::net
