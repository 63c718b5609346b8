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
  kBadUrl = 5020,            // the URL did not parse or uses an unsupported scheme
  kBadHeader = 5021,         // an extra header name or value is not allowed
  kResolve = 5022,           // the host name did not resolve
  kConnect = 5023,           // no address accepted the connection
  kTls = 5024,               // TLS setup, handshake or certificate verification failed
  kTimeout = 5025,           // the deadline passed
  kIo = 5026,                // write or read failed, or the response did not parse
  kTooLarge = 5027,          // the response head or body exceeded its limit
  kBusy = 5028,              // too many host-name lookups outstanding
  kInternal = 5029,          // a library failure
  kForbiddenAddress = 5030,  // AddressPolicy::kPublicOnly: the host is or resolves to a
                             // non-public address
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
// characters or spaces, URLs longer than kMaxUrlBytes, and numeric hosts that are not
// a canonical dotted quad (IsNonCanonicalNumericHost).
Result<ParsedUrl> ParseUrl(std::string_view url);

// True for a host that a resolver could read as an IPv4 address but that is not
// written as one canonical dotted quad: inet_aton's short, hex, octal and integer forms
// (`127.1`, `0x7f000001`, `0177.0.0.1`, `2130706433`, `0`), leading zeros
// (`127.000.0.1`), a trailing dot after a quad, and any name whose last label is
// numeric (`1.2.3.4.5`, `999.1.1.1`): such hosts mean different addresses to
// different parsers, so they are refused rather than guessed at.
bool IsNonCanonicalNumericHost(std::string_view host);

// True for "localhost" (and names under it) and for IP literals that are not public
// (IsPublicAddressBytes). Host names are not resolved here: HttpPost with
// AddressPolicy::kPublicOnly checks every address a name resolves to.
bool IsLocalOrPrivateHost(std::string_view host);

// Whether a resolved address (4 or 16 bytes, network order) is a public unicast one.
// Not public: IPv4 0/8, 10/8, 100.64/10 (CGNAT), 127/8, 169.254/16 (link-local, cloud
// metadata), 172.16/12, 192.0.0/24, 192.168/16, 198.18/15, 224/4 and above (multicast,
// reserved, broadcast); IPv6 :: and ::1, the IPv4-compatible ::/96, fc00::/7 (ULA),
// fe80::/10, fec0::/10, ff00::/8, 100::/64 (discard), 2001::/32 (Teredo), and the forms
// that embed an IPv4 address whose IPv4 form is not public: ::ffff:0:0/96 (mapped),
// 64:ff9b::/96 and 64:ff9b:1::/48 (NAT64), 2002::/16 (6to4).
bool IsPublicAddressBytes(std::span<const uint8_t> address);

// Which peers HttpPost may connect to.
enum class AddressPolicy : uint8_t {
  kAny,         // whatever the URL names (operator-configured URLs)
  kPublicOnly,  // only public addresses (IsPublicAddressBytes): URLs from users
};

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
// The host is resolved once; the connection goes only to the addresses that lookup
// returned (no second lookup, no redirect), while the Host header and TLS SNI and
// certificate check keep the name. With AddressPolicy::kPublicOnly the request is
// refused (kForbiddenAddress, kPermissionDenied) before any connection if the host is
// a literal that is not public or if ANY address the name resolves to is not public
// (IsPublicAddressBytes), so a name cannot point part of its records inside.
// Errors (Module::kNet, HttpClientErr): kBadUrl, kBadHeader (names must be tokens,
// values free of control characters), kResolve, kConnect, kTls, kTimeout, kIo,
// kTooLarge (past kMaxResponseHeaderBytes / kMaxResponseBodyBytes), kBusy, kInternal,
// kForbiddenAddress.
// Canonical codes: kInvalidArgument for the caller's input, kOutOfRange for a timeout
// (as GatewayClient), kResourceExhausted for limits, kFailedPrecondition for the
// network or the peer, kInternal for library failures.
Result<HttpClientResponse> HttpPost(std::string_view url, std::string_view content_type,
                                    std::string_view body, std::chrono::milliseconds timeout,
                                    std::span<const HttpHeader> headers = {},
                                    AddressPolicy policy = AddressPolicy::kAny);

}  // namespace sotto::net
